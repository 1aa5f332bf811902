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

    # On a phone (drawn anew at its width), the table is one card per row.
    page.set_viewport_size(PHONE)
    page.reload()
    expect(rows.first).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]
    screenshot(page, "usage-phone")


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


def test_a_report_split_by_agent_is_stacked_listed_and_priced(page: Page, user: User, screenshot):
    """Every case of a report split by agent (`split_by`), answered by the
    test itself: two agents, calls without an agent, a priced day, a call of
    unknown price, another currency."""
    today_ = datetime.now(timezone.utc).date()
    d1, d2 = (today_ - timedelta(days=1)).isoformat(), today_.isoformat()

    def item(day, split, calls, tokens_in, tokens_out, cost, unpriced=0, cached=0):
        return {
            "key": day, "split": split, "calls": calls, "input_tokens": tokens_in,
            "cached_input_tokens": cached, "output_tokens": tokens_out, "cost": cost,
            "unpriced_calls": unpriced,
        }

    report = {
        "currency": "EUR", "from": f"{d1}T00:00:00Z", "to": f"{d2}T00:00:00Z",
        "group_by": "day", "split_by": "agent",
        "items": [
            item(d1, "math", 2, 100, 50, 0.0015, cached=20),
            item(d1, "text", 1, 30, 10, None, unpriced=1),
            item(d2, "math", 1, 1000, 100, 1.25),
            item(d2, None, 1, 5, 5, 0),
        ],
        "total": {
            "calls": 5, "input_tokens": 1135, "cached_input_tokens": 20, "output_tokens": 165,
            "cost": 1.2515, "unpriced_calls": 1,
        },
    }
    asked: list[str] = []

    def answer(route):
        asked.append(route.request.url)
        route.fulfill(json=report)

    page.route(re.compile(r".*/api/v1/usage\?.*"), answer)
    sign_in(page, user)
    page.goto(f"/usage?from={d1}&to={d2}")
    table = page.locator("table.usage-table")
    expect(table.locator("tbody tr")).to_have_count(4)
    assert f"from={d1}" in asked[-1] and f"to={(today_ + timedelta(days=1)).isoformat()}" in asked[-1]
    assert "group_by=day" in asked[-1] and "split_by=agent" in asked[-1]

    expect(page.get_by_role("list", name="Series").get_by_role("listitem")).to_have_text(
        ["math", "text", "No agent", "Cost per day (line)"]
    )
    expect(table.locator("thead th")).to_have_text(
        ["Day", "Agent", "Calls", "Input tokens", "Cached input tokens", "Output tokens", "Tokens", "Cost (EUR)"]
    )
    expect(table.locator("tbody tr td:nth-child(2)")).to_have_text(["math", "text", "math", "No agent"])
    expect(table.locator("tbody tr td:last-child")).to_have_text(["€0.0015", "unknown price", "€1.25", "€0.00"])
    expect(table.locator("tfoot td")).to_have_text(["", "5", "1,135", "20", "165", "1,300", "€1.25"])
    expect(page.locator("dl.totals")).to_contain_text("€1.25, and 1 call of unknown price")

    chart = page.get_by_role("img", name=re.compile("^Tokens per day"))
    expect(chart.locator("rect.series")).to_have_count(4)
    expect(chart.locator(".chart-cost polyline")).to_have_count(1)
    expect(chart.locator("desc")).to_contain_text("stacked by agent: 1,300 in all, most on " + d2)
    expect(chart.locator("rect.series title").first).to_have_text(f"{d1} · math: 150 tokens, €0.0015")
    screenshot(page, "usage-split")

    # The toggle asks for the days by model (and keeps it in the address).
    page.get_by_label("Model", exact=True).press("Space")
    expect(page).to_have_url(re.compile(r"by=model"))
    assert "split_by=model" in asked[-1]
