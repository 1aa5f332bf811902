"""`/ws/chat` and `/ws/trace/{agent_id}` through the front door, driven by
the Python `websockets` library (DESIGN.md §9, §10, §13):

    client → dashboard-proxy (?token=) → gateway (Bearer) → chat-service
    client → gateway (Authorization: Bearer, or ?token=) → chat-service
    client → dashboard-proxy → gateway → llm-proxy-service (/ws/trace)

Both chat dialects: envelope (`init_session`, `user_prompt` →
`assistant_response` chunks, then the final one) and compact (`welcome`,
`message` → `token` … `done`), the latter asked for by `?dialect=compact` or
by the `confab.compact.v1` subprotocol. The gateway's default is the
envelope, dashboard-proxy's the compact one (seed 001's frames; see
test_seeds.py), so the envelope is asked for by name there. Close codes travel both ways through
both hops; a missing or refused token is a 401 handshake at the gateway and
close code 4401 at dashboard-proxy (which accepts first, so a browser can read
the code). The live trace shows a user their own agent calls, and nobody
else's.

Every test registers a user of its own through the gateway. The math agent's
model is the builtin one: "What is 6 * 7?" makes it call its calculator tool
and answer "The answer is 42.".

The suites wrap each coroutine in asyncio.run (as test_a2a_demo_agents.py
does) rather than depend on a pytest plugin. Every wait is bounded by
TIMEOUT, so a broken stack fails instead of hanging.

Environment (set by run.sh; the tests are skipped without it):
    CONFAB_GATEWAY_URL     the gateway
    CONFAB_DASHBOARD_URL   dashboard-proxy, relaying to that gateway
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close

from common import TIMEOUT, User, gateway_http, new_user, run_bounded
from common import open_ws, receive, send, until, ws_url

# Seconds a trace socket is watched for events that must not come: a bound
# on the wait, not a speed requirement (the events it would catch were
# published before the wait starts).
ISOLATION_WAIT = 3.0
QUESTION = "What is 6 * 7?"
COMPACT = "confab.compact.v1"
# chat-service closes on a frame larger than 64 KiB.
OVERSIZED = 70 * 1024

T = TypeVar("T")
Frame = dict[str, Any]


def gateway(path: str) -> str:
    return ws_url("CONFAB_GATEWAY_URL", path)


def dashboard(path: str) -> str:
    return ws_url("CONFAB_DASHBOARD_URL", path)


def run(test: Callable[[], Awaitable[T]]) -> T:
    """Runs one test's coroutine, the whole of it bounded by six waits."""
    return run_bounded(test, 6 * TIMEOUT)


async def closed(ws: ClientConnection) -> Close:
    """The close frame the server sent (frames before it are dropped)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed as closing:
        assert closing.rcvd is not None, f"no close frame received: {closing!r}"
        return closing.rcvd


def final_reply(frame: Frame) -> bool:
    return frame["type"] == "assistant_response" and frame["data"]["chunk"] is False


def trace_kind(frame: Frame) -> str | None:
    return (frame.get("event") or {}).get("kind")


# --- turns --------------------------------------------------------------------------


async def envelope_turn(ws: ClientConnection) -> tuple[str, Frame]:
    """A new conversation and one turn in the envelope dialect: the
    conversation id and the final `assistant_response`."""
    await send(ws, {"type": "init_session", "data": {}})
    ready = await receive(ws)
    assert ready["type"] == "session_ready", ready
    conversation_id = ready["data"]["session_id"]
    assert conversation_id.startswith("conv"), ready
    history = await receive(ws)
    assert history["type"] == "chat_history", history
    assert history["data"]["messages"] == [], history

    await send(ws, {"type": "user_prompt", "data": {"prompt": QUESTION}})
    frames = await until(ws, final_reply)
    replies = [f for f in frames if f["type"] == "assistant_response"]
    chunks = [f["data"]["text"] for f in replies[:-1]]
    assert chunks, f"no chunks before the final reply: {frames}"
    assert all(f["data"]["chunk"] is True for f in replies[:-1]), replies
    final = replies[-1]["data"]
    assert "42" in final["text"], final
    assert final["message_id"].startswith("msg"), final
    return conversation_id, replies[-1]


async def compact_turn(ws: ClientConnection) -> Frame:
    """One turn in the compact dialect: the `done` frame's result."""
    welcome = await receive(ws)
    assert welcome["type"] == "welcome", welcome
    await send(ws, {"type": "message", "text": QUESTION})
    frames = await until(ws, lambda f: f["type"] in ("done", "error"))
    done = frames[-1]
    assert done["type"] == "done", frames
    tokens = [f["text"] for f in frames if f["type"] == "token"]
    assert tokens, f"no token frames before done: {frames}"
    assert "42" in "".join(tokens), tokens
    result = done["result"]
    assert result["message_id"].startswith("msg"), result
    assert result["conversation_id"].startswith("conv"), result
    assert isinstance(result["tokens_used"], int) and result["tokens_used"] > 0, result
    return result


async def stored_messages(user: User, conversation_id: str) -> list[Frame]:
    async with gateway_http() as http:
        response = await http.get(
            f"/api/v1/conversations/{conversation_id}/messages", headers=user.bearer
        )
    assert response.status_code == 200, response.text
    return response.json()["items"]


# --- chat through dashboard-proxy -----------------------------------------------------


def test_an_envelope_turn_runs_through_dashboard_proxy_and_the_gateway() -> None:
    async def test() -> None:
        user = await new_user("ws")
        async with open_ws(dashboard(f"/ws/chat?dialect=envelope&token={user.token}")) as ws:
            assert ws.subprotocol is None
            conversation_id, final = await envelope_turn(ws)
        stored = await stored_messages(user, conversation_id)
        assert [m["role"] for m in stored] == ["user", "assistant"], stored
        assert stored[1]["id"] == final["data"]["message_id"]

    run(test)


def test_a_compact_turn_runs_through_dashboard_proxy_asked_for_in_the_query() -> None:
    async def test() -> None:
        user = await new_user("ws")
        async with open_ws(dashboard(f"/ws/chat?dialect=compact&token={user.token}")) as ws:
            result = await compact_turn(ws)
        stored = await stored_messages(user, result["conversation_id"])
        assert stored[-1]["id"] == result["message_id"], stored

    run(test)


def test_a_compact_turn_runs_through_dashboard_proxy_asked_for_by_subprotocol() -> None:
    async def test() -> None:
        user = await new_user("ws")
        url = dashboard(f"/ws/chat?token={user.token}")
        async with open_ws(url, subprotocols=[COMPACT]) as ws:
            assert ws.subprotocol == COMPACT
            await compact_turn(ws)

    run(test)


# --- chat directly through the gateway ------------------------------------------------


def test_both_dialects_run_through_the_gateway_with_a_bearer_header() -> None:
    async def test() -> None:
        user = await new_user("ws")
        async with open_ws(gateway("/ws/chat"), additional_headers=user.bearer) as ws:
            conversation_id, _ = await envelope_turn(ws)
        # The compact dialect continues the same conversation.
        url = gateway(f"/ws/chat?conversation_id={conversation_id}")
        async with open_ws(url, additional_headers=user.bearer, subprotocols=[COMPACT]) as ws:
            assert ws.subprotocol == COMPACT
            result = await compact_turn(ws)
        assert result["conversation_id"] == conversation_id
        assert len(await stored_messages(user, conversation_id)) == 4

    run(test)


def test_a_compact_turn_runs_through_the_gateway_with_the_token_in_the_query() -> None:
    async def test() -> None:
        user = await new_user("ws")
        async with open_ws(gateway(f"/ws/chat?dialect=compact&token={user.token}")) as ws:
            await compact_turn(ws)

    run(test)


# --- close codes, through both hops ----------------------------------------------------


@asynccontextmanager
async def envelope_session() -> AsyncIterator[ClientConnection]:
    """A new user's envelope socket through dashboard-proxy, its session ready."""
    user = await new_user("ws")
    async with open_ws(dashboard(f"/ws/chat?dialect=envelope&token={user.token}")) as ws:
        await send(ws, {"type": "init_session", "data": {}})
        assert (await receive(ws))["type"] == "session_ready"
        yield ws


def test_the_clients_close_code_comes_back_through_both_hops() -> None:
    async def test() -> None:
        async with envelope_session() as ws:
            await ws.close(code=4000, reason="bye")
            # What chat-service answered, relayed by the gateway and
            # dashboard-proxy: the client's own code and reason.
            assert ws.close_code == 4000
            assert ws.close_reason == "bye"

    run(test)


def test_close_session_closes_the_socket_with_1000() -> None:
    async def test() -> None:
        async with envelope_session() as ws:
            await send(ws, {"type": "close_session"})
            assert (await closed(ws)).code == 1000

    run(test)


def test_an_oversized_frame_closes_the_socket_with_1009() -> None:
    async def test() -> None:
        user = await new_user("ws")
        async with open_ws(dashboard(f"/ws/chat?token={user.token}")) as ws:
            await ws.send("x" * OVERSIZED)
            assert (await closed(ws)).code == 1009

    run(test)


# --- without a valid token --------------------------------------------------------------

NO_VALID_TOKEN = pytest.mark.parametrize(
    "query", ["", "?token=not-a-token", "?token=eyJhbGciOiJub25lIn0.e30."],
    ids=["missing", "bad", "alg-none"],
)


@NO_VALID_TOKEN
@pytest.mark.parametrize("subprotocols", [None, [COMPACT]], ids=["envelope", "compact"])
def test_dashboard_proxy_closes_with_4401_without_a_valid_token(
    query: str, subprotocols: list[str] | None
) -> None:
    async def test() -> None:
        async with open_ws(dashboard("/ws/chat" + query), subprotocols=subprotocols) as ws:
            # The offered subprotocol is echoed, so a browser keeps the
            # socket open long enough to read the code.
            assert ws.subprotocol == (subprotocols[0] if subprotocols else None)
            assert (await closed(ws)).code == 4401

    run(test)


@NO_VALID_TOKEN
@pytest.mark.parametrize("path", ["/ws/chat", "/ws/trace/math"])
def test_the_gateway_refuses_the_handshake_with_401_without_a_valid_token(
    query: str, path: str
) -> None:
    async def test() -> None:
        with pytest.raises(InvalidStatus) as raised:
            async with open_ws(gateway(path + query)):
                pass
        assert raised.value.response.status_code == 401

    run(test)


# --- the live trace -----------------------------------------------------------------------


async def rest_turn(user: User) -> str:
    """A turn with the math agent over REST + SSE, read to the end; returns
    its conversation id."""
    async with gateway_http() as http:
        created = await http.post(
            "/api/v1/conversations", json={"agent_id": "math"}, headers=user.bearer
        )
        assert created.status_code in (200, 201), created.text
        conversation_id = created.json()["id"]
        async with http.stream(
            "POST",
            f"/api/v1/conversations/{conversation_id}/messages/stream",
            json={"message": QUESTION},
            headers=user.bearer,
        ) as response:
            assert response.status_code == 200, await response.aread()
            body = "".join([chunk async for chunk in response.aiter_text()])
    assert "42" in body, body
    return conversation_id


def test_the_live_trace_through_dashboard_proxy_shows_the_users_own_calls_only() -> None:
    async def test() -> None:
        ada, bob = await new_user("trace"), await new_user("trace")
        async with (
            open_ws(dashboard(f"/ws/trace/math?token={ada.token}")) as ada_trace,
            open_ws(dashboard(f"/ws/trace/math?token={bob.token}")) as bob_trace,
        ):
            await until(ada_trace, lambda f: f["type"] == "live")
            await until(bob_trace, lambda f: f["type"] == "live")

            conversation_id = await rest_turn(ada)

            frames = await until(ada_trace, lambda f: trace_kind(f) == "llm.response")
            events = [f for f in frames if trace_kind(f)]
            first = events[0]
            assert first["type"] == "trace", first
            assert trace_kind(first) == "llm.request", events
            for frame in events:
                event = frame["event"]
                assert event["user_id"] == ada.id, event
                assert event["agent_id"] == "math", event
                assert event["conversation_id"] == conversation_id, event

            # Bob's socket got none of them: ada's turn is over, so every
            # event of it has been published already.
            leaked = []
            try:
                while True:
                    leaked.append(await receive(bob_trace, timeout=ISOLATION_WAIT))
            except TimeoutError:
                pass
            assert not [f for f in leaked if trace_kind(f)], leaked

    run(test)
