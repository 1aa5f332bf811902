"""The chat screen (issue 17, points 2 and 3): the conversations sidebar
(newest first, more on scroll, filter by agent, new from an agent's card,
rename, delete with confirmation) and the chat (replies streaming, safe
Markdown, Stop, reload mid-reply, a second tab following live, older
messages on scroll up, keyboard, both screen sizes).

The builtin model echoes a message no fixture rule matches, one word per
chunk, slowed by run.sh (BROWSER_CHUNK_DELAY_MS), so a long message makes a
reply that is still streaming when a test stops it or reloads."""

import re

from conftest import PHONE, User, sign_in
from playwright.sync_api import Page, expect

LONG = 30_000  # ms: a whole reply of a few hundred words


def words(count: int, prefix: str = "w") -> list[str]:
    return [f"{prefix}{n:03d}" for n in range(1, count + 1)]


def replies(page: Page):
    return page.locator("li.message[data-role='assistant']")


def reply_body(page: Page):
    return replies(page).last.locator(".message-body")


def composer(page: Page):
    return page.get_by_role("textbox", name="Message")


def new_conversation(user: User, agent: str = "text", title: str | None = None) -> str:
    body = {"agent_id": agent, **({"title": title} if title else {})}
    return user.api().post("/api/v1/conversations", body)["id"]


def open_conversation(page: Page, user: User, conversation_id: str) -> Page:
    sign_in(page, user)
    page.goto(f"/c/{conversation_id}")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(composer(page)).to_be_editable()
    return page


def send(page: Page, text: str) -> None:
    composer(page).fill(text)
    composer(page).press("Enter")


# --- the sidebar ---------------------------------------------------------------


def test_the_sidebar_lists_the_newest_first_and_loads_more_on_scroll(page: Page, user):
    api = user.api()
    for n in range(1, 26):
        api.post("/api/v1/conversations", {"agent_id": "text", "title": f"Conversation {n:02d}"})
    sign_in(page, user)
    items = page.locator("li.conversation-item")
    expect(items).to_have_count(20)
    titles = items.locator(".conversation-title").all_inner_texts()
    assert titles == [f"Conversation {n:02d}" for n in range(25, 5, -1)]

    page.locator(".list-end").scroll_into_view_if_needed()
    expect(items).to_have_count(25)
    titles = items.locator(".conversation-title").all_inner_texts()
    assert titles == [f"Conversation {n:02d}" for n in range(25, 0, -1)]
    expect(page.get_by_role("button", name="More conversations")).to_be_hidden()


def test_the_sidebar_filters_by_agent(page: Page, user):
    for agent, title in [("math", "Sums"), ("text", "Words"), ("math", "More sums"), ("text", "More words")]:
        new_conversation(user, agent, title)
    sign_in(page, user)
    items = page.locator("li.conversation-item")
    expect(items).to_have_count(4)
    page.get_by_label("Agent").select_option("text")
    expect(items).to_have_count(2)
    expect(items.locator(".conversation-title")).to_have_text(["More words", "Words"])
    page.get_by_label("Agent").select_option("")
    expect(items).to_have_count(4)


def test_a_new_conversation_starts_from_the_card_of_the_chosen_agent(page: Page, user, screenshot):
    sign_in(page, user)
    page.get_by_role("button", name="New conversation").click()
    dialog = page.get_by_role("dialog", name="New conversation")
    expect(dialog).to_be_visible()
    text_card = dialog.get_by_role("button", name="Start a conversation with text")
    expect(text_card).to_contain_text("Counts words")  # the card's description
    expect(text_card).to_contain_text("Text tools")  # a skill
    expect(dialog.get_by_role("button", name="Start a conversation with math")).to_contain_text("Calculator")
    screenshot(page, "new-conversation-desktop")
    text_card.click()

    expect(page).to_have_url(re.compile(r"/c/conv-"))
    expect(page.locator("#conversation-title")).to_have_text("New conversation")
    expect(page.locator(".agent-badge")).to_have_text("with text")
    conversation_id = page.url.rsplit("/", 1)[1]
    assert user.api().get(f"/api/v1/conversations/{conversation_id}")["agent_id"] == "text"
    current = page.locator("a.conversation-link[aria-current='page']")
    expect(current).to_have_count(1)
    expect(current).to_have_attribute("href", f"/c/{conversation_id}")


def test_a_conversation_is_renamed_in_place(page: Page, user):
    conversation_id = new_conversation(user, "text", "Old title")
    sign_in(page, user)
    item = page.locator(f"li.conversation-item[data-id='{conversation_id}']")
    item.get_by_role("button", name="Rename").click()
    field = item.get_by_label("New title")
    expect(field).to_be_focused()
    field.fill("A better title")
    field.press("Enter")

    expect(item.locator(".conversation-title")).to_have_text("A better title")
    assert user.api().get(f"/api/v1/conversations/{conversation_id}")["title"] == "A better title"

    # Esc gives up a rename.
    item.get_by_role("button", name="Rename").click()
    item.get_by_label("New title").fill("Not this one")
    item.get_by_label("New title").press("Escape")
    expect(item.locator(".conversation-title")).to_have_text("A better title")


def test_a_conversation_is_deleted_only_once_confirmed(page: Page, user):
    conversation_id = new_conversation(user, "text", "Doomed")
    open_conversation(page, user, conversation_id)
    item = page.locator(f"li.conversation-item[data-id='{conversation_id}']")

    item.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this conversation?")
    expect(dialog).to_contain_text("Doomed")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(item).to_be_visible()

    item.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(item).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/$"))
    gone = user.api().request("GET", f"/api/v1/conversations/{conversation_id}")
    assert gone.status_code == 404


# --- the chat ------------------------------------------------------------------


def test_a_reply_streams_in_with_its_token_usage_and_is_announced_politely(page: Page, user, screenshot):
    conversation_id = new_conversation(user)
    open_conversation(page, user, conversation_id)
    message = " ".join(words(60))
    send(page, message)

    reply = replies(page).last
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    screenshot(page, "chat-streaming-desktop")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(reply).to_have_attribute("data-status", "complete", timeout=LONG)
    assert reply_body(page).inner_text().split() == message.split()
    expect(reply.locator(".usage")).to_have_text(re.compile(r"^Tokens: \d+ in · \d+ out$"))
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    announcer = page.locator("#reply-announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_contain_text("w060")
    # The list itself is no live region: the stream is not read chunk by chunk.
    assert page.locator(".messages [aria-live]").count() == 0

    # The conversation is named after its first message and moves to the top.
    expect(page.locator("#conversation-title")).to_have_text(re.compile(r"^w001 w002"))
    expect(page.locator("li.conversation-item").first).to_have_attribute("data-id", conversation_id)


def test_the_agents_reasoning_is_shown_collapsed_and_opens_on_demand(page: Page, user, screenshot):
    conversation_id = new_conversation(user, "math")
    open_conversation(page, user, conversation_id)
    send(page, "What is 12 * (3 + 4)?")
    reply = replies(page).last
    expect(reply).to_have_attribute("data-status", "complete", timeout=LONG)
    expect(reply.locator(".message-body")).to_have_text("The answer is 84.")
    reasoning = reply.locator("details.reasoning")
    expect(reasoning).not_to_have_attribute("open", "")
    expect(reasoning.locator("li").first).to_be_hidden()
    reasoning.locator("summary").click()
    expect(reasoning).to_have_attribute("open", "")
    expect(reasoning.locator("li").first).to_be_visible()

    send(page, "Markdown is rendered: **bold**, `code`, a [link](https://example.com/) and a list:\n- one\n- two")
    expect(replies(page).last).to_have_attribute("data-status", "complete", timeout=LONG)
    expect(replies(page).last.locator("li")).to_have_text(["one", "two"])
    screenshot(page, "chat-desktop")


def test_markup_and_script_links_in_a_message_and_its_reply_stay_inert(page: Page, user):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    conversation_id = new_conversation(user)
    open_conversation(page, user, conversation_id)
    hostile = (
        "<img src=x onerror=alert(1)> and [click me](javascript:alert(2)) "
        "<script>alert(3)</script> **bold** [fine](https://example.com/)"
    )
    send(page, hostile)
    expect(replies(page).last).to_have_attribute("data-status", "complete", timeout=LONG)

    def check():
        bodies = page.locator("li.message .message-body")
        expect(bodies).to_have_count(2)
        for body in bodies.all():
            expect(body).to_contain_text("<img src=x onerror=alert(1)>")
            expect(body).to_contain_text("<script>alert(3)</script>")
            expect(body.locator(".inert-link")).to_have_text("[click me](javascript:alert(2))")
            expect(body.locator("strong")).to_have_text("bold")
            link = body.get_by_role("link", name="fine")
            expect(link).to_have_attribute("href", "https://example.com/")
            expect(link).to_have_attribute("rel", "noopener noreferrer")
        messages = page.locator(".message-list")
        assert messages.locator("img, script, iframe, [onerror]").count() == 0
        assert messages.locator("a[href^='javascript' i]").count() == 0
        page.locator(".inert-link").first.click()

    check()
    # Read back from the history, rendered by the same code path once more.
    page.reload()
    expect(replies(page).last).to_have_attribute("data-status", "complete")
    check()
    assert dialogs == [], f"a script ran: {dialogs}"


def test_stop_cancels_the_reply_and_marks_it_canceled(page: Page, user):
    conversation_id = new_conversation(user)
    open_conversation(page, user, conversation_id)
    sent = words(300)
    send(page, " ".join(sent))
    expect(reply_body(page)).to_contain_text("w005", timeout=LONG)
    page.get_by_role("button", name="Stop").click()

    reply = replies(page).last
    expect(reply).to_have_attribute("data-status", "canceled", timeout=LONG)
    expect(reply.locator(".message-status")).to_have_text("Canceled")
    shown = reply_body(page).inner_text().split()
    assert shown == sent[: len(shown)] and len(shown) < len(sent)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    saved = user.api().get(f"/api/v1/conversations/{conversation_id}/messages")["items"]
    assert saved[-1]["status"] == "canceled"


def test_a_reload_mid_reply_resumes_it_with_every_word_exactly_once(page: Page, user):
    conversation_id = new_conversation(user)
    open_conversation(page, user, conversation_id)
    sent = words(250)
    send(page, " ".join(sent))
    expect(reply_body(page)).to_contain_text("w010", timeout=LONG)
    page.reload()

    reply = replies(page).last
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply).to_have_attribute("data-status", "complete", timeout=LONG)
    assert reply_body(page).inner_text().split() == sent
    # The question is there once too.
    assert page.locator("li.message[data-role='user']").count() == 1


def test_a_second_tab_follows_the_reply_live(context, user):
    conversation_id = new_conversation(user)
    first = open_conversation(context.new_page(), user, conversation_id)
    second = context.new_page()
    second.goto(f"/c/{conversation_id}")
    expect(composer(second)).to_be_editable()

    sent = words(150)
    send(first, " ".join(sent))
    following = replies(second).last
    expect(following).to_have_attribute("data-status", "streaming", timeout=LONG)
    expect(following).to_have_attribute("data-status", "complete", timeout=LONG)
    assert reply_body(second).inner_text().split() == sent
    expect(second.locator("li.message[data-role='user'] .message-body")).to_have_text(" ".join(sent))
    expect(replies(first).last).to_have_attribute("data-status", "complete", timeout=LONG)
    assert reply_body(first).inner_text().split() == sent


def test_older_messages_load_when_scrolling_up(page: Page, user):
    conversation_id = new_conversation(user)
    api = user.api()
    for n in range(1, 31):
        api.post(f"/api/v1/conversations/{conversation_id}/messages", {"message": f"m{n:02d}"})
    open_conversation(page, user, conversation_id)
    messages = page.locator("li.message")
    expect(messages).to_have_count(50)
    expect(messages.first.locator(".message-body")).to_have_text("m06")  # seq 11 of 60

    page.locator(".messages").evaluate("element => { element.scrollTop = 0; }")
    expect(messages).to_have_count(60)
    expect(messages.first.locator(".message-body")).to_have_text("m01")
    expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()


def test_the_keyboard_sends_breaks_lines_and_stops(page: Page, user):
    conversation_id = new_conversation(user)
    open_conversation(page, user, conversation_id)
    box = composer(page)
    box.focus()
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    assert page.locator("li.message").count() == 0
    page.keyboard.press("Enter")
    question = page.locator("li.message[data-role='user'] .message-body")
    expect(question).to_have_text("first line\nsecond line", use_inner_text=True)
    expect(replies(page).last).to_have_attribute("data-status", "complete", timeout=LONG)

    page.keyboard.type(" ".join(words(300)))
    page.keyboard.press("Enter")
    expect(reply_body(page)).to_contain_text("w005", timeout=LONG)
    page.keyboard.press("Escape")
    expect(replies(page).last).to_have_attribute("data-status", "canceled", timeout=LONG)

    # Tab reaches the controls, and the focused one shows it.
    page.keyboard.press("Shift+Tab")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), f"no visible focus on {page.evaluate('() => document.activeElement.outerHTML')}"


def test_a_failed_send_says_why_and_keeps_the_text(page: Page, user):
    conversation_id = new_conversation(user)
    open_conversation(page, user, conversation_id)
    user.api().request("DELETE", f"/api/v1/conversations/{conversation_id}")
    send(page, "are you there?")
    expect(page.locator("#composer-error")).to_have_text(re.compile("not found"))
    expect(composer(page)).to_have_value("are you there?")
    assert page.locator("li.message").count() == 0


def test_an_unknown_conversation_says_so(page: Page, user):
    sign_in(page, user)
    page.goto("/c/conv-does-not-exist")
    expect(page.locator("#conversation-title")).to_have_text("Conversation not found")


def test_the_chat_works_on_a_phone_with_the_tree_behind_a_toggle(new_context, user, screenshot):
    page = new_context(viewport=PHONE).new_page()
    sign_in(page, user)
    sidebar = page.get_by_role("complementary", name="Conversations")
    expect(sidebar).to_be_visible()
    screenshot(page, "conversations-phone")
    page.get_by_role("button", name="New conversation").click()
    page.get_by_role("button", name="Start a conversation with text").click()

    # The conversation fills the screen, with a way back to the list.
    expect(sidebar).to_be_hidden()
    expect(page.get_by_role("link", name="Conversations")).to_be_visible()
    send(page, "hello from a phone")
    expect(replies(page).last).to_have_attribute("data-status", "complete", timeout=LONG)
    expect(reply_body(page)).to_have_text("hello from a phone")
    box = composer(page).bounding_box()
    assert box and box["y"] + box["height"] <= PHONE["height"], "the composer is below the screen"
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"
    screenshot(page, "chat-phone")

    toggle = page.get_by_role("button", name="Tree")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#tree-panel")).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#tree-panel")).to_be_visible()
    expect(composer(page)).to_be_hidden()
    toggle.click()
    expect(composer(page)).to_be_visible()

    page.get_by_role("link", name="Conversations").click()
    expect(sidebar).to_be_visible()


def test_the_tree_panel_is_beside_the_chat_on_a_wide_screen(page: Page, user):
    conversation_id = new_conversation(user, "tree")
    open_conversation(page, user, conversation_id)
    panel = page.locator("#tree-panel")
    expect(panel).to_be_visible()
    expect(page.get_by_role("button", name="Tree")).to_have_attribute("aria-expanded", "true")
    chat = page.locator(".chat-column").bounding_box()
    tree = panel.bounding_box()
    assert chat and tree and tree["x"] >= chat["x"] + chat["width"] - 1, (chat, tree)
