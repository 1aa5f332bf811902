"""chat-service's A2A client against agents written with the official A2A
Python SDK (a2a-sdk 1.3.0, infra/interop/a2a_sdk_agent.py): a chat turn
streams the agent's reply and persists it, once with an agent that serves
A2A v1.0 only and once with one that serves v0.3 only.

chat-service picks the protocol version from each agent's card. The v1.0
agent answers v0.3 method names with "method not found" and refuses v1.0
calls without the `A2A-Version: 1.0` header; the v0.3 agent refuses v1.0
method names. So a turn that completes proves chat-service spoke each agent's
version.

Environment (set by run.sh; the tests are skipped without it):
    CONFAB_CHAT_URL   chat-service, with the agents `sdk_v1` and `sdk_v03`
"""

from __future__ import annotations

import json
import os

import httpx
import pytest

SERVICE_TOKEN = "confab-dev-service-token"
TIMEOUT = float(os.environ.get("CONFAB_A2A_TIMEOUT", "60"))


def chat_url() -> str:
    url = os.environ.get("CONFAB_CHAT_URL", "").rstrip("/")
    if not url:
        pytest.skip("CONFAB_CHAT_URL is not set: no chat-service to test")
    return url


def client(user: str) -> httpx.Client:
    """Calls chat-service as the gateway does: service token and identity."""
    return httpx.Client(
        base_url=chat_url(),
        headers={"x-service-token": SERVICE_TOKEN, "x-user-id": user},
        timeout=TIMEOUT,
    )


def stream_turn(http: httpx.Client, conversation: str, message: str) -> list[dict]:
    """Every native SSE event of one turn, in order."""
    events = []
    with http.stream(
        "POST",
        f"/chat/conversations/{conversation}/messages/stream",
        json={"message": message},
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[len("data:") :]))
    return events


@pytest.mark.parametrize(
    ("agent", "version"), [("sdk_v1", "1.0"), ("sdk_v03", "0.3")]
)
def test_a_turn_with_an_sdk_agent_streams_and_persists_its_reply(agent, version):
    with client("usr-interop") as http:
        agents = http.get("/chat/agents").raise_for_status().json()
        listed = {a["id"]: a for a in agents["items"]}
        card = listed[agent]["card"]
        versions = {i["protocolVersion"] for i in card.get("supportedInterfaces", [])}
        assert any(v.startswith(version) for v in versions), card

        created = http.post("/chat/conversations", json={"agent_id": agent})
        assert created.status_code == 201, created.text
        conversation = created.json()["id"]

        events = stream_turn(http, conversation, "hello from the interop suite")
        types = [e["type"] for e in events]
        assert types[0] == "message_start", types
        assert types[-1] == "done", types
        assert "error" not in types, events
        text = "".join(e["text"] for e in events if e["type"] == "text")
        assert text == "You said: hello from the interop suite"
        assert types.count("text") == 3, "the SDK agent's three chunks, one event each"
        done = events[-1]
        assert done["status"] == "complete"

        messages = (
            http.get(f"/chat/conversations/{conversation}/messages")
            .raise_for_status()
            .json()["items"]
        )
        assert [m["role"] for m in messages] == ["user", "assistant"]
        reply = messages[1]
        assert reply["id"] == done["message_id"]
        assert reply["content"] == text
        assert reply["status"] == "complete"
        assert reply["agent_task_id"], "the SDK agent's task id is kept"


@pytest.mark.parametrize("agent", ["sdk_v1", "sdk_v03"])
def test_an_agents_tree_patch_that_doubles_the_tree_is_refused(agent):
    """A hostile agent's tree_patch (a2a_sdk_agent.py's TREE_BOMB: 25 copies
    of an 8,000-character string into itself) is an `error` event
    `tree_too_large`; the turn still ends, and the tree and its version are
    unchanged."""
    with client("usr-interop-tree") as http:
        created = http.post("/chat/conversations", json={"agent_id": agent})
        assert created.status_code == 201, created.text
        conversation = created.json()["id"]

        events = stream_turn(http, conversation, "send the tree patch that doubles the tree")
        errors = [e["error"]["code"] for e in events if e["type"] == "error"]
        assert errors == ["tree_too_large"], events
        assert events[-1]["type"] == "done", events

        read = http.get(f"/chat/conversations/{conversation}").raise_for_status().json()
        assert read["tree"] == {}
        assert read["tree_version"] == 0
