"""LLM calls (issue 17 point 6): the caller's calls as a table (time, agent,
model, status, latency, tokens) paged by the API's cursor, narrowed to an
agent, and a row opening the call's request, response and tool calls."""

from __future__ import annotations

import re
import time

from conftest import HOSTILE, LATENCY, PHONE, TOKENS, Api, User, sign_in
from playwright.sync_api import Page, expect

def calls_of(api: Api, count: int) -> list[dict]:
    """The user's calls, newest first, once `count` are stored:
    llm-proxy-service writes them off the request path (DESIGN §10)."""
    deadline = time.monotonic() + 30
    while True:
        items = api.get("/api/v1/llm-calls")["items"]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


def rows(page: Page):
    return page.locator(".calls-table tbody tr")


def test_the_calls_of_a_math_chat_are_listed_with_time_agent_model_status_latency_and_tokens(
    page: Page, user: User, screenshot
):
    api = user.api()
    api.chat("what is 2+3")
    listed = calls_of(api, 2)
    assert len(listed) == 2
    sign_in(page, user)
    page.goto("/calls")
    table = page.get_by_role("table")
    expect(table.get_by_role("columnheader")).to_have_text(["Time", "Agent", "Model", "Status", "Latency", "Tokens"])
    expect(rows(page)).to_have_count(2)
    # Newest first, as the API answers.
    assert [r.get_attribute("data-call-id") for r in rows(page).all()] == [c["id"] for c in listed]
    for row in rows(page).all():
        cells = row.get_by_role("cell")
        expect(cells.nth(0)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"))
        expect(cells.nth(1)).to_have_text("math")
        expect(cells.nth(2)).to_have_text("builtin")
        expect(cells.nth(3)).to_have_text("ok")
        expect(cells.nth(4)).to_have_text(LATENCY)
        expect(cells.nth(5)).to_have_text(TOKENS)
    expect(page.locator(".calls-status")).to_have_text("2 calls.")
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    screenshot(page, "calls-desktop")
    page.set_viewport_size(PHONE)
    expect(rows(page).first).to_be_visible()
    screenshot(page, "calls-phone")


def test_a_row_opens_the_calls_request_response_and_tool_calls(page: Page, user: User, screenshot):
    api = user.api()
    api.chat("what is 2+3")
    api.chat(f"please repeat {HOSTILE}")
    echo, answer, asked = calls_of(api, 3)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, user)
    page.goto("/calls")
    expect(rows(page)).to_have_count(3)

    # The call that asked for the calculator: its tool call, and its request.
    rows(page).nth(2).get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/calls/{re.escape(asked['id'])}$"))
    expect(page.get_by_role("heading", name="LLM call")).to_be_visible()
    tools = page.get_by_role("region", name="Tool calls")
    expect(tools.get_by_role("heading")).to_have_text("Tool calls (1)")
    expect(tools).to_contain_text("calculator")
    expect(tools.locator("pre")).to_contain_text('"expression": "2+3"')
    expect(page.get_by_role("region", name="Request").locator("pre")).to_contain_text('"content": "what is 2+3"')
    expect(page.get_by_role("region", name="Response").locator("pre")).to_contain_text('"finish_reason": "tool_calls"')
    expect(page.locator(".call-facts")).to_contain_text(asked["id"])
    screenshot(page, "call-detail-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "call-detail-phone")

    # Back to the table, then the echo: markup from the model is text.
    page.get_by_role("link", name="← All calls").click()
    expect(page).to_have_url(re.compile(r"/calls$"))
    rows(page).nth(0).get_by_role("link").click()
    response = page.get_by_role("region", name="Response").locator("pre")
    expect(response).to_contain_text(HOSTILE)
    assert page.locator(".view-calls img").count() == 0
    expect(page.get_by_role("region", name="Tool calls")).to_contain_text("No tool calls.")
    assert dialogs == []

    # A call's address opens it directly; an unknown one says so.
    page.goto(f"/calls/{answer['id']}")
    expect(page.get_by_role("region", name="Response").locator("pre")).to_contain_text("The answer is 5.")
    page.goto("/calls/call-does-not-exist")
    expect(page.locator(".calls-status")).to_have_text("There is no such call, or it is not yours.")


def test_another_users_call_is_not_shown(page: Page, user: User, new_user):
    other = new_user()
    other.api().chat("what is 2+3")
    theirs = calls_of(other.api(), 2)[0]["id"]
    sign_in(page, user)
    page.goto("/calls")
    expect(page.locator(".calls-status")).to_contain_text("No LLM calls yet")
    page.goto(f"/calls/{theirs}")
    expect(page.locator(".calls-status")).to_have_text("There is no such call, or it is not yours.")


def test_more_calls_than_a_page_load_on_demand_and_the_table_narrows_to_an_agent(page: Page, user: User):
    api = user.api()
    # 26 math turns make 52 calls: more than a page of 50.
    for n in range(26):
        api.chat(f"what is {n}+1")
    api.chat("count the words in: one two three", agent="text")
    calls_of(api, 54)
    sign_in(page, user)
    page.goto("/calls")
    expect(rows(page)).to_have_count(50)
    more = page.get_by_role("button", name="Load more")
    expect(more).to_be_visible()
    more.click()
    expect(rows(page)).to_have_count(54)
    expect(more).to_be_hidden()
    ids = [r.get_attribute("data-call-id") for r in rows(page).all()]
    assert len(set(ids)) == 54

    page.get_by_label("Agent").select_option("text")
    expect(rows(page)).to_have_count(2)
    for row in rows(page).all():
        expect(row.get_by_role("cell").nth(1)).to_have_text("text")
    page.get_by_label("Agent").select_option("")
    expect(rows(page)).to_have_count(50)
