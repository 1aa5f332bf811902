"""llm-proxy-service driven by the official OpenAI Python SDK.

The proxy is started by infra/interop/run.sh, which sets CONFAB_LLM_PROXY_URL.
Every test calls the builtin model (deterministic, offline) as agent `math`
(its development agent key) on behalf of a user of its own, then reads that
user's recorded calls back from `GET /llm-calls` with the service token.

The builtin model echoes the last user message; "What is 6 * 7?" makes it ask
for the `calculator` tool, and a `calculator` tool result makes it answer
"The answer is <result>.". Tokens are whitespace-separated words.
"""

from __future__ import annotations

import ast
import asyncio
import json
import operator
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

AGENT_KEY = "confab-dev-agent-key-math"
AGENT_ID = "math"
SERVICE_TOKEN = "confab-dev-service-token"
MODEL = "builtin"

CALCULATOR_TOOL = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "description": "An arithmetic expression, e.g. 6 * 7",
                }
            },
            "required": ["expression"],
        },
    },
}


def words(text: str) -> int:
    """The builtin model's token count."""
    return len(text.split())


# --- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def proxy_url() -> str:
    url = os.environ.get("CONFAB_LLM_PROXY_URL", "").rstrip("/")
    if not url:
        pytest.fail("CONFAB_LLM_PROXY_URL is not set: run these tests with infra/interop/run.sh")
    return url


@pytest.fixture
def user_id() -> str:
    return "usr-interop-" + uuid.uuid4().hex


@pytest.fixture
def conversation_id() -> str:
    return "conv-interop-" + uuid.uuid4().hex


def make_client(proxy_url: str, user_id: str, conversation_id: str, **kwargs: Any) -> OpenAI:
    # max_retries=0: one SDK call is one HTTP request, so the recorded rows
    # can be counted exactly.
    return OpenAI(
        base_url=proxy_url + "/v1",
        api_key=kwargs.pop("api_key", AGENT_KEY),
        default_headers={"X-User-Id": user_id, "X-Conversation-Id": conversation_id},
        max_retries=0,
        timeout=30.0,
        **kwargs,
    )


@pytest.fixture
def client(proxy_url: str, user_id: str, conversation_id: str):
    with make_client(proxy_url, user_id, conversation_id) as c:
        yield c


class History:
    """One user's recorded calls, through the history endpoints. Plain urllib
    (never through an HTTP proxy), independent of the SDK's HTTP client."""

    def __init__(self, proxy_url: str, user_id: str):
        self.base = proxy_url
        self.user_id = user_id
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.base + path,
            headers={"X-Service-Token": SERVICE_TOKEN, "X-User-Id": self.user_id},
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            pytest.fail(f"GET {path}: {e.code} {e.read().decode(errors='replace')}")

    def calls(self) -> list[dict]:
        page = self._get("/llm-calls?limit=200")
        assert page["next_cursor"] is None, "more than one page of calls for one test user"
        return page["items"]

    def call(self, call_id: str) -> dict:
        return self._get("/llm-calls/" + urllib.parse.quote(call_id, safe=""))

    def wait_for(self, expected: int, timeout: float = 10.0, settle: float = 0.5) -> list[dict]:
        """Polls until `expected` rows are recorded (recording is queued and
        written in batches), waits `settle` seconds more for stragglers, then
        asserts there are exactly `expected`. Newest first."""
        deadline = time.monotonic() + timeout
        items = self.calls()
        while len(items) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
            items = self.calls()
        if len(items) >= expected and settle > 0:
            time.sleep(settle)
            items = self.calls()
        assert len(items) == expected, (
            f"expected exactly {expected} recorded call(s) for {self.user_id} "
            f"within {timeout}s, found {len(items)}: {json.dumps(items, indent=1)}"
        )
        return items

    def by_id(self, expected: int) -> dict[str, dict]:
        return {item["id"]: item for item in self.wait_for(expected)}


@pytest.fixture
def history(proxy_url: str, user_id: str) -> History:
    return History(proxy_url, user_id)


def assert_row(row: dict, *, user_id: str, conversation_id: str, stream: bool) -> None:
    assert row["status"] == "ok", row
    assert row["stream"] is stream, row
    assert row["model"] == MODEL, row
    assert row["agent_id"] == AGENT_ID, row
    assert row["user_id"] == user_id, row
    assert row["conversation_id"] == conversation_id, row


def call_id_of(headers: Any) -> str:
    call_id = headers.get("x-confab-call-id")
    assert call_id, f"no x-confab-call-id header in {dict(headers)}"
    overhead = headers.get("x-confab-overhead-ms")
    assert overhead is not None, f"no x-confab-overhead-ms header in {dict(headers)}"
    assert float(overhead) >= 0
    return call_id


# --- a calculator for the tool loop -------------------------------------------------

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitXor: operator.pow,  # "2^10" means a power here
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def calculate(expression: str) -> str:
    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](value(node.operand))
        raise ValueError(f"not arithmetic: {expression!r}")

    result = value(ast.parse(expression, mode="eval").body)
    if isinstance(result, float) and result.is_integer():
        result = int(result)
    return str(result)


def test_calculator_helper():
    assert calculate("6 * 7") == "42"
    assert calculate("2^10") == "1024"
    assert calculate("12 * (3 + 4)") == "84"
    assert calculate("7/2") == "3.5"


# --- a. a plain completion -------------------------------------------------------


def test_completion_is_echoed_with_usage_and_recorded_once(client, history, user_id, conversation_id):
    text = "hello from the OpenAI Python SDK"
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": text}]
    )
    call_id = call_id_of(raw.headers)
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.id
    # The SDK's request id comes from the x-request-id header.
    assert completion._request_id == raw.headers["x-request-id"]
    assert completion.model == MODEL
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == text
    assert not choice.message.tool_calls
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == words(text)
    assert usage.completion_tokens == words(text) > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    [row] = history.wait_for(1)
    assert row["id"] == call_id
    assert_row(row, user_id=user_id, conversation_id=conversation_id, stream=False)
    assert row["usage"] == {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
    }

    detail = history.call(call_id)
    assert detail["request"]["model"] == MODEL
    assert detail["request"]["messages"] == [{"role": "user", "content": text}]
    assert detail["response"]["choices"][0]["message"]["content"] == text
    assert detail["tool_calls"] == []


def test_system_and_multi_turn_messages_count_as_input(client, history):
    messages = [
        {"role": "system", "content": "You are a parrot."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first question"},
        {"role": "user", "content": "second question please"},
    ]
    completion = client.chat.completions.create(model=MODEL, messages=messages)
    assert completion.choices[0].message.content == "second question please"
    assert completion.usage.prompt_tokens == sum(words(m["content"]) for m in messages)
    assert completion.usage.completion_tokens == 3
    [row] = history.wait_for(1)
    assert row["usage"]["input_tokens"] == completion.usage.prompt_tokens


# --- b. streaming -------------------------------------------------------------------


def test_streaming_with_and_without_include_usage(client, history, user_id, conversation_id):
    text = "stream these seven words back to me"

    # Without stream_options: no usage chunk, but the call is still recorded
    # with its usage (the proxy asks the model for it on its own account).
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": text}], stream=True
    )
    plain_id = call_id_of(raw.headers)
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())
    assert chunks, "no chunks"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1, "chunks of one completion share its id"
    assert all(c.model == MODEL for c in chunks)
    assert all(c.usage is None for c in chunks), [c.usage for c in chunks]
    assert all(len(c.choices) == 1 for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len([c for c in chunks if c.choices[0].delta.content]) > 1, "one chunk per token"

    # With include_usage: one final chunk with no choices and the usage.
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage_id = call_id_of(raw.headers)
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1
    assert with_usage[0] is chunks[-1], "the usage chunk comes last"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage.prompt_tokens == words(text)
    assert usage.completion_tokens == words(text) > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    rows = history.by_id(2)
    assert set(rows) == {plain_id, usage_id}
    for row in rows.values():
        assert_row(row, user_id=user_id, conversation_id=conversation_id, stream=True)
        assert row["usage"] == {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
        }
        assert row["usage"]["output_tokens"] > 0

    detail = history.call(plain_id)
    assert detail["response"]["content"] == text
    assert detail["response"]["finish_reason"] == "stop"


def test_stream_helper_text(client, history):
    text = "the stream helper accumulates content"
    with client.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": text}],
        stream_options={"include_usage": True},
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == text
    assert final.choices[0].message.content == text
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None and final.usage.completion_tokens == words(text)
    [row] = history.wait_for(1)
    assert row["stream"] is True
    assert row["usage"]["output_tokens"] == words(text)


# --- c. the tool-call round trip ---------------------------------------------------


def test_tool_call_round_trip(client, history, user_id, conversation_id):
    messages: list[Any] = [{"role": "user", "content": "What is 6 * 7?"}]
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, tools=[CALCULATOR_TOOL]
    )
    first_id = call_id_of(raw.headers)
    first = raw.parse()
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.content, "a tool call without text"
    assert choice.message.role == "assistant"
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    tool_call = choice.message.tool_calls[0]
    assert tool_call.type == "function"
    assert tool_call.id
    assert tool_call.function.name == "calculator"
    arguments = json.loads(tool_call.function.arguments)
    assert arguments == {"expression": "6 * 7"}
    assert first.usage is not None and first.usage.completion_tokens > 0

    result = calculate(arguments["expression"])
    assert result == "42"
    # The SDK's own message object goes back as it came, as most apps do.
    messages.append(choice.message)
    messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": result})

    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, tools=[CALCULATOR_TOOL]
    )
    second_id = call_id_of(raw.headers)
    second = raw.parse()
    assert second.choices[0].message.content == "The answer is 42."
    assert second.choices[0].finish_reason == "stop"
    assert not second.choices[0].message.tool_calls

    rows = history.by_id(2)
    assert set(rows) == {first_id, second_id}
    for row in rows.values():
        assert_row(row, user_id=user_id, conversation_id=conversation_id, stream=False)
    assert rows[first_id]["usage"] == {
        "input_tokens": first.usage.prompt_tokens,
        "output_tokens": first.usage.completion_tokens,
    }

    detail = history.call(first_id)
    assert detail["tool_calls"] == [
        {
            "id": tool_call.id,
            "name": "calculator",
            "arguments": tool_call.function.arguments,
            "index": 0,
        }
    ]
    assert detail["request"]["tools"] == [CALCULATOR_TOOL]
    assert history.call(second_id)["tool_calls"] == []


def test_tool_call_round_trip_streaming_deltas(client, history, user_id, conversation_id):
    messages: list[Any] = [{"role": "user", "content": "What is 6 * 7?"}]
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, tools=[CALCULATOR_TOOL], stream=True
    )
    first_id = call_id_of(raw.headers)
    chunks = list(raw.parse())

    # Assemble the tool calls from their deltas, by index.
    calls: dict[int, dict] = {}
    pieces = []
    for chunk in chunks:
        for choice in chunk.choices:
            assert not choice.delta.content, "a tool call without text"
            for delta in choice.delta.tool_calls or []:
                pieces.append(delta)
                call = calls.setdefault(delta.index, {"id": None, "type": None, "name": "", "arguments": ""})
                if delta.id:
                    call["id"] = delta.id
                if delta.type:
                    call["type"] = delta.type
                if delta.function and delta.function.name:
                    call["name"] += delta.function.name
                if delta.function and delta.function.arguments:
                    call["arguments"] += delta.function.arguments
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    assert len(pieces) >= 2, "the arguments come in more than one piece"
    assert pieces[0].id and pieces[0].type == "function" and pieces[0].function.name == "calculator"
    assert list(calls) == [0]
    call = calls[0]
    assert call["type"] == "function"
    assert call["name"] == "calculator"
    assert call["id"]
    arguments = json.loads(call["arguments"])
    assert arguments == {"expression": "6 * 7"}

    result = calculate(arguments["expression"])
    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, tools=[CALCULATOR_TOOL], stream=True
    )
    second_id = call_id_of(raw.headers)
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The answer is 42."
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)

    rows = history.by_id(2)
    assert set(rows) == {first_id, second_id}
    for row in rows.values():
        assert_row(row, user_id=user_id, conversation_id=conversation_id, stream=True)
        assert row["usage"]["output_tokens"] > 0
    assert history.call(first_id)["tool_calls"] == [
        {"id": call["id"], "name": "calculator", "arguments": call["arguments"], "index": 0}
    ]
    assert history.call(second_id)["tool_calls"] == []


def test_tool_call_round_trip_with_stream_helper(client, history):
    messages: list[Any] = [{"role": "user", "content": "calculate 2^10"}]
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=[CALCULATOR_TOOL]) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert len(done) == 1
    assert done[0].name == "calculator"
    assert json.loads(done[0].arguments) == {"expression": "2^10"}
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    [tool_call] = choice.message.tool_calls
    assert tool_call.function.name == "calculator"
    assert json.loads(tool_call.function.arguments) == {"expression": "2^10"}

    messages.append(
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": tool_call.id,
                    "type": "function",
                    "function": {"name": "calculator", "arguments": tool_call.function.arguments},
                }
            ],
        }
    )
    messages.append(
        {
            "role": "tool",
            "tool_call_id": tool_call.id,
            "content": calculate(json.loads(tool_call.function.arguments)["expression"]),
        }
    )
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=[CALCULATOR_TOOL]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "The answer is 1024."
    assert final.choices[0].finish_reason == "stop"

    rows = history.wait_for(2)
    assert all(row["stream"] is True and row["status"] == "ok" for row in rows)
    # (No call ids from the helper: tell the two calls apart by their requests.)
    details = {
        history.call(row["id"])["request"]["messages"][-1]["role"]: history.call(row["id"])
        for row in rows
    }
    assert set(details) == {"user", "tool"}
    assert [t["name"] for t in details["user"]["tool_calls"]] == ["calculator"]
    assert details["user"]["tool_calls"][0]["id"] == tool_call.id
    assert details["tool"]["tool_calls"] == []


# --- the async client ---------------------------------------------------------------


def test_async_client(proxy_url, user_id, conversation_id, history):
    async def run() -> tuple[str, str]:
        async with AsyncOpenAI(
            base_url=proxy_url + "/v1",
            api_key=AGENT_KEY,
            default_headers={"X-User-Id": user_id, "X-Conversation-Id": conversation_id},
            max_retries=0,
            timeout=30.0,
        ) as aclient:
            completion = await aclient.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "async hello"}]
            )
            stream = await aclient.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "async stream"}], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            return completion.choices[0].message.content, text

    content, streamed = asyncio.run(run())
    assert content == "async hello"
    assert streamed == "async stream"
    rows = history.wait_for(2)
    assert sorted(row["stream"] for row in rows) == [False, True]


# --- d. models ------------------------------------------------------------------------


def test_models_list_includes_builtin(client):
    models = list(client.models.list())
    ids = [m.id for m in models]
    assert MODEL in ids, ids
    assert all(m.object == "model" for m in models)


# --- e. errors --------------------------------------------------------------------------


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="no-such-model-" + uuid.uuid4().hex[:8],
            messages=[{"role": "user", "content": "hello"}],
        )
    assert caught.value.status_code == 404
    assert "no-such-model-" in caught.value.message


def test_unknown_model_is_not_found_when_streaming(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hello"}], stream=True
        )


def test_bad_key_is_an_authentication_error(proxy_url, user_id, conversation_id, history):
    with make_client(proxy_url, user_id, conversation_id, api_key="not-a-confab-key") as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello"}])
        assert caught.value.status_code == 401
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hello"}], stream=True
            )
    # Nothing was called on the user's behalf.
    history.wait_for(0, timeout=0, settle=0.5)
