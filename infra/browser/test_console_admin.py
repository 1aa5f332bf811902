"""Administration in the console (issue 21): an admin finds a user, disables
her (her sign-in is refused), enables her again, changes her role, resets
her password, sets her budget and deletes her; the audit trail lists those
actions and downloads as JSON lines; an admin's action on her own account
shows the gateway's refusal; and anyone else is told the page is for
administrators. The stack's admin comes from run.sh (conftest `admin`)."""

from __future__ import annotations

import json
import re

import httpx
from conftest import CONSOLE_URL, PHONE, User, sign_in
from playwright.sync_api import Page, expect


def login(user: User, password: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{CONSOLE_URL}/api/v1/auth/login",
        json={"username": user.username, "password": password or user.password},
        headers={"x-forwarded-for": user.ip},
        timeout=30,
    )


def open_user(page: Page, user: User) -> None:
    """From anywhere signed in as the admin: the user's own page."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Administration", level=1)).to_be_focused()
    page.get_by_label("Search users").fill(user.username)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.users-table tbody tr")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name=user.username).click()
    expect(page.get_by_role("heading", name=user.username, level=2)).to_be_focused()


def fact(page: Page, name: str):
    return page.locator(f"dd[data-fact='{name}']")


def test_anyone_but_an_admin_is_told_the_page_is_for_administrators(page: Page, user: User):
    sign_in(page, user)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Usage")).to_be_visible()
    expect(nav.get_by_role("link", name="Admin")).to_be_hidden()
    page.goto("/admin/audit")
    expect(page.get_by_role("heading", name="Administration")).to_be_focused()
    expect(page.get_by_text("This page is for administrators only.")).to_be_visible()
    expect(page.locator("table")).to_have_count(0)
    # The API refuses her anyway.
    answer = user.api().request("GET", "/api/v1/admin/users")
    assert answer.status_code == 403
    assert answer.json()["error"]["message"] == "administrators only"


def test_an_admin_disables_a_user_who_is_then_refused_and_enables_her_again(
    page: Page, admin: User, new_user, screenshot
):
    target = new_user("dis")
    sign_in(page, admin)
    open_user(page, target)
    expect(fact(page, "Status")).to_have_text("Active")
    screenshot(page, "admin-user-desktop", full_page=True)

    page.get_by_role("button", name="Disable account").click()
    expect(fact(page, "Status")).to_have_text(re.compile(r"^Disabled since "))
    expect(page.locator("[role=status]", has_text=f"{target.username} is disabled")).to_have_count(1)
    refused = login(target)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "this account is disabled"

    page.get_by_role("button", name="Enable account").click()
    expect(fact(page, "Status")).to_have_text("Active")
    expect(page.get_by_role("button", name="Disable account")).to_be_focused()
    assert login(target).status_code == 200

    # Back on the list, her status is shown too.
    page.get_by_role("link", name="← All users").click()
    expect(page.get_by_role("heading", name="Users")).to_be_focused()
    page.get_by_label("Search users").fill(target.username)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.users-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.get_by_role("cell")).to_have_text(["user", "Active", re.compile(r"^\d{4}-")])


def test_the_audit_trail_lists_the_admins_actions_and_downloads_them(
    page: Page, admin: User, new_user, screenshot
):
    target = new_user("aud")
    target_id = None
    sign_in(page, admin)
    open_user(page, target)
    target_id = fact(page, "User id").inner_text()
    page.get_by_role("button", name="Disable account").click()
    expect(page.get_by_role("button", name="Enable account")).to_be_visible()
    page.get_by_role("button", name="Enable account").click()
    expect(page.get_by_role("button", name="Disable account")).to_be_visible()

    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_focused()
    page.get_by_label("Actor", exact=True).fill(admin.username)
    page.get_by_label("Action", exact=True).select_option("user.disabled")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit-table tbody tr")
    expect(rows.filter(has_text=target_id)).to_have_count(1)
    for action in rows.locator("th").all_inner_texts():
        assert action == "user.disabled"
    mine = rows.filter(has_text=target_id)
    expect(mine.locator("td").nth(1)).to_have_text(admin.username)
    screenshot(page, "admin-audit-desktop")

    # No action filter: her disabling and enabling, in that order.
    page.get_by_label("Action", exact=True).select_option("")
    page.get_by_role("button", name="Filter").click()
    hers = rows.filter(has_text=target_id)
    expect(hers).to_have_count(2)
    expect(hers.locator("th")).to_have_text(["user.disabled", "user.enabled"])

    # The same filter as JSON lines, downloaded with the console's cookie.
    link = page.get_by_role("link", name="Download JSON lines")
    assert "/api/v1/admin/audit/export?" in link.get_attribute("href")
    with page.expect_download() as download:
        link.click()
    lines = [json.loads(line) for line in open(download.value.path(), encoding="utf-8") if line.strip()]
    theirs = [line["action"] for line in lines if line["target_id"] == target_id]
    assert theirs == ["user.disabled", "user.enabled"]
    assert all(line["actor_name"] == admin.username for line in lines)

    # A target that is a user opens her page.
    hers.first.get_by_role("link", name=target_id).click()
    expect(page.get_by_role("heading", name=target.username, level=2)).to_be_focused()


def test_an_admin_acting_on_her_own_account_sees_the_refusal(page: Page, admin: User):
    sign_in(page, admin)
    open_user(page, admin)
    page.get_by_role("button", name="Disable account").click()
    expect(page.get_by_role("alert")).to_have_text("an admin cannot disable, demote or delete her own account")
    expect(fact(page, "Status")).to_have_text("Active")
    page.get_by_label("Role", exact=True).select_option("user")
    page.get_by_role("button", name="Change role").click()
    expect(page.get_by_role("alert")).to_have_text("an admin cannot disable, demote or delete her own account")
    expect(fact(page, "Role")).to_have_text("admin")


def test_an_admin_changes_a_role_resets_a_password_sets_a_budget_and_deletes_a_user(
    page: Page, admin: User, new_user
):
    target = new_user("ops")
    sign_in(page, admin)
    open_user(page, target)

    page.get_by_label("Role", exact=True).select_option("admin")
    page.get_by_role("button", name="Change role").click()
    expect(fact(page, "Role")).to_have_text("admin")
    page.get_by_label("Role", exact=True).select_option("user")
    page.get_by_role("button", name="Change role").click()
    expect(fact(page, "Role")).to_have_text("user")

    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_role("button", name="Reset password").click()
    expect(page.get_by_role("alert")).to_have_text("The new password needs at least 8 characters.")
    page.get_by_label("New password", exact=True).fill("a-new-password-42")
    page.get_by_role("button", name="Reset password").click()
    expect(page.locator("[role=status]", has_text="is reset")).to_have_count(1)
    expect(page.get_by_label("New password", exact=True)).to_have_value("")
    assert login(target).status_code == 401
    assert login(target, "a-new-password-42").status_code == 200

    budget = page.locator("table.budget-table tr[data-period='day']")
    page.get_by_label("Period", exact=True).select_option("day")
    page.get_by_label("Token limit", exact=True).fill("1000")
    page.get_by_label(re.compile(r"^Cost limit")).fill("")
    page.get_by_role("button", name="Set budget").click()
    expect(budget.locator("td").nth(0)).to_have_text("1,000")
    expect(budget.locator("td").nth(1)).to_have_text("No limit")
    expect(budget.locator("td").nth(2)).to_have_text("An admin")

    page.get_by_role("button", name="Delete user…").click()
    dialog = page.get_by_role("dialog", name=f"Delete {target.username}?")
    confirm = dialog.get_by_role("button", name="Delete user")
    expect(confirm).to_be_disabled()
    dialog.get_by_label(f"Type “{target.username}” to confirm").fill(target.username)
    confirm.click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/admin$"))
    expect(page.locator("[role=status]", has_text=f"User {target.username} deleted.")).to_have_count(1)
    page.get_by_label("Search users").fill(target.username)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text(f"No user matches “{target.username}”.")).to_be_visible()
    assert login(target, "a-new-password-42").status_code == 401


def test_the_administration_screens_fit_a_phone(new_context, admin: User, user: User, screenshot):
    page = sign_in(new_context(viewport=PHONE).new_page(), admin)
    open_user(page, user)
    expect(page.get_by_role("button", name="Disable account")).to_be_visible()
    screenshot(page, "admin-user-phone", full_page=True)
    page.goto("/admin/audit")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    assert page.evaluate("(v => v.scrollWidth <= v.clientWidth)(document.querySelector('.view'))")


def test_more_users_and_more_events_continue_from_the_apis_cursor(page: Page, admin: User):
    """Paging, with pages answered by the test (a run has too few users for
    the real page size): "More" sends the answer's `next_cursor`, appends,
    moves focus to the first new row and goes once the cursor is null."""

    def user(n):
        return {
            "id": f"usr-page-{n}", "username": f"paged{n}", "role": "user", "disabled": n == 3,
            "disabled_at": "2026-12-01T10:00:00Z" if n == 3 else None, "created_at": "2026-12-01T09:00:00Z",
        }

    def event(n):
        return {
            "id": f"aud-page-{n}", "at": "2026-12-01T09:00:00Z", "actor_id": "usr-a", "actor_name": "someone",
            "action": "login.succeeded", "target_id": None, "ip": "10.9.9.9", "detail": {"n": n},
        }

    asked: list[str] = []

    def users(route):
        asked.append(route.request.url)
        more = "cursor=usr-page-2" in route.request.url
        route.fulfill(json={"items": [user(3)], "next_cursor": None} if more
                      else {"items": [user(1), user(2)], "next_cursor": "usr-page-2"})

    def audit(route):
        asked.append(route.request.url)
        more = "cursor=aud-page-1" in route.request.url
        route.fulfill(json={"items": [event(2)], "next_cursor": None} if more
                      else {"items": [event(1)], "next_cursor": "aud-page-1"})

    page.route(re.compile(r".*/api/v1/admin/users\?.*"), users)
    page.route(re.compile(r".*/api/v1/admin/audit\?.*"), audit)
    sign_in(page, admin)
    page.goto("/admin")
    rows = page.locator("table.users-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.get_by_text("2 users (more below).")).to_be_visible()
    page.get_by_role("button", name="More users").click()
    expect(rows).to_have_count(3)
    assert "cursor=usr-page-2" in asked[-1]
    expect(rows.nth(2).get_by_role("link", name="paged3")).to_be_focused()
    expect(rows.nth(2).get_by_role("cell").nth(1)).to_have_text("Disabled")
    expect(page.get_by_role("button", name="More users")).to_be_hidden()

    page.get_by_role("link", name="Audit trail").click()
    events = page.locator("table.audit-table tbody tr")
    expect(events).to_have_count(1)
    page.get_by_role("button", name="More events").click()
    expect(events).to_have_count(2)
    assert "cursor=aud-page-1" in asked[-1]
    expect(events.nth(1)).to_be_focused()
    expect(events.nth(1).locator("td").last).to_have_text('{"n":2}')
    expect(page.get_by_role("button", name="More events")).to_be_hidden()
