"""The console page itself: served at / and at deep links, with its
security headers, and loading without a script error or a CSP violation."""

from playwright.sync_api import Page, expect


def test_the_console_loads_at_the_root_with_strict_security_headers(page: Page):
    answer = page.goto("/")
    assert answer is not None and answer.status == 200
    headers = answer.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()


def test_a_deep_link_answers_the_page_not_a_404(page: Page):
    answer = page.goto("/c/conv-does-not-matter")
    assert answer is not None and answer.status == 200
    expect(page.get_by_label("Username")).to_be_visible()
