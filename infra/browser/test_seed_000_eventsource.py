"""Seed 000's chat playground, as a browser runs it: signed in to the console
(the access token in its HttpOnly cookie, nothing in the URL),
`new EventSource('/api/chat/sessions/{id}/messages/stream')` follows the
conversation, and a turn posted elsewhere arrives as `text_token` events."""

import json

from conftest import sign_in
from playwright.sync_api import Page


def test_a_cookie_authenticated_eventsource_follows_a_turn_posted_elsewhere(page: Page, user):
    sign_in(page, user)
    api = user.api()
    session = api.post("/api/chat/sessions/", {})
    page.evaluate(
        """(id) => {
            window.seen = [];
            const source = new EventSource(`/api/chat/sessions/${id}/messages/stream`);
            source.onmessage = (event) => window.seen.push(event.data);
            source.onerror = () => window.seen.push("error");
            source.onopen = () => { window.opened = true; };
        }""",
        session["id"],
    )
    page.wait_for_function("() => window.opened === true")
    api.post(
        f"/api/v1/conversations/{session['id']}/messages",
        {"message": "echo seven words in this message please"},
    )
    page.wait_for_function(
        "() => window.seen.some((data) => data.includes('\"type\":\"done\"'))", timeout=30_000
    )
    events = [json.loads(data) for data in page.evaluate("window.seen") if data != "error"]
    types = [event["type"] for event in events]
    assert "text_token" in types and "text" not in types
    text = "".join(event["text"] for event in events if event["type"] == "text_token")
    reply = api.get(f"/api/v1/conversations/{session['id']}/messages")["items"][-1]
    assert reply["role"] == "assistant" and reply["content"] == text
