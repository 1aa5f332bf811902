"""The tree view's own JSON Patch (RFC 6902) and JSON Pointer (RFC 6901)
code, run in the browser: the module is imported on the console page, as
the view imports it. The cases are RFC 6902's Appendix A plus the edges the
tree relies on (root replacement, ``-``, escaping, atomic failure, a
``__proto__`` key), and the tree edits' patches checked by applying them."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page

APPLY = """async ([url, doc, patch]) => {
  const m = await import(url);
  const before = JSON.stringify(doc);
  try {
    const result = m.applyPatch(doc, patch);
    const plain = result === null || typeof result !== "object" || Array.isArray(result)
      || Object.getPrototypeOf(result) === Object.prototype;
    // As JSON text: a "__proto__" member would not survive Playwright's own
    // serialisation.
    return { ok: true, json: JSON.stringify(result), untouched: JSON.stringify(doc) === before,
             proto: plain && ({}).polluted === undefined };
  } catch (error) {
    return { ok: false, name: error.name, message: error.message, untouched: JSON.stringify(doc) === before };
  }
}"""


@pytest.fixture
def tree_module(page: Page) -> str:
    """The URL of views/tree.js in the console's current build."""
    page.goto("/")
    app = page.evaluate("() => document.querySelector('script[type=module]').src")
    return app.rsplit("/", 1)[0] + "/views/tree.js"


def apply(page: Page, url: str, doc, patch):
    return page.evaluate(APPLY, [url, doc, patch])


# (name, document, patch, expected) — RFC 6902 Appendix A and more.
APPLIES = [
    ("A.1 add an object member", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ("A.2 add an array element", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ("A.3 remove an object member", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}],
     {"foo": "bar"}),
    ("A.4 remove an array element", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ("A.5 replace a value", {"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ("A.6 move a value", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7 move an array element", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}], {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8 test a value: success", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10 add a nested member object", {"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11 ignore unrecognised elements", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
     {"foo": "bar", "baz": "qux"}),
    ("A.14 ~ escape ordering", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
     {"/": 9, "~1": 10}),
    ("A.16 add an array value", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ("~1 is a slash in a key", {}, [{"op": "add", "path": "/a~1b", "value": 1}], {"a/b": 1}),
    ("replace the whole document", {}, [{"op": "replace", "path": "", "value": {"id": "root", "children": []}}],
     {"id": "root", "children": []}),
    ("add at the root replaces the document", {"a": 1}, [{"op": "add", "path": "", "value": [1, 2]}], [1, 2]),
    ("copy a subtree (a copy, not a shared reference)", {"a": {"b": [1]}},
     [{"op": "copy", "from": "/a", "path": "/c"}, {"op": "add", "path": "/c/b/-", "value": 2}],
     {"a": {"b": [1]}, "c": {"b": [1, 2]}}),
    ("test compares objects whatever their key order", {"a": {"x": 1, "y": [1, {"z": None}]}},
     [{"op": "test", "path": "/a", "value": {"y": [1, {"z": None}], "x": 1}}],
     {"a": {"x": 1, "y": [1, {"z": None}]}}),
    ("move to the same place changes nothing", {"a": [1, 2]}, [{"op": "move", "from": "/a/0", "path": "/a/0"}],
     {"a": [1, 2]}),
    ("a __proto__ key is plain data", {}, [{"op": "add", "path": "/__proto__", "value": {"polluted": True}}],
     {"__proto__": {"polluted": True}}),
    ("later operations see earlier ones", {"list": []},
     [{"op": "add", "path": "/list/-", "value": "a"}, {"op": "add", "path": "/list/0", "value": "b"},
      {"op": "replace", "path": "/list/1", "value": "c"}], {"list": ["b", "c"]}),
]

REFUSALS = [
    ("A.9 test a value: error", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
    ("A.12 add to a nonexistent target", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    ("A.13 an operation without op", {"foo": "bar"}, [{"path": "/baz", "value": "qux"}]),
    ("A.15 a string is not a number", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}]),
    ("remove what is not there", {"a": 1}, [{"op": "remove", "path": "/b"}]),
    ("replace what is not there", {"a": 1}, [{"op": "replace", "path": "/b", "value": 2}]),
    ("an index past the end", {"a": [1]}, [{"op": "add", "path": "/a/2", "value": 2}]),
    ("an index with a leading zero", {"a": [1, 2]}, [{"op": "remove", "path": "/a/01"}]),
    ("- is no element to remove", {"a": [1]}, [{"op": "remove", "path": "/a/-"}]),
    ("a pointer without a leading slash", {"a": 1}, [{"op": "remove", "path": "a"}]),
    ("an invalid escape", {"a": 1}, [{"op": "add", "path": "/~2", "value": 1}]),
    ("a move into its own child", {"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}]),
    ("an unknown op", {"a": 1}, [{"op": "merge", "path": "/a", "value": 2}]),
    ("a patch that is not an array", {"a": 1}, {"op": "remove", "path": "/a"}),
    ("removing the whole document", {"a": 1}, [{"op": "remove", "path": ""}]),
    ("an inherited member is not a member", {}, [{"op": "remove", "path": "/toString"}]),
    ("a failure half-way keeps nothing of the first half", {"a": [1]},
     [{"op": "add", "path": "/a/-", "value": 2}, {"op": "remove", "path": "/missing"}]),
]


@pytest.mark.parametrize("name,doc,patch,expected", APPLIES, ids=[case[0] for case in APPLIES])
def test_a_patch_applies_as_rfc_6902_says(page: Page, tree_module: str, name, doc, patch, expected):
    answer = apply(page, tree_module, doc, patch)
    assert answer["ok"], answer
    assert json.loads(answer["json"]) == expected
    assert answer["untouched"], "the input document was changed"
    assert answer["proto"], "a prototype was changed"


@pytest.mark.parametrize("name,doc,patch", REFUSALS, ids=[case[0] for case in REFUSALS])
def test_a_patch_that_cannot_apply_is_refused_and_changes_nothing(page: Page, tree_module: str, name, doc, patch):
    answer = apply(page, tree_module, doc, patch)
    assert not answer["ok"], answer
    assert answer["name"] == "PatchError", answer
    assert answer["untouched"]


def test_pointers_unescape_and_escape_as_rfc_6901_says(page: Page, tree_module: str):
    answer = page.evaluate(
        """async (url) => {
          const m = await import(url);
          return {
            parsed: m.parsePointer("/a~1b/m~0n/~01/0/"),
            whole: m.parsePointer(""),
            formatted: m.formatPointer(["a/b", "m~n", "~1", "0", ""]),
          };
        }""",
        tree_module,
    )
    assert answer["parsed"] == ["a/b", "m~n", "~1", "0", ""]
    assert answer["whole"] == []
    assert answer["formatted"] == "/a~1b/m~0n/~01/0/"


GARDEN = {
    "id": "root", "label": "Garden", "children": [
        {"id": "fruits", "label": "Fruits", "children": [
            {"id": "apples", "label": "Apples", "children": []},
            {"id": "pears", "label": "Pears", "children": []},
        ]},
        {"id": "veggies", "label": "Veggies", "children": [
            {"id": "leeks", "label": "Leeks"},
        ]},
    ],
}

PLAN = """async ([url, doc, intent]) => {
  const m = await import(url);
  const plan = m.planEdit(doc, intent);
  return plan.ops ? { ops: plan.ops, result: m.applyPatch(doc, plan.ops) } : plan;
}"""


def ids(node, parent=None, out=None):
    """{id: parent id} of a tree document."""
    out = {} if out is None else out
    out[node["id"]] = parent
    for child in node.get("children", []):
        ids(child, node["id"], out)
    return out


def test_hand_edits_become_patches_that_do_what_the_person_asked(page: Page, tree_module: str):
    added = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "add", "parentId": "leeks", "id": "baby-leeks", "label": "Baby leeks"}])
    # Leeks had no children array: the patch makes one first.
    assert ids(added["result"])["baby-leeks"] == "leeks"
    renamed = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "rename", "id": "pears", "label": "Nashi"}])
    assert renamed["ops"] == [{"op": "replace", "path": "/children/0/children/1/label", "value": "Nashi"}]
    removed = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "remove", "id": "fruits"}])
    assert set(ids(removed["result"])) == {"root", "veggies", "leeks"}
    # A move under a later sibling of the moved node: the target's index is
    # read after the node is taken out (RFC 6902 §4.4).
    moved = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "move", "id": "fruits", "parentId": "veggies"}])
    assert ids(moved["result"])["fruits"] == "veggies"
    assert ids(moved["result"])["apples"] == "fruits"
    down = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "reorder", "id": "apples", "offset": 1}])
    assert [c["id"] for c in down["result"]["children"][0]["children"]] == ["pears", "apples"]
    # A new conversation's tree is {}: the patch starts from the empty tree.
    first = page.evaluate(PLAN, [tree_module, {}, {"kind": "add", "parentId": "root", "id": "x", "label": "X"}])
    assert first["result"] == {"id": "root", "label": "root", "children": [{"id": "x", "label": "X", "children": []}]}


def test_an_edit_the_tree_already_shows_or_can_no_longer_make_is_not_sent(page: Page, tree_module: str):
    same = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "rename", "id": "pears", "label": "Pears"}])
    assert same == {"done": True}
    gone = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "rename", "id": "plums", "label": "Plums"}])
    assert "impossible" in gone
    cycle = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "move", "id": "root", "parentId": "fruits"}])
    assert "impossible" in cycle
    under_itself = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "move", "id": "fruits", "parentId": "apples"}])
    assert "impossible" in under_itself
    # An id taken meanwhile by another node: the added node gets a free one.
    taken = page.evaluate(PLAN, [tree_module, GARDEN, {"kind": "add", "parentId": "veggies", "id": "apples", "label": "Apples"}])
    assert ids(taken["result"])["apples-2"] == "veggies"
