"""The API reference at /api/docs (issue 22): the vendored Swagger UI renders
the document the gateway publishes at /api/v1/openapi.json, under the
console's Content-Security-Policy; the fixtures fail a test on any CSP
violation or page error it causes, also while operations are opened."""

from __future__ import annotations

import httpx
from conftest import CONSOLE_URL
from playwright.sync_api import Page, expect


def test_the_reference_renders_the_published_operations_without_a_csp_violation(
    page: Page, screenshot
):
    doc = httpx.get(f"{CONSOLE_URL}/api/v1/openapi.json", timeout=30).json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "Confab API"
    login = doc["paths"]["/api/v1/auth/login"]["post"]["summary"]

    page.goto("/api/docs")
    reference = page.locator("#api-reference")
    expect(reference.locator(".info .title")).to_contain_text("Confab API", timeout=30_000)
    expect(reference.get_by_text(login, exact=True).first).to_be_visible()
    for path in ("/api/v1/conversations/{id}", "/api/v1/chat/completions", "/api/v1/llm-calls"):
        expect(reference.get_by_text(path, exact=True).first).to_be_visible()

    # An operation opened: its request body's schema and its responses, SSE
    # included, are rendered too (still without a violation).
    completions = reference.locator(".opblock").filter(
        has=page.get_by_text("/api/v1/chat/completions", exact=True)
    )
    completions.locator(".opblock-summary-control").click()
    expect(completions.locator(".responses-wrapper")).to_be_visible()
    expect(completions.locator("option", has_text="text/event-stream").first).to_be_attached()
    screenshot(page, "api-docs")
