"""Failures as a person sees them (issue 17, points 3 and 5), from real
failing parts, nothing staged in the page:

- an agent that does not answer (run.sh gives chat-service an agent
  `offline` on a port nothing listens on): the reply shows the retries as
  they happen ("retrying 2/3…"), then fails with chat-service's message;
- a model that breaks off mid-answer (the builtin model's fixture rule
  "simulate an error: …"): the reply keeps what the model said and shows the
  model's message, and the live trace shows the call's `llm.error`."""

from __future__ import annotations

import re

from conftest import User, sign_in
from playwright.sync_api import Page, expect
from test_console_chat import composer, open_conversation, replies, send
from test_views_trace import expect_all_shown, open_trace

# chat-service's retry policy: 3 attempts, waits of about 1 s and 2 s.
RETRYING = re.compile(r"^The agent did not answer; retrying [23]/3…$")


def test_an_agent_that_does_not_answer_is_retried_and_the_failure_shown(page: Page, user: User):
    conversation = user.api().post("/api/v1/conversations", {"agent_id": "offline"})
    open_conversation(page, user, conversation["id"])
    send(page, "are you there?")
    reply = replies(page).last
    expect(reply.locator(".retry-note")).to_have_text(RETRYING)
    expect(reply).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(reply.locator(".retry-note")).to_have_count(0)
    expect(reply.locator(".message-error")).to_contain_text("unreachable")
    # The person's message is kept, and they may write again.
    expect(page.locator("li.message[data-role='user']")).to_have_text(re.compile("are you there?"))
    expect(composer(page)).to_be_editable()
    # After a reload the failure is still there, as stored (a message keeps
    # its status; the reason was the turn's, DESIGN §7).
    page.reload()
    reply = replies(page).last
    expect(reply).to_have_attribute("data-status", "failed")
    expect(reply.locator(".message-status")).to_have_text("Failed: the agent gave no reply")


def test_a_model_that_breaks_off_leaves_its_words_and_the_error_and_is_an_error_on_the_trace(
    page: Page, user: User, screenshot
):
    conversation = user.api().post("/api/v1/conversations", {"agent_id": "math"})
    open_conversation(page, user, conversation["id"])
    send(page, "simulate an error: disk full")
    reply = replies(page).last
    # What the model said before it broke off is kept: the reply is incomplete.
    expect(reply).to_have_attribute("data-status", "incomplete", timeout=30_000)
    expect(reply.locator(".message-body")).to_have_text("Let me think about that")
    expect(reply.locator(".message-error")).to_have_text(
        re.compile(r"the model broke off \(simulated\): disk full")
    )
    screenshot(page, "chat-failed")

    open_trace(page, "math")
    events = expect_all_shown(page, user.api())
    assert [e["kind"] for e in events][-1] == "llm.error", events
    call = page.locator(".trace-call").first
    expect(call).to_have_attribute("data-status", "error")
    expect(call.locator('[data-kind="llm.error"]')).to_contain_text(
        "the model broke off (simulated): disk full"
    )
    # What the model said before it broke off is on the timeline too.
    expect(call.locator(".trace-text")).to_have_text("Let me think about that")
    screenshot(page, "trace-error")
