"""Signing in from the console (issue 17, point 1): register and sign in,
each error shown where it happened, and a session that fits browsers (the
access token in memory only, the refresh token in an HttpOnly cookie, a
reload that keeps the person signed in)."""

import re
import secrets

import httpx
from conftest import CONSOLE_URL, PHONE, sign_in
from playwright.sync_api import Page, expect


def fill(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)


def test_a_new_person_creates_an_account_and_lands_on_the_chat_screen(page: Page, screenshot):
    page.goto("/")
    expect(page.get_by_role("button", name="Create account")).to_be_visible()
    screenshot(page, "sign-in-desktop")
    username = f"new{secrets.token_hex(5)}"
    fill(page, username, "a good password")
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()
    expect(page.get_by_role("complementary", name="Conversations")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_hidden()


def test_signing_in_shows_the_screen_the_link_asked_for(page: Page, user):
    page.goto("/account")
    fill(page, user.username, user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Account")).to_be_visible()
    assert page.url.endswith("/account")


def test_a_taken_username_is_said_at_the_username_field(page: Page, user):
    page.goto("/")
    fill(page, user.username, "another password")
    page.get_by_role("button", name="Create account").click()

    field_error = page.locator("#username-error")
    expect(field_error).to_have_text(re.compile("taken"))
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()


def test_a_short_password_is_said_at_the_password_field(page: Page):
    page.goto("/")
    fill(page, f"new{secrets.token_hex(5)}", "short")
    page.get_by_role("button", name="Create account").click()

    expect(page.locator("#password-error")).to_have_text(re.compile("at least 8 characters"))
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")


def test_a_wrong_password_is_said_on_the_form_without_telling_which_part_was_wrong(page: Page, user):
    page.goto("/")
    fill(page, user.username, "not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    # The person can correct it and go on.
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_too_many_attempts_say_how_long_to_wait(page: Page, user, screenshot):
    page.goto("/")
    alert = page.get_by_role("alert")
    # The gateway allows 10 login attempts per client IP and minute; each
    # test's browser is a client IP of its own.
    for attempt in range(1, 16):
        fill(page, user.username, f"wrong password {attempt}")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
        expect(alert).to_be_visible()
        if "Too many attempts" in alert.inner_text():
            break
    expect(alert).to_have_text(re.compile(r"Too many attempts\. Wait \d+ seconds? before trying again\."))
    screenshot(page, "sign-in-too-many-attempts")


def test_the_session_survives_a_reload_with_no_token_a_script_can_read(page: Page, user):
    sign_in(page, user)
    page.reload()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_text(f"Signed in as {user.username}")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_hidden()

    stored = page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])"
    )
    assert "eyJ" not in stored, f"a token is readable by scripts: {stored}"
    cookies = {c["name"]: c for c in page.context.cookies()}
    refresh = cookies["confab_refresh"]
    assert refresh["httpOnly"] and refresh["sameSite"] == "Strict"
    assert refresh["path"] == "/api/v1/auth"
    assert cookies["confab_access"]["httpOnly"]


def test_every_request_of_the_console_carries_its_marker(page: Page, user):
    seen = []
    page.on(
        "request",
        lambda request: seen.append((request.url, request.headers.get("x-confab-client")))
        if "/api/" in request.url
        else None,
    )
    sign_in(page, user)
    expect(page.get_by_role("complementary", name="Conversations")).to_be_visible()
    expect(page.locator(".list-status")).to_have_text(re.compile("No conversation"))
    assert seen, "the console made no API request"
    unmarked = [url for url, marker in seen if marker != "console"]
    assert not unmarked, f"requests without X-Confab-Client: {unmarked}"


def test_the_sign_in_form_works_on_a_phone(new_context, user, screenshot):
    page = new_context(viewport=PHONE).new_page()
    page.goto("/")
    expect(page.get_by_label("Username")).to_be_visible()
    screenshot(page, "sign-in-phone")
    sign_in(page, user)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px screen"


def test_a_refused_access_token_is_refreshed_and_the_request_tried_once_more(page: Page, user):
    sign_in(page, user)
    refused = []

    def refuse_once(route):
        if not refused:
            refused.append(route.request.url)
            route.fulfill(
                status=401,
                content_type="application/json",
                body='{"error":{"code":"token_expired","message":"the token expired","request_id":"t"}}',
            )
        else:
            route.continue_()

    page.route("**/api/v1/conversations?*", refuse_once)
    with page.expect_request("**/api/v1/auth/refresh") as refresh:
        page.get_by_label("Agent").select_option("text")
    assert refresh.value.method == "POST"
    expect(page.locator(".list-status")).to_have_text("No conversation with this agent yet.")
    assert len(refused) == 1
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_the_access_token_is_renewed_before_it_expires(page: Page, user):
    page.clock.install()
    sign_in(page, user)
    page.goto("/account")
    expect(page.get_by_role("heading", name="Account")).to_be_visible()
    # The gateway's access tokens last 30 minutes.
    with page.expect_request("**/api/v1/auth/refresh") as refresh:
        page.clock.run_for("30:00")
    assert refresh.value.method == "POST"
    assert refresh.value.headers.get("x-confab-client") == "console"


def test_a_reload_that_lost_a_refresh_answer_stays_signed_in(page: Page, user):
    """The race a reload can lose: the console's refresh reached the gateway
    (its token was used up and a new one made) but the page went away before
    the answer's Set-Cookie arrived, so the browser still holds the used
    token. Presented again within the gateway's reuse grace, it gets a new
    one instead of signing the person out as a stolen token would."""
    sign_in(page, user)
    used = {c["name"]: c["value"] for c in page.context.cookies()}["confab_refresh"]
    # The refresh whose answer is lost: the gateway rotates, nobody listens.
    lost = httpx.post(
        f"{CONSOLE_URL}/api/v1/auth/refresh",
        headers={
            "cookie": f"confab_refresh={used}",
            "origin": CONSOLE_URL,
            "x-confab-client": "console",
            "x-forwarded-for": user.ip,
        },
    )
    assert lost.status_code == 200, lost.text

    page.reload()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_text(f"Signed in as {user.username}")).to_be_visible()
    fresh = {c["name"]: c["value"] for c in page.context.cookies()}["confab_refresh"]
    assert fresh != used
    # And the session goes on: the next reload refreshes with the new token.
    page.reload()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
