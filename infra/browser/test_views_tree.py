"""The conversation's tree (issue 17 point 4, seed 004): a collapsible
outline beside the chat, updated live by the tree agent's ``tree_update``,
edited by hand over ``/ws/chat`` (``tree_edit``), and an edit made on a
stale version shown as a conflict and re-applied on the current one.

The stale edit is made the way it happens for real: a second tab edits
the tree while the first tab has not heard of it yet. The first tab's
socket is routed through Playwright so that the other tab's
``tree_update`` reaches it late (after its own edit went out) or never;
everything else passes through unchanged."""

from __future__ import annotations

import json
import re

import pytest
from conftest import PHONE, Api, User, sign_in
from playwright.sync_api import Page, WebSocketRoute, expect


def tree_conversation(api: Api) -> str:
    return api.post("/api/v1/conversations", {"agent_id": "tree"})["id"]


def stored(api: Api, conversation_id: str) -> tuple[dict, int]:
    conversation = api.get(f"/api/v1/conversations/{conversation_id}")
    return conversation["tree"], conversation["tree_version"]


def shape(node: dict) -> dict:
    """{label: shape of children} of a tree document, for comparisons."""
    return {child.get("label", child["id"]): shape(child) for child in node.get("children", [])}


def open_tree(page: Page, conversation_id: str):
    """The conversation's page with its tree panel open; the tree section."""
    page.goto(f"/c/{conversation_id}")
    # The chat screen has loaded the conversation (and decided whether its
    # tree panel starts open) once the composer names the agent.
    expect(page.get_by_label("Message")).to_have_attribute("placeholder", re.compile(r"^Message .+…$"))
    toggle = page.get_by_role("button", name="Tree", exact=True)
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    tree = page.locator("#tree-panel").get_by_role("region", name="Tree")
    expect(tree.locator(".tree-connection")).to_have_attribute("data-state", "live")
    return tree


def node(tree, label: str):
    return tree.locator(".tree-label", has_text=re.compile(rf"^{re.escape(label)}$"))


def select(tree, label: str) -> None:
    node(tree, label).click()
    expect(node(tree, label)).to_have_attribute("aria-pressed", "true")


def saved(tree, words: str) -> None:
    expect(tree.locator(".tree-notice", has_text=f"Saved: {words}")).to_be_visible()


def add(tree, parent: str, label: str) -> None:
    select(tree, parent)
    tree.get_by_role("button", name="Add child").click()
    tree.get_by_label(f"Label of the new node under {parent}").fill(label)
    tree.get_by_role("button", name="Add", exact=True).click()
    saved(tree, f'add "{label}" under "{parent}"')


def test_the_tree_agent_changes_the_outline_live_and_nodes_collapse(page: Page, user: User, screenshot):
    api = user.api()
    conversation = tree_conversation(api)
    sign_in(page, user)
    tree = open_tree(page, conversation)
    expect(node(tree, "root")).to_be_visible()
    expect(tree.locator(".tree-version")).to_have_text("version 0")

    # A turn started elsewhere (the API): its tree_update reaches the open page.
    api.post(f"/api/v1/conversations/{conversation}/messages", {"message": "add node Fruits with child Apples under root"})
    expect(node(tree, "Fruits")).to_be_visible()
    expect(node(tree, "Apples")).to_be_visible()
    document, version = stored(api, conversation)
    expect(tree.locator(".tree-version")).to_have_text(f"version {version}")
    assert shape(document) == {"Fruits": {"Apples": {}}}

    collapse = tree.get_by_role("button", name="Collapse Fruits")
    expect(collapse).to_have_attribute("aria-expanded", "true")
    collapse.click()
    expect(node(tree, "Apples")).to_be_hidden()
    tree.get_by_role("button", name="Expand Fruits").click()
    expect(node(tree, "Apples")).to_be_visible()
    screenshot(page, "tree-desktop")

    # On a phone the panel is opened with the "Tree" button; it then fills
    # the conversation's place.
    page.set_viewport_size(PHONE)
    toggle = page.get_by_role("button", name="Tree", exact=True)
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    expect(node(tree, "Apples")).to_be_visible()
    screenshot(page, "tree-phone")


def test_nodes_are_added_renamed_moved_and_removed_by_hand(page: Page, user: User):
    api = user.api()
    conversation = tree_conversation(api)
    sign_in(page, user)
    tree = open_tree(page, conversation)

    add(tree, "root", "Fruits")
    add(tree, "root", "Veggies")
    add(tree, "Fruits", "Apples")
    add(tree, "Fruits", "Pears")
    assert shape(stored(api, conversation)[0]) == {"Fruits": {"Apples": {}, "Pears": {}}, "Veggies": {}}

    select(tree, "Pears")
    tree.get_by_role("button", name="Rename").click()
    label = tree.get_by_label("New label of Pears")
    expect(label).to_have_value("Pears")
    label.fill("Nashi")
    tree.get_by_role("button", name="Rename", exact=True).last.click()
    saved(tree, 'rename "Pears" to "Nashi"')

    select(tree, "Nashi")
    tree.get_by_role("button", name="Move up").click()
    saved(tree, 'move "Nashi" up')
    assert shape(stored(api, conversation)[0])["Fruits"] == {"Nashi": {}, "Apples": {}}

    # Fruits under its next sibling: the patch takes it out of the way first.
    select(tree, "Fruits")
    tree.get_by_role("button", name="Move", exact=True).click()
    tree.get_by_label("Move Fruits under").select_option("veggies")
    tree.get_by_role("button", name="Move", exact=True).last.click()
    saved(tree, 'move "Fruits" under "Veggies"')
    assert shape(stored(api, conversation)[0]) == {"Veggies": {"Fruits": {"Nashi": {}, "Apples": {}}}}

    select(tree, "Fruits")
    tree.get_by_role("button", name="Remove").click()
    expect(tree.get_by_text("Remove Fruits and the 2 nodes under it?")).to_be_visible()
    tree.get_by_role("button", name="Remove", exact=True).last.click()
    saved(tree, 'remove "Fruits"')
    document, version = stored(api, conversation)
    assert shape(document) == {"Veggies": {}}
    assert version == 8
    expect(tree.locator(".tree-version")).to_have_text("version 8")
    expect(node(tree, "Apples")).to_have_count(0)
    # What was made by hand is what the agent sees and edits.
    api.post(f"/api/v1/conversations/{conversation}/messages", {"message": "add node Leeks under Veggies"})
    expect(node(tree, "Leeks")).to_be_visible()
    assert shape(stored(api, conversation)[0]) == {"Veggies": {"Leeks": {}}}


@pytest.mark.parametrize("late", [True, False], ids=["update-arrives-late", "update-never-arrives"])
def test_an_edit_on_a_stale_version_is_shown_as_a_conflict_and_reapplied(
    page: Page, user: User, screenshot, late: bool
):
    api = user.api()
    conversation = tree_conversation(api)
    api.post(f"/api/v1/conversations/{conversation}/messages", {"message": "add node Fruits under root"})
    _, base = stored(api, conversation)

    # Tab A's socket: while `holding`, tree updates from the server wait; the
    # first tree_edit A sends ends the hold, and what waited is delivered
    # then (late) or dropped (never).
    holding = {"on": False}
    held: list[str] = []
    edits: list[dict] = []

    def route(ws: WebSocketRoute):
        server = ws.connect_to_server()

        def to_page(message):
            if holding["on"] and isinstance(message, str) and json.loads(message).get("type") == "tree_update":
                held.append(message)
                return
            ws.send(message)

        def to_server(message):
            frame = json.loads(message) if isinstance(message, str) else {}
            if frame.get("type") == "tree_edit":
                edits.append(frame["data"])
                if holding["on"]:
                    holding["on"] = False
                    server.send(message)
                    if late:
                        for waiting in held:
                            ws.send(waiting)
                    return
            server.send(message)

        server.on_message(to_page)
        ws.on_message(to_server)

    page.route_web_socket(re.compile(r"/ws/chat"), route)
    sign_in(page, user)
    tab_a = open_tree(page, conversation)
    expect(tab_a.locator(".tree-version")).to_have_text(f"version {base}")

    holding["on"] = True
    page_b = page.context.new_page()
    tab_b = open_tree(page_b, conversation)
    add(tab_b, "root", "Nuts")
    assert stored(api, conversation)[1] == base + 1
    # The server tells tab A (its socket's frames are handled while the
    # test waits on the page); tab A does not hear it yet.
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "tab A was sent no tree_update for tab B's edit"
    expect(tab_a.locator(".tree-version")).to_have_text(f"version {base}")

    select(tab_a, "Fruits")
    tab_a.get_by_role("button", name="Rename").click()
    tab_a.get_by_label("New label of Fruits").fill("Produce")
    tab_a.get_by_role("button", name="Rename", exact=True).last.click()

    conflict = tab_a.locator('.tree-notice[data-kind="conflict"]')
    expect(conflict).to_contain_text(f"Conflict: the tree changed to version {base + 1} while you edited version {base}")
    expect(tab_a.locator(".tree-notice", has_text=f"Re-applied on version {base + 2}")).to_be_visible()
    expect(node(tab_a, "Produce")).to_be_visible()
    expect(node(tab_a, "Nuts")).to_be_visible()
    expect(tab_a.locator(".tree-version")).to_have_text(f"version {base + 2}")
    screenshot(page, f"tree-conflict-{'late' if late else 'lost'}")

    # The first edit went out on the stale version, the second on the current one.
    assert [e["base_version"] for e in edits] == [base, base + 1]
    document, version = stored(api, conversation)
    assert version == base + 2
    assert shape(document) == {"Produce": {}, "Nuts": {}}
    # Tab B follows tab A's re-applied edit.
    expect(node(tab_b, "Produce")).to_be_visible()
    expect(tab_b.locator(".tree-version")).to_have_text(f"version {base + 2}")


def test_an_edit_another_tab_already_made_is_not_made_twice(page: Page, user: User):
    api = user.api()
    conversation = tree_conversation(api)
    api.post(f"/api/v1/conversations/{conversation}/messages", {"message": "add node Fruits under root"})
    _, base = stored(api, conversation)
    holding = {"on": True}

    def route(ws: WebSocketRoute):
        server = ws.connect_to_server()

        def to_page(message):
            if holding["on"] and isinstance(message, str) and json.loads(message).get("type") == "tree_update":
                return
            ws.send(message)

        server.on_message(to_page)

    sign_in(page, user)
    tab_b = open_tree(page.context.new_page(), conversation)
    page.route_web_socket(re.compile(r"/ws/chat"), route)
    tab_a = open_tree(page, conversation)

    # Both tabs rename Fruits to Produce; A has not heard of B's rename.
    for tab in (tab_b, tab_a):
        select(tab, "Fruits")
        tab.get_by_role("button", name="Rename").click()
        tab.get_by_label("New label of Fruits").fill("Produce")
        tab.get_by_role("button", name="Rename", exact=True).last.click()
    expect(tab_a.locator(".tree-notice", has_text="The current tree already does what your edit asked")).to_be_visible()
    expect(node(tab_a, "Produce")).to_be_visible()
    assert stored(api, conversation)[1] == base + 1
