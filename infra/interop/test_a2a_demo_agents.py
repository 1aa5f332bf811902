"""Confab's demo agents driven by the official A2A Python SDK (a2a-sdk 1.3.0).

Each agent's base URL comes from the environment (a test whose variable is
unset is skipped):

    CONFAB_MATH_AGENT_URL   CONFAB_TEXT_AGENT_URL   CONFAB_TREE_AGENT_URL

An agent serves its card at /.well-known/agent-card.json (and the legacy
/.well-known/agent.json) and JSON-RPC at POST / of the same base URL, in A2A
v1.0 and v0.3.

How the SDK picks the protocol version: `ClientFactory.create(card)` takes the
card's JSON-RPC interface with protocolVersion 1.0 when there is one (the
v1.0 `JsonRpcTransport`: SendStreamingMessage, GetTask, CancelTask,
SubscribeToTask, header `A2A-Version: 1.0`), and speaks v0.3 only when the
interface it picked has a 0.3.x version (`CompatJsonRpcTransport`:
message/stream, tasks/get, tasks/cancel, tasks/resubscribe, header
`a2a-version: 0.3`, kind-tagged parts). So the v0.3 tests hand the factory a
copy of the card that keeps only its v0.3 interface. Every request's
JSON-RPC method and A2A-Version header are recorded (an httpx event hook) and
checked, so a test cannot pass over the wrong version.

The cancel and re-subscribe tests need a task that is still running a moment
after it started: the environment is expected to slow the builtin LLM behind
the agents down (llm-proxy-service's first_chunk_delay_ms / chunk_delay_ms).

Every JSON-RPC call to an agent needs `Authorization: Bearer` with the
services' shared token (or the agent's own inbound key); the card declares
it (securitySchemes / securityRequirements in v1.0, / security in v0.3).
The SDK clients here send it as a default header of their httpx client:
CONFAB_AGENT_TOKEN (default: the development service token, which run.sh
sets from the demo agents' defaults). One test checks that a call without
it is refused.

CONFAB_A2A_TIMEOUT (seconds, default 60) bounds each test, and every read of
a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.client.card_resolver import parse_agent_card
from a2a.client.errors import A2AClientError
from a2a.compat.v0_3 import types as types_v03
from a2a.compat.v0_3.versions import is_legacy_version
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import (
    InvalidParamsError,
    TaskNotCancelableError,
    UnsupportedOperationError,
)
from a2a.utils.proto_utils import validate_proto_required_fields

AGENT_VARS = {
    "math": "CONFAB_MATH_AGENT_URL",
    "text": "CONFAB_TEXT_AGENT_URL",
    "tree": "CONFAB_TREE_AGENT_URL",
}
CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
QUESTION = "What is 6 * 7?"
ANSWER = "42"
TIMEOUT = float(os.environ.get("CONFAB_A2A_TIMEOUT", "60"))
# The bearer token the agents accept (the services' shared token).
AGENT_TOKEN = os.environ.get("CONFAB_AGENT_TOKEN") or "confab-dev-service-token"
VERSIONS = ["1.0", "0.3"]

# The JSON-RPC method names each version uses for the calls of these tests.
METHODS = {
    "1.0": {
        "stream": "SendStreamingMessage",
        "get": "GetTask",
        "cancel": "CancelTask",
        "subscribe": "SubscribeToTask",
    },
    "0.3": {
        "stream": "message/stream",
        "get": "tasks/get",
        "cancel": "tasks/cancel",
        "subscribe": "tasks/resubscribe",
    },
}

SLOW_LLM_HINT = (
    "the task had already ended: these tests need the builtin LLM behind the "
    "agent slowed down (llm-proxy-service first_chunk_delay_ms / chunk_delay_ms) "
    "so that a task is still running right after its first event"
)


def agent_url(name: str) -> str:
    var = AGENT_VARS[name]
    url = os.environ.get(var, "").rstrip("/")
    if not url:
        pytest.skip(f"{var} is not set: no {name} agent to test")
    return url


def run(coro: Any) -> Any:
    """Runs one test's coroutine on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


# --- the wire -------------------------------------------------------------------


class Wire:
    """Every JSON-RPC request an httpx client sent: (method, A2A-Version)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    async def on_request(self, request: httpx.Request) -> None:
        if request.method != "POST":
            return
        try:
            body = json.loads(request.content)
        except ValueError:
            return
        if isinstance(body, dict):
            self.calls.append((body.get("method"), request.headers.get("A2A-Version")))

    def assert_spoke(self, version: str, *calls: str) -> None:
        expected = [(METHODS[version][c], version) for c in calls]
        assert self.calls == expected, (
            f"expected the SDK to speak A2A {version} ({expected}), it sent {self.calls}"
        )


def new_http(wire: Wire | None = None, token: str | None = AGENT_TOKEN) -> httpx.AsyncClient:
    """An httpx client that presents `token` on every request (None: no credential)."""
    # httpx's default timeout is 5 s, which would end a stream whose events
    # come more than 5 s apart (A2AClientTimeoutError).
    hooks = {"request": [wire.on_request]} if wire else {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT), event_hooks=hooks, headers=headers)


async def fetch_raw_card(http: httpx.AsyncClient, base: str) -> dict[str, Any]:
    response = await http.get(base + CARD_PATHS[0])
    response.raise_for_status()
    return response.json()


def v03_card(raw: dict[str, Any]) -> AgentCard:
    """The card as the SDK would read it with only its v0.3 JSON-RPC interface.

    Taken from `supportedInterfaces` (an entry with a 0.3.x protocolVersion),
    else from the v0.3 top-level fields `url` / `preferredTransport` /
    `protocolVersion`, which the SDK reads only when `supportedInterfaces` is
    absent.
    """

    def legacy(card: AgentCard) -> list:
        return [
            i
            for i in card.supported_interfaces
            if i.protocol_binding == "JSONRPC" and is_legacy_version(i.protocol_version)
        ]

    card = parse_agent_card(copy.deepcopy(raw))
    interfaces = legacy(card)
    if not interfaces and raw.get("url"):
        card = parse_agent_card({k: v for k, v in copy.deepcopy(raw).items() if k != "supportedInterfaces"})
        interfaces = legacy(card)
    if not interfaces:
        pytest.fail(
            "the card offers no v0.3 JSON-RPC interface (neither a supportedInterfaces "
            "entry with protocolVersion 0.3.x nor the v0.3 fields url/protocolVersion): "
            + json.dumps(raw)
        )
    kept = [copy.deepcopy(interfaces[0])]
    del card.supported_interfaces[:]
    card.supported_interfaces.extend(kept)
    return card


@contextlib.asynccontextmanager
async def sdk_client(
    base: str, version: str, token: str | None = AGENT_TOKEN
) -> AsyncIterator[tuple[Client, Wire]]:
    """An SDK client of the agent at `base` speaking `version` and presenting
    `token` (None: no credential), and its wire."""
    wire = Wire()
    async with new_http(wire, token) as http:
        if version == "1.0":
            card = await A2ACardResolver(http, base).get_agent_card()
        else:
            card = v03_card(await fetch_raw_card(http, base))
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(card)
        try:
            yield client, wire
        finally:
            await client.close()


# --- events ---------------------------------------------------------------------


def user_message(text: str) -> SendMessageRequest:
    return SendMessageRequest(
        message=Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=text)])
    )


def kind(event: StreamResponse) -> str:
    return event.WhichOneof("payload") or "(empty)"


def task_id_of(event: StreamResponse) -> str:
    k = kind(event)
    if k == "task":
        return event.task.id
    if k == "status_update":
        return event.status_update.task_id
    if k == "artifact_update":
        return event.artifact_update.task_id
    return event.message.task_id


def state_of(event: StreamResponse) -> int | None:
    if kind(event) == "task":
        return event.task.status.state
    if kind(event) == "status_update":
        return event.status_update.status.state
    return None


def state_name(state: int | None) -> str:
    return "none" if state is None else TaskState.Name(state)


def text_of(parts: Any) -> str:
    return "".join(p.text for p in parts if p.WhichOneof("content") == "text")


def task_text(task: Task) -> str:
    return "".join(text_of(a.parts) for a in task.artifacts)


def streamed_text(events: list[StreamResponse]) -> str:
    """The artifact text a stream carried: a task snapshot's artifacts, then chunks."""
    out = []
    for event in events:
        if kind(event) == "task":
            out.append(task_text(event.task))
        elif kind(event) == "artifact_update":
            out.append(text_of(event.artifact_update.artifact.parts))
    return "".join(out)


def last_state(events: list[StreamResponse]) -> int | None:
    states = [s for s in map(state_of, events) if s is not None]
    return states[-1] if states else None


def describe(events: list[StreamResponse]) -> str:
    """`kind:STATE` of each event, with the text of a status message."""

    def one(e: StreamResponse) -> str:
        status = e.task.status if kind(e) == "task" else e.status_update.status
        note = text_of(status.message.parts) if kind(e) in ("task", "status_update") else ""
        return f"{kind(e)}:{state_name(state_of(e))}" + (f" ({note})" if note else "")

    return ", ".join(map(one, events))


async def collect(stream: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    """Every event until the server ends the stream (the SDK does not stop at a
    terminal state by itself)."""
    return [event async for event in stream]


# --- the agent card --------------------------------------------------------------


@pytest.mark.parametrize("name", list(AGENT_VARS))
def test_card_is_read_by_the_sdk(name):
    base = agent_url(name)

    async def go():
        async with new_http() as http:
            cards = [await A2ACardResolver(http, base, path).get_agent_card() for path in CARD_PATHS]
            client = ClientFactory(ClientConfig(httpx_client=http)).create(cards[0])
            await client.close()
        return cards

    card, legacy_path_card = run(go())
    assert card == legacy_path_card, "agent-card.json and agent.json serve different cards"
    assert card.name == name
    try:
        validate_proto_required_fields(card)
    except InvalidParamsError as e:
        pytest.fail(f"the card lacks fields the A2A v1.0 schema marks REQUIRED: {e.data}")
    assert card.capabilities.streaming, "the card does not announce streaming"
    v1 = [
        i.url
        for i in card.supported_interfaces
        if i.protocol_binding == "JSONRPC" and i.protocol_version in ("1.0", "1.0.0")
    ]
    assert v1, f"no JSON-RPC interface with protocolVersion 1.0: {card.supported_interfaces}"
    assert all(url.rstrip("/") == base for url in v1), f"the v1.0 interface is not at {base}/: {v1}"
    # Security as a v1.0 client reads it: one requirement, naming an HTTP
    # bearer scheme declared in securitySchemes.
    assert [list(r.schemes) for r in card.security_requirements] == [["bearer"]], card.security_requirements
    scheme = card.security_schemes["bearer"]
    assert scheme.WhichOneof("scheme") == "http_auth_security_scheme", scheme
    assert scheme.http_auth_security_scheme.scheme.lower() == "bearer"


@pytest.mark.parametrize("name", list(AGENT_VARS))
def test_card_is_read_by_v03_clients(name):
    base = agent_url(name)

    async def go():
        async with new_http() as http:
            return await fetch_raw_card(http, base)

    raw = run(go())
    # The SDK's v0.3 card model: what v0.3 clients (a2a-sdk 0.3.x) require,
    # among others the top-level `url`.
    try:
        legacy = types_v03.AgentCard.model_validate(raw)
    except Exception as e:  # pydantic.ValidationError
        pytest.fail(f"a v0.3 client rejects the card: {e}")
    assert legacy.url and legacy.url.rstrip("/") == base
    assert (legacy.preferred_transport or "JSONRPC") == "JSONRPC"
    assert is_legacy_version(legacy.protocol_version), (
        f"the card's protocolVersion {legacy.protocol_version!r} is not a v0.3 version"
    )
    # Security as a v0.3 client reads it (OpenAPI shapes).
    assert legacy.security == [{"bearer": []}], legacy.security
    scheme = legacy.security_schemes["bearer"].root
    assert isinstance(scheme, types_v03.HTTPAuthSecurityScheme), scheme
    assert scheme.scheme.lower() == "bearer"
    card = v03_card(raw)
    assert card.supported_interfaces[0].url.rstrip("/") == base


# --- authentication -------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_call_without_the_credential_is_refused(version):
    base = agent_url("math")

    async def go():
        async with new_http(token=None) as http:
            # The card stays public.
            raw_card = await fetch_raw_card(http, base)
        async with sdk_client(base, version, token=None) as (client, wire):
            with pytest.raises(A2AClientError) as refused:
                await collect(client.send_message(user_message(QUESTION)))
        # The same call as raw JSON-RPC, to read the agent's answer itself.
        async with new_http(token=None) as http:
            headers = {"A2A-Version": version} if version == "1.0" else {}
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": METHODS[version]["stream"],
                "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": QUESTION}]}},
            }
            raw = await http.post(base + "/", json=body, headers=headers)
        async with new_http(token="not-the-token") as http:
            wrong = await http.post(base + "/", json=body, headers=headers)
        return raw_card, refused.value, wire, raw, wrong

    raw_card, error, wire, raw, wrong = run(go())
    assert "bearer" in raw_card.get("securitySchemes", {}), raw_card
    wire.assert_spoke(version, "stream")
    cause = error.__cause__
    assert isinstance(cause, httpx.HTTPStatusError), f"not refused over HTTP: {error!r}"
    assert cause.response.status_code == 401, error
    assert raw.status_code == 401
    assert raw.headers["www-authenticate"].startswith("Bearer")
    answer = raw.json()
    assert answer["jsonrpc"] == "2.0" and "result" not in answer, answer
    assert "authentication required" in answer["error"]["message"], answer
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]


# --- streaming ------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_math_streams_the_answer(version):
    base = agent_url("math")

    async def go():
        async with sdk_client(base, version) as (client, wire):
            events = await collect(client.send_message(user_message(QUESTION)))
            assert events, "the stream ended without an event"
            task = await client.get_task(GetTaskRequest(id=task_id_of(events[0])))
        return events, task, wire

    events, task, wire = run(go())
    wire.assert_spoke(version, "stream", "get")
    assert kind(events[0]) == "task", f"the first event is not the task: {describe(events)}"
    task_id = events[0].task.id
    assert task_id and all(task_id_of(e) == task_id for e in events), describe(events)
    assert kind(events[-1]) == "status_update", f"the stream does not end with a status update: {describe(events)}"
    assert state_name(last_state(events)) == "TASK_STATE_COMPLETED", describe(events)
    text = streamed_text(events)
    assert ANSWER in text, f"{ANSWER!r} not in the streamed artifact text {text!r}"
    assert task.id == task_id
    assert state_name(task.status.state) == "TASK_STATE_COMPLETED"
    assert ANSWER in task_text(task), f"{ANSWER!r} not in the task's artifacts {task_text(task)!r}"


# --- cancel ---------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_cancel_a_running_task(version):
    base = agent_url("math")

    async def go():
        async with sdk_client(base, version) as (client, wire):
            async with contextlib.aclosing(client.send_message(user_message(QUESTION))) as stream:
                first = await anext(stream)
                task_id = task_id_of(first)
                try:
                    canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
                except TaskNotCancelableError:
                    pytest.fail(SLOW_LLM_HINT)
                rest = await collect(stream)
            after = await client.get_task(GetTaskRequest(id=task_id))
        return first, canceled, rest, after, wire

    first, canceled, rest, after, wire = run(go())
    wire.assert_spoke(version, "stream", "cancel", "get")
    events = [first, *rest]
    assert canceled.id == task_id_of(first)
    assert state_name(canceled.status.state) == "TASK_STATE_CANCELED"
    assert state_name(last_state(events)) == "TASK_STATE_CANCELED", (
        f"the stream did not end in state canceled: {describe(events)}"
    )
    assert state_name(after.status.state) == "TASK_STATE_CANCELED"


# --- re-subscribe ---------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_resubscribe_mid_way(version):
    base = agent_url("math")

    async def go():
        async with sdk_client(base, version) as (client, wire):
            # Start the task, then drop its stream after the first event, as a
            # client whose connection broke would.
            async with contextlib.aclosing(client.send_message(user_message(QUESTION))) as stream:
                task_id = task_id_of(await anext(stream))
            try:
                events = await collect(client.subscribe(SubscribeToTaskRequest(id=task_id)))
            except UnsupportedOperationError:
                pytest.fail(SLOW_LLM_HINT)
            task = await client.get_task(GetTaskRequest(id=task_id))
        return task_id, events, task, wire

    task_id, events, task, wire = run(go())
    wire.assert_spoke(version, "stream", "subscribe", "get")
    assert events, "the re-subscription ended without an event"
    assert kind(events[0]) == "task", f"the re-subscription does not start with the task snapshot: {describe(events)}"
    assert events[0].task.id == task_id
    assert all(task_id_of(e) == task_id for e in events), describe(events)
    assert state_name(last_state(events)) == "TASK_STATE_COMPLETED", describe(events)
    assert state_name(task.status.state) == "TASK_STATE_COMPLETED"
    assert ANSWER in task_text(task), f"{ANSWER!r} not in the task's artifacts {task_text(task)!r}"
    # The snapshot holds what was produced before it, the events after it the
    # rest: together, the whole answer once.
    assert streamed_text(events) == task_text(task), "the re-subscription has a gap or a duplicate"
