"""The account screen (issue 17, point 7): who is signed in, and signing
out of this device or of every device."""

from conftest import PHONE, sign_in
from playwright.sync_api import expect


def test_the_account_screen_says_who_is_signed_in(new_context, user, screenshot):
    for name, viewport in [("desktop", None), ("phone", PHONE)]:
        page = new_context(viewport=viewport).new_page()
        sign_in(page, user)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
        expect(page.get_by_role("heading", name="Account")).to_be_visible()
        expect(page.get_by_role("link", name="Account")).to_have_attribute("aria-current", "page")
        expect(page.get_by_text(f"You are signed in as {user.username}.")).to_be_visible()
        facts = page.locator("dl.facts")
        expect(facts).to_contain_text(user.username)
        expect(facts).to_contain_text("user")
        screenshot(page, f"account-{name}")


def test_signing_out_of_this_device_leaves_the_others_signed_in(new_context, user):
    here = sign_in(new_context().new_page(), user)
    there = sign_in(new_context().new_page(), user)
    here.goto("/account")
    here.get_by_role("button", name="Sign out of this device").click()

    expect(here.get_by_label("Password")).to_be_visible()
    expect(here.get_by_text("You are signed out.")).to_be_visible()
    expect(here.get_by_role("navigation", name="Main")).to_be_hidden()
    assert not [c for c in here.context.cookies() if c["name"].startswith("confab_")]
    here.reload()
    expect(here.get_by_label("Password")).to_be_visible()

    there.reload()
    expect(there.get_by_role("navigation", name="Main")).to_be_visible()


def test_signing_out_everywhere_signs_out_the_other_devices(new_context, user):
    here = sign_in(new_context().new_page(), user)
    there = sign_in(new_context().new_page(), user)
    here.goto("/account")
    here.get_by_role("button", name="Sign out everywhere").click()

    expect(here.get_by_text("You are signed out on every device.")).to_be_visible()
    expect(here.get_by_label("Password")).to_be_visible()
    # The other device cannot renew its session: a reload asks it to sign in.
    there.reload()
    expect(there.get_by_label("Password")).to_be_visible()
    expect(there.get_by_role("navigation", name="Main")).to_be_hidden()
