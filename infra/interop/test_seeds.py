"""The seeds' frontends, unchanged (issue 17): each row of the issue's table
as a test that speaks exactly the calls and frames of the seed's own client
(../shared/seeds/), against the real binaries that run.sh starts, through
the front doors those clients use. Python `httpx` and `websockets`, clients
we did not write (DESIGN.md §13).

    001  OMNI2's ChatWidget / test_ws_chat.html: ws://…:8091/ws/chat?token=…
         through dashboard-proxy, no dialect chosen: welcome, message, token,
         done {tokens_used, tools_used: [names], tool_calls: count}, error
         with a text error
    000  the chat playground and TraceView: /api/chat/sessions… through the
         gateway, with and without trailing slashes; text as `text_token`;
         `new EventSource('/api/chat/sessions/{id}/messages/stream')`
         following turns posted elsewhere, reconnecting with Last-Event-ID;
         the trace over ws://…:8006/ws/trace/{agent}?token= and through the
         gateway
    003  the AgentDashboard: /api/v1/agent/chat, …/stream, …/history/{id}
         through the gateway
    004  the assistant with a tree: the envelope dialect of /ws/chat through
         the gateway, frame by frame against the seed's protocol
    002  the unified chat web UI: /api/v1/chat through the gateway, in both
         X-Response-Format answers, streamed and not

Run them alone with `bash infra/interop/run.sh -k seeds`. Every test
registers its own user through the gateway and authenticates with a Bearer
header or `?token=` as the seed's client does (the browser's cookie, which
the gateway also accepts, is the web console suite's business). The agents'
builtin model answers a chunk every 150 ms (run.sh), so a turn of twenty
words lasts long enough to leave it in the middle.

Environment (set by run.sh; the tests are skipped without it):
    CONFAB_GATEWAY_URL     the gateway
    CONFAB_DASHBOARD_URL   dashboard-proxy, relaying to that gateway
    CONFAB_AGENTS_LLM_URL  the llm-proxy-service the agents think through
                           (seed 000's TraceView connects to it directly)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from common import TIMEOUT, Json, User, gateway_http, new_user, run_bounded
from common import open_ws, receive, send, until, ws_url

QUESTION = "What is 6 * 7?"
ANSWER = "The answer is 42."
# Twenty chunks of the builtin model's echo: about three seconds of turn.
LONG = " ".join(f"word{n}" for n in range(20))

T = TypeVar("T")
Event = tuple[str | None, Json]


def run(test: Callable[[], Awaitable[T]]) -> T:
    """Runs one test's coroutine, the whole of it bounded by eight waits."""
    return run_bounded(test, 8 * TIMEOUT)


# --- Server-Sent Events, read as a browser's EventSource reads them -------------------


async def sse_data(response: httpx.Response) -> AsyncIterator[tuple[str | None, str]]:
    """(id, data) of each event; comment lines (`: keep-alive`) are skipped."""
    event_id: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event_id, "\n".join(data)
            event_id, data = None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "id":
                event_id = value


async def sse_events(response: httpx.Response) -> AsyncIterator[Event]:
    async for event_id, data in sse_data(response):
        yield event_id, json.loads(data)


async def all_events(response: httpx.Response) -> list[Event]:
    assert response.status_code == 200, (await response.aread()).decode()
    return [event async for event in sse_events(response)]


async def next_event(events: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(events), TIMEOUT)


async def one_turn(events: AsyncIterator[Event]) -> list[Event]:
    """Events up to and including the next `done`."""
    turn = []
    while True:
        event = await next_event(events)
        turn.append(event)
        if event[1]["type"] == "done":
            return turn


def text_of(events: list[Event], kind: str = "text_token") -> str:
    return "".join(e["text"] for _, e in events if e["type"] == kind)


# ======================================================================================
# 001: OMNI2's ChatWidget through dashboard-proxy, no dialect chosen
# ======================================================================================


def test_seed_001_chat_widget_speaks_its_frames_through_dashboard_proxy() -> None:
    async def test() -> None:
        user = await new_user("seed")
        # Exactly the seed's URL: a token in the query, nothing else.
        url = ws_url("CONFAB_DASHBOARD_URL", f"/ws/chat?token={user.token}")
        async with open_ws(url) as ws:
            assert ws.subprotocol is None
            welcome = await receive(ws)
            assert welcome["type"] == "welcome", welcome
            assert isinstance(welcome["text"], str) and welcome["text"], welcome

            await send(ws, {"type": "message", "text": QUESTION})
            frames = await until(ws, lambda f: f["type"] in ("done", "error"))
            assert {f["type"] for f in frames} <= {"token", "done"}, frames
            assert "".join(f["text"] for f in frames if f["type"] == "token") == ANSWER
            result = frames[-1]["result"]
            assert isinstance(result["tokens_used"], int) and result["tokens_used"] > 0
            # The seed's shape: the tools by name, the calls as a count.
            assert result["tools_used"] == ["calculator"], result
            assert result["tool_calls"] == 1, result
            conversation = result["conversation_id"]

            # The next message continues the connection's conversation.
            await send(ws, {"type": "message", "text": "thank you"})
            frames = await until(ws, lambda f: f["type"] in ("done", "error"))
            result = frames[-1]["result"]
            assert frames[-1]["type"] == "done", frames
            assert result["conversation_id"] == conversation
            assert result["tools_used"] == [] and result["tool_calls"] == 0, result

            # Errors carry their message as text.
            await send(ws, {"type": "message", "text": "   "})
            error = await receive(ws)
            assert error["type"] == "error", error
            assert isinstance(error["error"], str) and error["error"], error
            await ws.send("this is not JSON")
            error = await receive(ws)
            assert error["type"] == "error" and isinstance(error["error"], str), error

    run(test)


# ======================================================================================
# 000: the chat playground and TraceView
# ======================================================================================


async def new_session(http: httpx.AsyncClient, user: User) -> str:
    created = await http.post("/api/chat/sessions/", headers=user.bearer)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def posted_stream(http: httpx.AsyncClient, user: User, session: str):
    """The playground's send: QUESTION posted to `session`, its reply streamed back."""
    return http.stream(
        "POST",
        f"/api/chat/sessions/{session}/messages/stream",
        json={"message": QUESTION},
        headers=user.bearer,
    )


def test_seed_000_session_paths_answer_with_and_without_a_trailing_slash() -> None:
    async def test() -> None:
        user = await new_user("seed")
        async with gateway_http() as http:
            session = await new_session(http, user)
            async with posted_stream(http, user, session) as response:
                events = await all_events(response)
            for path in ["/api/chat/sessions/", "/api/chat/sessions"]:
                listed = await http.get(path, headers=user.bearer)
                assert listed.status_code == 200, listed.text
                assert [s["id"] for s in listed.json()["items"]] == [session]
            for path in [f"/api/chat/sessions/{session}", f"/api/chat/sessions/{session}/"]:
                got = await http.get(path, headers=user.bearer)
                assert got.status_code == 200, got.text
                assert got.json()["message_count"] == 2
            messages = await http.get(
                f"/api/chat/sessions/{session}/messages/", headers=user.bearer
            )
            assert [m["role"] for m in messages.json()["items"]] == ["user", "assistant"]
            history = await http.get(f"/api/chat/sessions/{session}/history", headers=user.bearer)
            body = history.json()
            assert body["conversation"]["id"] == session, body
            assert body["messages"][1]["content"] == ANSWER
            assert body["messages"][1]["id"] == events[-1][1]["message_id"]

            other = await new_user("seed")
            for method, path in [
                ("GET", f"/api/chat/sessions/{session}/"),
                ("GET", f"/api/chat/sessions/{session}/history"),
                ("DELETE", f"/api/chat/sessions/{session}"),
            ]:
                refused = await http.request(method, path, headers=other.bearer)
                assert refused.status_code == 404, f"{method} {path}: {refused.text}"

            deleted = await http.delete(f"/api/chat/sessions/{session}", headers=user.bearer)
            assert deleted.status_code == 204
            gone = await http.get(f"/api/chat/sessions/{session}/", headers=user.bearer)
            assert gone.status_code == 404

    run(test)


def test_seed_000_the_posted_stream_says_text_token() -> None:
    async def test() -> None:
        user = await new_user("seed")
        async with gateway_http() as http:
            session = await new_session(http, user)
            async with posted_stream(http, user, session) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                events = await all_events(response)
        types = [e["type"] for _, e in events]
        assert types[0] == "message_start" and types[-1] == "done", types
        assert "text_token" in types and "text" not in types, types
        # As the seed's client reads them: data.type === 'text_token'.
        assert text_of(events) == ANSWER
        assert events[-1][1]["status"] == "complete"
        assert events[-1][0] == "2.end", events

    run(test)


def eventsource(http: httpx.AsyncClient, user: User, session: str, last_event_id: str | None = None):
    """What `new EventSource('/api/chat/sessions/{id}/messages/stream')` sends
    (and sends again with Last-Event-ID when it reconnects)."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **user.bearer}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return http.stream(
        "GET", f"/api/chat/sessions/{session}/messages/stream", headers=headers
    )


def test_seed_000_an_eventsource_follows_a_turn_posted_elsewhere() -> None:
    async def test() -> None:
        user = await new_user("seed")
        async with gateway_http() as http, gateway_http() as poster:
            session = await new_session(http, user)
            async with eventsource(http, user, session) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                events = sse_events(response)
                # The page posts the message elsewhere and waits for the reply.
                posted = await poster.post(
                    f"/api/chat/sessions/{session}/messages",
                    json={"message": QUESTION},
                    headers=user.bearer,
                )
                assert posted.status_code == 201, posted.text
                followed = await one_turn(events)
                assert followed[0][1]["type"] == "message_start"
                assert followed[0][1]["message_id"] == posted.json()["id"]
                assert text_of(followed) == ANSWER
                # And the turn after that, posted by another client again.
                posted = await poster.post(
                    f"/api/v1/conversations/{session}/messages",
                    json={"message": "and one more"},
                    headers=user.bearer,
                )
                assert posted.status_code == 201, posted.text
                followed = await one_turn(events)
                assert text_of(followed) == "and one more"
                assert followed[-1][0] == "4.end", followed

            other = await new_user("seed")
            async with eventsource(http, other, session) as refused:
                assert refused.status_code == 404

    run(test)


def test_seed_000_an_eventsource_that_reconnects_with_last_event_id_misses_nothing() -> None:
    async def test() -> None:
        user = await new_user("seed")
        async with gateway_http() as http, gateway_http() as poster:
            session = await new_session(http, user)
            seen: list[Event] = []
            async with eventsource(http, user, session) as response:
                events = sse_events(response)
                turn_1 = asyncio.create_task(
                    poster.post(
                        f"/api/chat/sessions/{session}/messages",
                        json={"message": LONG},
                        headers=user.bearer,
                    )
                )
                # Three words in, the connection breaks.
                while sum(1 for _, e in seen if e["type"] == "text_token") < 3:
                    seen.append(await next_event(events))
            # Turn 1 ends and turn 2 runs while it is away.
            assert (await turn_1).status_code == 201
            posted = await poster.post(
                f"/api/chat/sessions/{session}/messages",
                json={"message": "the second turn"},
                headers=user.bearer,
            )
            assert posted.status_code == 201, posted.text

            # The EventSource comes back with the last id it read.
            last_id = seen[-1][0]
            assert last_id is not None and last_id.startswith("2."), seen
            async with eventsource(http, user, session, last_event_id=last_id) as response:
                assert response.status_code == 200
                events = sse_events(response)
                rest_of_1 = await one_turn(events)
                turn_2 = await one_turn(events)
        whole_1 = seen + rest_of_1
        assert text_of(whole_1) == LONG, "every word of turn 1, once"
        ids = [event_id for event_id, _ in whole_1 + turn_2]
        assert len(ids) == len(set(ids)), ids
        assert whole_1[-1][0] == "2.end"
        assert text_of(turn_2) == "the second turn"
        assert [i for i, _ in turn_2][0] == "4.1" and turn_2[-1][0] == "4.end", turn_2

    run(test)


async def trace_turn(trace: ClientConnection, user: User) -> None:
    """A turn of `user` with the math agent; `trace` shows its LLM calls."""
    await until(trace, lambda f: f["type"] == "live")
    async with gateway_http() as http:
        session = await new_session(http, user)
        posted = await http.post(
            f"/api/chat/sessions/{session}/messages",
            json={"message": QUESTION},
            headers=user.bearer,
        )
        assert posted.status_code == 201, posted.text
    frames = await until(trace, lambda f: (f.get("event") or {}).get("kind") == "llm.response")
    kinds = [f["event"]["kind"] for f in frames if f.get("event")]
    assert kinds[0] == "llm.request", kinds
    assert all(f["event"]["user_id"] == user.id for f in frames if f.get("event")), frames
    assert all(f["event"]["conversation_id"] == session for f in frames if f.get("event"))


def test_seed_000_trace_view_connects_to_the_llm_proxy_and_through_the_gateway() -> None:
    async def test() -> None:
        user = await new_user("seed")
        # Exactly the seed's TraceView URL, on the llm-proxy itself…
        direct = ws_url("CONFAB_AGENTS_LLM_URL", f"/ws/trace/math?token={user.token}")
        async with open_ws(direct) as trace:
            await trace_turn(trace, user)
        # … and the same path through the gateway.
        through = ws_url("CONFAB_GATEWAY_URL", f"/ws/trace/math?token={user.token}")
        async with open_ws(through) as trace:
            await trace_turn(trace, user)

    run(test)


# ======================================================================================
# 003: the AgentDashboard
# ======================================================================================


async def agent_chat_events(http: httpx.AsyncClient, user: User, body: Json) -> list[Event]:
    """Every event of `POST /api/v1/agent/chat/stream` with `body`, read to the end."""
    async with http.stream(
        "POST", "/api/v1/agent/chat/stream", json=body, headers=user.bearer
    ) as response:
        return await all_events(response)


def test_seed_003_chat_continues_the_session_it_is_given() -> None:
    async def test() -> None:
        user = await new_user("seed")
        async with gateway_http() as http:
            first = await http.post(
                "/api/v1/agent/chat",
                json={"message": QUESTION, "session_id": None, "character_id": 526379435},
                headers=user.bearer,
            )
            assert first.status_code == 200, first.text
            body = first.json()
            session_id = body["session_id"]
            assert body["status"] == "idle", body
            assert body["message"]["content"] == ANSWER

            second = await http.post(
                "/api/v1/agent/chat",
                json={"message": "thanks", "session_id": session_id, "character_id": 526379435},
                headers=user.bearer,
            )
            assert second.json()["session_id"] == session_id

            history = await http.get(f"/api/v1/agent/chat/history/{session_id}", headers=user.bearer)
            assert history.status_code == 200, history.text
            body = history.json()
            assert set(body) == {"session_id", "message_count", "messages"}, body
            assert body["session_id"] == session_id and body["message_count"] == 4
            assert [m["role"] for m in body["messages"]] == ["user", "assistant"] * 2
            for message in body["messages"]:
                assert {
                    "id", "role", "content", "content_blocks", "created_at", "token_usage"
                } <= set(message), message
            assert body["messages"][1]["token_usage"]["output_tokens"] > 0

            limited = await http.get(
                f"/api/v1/agent/chat/history/{session_id}",
                params={"limit": 1},
                headers=user.bearer,
            )
            assert limited.json()["message_count"] == 4
            assert [m["content"] for m in limited.json()["messages"]] == ["thanks"]

            other = await new_user("seed")
            refused = await http.get(f"/api/v1/agent/chat/history/{session_id}", headers=other.bearer)
            assert refused.status_code == 404
            refused = await http.post(
                "/api/v1/agent/chat",
                json={"message": "hi", "session_id": session_id},
                headers=other.bearer,
            )
            assert refused.status_code == 404
            assert refused.json()["error"]["code"] == "not_found"

    run(test)


def test_seed_003_the_stream_names_its_session_and_continues_it() -> None:
    async def test() -> None:
        user = await new_user("seed")
        async with gateway_http() as http:
            # The seed's client reads the body itself (fetch + getReader).
            events = await agent_chat_events(
                http, user, {"message": QUESTION, "session_id": None, "character_id": 526379435}
            )
            session_id = events[0][1]["session_id"]
            assert session_id.startswith("conv-"), events[0]
            assert text_of(events, "text") == ANSWER
            done = events[-1][1]
            assert done["type"] == "done" and done["message_id"].startswith("msg-"), done
            assert done["session_id"] == session_id

            again = await agent_chat_events(
                http,
                user,
                {"message": "go on", "session_id": session_id, "character_id": 526379435},
            )
            assert again[-1][1]["session_id"] == session_id
            history = await http.get(
                f"/api/v1/agent/chat/history/{session_id}", headers=user.bearer
            )
            assert history.json()["message_count"] == 4

    run(test)


def test_seed_003_a_failing_agent_streams_retries_and_a_text_error() -> None:
    async def test() -> None:
        user = await new_user("seed")
        async with gateway_http() as http:
            # `offline` is registered with chat-service but nothing answers.
            events = await agent_chat_events(
                http, user, {"message": QUESTION, "agent_id": "offline"}
            )
        types = [e["type"] for _, e in events]
        retries = [e for _, e in events if e["type"] == "retry"]
        assert len(retries) == 2, types
        assert [(r["attempt"], r["max_attempts"]) for r in retries] == [(2, 3), (3, 3)]
        error = next(e for _, e in events if e["type"] == "error")
        assert isinstance(error["error"], str) and error["error"], error
        assert error["code"] == "agent_failed", error
        assert types[-1] == "done" and events[-1][1]["status"] == "failed", types

    run(test)


# ======================================================================================
# 004: the assistant with a tree, envelope frames through the gateway
# ======================================================================================


def assert_envelope(frame: Json, session_id: str | None) -> None:
    """The seed's message structure: type, data (an object), session_id,
    timestamp (ISO), and error only as {code, message}."""
    assert isinstance(frame["type"], str), frame
    assert isinstance(frame["data"], dict), frame
    assert isinstance(frame["timestamp"], str) and "T" in frame["timestamp"], frame
    if session_id is not None:
        assert frame["session_id"] == session_id, frame
    if "error" in frame:
        assert set(frame["error"]) >= {"code", "message"}, frame


def test_seed_004_envelope_frames_through_the_gateway() -> None:
    async def test() -> None:
        user = await new_user("seed")
        url = ws_url("CONFAB_GATEWAY_URL", f"/ws/chat?token={user.token}")
        async with open_ws(url) as ws:
            await send(ws, {"type": "init_session", "data": {}})
            ready = await receive(ws)
            assert ready["type"] == "session_ready", ready
            session_id = ready["data"]["session_id"]
            assert_envelope(ready, session_id)
            assert isinstance(ready["data"]["initial_tree"], dict), ready
            history = await receive(ws)
            assert history["type"] == "chat_history" and history["data"]["messages"] == []
            assert_envelope(history, session_id)

            await send(ws, {"type": "user_prompt", "data": {"prompt": QUESTION}, "session_id": session_id})
            frames = await until(
                ws, lambda f: f["type"] == "assistant_response" and f["data"]["chunk"] is False
            )
            for frame in frames:
                assert_envelope(frame, session_id)
            reasoning = [f for f in frames if f["type"] == "reasoning"]
            assert reasoning and all(isinstance(f["data"]["steps"], list) for f in reasoning)
            chunks = [f["data"]["text"] for f in frames if f["type"] == "assistant_response"][:-1]
            assert "".join(chunks) == ANSWER
            assert frames[-1]["data"]["text"] == ANSWER

            await send(ws, {"type": "ping"})
            pong = await receive(ws)
            assert pong["type"] == "pong", pong
            assert_envelope(pong, session_id)

            await send(ws, {"type": "user_prompt", "data": {"prompt": ""}, "session_id": session_id})
            error = await receive(ws)
            assert error["type"] == "error", error
            assert_envelope(error, session_id)
            assert error["error"]["message"], error

            await send(ws, {"type": "close_session", "data": {}})
            with pytest.raises(ConnectionClosed):
                while True:
                    await receive(ws)
            assert ws.close_code == 1000

        # A client that comes back names its session: the history is there.
        async with open_ws(url) as ws:
            await send(ws, {"type": "init_session", "data": {}, "session_id": session_id})
            ready = await receive(ws)
            assert ready["data"]["session_id"] == session_id, ready
            history = await receive(ws)
            assert [m["role"] for m in history["data"]["messages"]] == ["user", "assistant"]
            assert {"role", "content"} <= set(history["data"]["messages"][1])

    run(test)


def test_seed_004_the_tree_agent_sends_tree_updates() -> None:
    async def test() -> None:
        user = await new_user("seed")
        url = ws_url("CONFAB_GATEWAY_URL", f"/ws/chat?token={user.token}")
        async with open_ws(url) as ws:
            await send(ws, {"type": "init_session", "data": {"agent_id": "tree"}})
            ready = await receive(ws)
            session_id = ready["data"]["session_id"]
            await receive(ws)  # chat_history
            await send(ws, {"type": "user_prompt", "data": {"prompt": "add node Task 1"}})
            frames = await until(
                ws, lambda f: f["type"] == "assistant_response" and f["data"]["chunk"] is False
            )
            updates = [f for f in frames if f["type"] == "tree_update"]
            assert len(updates) == 1, frames
            update = updates[0]
            assert_envelope(update, session_id)
            # Kept on purpose: the delta is an RFC 6902 patch with the tree's version.
            assert update["data"]["version"] == 1
            assert update["data"]["delta"][0]["op"] == "add", update

    run(test)


# ======================================================================================
# 002: the unified chat web UI, /api/v1/chat through the gateway
# ======================================================================================


async def unified(
    http: httpx.AsyncClient, user: User, body: Json, response_format: str | None
) -> httpx.Response:
    headers = dict(user.bearer)
    if response_format is not None:
        headers["X-Response-Format"] = response_format
    return await http.post("/api/v1/chat", json=body, headers=headers)


@pytest.mark.parametrize("response_format", [None, "openai"], ids=["default", "openai"])
def test_seed_002_unified_chat_answers_in_openai_format(response_format: str | None) -> None:
    async def test() -> None:
        user = await new_user("seed")
        async with gateway_http() as http:
            # The web UI's own conversation management, then the message.
            created = await http.post("/api/v1/conversations", json={}, headers=user.bearer)
            conversation = created.json()["id"]
            answered = await unified(
                http, user, {"message": QUESTION, "conversation_id": conversation}, response_format
            )
            assert answered.status_code == 200, answered.text
            completion = answered.json()
            assert completion["object"] == "chat.completion", completion
            assert completion["choices"][0]["message"]["content"] == ANSWER
            assert completion["conversation_id"] == conversation
            assert completion["message_id"].startswith("msg-")

            headers = dict(user.bearer)
            if response_format is not None:
                headers["X-Response-Format"] = response_format
            async with http.stream(
                "POST", "/api/v1/chat", json={"message": QUESTION, "stream": True}, headers=headers
            ) as response:
                assert response.status_code == 200
                data = [d async for _, d in sse_data(response)]
            assert data[-1] == "[DONE]", data
            chunks = [json.loads(d) for d in data[:-1]]
            assert all(c["object"] == "chat.completion.chunk" for c in chunks), chunks
            content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
            assert content == ANSWER
            # The unified endpoint made the conversation for the first message.
            new_conversation = chunks[0]["conversation_id"]
            assert new_conversation != conversation
            messages = await http.get(
                f"/api/v1/conversations/{new_conversation}/messages", headers=user.bearer
            )
            assert [m["content"] for m in messages.json()["items"]] == [QUESTION, ANSWER]

    run(test)


def test_seed_002_unified_chat_answers_in_v03_format() -> None:
    async def test() -> None:
        user = await new_user("seed")
        async with gateway_http() as http:
            answered = await unified(http, user, {"message": QUESTION}, "v0.3")
            assert answered.status_code == 200, answered.text
            body = answered.json()
            assert set(body) == {"conversation_id", "agent_id", "message"}, body
            assert body["message"]["content"] == ANSWER
            assert body["message"]["role"] == "assistant"
            conversation = body["conversation_id"]

            async with http.stream(
                "POST",
                "/api/v1/chat",
                json={"message": "go on", "conversation_id": conversation, "stream": True},
                headers={**user.bearer, "X-Response-Format": "v0.3"},
            ) as response:
                events = await all_events(response)
            types = [e["type"] for _, e in events]
            assert types[0] == "message_start" and types[-1] == "done", types
            assert events[0][1]["conversation_id"] == conversation
            assert text_of(events, "text") == "go on"

            refused = await unified(http, user, {"message": QUESTION}, "v9")
            assert refused.status_code == 400
            assert refused.json()["error"]["code"] == "unknown_response_format"

    run(test)
