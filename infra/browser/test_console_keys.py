"""API keys in the console (issue 21): a key made on the page is shown
once, copied, works against the gateway over plain HTTP, and is refused
once revoked on the page; the gateway's own refusals are shown as it words
them. run.sh allows 3 keys per user."""

from __future__ import annotations

import re

import httpx
from conftest import CONSOLE_URL, PHONE, User, sign_in
from playwright.sync_api import Page, expect

KEY = re.compile(r"^cfk_[0-9A-Za-z]{43}$")


def open_keys(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_focused()


def with_key(key: str, user: User, path: str = "/api/v1/conversations") -> httpx.Response:
    """A plain HTTP request with the key, as a script would send it."""
    return httpx.get(
        f"{CONSOLE_URL}{path}",
        headers={"authorization": f"Bearer {key}", "x-forwarded-for": user.ip},
        timeout=30,
    )


def key_in_dom(page: Page, key: str) -> bool:
    return page.evaluate(
        """(key) => document.documentElement.outerHTML.includes(key)
            || [...document.querySelectorAll("input, textarea")].some((field) => field.value === key)""",
        key,
    )


def test_a_new_key_is_shown_once_copied_works_and_is_refused_after_revoking_it(
    new_context, user: User, screenshot
):
    context = new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=CONSOLE_URL)
    page = sign_in(context.new_page(), user)
    open_keys(page)
    expect(page.get_by_text("You have no API keys.")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("laptop script")
    expect(page.get_by_label("chat", exact=True)).to_be_checked()
    page.get_by_label("read", exact=True).check()
    page.get_by_role("button", name="Create key").click()

    panel = page.get_by_role("region", name="Your new key “laptop script”")
    expect(panel.get_by_role("heading")).to_be_focused()
    expect(panel).to_contain_text("Copy it now: it will not be shown again.")
    shown = panel.get_by_label("API key", exact=True)
    key = shown.input_value()
    assert KEY.match(key), key
    panel.get_by_role("button", name="Copy").click()
    expect(panel.get_by_role("status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == key

    row = page.locator("tbody tr", has_text="laptop script")
    expect(row).to_have_count(1)
    expect(row.get_by_role("cell").nth(0)).to_have_text(f"{key[:12]}…")
    expect(row.get_by_role("cell").nth(1)).to_have_text("chat, read")
    expect(row.get_by_role("cell").nth(3)).to_have_text("Never")
    expect(row.get_by_role("cell").nth(4)).to_have_text("Never")
    screenshot(page, "keys-desktop")

    # The key is a working credential for scripts.
    assert with_key(key, user).status_code == 200

    # Dismissed, it is gone from the page, and no list shows it again.
    panel.get_by_role("button", name="Done, hide the key").click()
    expect(panel).to_have_count(0)
    expect(page.get_by_role("heading", name="Your keys")).to_be_focused()
    assert not key_in_dom(page, key)
    page.reload()
    expect(row).to_have_count(1)
    assert not key_in_dom(page, key)

    # Revoked on the page (after confirming), it is refused at once.
    row.get_by_role("button", name="Revoke laptop script").click()
    dialog = page.get_by_role("dialog", name="Revoke this key?")
    expect(dialog).to_contain_text("laptop script")
    dialog.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("You have no API keys.")).to_be_visible()
    expect(page.locator("[role=status]", has_text="Key “laptop script” revoked.")).to_have_count(1)
    assert with_key(key, user).status_code == 401


def test_cancelling_the_revocation_keeps_the_key(page: Page, user: User):
    api = user.api()
    created = api.post("/api/v1/api-keys", {"name": "kept", "scopes": ["read"]})
    sign_in(page, user)
    open_keys(page)
    page.get_by_role("button", name="Revoke kept").click()
    page.get_by_role("dialog", name="Revoke this key?").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("button", name="Revoke kept")).to_be_focused()
    expect(page.locator("tbody tr")).to_have_count(1)
    assert with_key(created["key"], user).status_code == 200


def test_leaving_the_page_takes_the_new_key_off_it(page: Page, user: User):
    sign_in(page, user)
    open_keys(page)
    page.get_by_label("Name", exact=True).fill("brief")
    page.get_by_label("Expires", exact=True).select_option(label="In 7 days")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("API key", exact=True).input_value()
    assert KEY.match(key)
    # Its expiry, a week from now, is listed (Key, Scopes, Created, Last used, Expires).
    expires = page.locator("tbody tr", has_text="brief").get_by_role("cell").nth(4)
    expect(expires).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", level=1)).to_be_visible()
    assert not key_in_dom(page, key)
    page.go_back()
    expect(page.locator("tbody tr", has_text="brief")).to_have_count(1)
    expect(page.get_by_label("API key", exact=True)).to_have_count(0)
    assert not key_in_dom(page, key)


def test_the_gateways_refusals_are_shown_as_it_words_them(page: Page, user: User, screenshot):
    api = user.api()
    for n in range(3):
        api.post("/api/v1/api-keys", {"name": f"key {n}", "scopes": ["chat"]})
    sign_in(page, user)
    open_keys(page)
    expect(page.locator("tbody tr")).to_have_count(3)

    # Checked in the page first: a name and a scope.
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_have_text("Give the key a name.")
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    page.get_by_label("Name", exact=True).fill("one too many")
    page.get_by_label("chat", exact=True).uncheck()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_have_text("Choose at least one scope.")

    # The limit is the gateway's: its 409 message is shown.
    page.get_by_label("llm", exact=True).check()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_have_text("at most 3 API keys per user; revoke one first")
    expect(page.get_by_label("API key", exact=True)).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(3)


def test_the_keys_screen_fits_a_phone(new_context, user: User, screenshot):
    user.api().post("/api/v1/api-keys", {"name": "phone key", "scopes": ["chat", "llm"]})
    page = sign_in(new_context(viewport=PHONE).new_page(), user)
    open_keys(page)
    button = page.get_by_role("button", name="Revoke phone key")
    expect(button).to_be_visible()
    assert page.evaluate("(v => v.scrollWidth <= v.clientWidth)(document.querySelector('.view'))")
    screenshot(page, "keys-phone")
