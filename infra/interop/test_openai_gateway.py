"""The gateway's OpenAI-compatible API (`/api/v1/models`,
`/api/v1/chat/completions`) driven by the official OpenAI Python SDK, as a
user of the platform would: one base URL, `<gateway>/api/v1`, and the user's
access token as the API key (DESIGN.md §5, §6, §13).

Every test registers a user of its own through the gateway and logs in. The
gateway checks the token, passes the identity on to chat-service with the
service token, and chat-service runs the turn with the agent named as the
model. The math agent's model is the builtin one: "What is 6 * 7?" makes it
call its calculator tool and answer "The answer is 42.".

Personal API keys (issue 21) are used the same way, as the SDK's api_key:
a key of scope `chat` streams a reply, a revoked one is refused on its
next call, a `read` key cannot start a turn, and a key of scope `llm`
reaches llm-proxy-service's own models with the base URL
`<gateway>/api/v1/llm`.

Environment (set by run.sh; the tests are skipped without it):
    CONFAB_GATEWAY_URL   the gateway, in front of chat-service (demo agents
                         math, text and tree) and llm-proxy-service
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
from openai import OpenAI

from common import url_of

# Seconds any one request may take: generous, so that a broken stack fails
# the test instead of hanging it.
TIMEOUT = 30.0
QUESTION = "What is 6 * 7?"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class User:
    id: str
    username: str
    token: str


def gateway_url() -> str:
    return url_of("CONFAB_GATEWAY_URL")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """Plain HTTP to the gateway (never through an HTTP proxy)."""
    with httpx.Client(base_url=gateway_url(), timeout=TIMEOUT, trust_env=False) as client:
        yield client


def new_user(http: httpx.Client, prefix: str) -> User:
    """A user registered and logged in through the gateway."""
    username = f"{prefix}-{uuid.uuid4().hex[:16]}"
    credentials = {"username": username, "password": PASSWORD}
    registered = http.post("/api/v1/auth/register", json=credentials)
    assert registered.status_code == 201, registered.text
    login = http.post("/api/v1/auth/login", json=credentials)
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["token_type"] == "bearer", body
    return User(id=registered.json()["id"], username=username, token=body["access_token"])


@pytest.fixture
def user(http: httpx.Client) -> User:
    return new_user(http, "sdk")


def make_client(api_key: str) -> OpenAI:
    return OpenAI(
        base_url=gateway_url() + "/api/v1",
        api_key=api_key,
        max_retries=0,
        timeout=TIMEOUT,
    )


@pytest.fixture
def client(user: User) -> Iterator[OpenAI]:
    with make_client(user.token) as c:
        yield c


def conversation_ids(http: httpx.Client, user: User) -> set[str]:
    """The ids of the conversations `GET /api/v1/conversations` lists for
    `user` (at most 100: each test's user has a few)."""
    response = http.get(
        "/api/v1/conversations",
        params={"limit": "100"},
        headers={"Authorization": f"Bearer {user.token}"},
    )
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()["items"]}


def test_the_agents_are_listed_as_models(client: OpenAI) -> None:
    models = list(client.models.list())
    ids = {model.id for model in models}
    assert {"math", "text", "tree"} <= ids, ids
    assert all(model.object == "model" for model in models), models


def test_a_completion_answers_the_question(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="math", messages=[{"role": "user", "content": QUESTION}]
    )
    assert completion.model == "math"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert "42" in (choice.message.content or ""), choice.message
    assert choice.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_a_streamed_completion_is_reassembled_from_deltas(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="math", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = [chunk for chunk in stream if chunk.choices]
    assert chunks, "no chunks with choices"
    deltas = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(deltas) > 1, f"the reply came in one piece: {deltas}"
    assert "42" in "".join(deltas), deltas
    assert chunks[-1].choices[0].finish_reason == "stop", chunks[-1]
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


@pytest.mark.parametrize("token", ["not-a-token", "eyJhbGciOiJub25lIn0.e30."])
def test_an_invalid_token_is_refused_with_401(token: str) -> None:
    with make_client(token) as client:
        with pytest.raises(openai.AuthenticationError) as raised:
            client.chat.completions.create(
                model="math", messages=[{"role": "user", "content": QUESTION}]
            )
        assert raised.value.status_code == 401
        with pytest.raises(openai.AuthenticationError):
            client.models.list()


def test_the_conversation_of_a_completion_is_its_users_alone(
    client: OpenAI, http: httpx.Client, user: User
) -> None:
    completion = client.chat.completions.create(
        model="math", messages=[{"role": "user", "content": QUESTION}]
    )
    conversation_id = (completion.model_extra or {})["conversation_id"]
    assert conversation_id in conversation_ids(http, user)

    other = new_user(http, "sdk-other")
    assert conversation_id not in conversation_ids(http, other)
    # Another user's conversation does not exist for them (DESIGN §4).
    response = http.get(
        f"/api/v1/conversations/{conversation_id}",
        headers={"Authorization": f"Bearer {other.token}"},
    )
    assert response.status_code == 404, response.text


def new_api_key(http: httpx.Client, user: User, scopes: list[str]) -> tuple[str, str]:
    """A personal API key of `user` (issue 21): its id and the key itself."""
    response = http.post(
        "/api/v1/api-keys",
        json={"name": "openai sdk", "scopes": scopes},
        headers={"Authorization": f"Bearer {user.token}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["key"].startswith("cfk_"), body
    return body["id"], body["key"]


def test_an_api_key_streams_a_chat_reply_as_its_user(http: httpx.Client, user: User) -> None:
    _, key = new_api_key(http, user, ["chat"])
    with make_client(key) as client:
        stream = client.chat.completions.create(
            model="math", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
        chunks = [chunk for chunk in stream if chunk.choices]
    deltas = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "42" in "".join(deltas), deltas
    assert chunks[-1].choices[0].finish_reason == "stop", chunks[-1]
    # The turn is the key's user's: her access token lists its conversation.
    conversation_id = (chunks[-1].model_extra or {})["conversation_id"]
    assert conversation_id in conversation_ids(http, user)


def test_a_revoked_api_key_is_refused_on_its_next_call(http: httpx.Client, user: User) -> None:
    key_id, key = new_api_key(http, user, ["chat"])
    with make_client(key) as client:
        assert {"math", "text", "tree"} <= {model.id for model in client.models.list()}
        revoked = http.delete(
            f"/api/v1/api-keys/{key_id}", headers={"Authorization": f"Bearer {user.token}"}
        )
        assert revoked.status_code == 204, revoked.text
        with pytest.raises(openai.AuthenticationError) as raised:
            client.models.list()
        assert raised.value.status_code == 401


def test_an_api_key_without_the_chat_scope_is_refused_with_403(
    http: httpx.Client, user: User
) -> None:
    _, key = new_api_key(http, user, ["read"])
    with make_client(key) as client:
        # `read` lists the models (a GET) but cannot start a turn (a POST).
        assert "math" in {model.id for model in client.models.list()}
        with pytest.raises(openai.PermissionDeniedError) as raised:
            client.chat.completions.create(
                model="math", messages=[{"role": "user", "content": QUESTION}]
            )
        assert raised.value.status_code == 403


def test_an_llm_api_key_calls_the_llm_proxys_models_through_the_gateway(
    http: httpx.Client, user: User
) -> None:
    """An SDK pointed at `<gateway>/api/v1/llm` with a key of scope `llm`
    reaches llm-proxy-service's own models (the builtin one echoes), and
    the call is recorded as the key's user's."""
    _, key = new_api_key(http, user, ["llm"])
    text = "echo this through the gateway please"
    with OpenAI(
        base_url=gateway_url() + "/api/v1/llm", api_key=key, max_retries=0, timeout=TIMEOUT
    ) as client:
        assert "builtin" in {model.id for model in client.models.list()}
        stream = client.chat.completions.create(
            model="builtin", messages=[{"role": "user", "content": text}], stream=True
        )
        chunks = [chunk for chunk in stream if chunk.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
    assert len([c for c in chunks if c.choices[0].delta.content]) > 1, "one chunk per token"
    # The proxy records off the request path: the row is there a moment later.
    for _ in range(100):
        calls = http.get(
            "/api/v1/llm-calls", headers={"Authorization": f"Bearer {key}"}, params={"limit": "10"}
        )
        assert calls.status_code == 200, calls.text
        if any(call["model"] == "builtin" for call in calls.json()["items"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"the call was not recorded as the key's user's: {calls.text}")


def test_a_call_reports_its_cost_and_the_usage_endpoint_counts_it_under_its_key(
    http: httpx.Client, user: User
) -> None:
    """The proxy adds the call's cost to `usage` (as OpenRouter does), which
    the SDK keeps as an extra field; `/api/v1/usage` sums the call under the
    key that made it, as the key's user reads her usage."""
    key_id, key = new_api_key(http, user, ["llm"])
    with OpenAI(
        base_url=gateway_url() + "/api/v1/llm", api_key=key, max_retries=0, timeout=TIMEOUT
    ) as client:
        completion = client.chat.completions.create(
            model="builtin", messages=[{"role": "user", "content": "what does this cost"}]
        )
    assert completion.usage is not None
    assert (completion.usage.model_extra or {})["cost"] == 0, completion.usage  # builtin is free
    for _ in range(100):
        usage = http.get(
            "/api/v1/usage",
            headers={"Authorization": f"Bearer {user.token}"},
            params={"group_by": "api_key"},
        )
        assert usage.status_code == 200, usage.text
        items = {item["key"]: item for item in usage.json()["items"]}
        if key_id in items:
            assert items[key_id]["calls"] == 1
            assert items[key_id]["input_tokens"] == completion.usage.prompt_tokens
            assert items[key_id]["output_tokens"] == completion.usage.completion_tokens
            assert items[key_id]["cost"] == 0
            return
        time.sleep(0.05)
    raise AssertionError(f"the call is not in the key's usage: {usage.text}")
