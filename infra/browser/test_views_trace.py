"""Live trace (issue 17 point 5): a math chat's LLM calls on the timeline
with latency and tokens, pause and clear, and a reload that continues from
``since=`` with every event exactly once (counted against the stored
trace, GET /api/v1/traces)."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlparse

from conftest import HOSTILE, LATENCY, PHONE, TOKENS, Api, User, sign_in
from playwright.sync_api import Page, expect

def read_events(api: Api, agent: str) -> list[dict]:
    events, since = [], 0
    while True:
        page = api.get("/api/v1/traces", params={"agent_id": agent, "limit": 1000, "since": since})
        events += page["items"]
        if not page["next_cursor"]:
            return events
        since = int(page["next_cursor"])


def stored_events(api: Api, agent: str = "math") -> list[dict]:
    """Every trace event of the user's `agent`, oldest first, once each call
    has its last event stored: llm-proxy-service writes them off the
    request path (DESIGN §10), so a turn's answer can come before its
    call's last event is in the database."""
    deadline = time.monotonic() + 30
    while True:
        events = read_events(api, agent)
        started = {e["call_id"] for e in events if e["kind"] == "llm.request"}
        ended = {e["call_id"] for e in events if e["kind"] in ("llm.response", "llm.error")}
        if started <= ended or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def shown_calls(page: Page) -> dict[str, int]:
    """{call_id: events shown} of the timeline."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.trace-call')]
             .map((li) => [li.dataset.callId, Number(li.dataset.events)]))"""
    )


def open_trace(page: Page, agent: str = "math") -> None:
    page.goto(f"/trace/{agent}")
    expect(page.locator(".trace-status")).to_have_attribute("data-state", "live")


def expect_all_shown(page: Page, api: Api) -> list[dict]:
    """Waits until the timeline shows as many events as are stored, then
    checks them call by call: none missing, none twice."""
    events = stored_events(api)
    expect(page.locator(".trace-summary")).to_have_attribute("data-events", str(len(events)))
    assert shown_calls(page) == dict(Counter(e["call_id"] for e in events))
    return events


def test_a_math_chat_shows_its_calls_on_the_timeline_with_latency_and_tokens(
    page: Page, user: User, screenshot
):
    sign_in(page, user)
    open_trace(page)
    api = user.api()
    api.chat("what is 2+3")

    events = expect_all_shown(page, api)
    kinds = Counter(e["kind"] for e in events)
    assert kinds["llm.request"] == 2 and kinds["llm.response"] == 2 and kinds["llm.tool_call"] == 1
    calls = page.locator(".trace-call")
    expect(calls).to_have_count(2)
    for call in calls.all():
        expect(call).to_have_attribute("data-status", "done")
        expect(call.locator(".trace-latency dd")).to_have_text(LATENCY)
        expect(call.locator(".trace-tokens dd")).to_have_text(TOKENS)
        # A call's deltas are one line, however many there were.
        assert call.locator('[data-kind="llm.delta"]').count() <= 1
    # Newest first: the answer, then the call that asked for the calculator.
    answer, asked = calls.nth(0), calls.nth(1)
    expect(answer.locator(".trace-text")).to_have_text("The answer is 5.")
    expect(asked.locator('[data-kind="llm.tool_call"]')).to_contain_text('calculator({"expression": "2+3"})')
    for kind in ("llm.request", "llm.response"):
        expect(answer.locator(f'[data-kind="{kind}"]')).to_have_count(1)
    deltas = sum(1 for e in events if e["kind"] == "llm.delta" and e["call_id"] == answer.get_attribute("data-call-id"))
    assert deltas > 1
    expect(answer.locator('[data-kind="llm.delta"]')).to_contain_text(f"×{deltas}")
    # The request as JSON, on demand.
    answer.get_by_text("Request", exact=True).click()
    expect(answer.locator("pre.views-json").first).to_contain_text('"role": "system"')
    screenshot(page, "trace-desktop")
    page.set_viewport_size(PHONE)
    expect(calls.first).to_be_visible()
    screenshot(page, "trace-phone")


def test_pause_buffers_without_dropping_and_clear_empties_the_timeline_for_good(page: Page, user: User):
    sign_in(page, user)
    open_trace(page)
    api = user.api()
    pause = page.get_by_role("button", name="Pause")
    pause.click()
    expect(page.get_by_role("button", name="Resume")).to_have_attribute("aria-pressed", "true")

    api.chat("what is 6*7")
    waiting = len(stored_events(api))
    expect(page.locator(".trace-status")).to_have_text(re.compile(rf"^Paused: {waiting} events waiting\."))
    expect(page.locator(".trace-call")).to_have_count(0)

    page.get_by_role("button", name="Resume").click()
    expect_all_shown(page, api)
    expect(page.get_by_role("button", name="Pause")).to_have_attribute("aria-pressed", "false")

    page.get_by_role("button", name="Clear").click()
    expect(page.locator(".trace-call")).to_have_count(0)
    expect(page.locator(".trace-summary")).to_have_attribute("data-events", "0")
    # Cleared stays cleared after a reload; what comes next is shown.
    page.reload()
    expect(page.locator(".trace-status")).to_have_attribute("data-state", "live")
    expect(page.locator(".trace-call")).to_have_count(0)
    before = {e["seq"] for e in stored_events(api)}
    api.chat("what is 1+1")
    fresh = [e for e in stored_events(api) if e["seq"] not in before]
    expect(page.locator(".trace-summary")).to_have_attribute("data-events", str(len(fresh)))
    assert shown_calls(page) == dict(Counter(e["call_id"] for e in fresh))


def test_a_reload_mid_call_continues_from_since_with_every_event_exactly_once(
    page: Page, user: User
):
    sockets: list[str] = []
    dialogs: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, user)
    open_trace(page)
    api = user.api()
    api.chat("what is 2+3")
    expect_all_shown(page, api)
    assert parse_qs(urlparse(sockets[-1]).query)["since"] == ["0"]

    # The math agent echoes what is not arithmetic: a long reply streams
    # for a while, word by word, and the page reloads in the middle of it.
    words = " ".join(f"word{i}" for i in range(120))
    done = threading.Event()
    failure: list[BaseException] = []

    def long_chat():
        try:
            user.api().chat(f"please repeat {HOSTILE} {words}")
        except BaseException as error:  # reported by the test below
            failure.append(error)
        finally:
            done.set()

    threading.Thread(target=long_chat, daemon=True).start()
    streaming = page.locator('.trace-call[data-status="streaming"]')
    expect(streaming).to_have_count(1)
    expect(streaming.locator('[data-kind="llm.delta"]')).to_be_visible()
    seen = int(page.locator(".trace-summary").get_attribute("data-last-seq"))
    page.reload()
    expect(page.locator(".trace-status")).to_have_attribute("data-state", "live")
    resumed = int(parse_qs(urlparse(sockets[-1]).query)["since"][0])
    assert resumed >= seen > 0

    assert done.wait(60), "the long reply did not finish"
    assert not failure, failure
    events = expect_all_shown(page, api)
    assert any(e["seq"] > resumed for e in events), "the reload was not in the middle of the call"
    # The echoed markup is text on the timeline, never an element.
    expect(page.locator(".trace-call").first.locator(".trace-text")).to_contain_text(HOSTILE)
    assert page.locator(".view-trace img").count() == 0
    assert dialogs == []


def test_choosing_an_agent_follows_it_at_its_own_address(page: Page, user: User):
    sign_in(page, user)
    page.goto("/trace")
    expect(page.get_by_text("Choose an agent to follow its LLM calls.")).to_be_visible()
    page.get_by_label("Agent").select_option("math")
    expect(page).to_have_url(re.compile(r"/trace/math$"))
    expect(page.locator(".trace-status")).to_have_attribute("data-state", "live")
    user.api().chat("what is 3*3")
    expect(page.locator(".trace-call")).to_have_count(2)
    page.get_by_label("Agent").select_option("text")
    expect(page).to_have_url(re.compile(r"/trace/text$"))
    expect(page.locator(".trace-call")).to_have_count(0)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/trace/math$"))
    expect(page.locator(".trace-call")).to_have_count(2)
