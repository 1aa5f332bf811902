"""The API reference at /api/docs (issue 22): the vendored RapiDoc renders
the document the gateway publishes at /api/v1/openapi.json, under the
console's Content-Security-Policy; the fixtures fail a test on any CSP
violation or page error it causes."""

from __future__ import annotations

import httpx
from conftest import CONSOLE_URL
from playwright.sync_api import Page, expect


def test_the_reference_renders_the_published_operations_without_a_csp_violation(
    page: Page, screenshot
):
    doc = httpx.get(f"{CONSOLE_URL}/api/v1/openapi.json", timeout=30).json()
    assert doc["openapi"] == "3.1.0"
    summary = doc["paths"]["/api/v1/auth/login"]["post"]["summary"]

    page.goto("/api/docs")
    viewer = page.locator("rapi-doc")
    # RapiDoc renders into its shadow root; Playwright's locators pierce it.
    expect(viewer.get_by_text("Confab API").first).to_be_visible(timeout=30_000)
    expect(viewer.get_by_text(summary).first).to_be_attached()
    for path in ("/api/v1/conversations/{id}", "/api/v1/chat/completions", "/api/v1/llm-calls"):
        expect(viewer.get_by_text(path, exact=True).first).to_be_attached()
    screenshot(page, "api-docs")
