"""Usage in the console (issue 21): the turn a test ran is counted on its
day (UTC), drawn in the chart and listed in the table beneath it, with the
range's totals and currency; the range and the agent/model toggle change
what is shown. The server may or may not split the days by agent or model
yet (`split_by`): without it the page shows one series and says so."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from conftest import PHONE, Api, User, sign_in
from playwright.sync_api import Page, expect


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def usage_of(api: Api, calls: int, split_by: str = "agent") -> dict:
    """The user's usage today once `calls` calls are counted: llm-proxy-service
    records them off the request path (DESIGN §10)."""
    tomorrow = (datetime.now(timezone.utc).date() + timedelta(days=1)).isoformat()
    deadline = time.monotonic() + 30
    while True:
        report = api.get(
            f"/api/v1/usage?from={today()}&to={tomorrow}&group_by=day&split_by={split_by}"
        )
        if report["total"]["calls"] >= calls or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def open_usage(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", level=1)).to_be_focused()


def test_the_turn_a_user_ran_is_counted_drawn_and_listed(page: Page, user: User, screenshot):
    api = user.api()
    api.chat("what is 2+3")
    report = usage_of(api, 2)
    assert report["total"]["input_tokens"] > 0
    split = bool(report["items"]) and "split" in report["items"][0]
    sign_in(page, user)
    open_usage(page)

    table = page.locator("table.usage-table")
    rows = table.locator(f"tbody tr[data-day='{today()}']")
    expect(rows.first).to_be_visible()
    headers = table.locator("thead th")
    tokens_column = 6 if split else 5
    expect(headers.nth(tokens_column)).to_have_text("Tokens")
    tokens = number(rows.first.locator("td").nth(tokens_column - 1).inner_text())
    assert tokens > 0
    total = report["total"]["input_tokens"] + report["total"]["output_tokens"]
    expect(table.locator("tfoot td").nth(tokens_column - 1)).to_have_text(f"{total:,}")

    totals = page.locator("dl.totals")
    expect(totals).to_contain_text("Calls")
    expect(totals.locator("dd").first).to_have_text(str(report["total"]["calls"]))
    expect(totals).to_contain_text(f"Cost ({report['currency']})")

    chart = page.get_by_role("img", name=re.compile("^Tokens per day"))
    expect(chart).to_be_visible()
    assert chart.locator("rect.series").count() >= 1
    expect(chart.locator("desc")).to_contain_text(f"{total:,} in all")

    if split:
        expect(headers.nth(1)).to_have_text("Agent")
        expect(rows.first).to_contain_text("math")
        page.get_by_label("Model", exact=True).check()
        expect(headers.nth(1)).to_have_text("Model")
        expect(rows.first).to_contain_text("builtin")
        expect(page).to_have_url(re.compile(r"/usage\?.*by=model"))
    else:
        expect(page.get_by_text("This server does not split the days by agent or model yet")).to_be_visible()
    screenshot(page, "usage-desktop")

    page.set_viewport_size(PHONE)
    expect(rows.first).to_be_visible()
    screenshot(page, "usage-phone", full_page=True)


def test_the_range_picker_narrows_the_days_and_refuses_a_backwards_range(page: Page, user: User):
    api = user.api()
    api.chat("what is 1+1")
    usage_of(api, 2)
    sign_in(page, user)
    open_usage(page)
    expect(page.locator(f"table.usage-table tbody tr[data-day='{today()}']").first).to_be_visible()

    yesterday = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    page.get_by_label("From", exact=True).fill(yesterday)
    page.get_by_label("To", exact=True).fill(yesterday)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No LLM calls in this range.")).to_be_visible()
    expect(page.locator("dl.totals dd").first).to_have_text("0")
    expect(page).to_have_url(re.compile(rf"/usage\?from={yesterday}&to={yesterday}"))

    page.get_by_label("From", exact=True).fill(today())
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_have_text("The first day must not be after the last.")

    # A link with a range opens on that range.
    page.goto(f"/usage?from={yesterday}&to={today()}")
    expect(page.get_by_label("From", exact=True)).to_have_value(yesterday)
    expect(page.locator(f"table.usage-table tbody tr[data-day='{today()}']").first).to_be_visible()


def test_a_user_without_calls_is_told_so(page: Page, user: User):
    sign_in(page, user)
    open_usage(page)
    expect(page.get_by_text("No LLM calls in this range.")).to_be_visible()
    expect(page.locator("dl.totals")).to_contain_text("Calls")
    expect(page.get_by_role("img", name=re.compile("^Tokens per day"))).to_have_count(0)
