"""chat-service's OpenAI chat-completions API (`/chat/completions`,
`/chat/models`) driven by the official OpenAI Python SDK: the agents are the
models, a reply streams as chunks the SDK reassembles, and every answer names
the conversation the turn went into (`conversation_id`, an extra top-level
field the SDK keeps in `model_extra`).

The math agent's model is the builtin one: "What is 6 * 7?" makes it call its
calculator tool and answer "The answer is 42.".

The SDK appends `/chat/completions` and `/models` to its base URL, while
chat-service serves `/chat/completions` and `/chat/models` (the gateway maps
`/api/v1/chat/completions` and `/api/v1/models` onto them, so behind it one
base URL serves both). Here completions go through a client whose base URL
is chat-service's root and the model list through one based at `/chat`.

Environment (set by run.sh; the tests are skipped without it):
    CONFAB_CHAT_URL   chat-service, with the demo agents math, text and tree
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid

import openai
import pytest
from openai import OpenAI

from common import url_of

SERVICE_TOKEN = "confab-dev-service-token"
TIMEOUT = float(os.environ.get("CONFAB_A2A_TIMEOUT", "60"))
QUESTION = "What is 6 * 7?"
ANSWER = "The answer is 42."


def chat_url() -> str:
    return url_of("CONFAB_CHAT_URL")


@pytest.fixture
def user_id() -> str:
    return "usr-openai-" + uuid.uuid4().hex


def make_client(base_url: str, user_id: str) -> OpenAI:
    # Calls chat-service as the gateway does: service token and identity.
    # The SDK insists on an API key; chat-service does not read it.
    return OpenAI(
        base_url=base_url,
        api_key="unused",
        default_headers={"x-service-token": SERVICE_TOKEN, "x-user-id": user_id},
        max_retries=0,
        timeout=TIMEOUT,
    )


@pytest.fixture
def client(user_id: str):
    """For `/chat/completions`."""
    with make_client(chat_url(), user_id) as c:
        yield c


@pytest.fixture
def models_client(user_id: str):
    """For `/chat/models`."""
    with make_client(chat_url() + "/chat", user_id) as c:
        yield c


def messages_of(user_id: str, conversation_id: str) -> list[dict]:
    """The conversation's stored messages, oldest first (plain urllib, never
    through an HTTP proxy)."""
    request = urllib.request.Request(
        f"{chat_url()}/chat/conversations/{conversation_id}/messages",
        headers={"x-service-token": SERVICE_TOKEN, "x-user-id": user_id},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.load(response)["items"]


def test_models_are_the_registered_agents(models_client: OpenAI) -> None:
    models = models_client.models.list()
    ids = {model.id for model in models}
    assert {"math", "text", "tree"} <= ids, ids
    for model in models:
        assert model.object == "model"
        assert model.owned_by == "confab"


def test_a_completion_answers_in_a_new_conversation(client: OpenAI, user_id: str) -> None:
    completion = client.chat.completions.create(
        model="math",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": QUESTION},
        ],
    )
    assert completion.object == "chat.completion"
    assert completion.model == "math"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == ANSWER
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    extra = completion.model_extra or {}
    conversation_id = extra["conversation_id"]
    assert completion.id == "chatcmpl-" + extra["message_id"]

    stored = messages_of(user_id, conversation_id)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == ANSWER
    assert stored[1]["id"] == extra["message_id"]


def test_a_streamed_reply_is_reassembled_from_deltas(client: OpenAI, user_id: str) -> None:
    stream = client.chat.completions.create(
        model="math",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks, "no chunks"
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is not None and last.usage.completion_tokens > 0
    conversation_id = (last.model_extra or {})["conversation_id"]
    assert all((c.model_extra or {})["conversation_id"] == conversation_id for c in chunks)

    # The next turn goes into the same conversation, named by metadata.
    again = client.chat.completions.create(
        model="math",
        messages=[{"role": "user", "content": QUESTION}],
        metadata={"conversation_id": conversation_id},
    )
    assert (again.model_extra or {})["conversation_id"] == conversation_id
    assert len(messages_of(user_id, conversation_id)) == 4


def test_raw_response_carries_the_conversation_id(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="math", messages=[{"role": "user", "content": QUESTION}]
    )
    body = json.loads(raw.text)
    assert body["conversation_id"].startswith("conv")
    assert body["choices"][0]["message"]["content"] == ANSWER


def test_an_unknown_model_is_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(
            model="gpt-nonexistent", messages=[{"role": "user", "content": QUESTION}]
        )
    assert raised.value.body["code"] == "model_not_found", raised.value.body
