"""The console's renderers on their own, in the real page (its CSP
included): the Markdown renderer against hostile input, and a message's
states that a test cannot make the real stack produce at will (an agent
being retried, a failed turn)."""

import pytest
from playwright.sync_api import Page

RENDER = """
async (text) => {
  const app = document.querySelector('script[src$="/app.js"]').src;
  const { renderMarkdown } = await import(app.replace(/app\\.js$/, "markdown.js"));
  const host = document.createElement("div");
  host.id = "render-host";
  host.append(renderMarkdown(text));
  document.body.append(host);
  const links = [...host.querySelectorAll("a")].map((a) => ({href: a.getAttribute("href"), rel: a.rel, target: a.target}));
  const html = host.innerHTML;
  const tags = [...new Set([...host.querySelectorAll("*")].map((e) => e.localName))].sort();
  const attributes = [...new Set([...host.querySelectorAll("*")].flatMap((e) => e.getAttributeNames()))].sort();
  host.remove();
  return {links, html, tags, attributes, text: host.textContent};
}
"""

ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "del", "div", "em", "h3", "h4", "h5", "h6", "hr", "li",
    "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {"href", "rel", "target", "class", "title", "start", "scope", "data-language"}


@pytest.fixture
def console(page: Page) -> Page:
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#username')")
    yield page
    assert dialogs == [], f"a script ran: {dialogs}"


HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](java\tscript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](data:text/html,<script>alert(1)</script>)",
    "[x](vbscript:msgbox(1))",
    "[x](//evil.example/)",
    "[x](/relative)",
    "![x](javascript:alert(1))",
    "![x](https://example.com/a.png)",
    "<javascript:alert(1)>",
    "[a [nested](javascript:alert(1))](https://example.com)",
    "**<svg onload=alert(1)>**",
    "`<iframe src=javascript:alert(1)>`",
    "```\n<script>alert(1)</script>\n```",
    "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | [x](javascript:alert(1)) |",
    "> <img src=x onerror=alert(1)>\n> - [y](javascript:alert(1))",
    "x" * 5000 + "*" * 3000 + "[" * 1000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=[f"hostile-{n}" for n in range(len(HOSTILE))])
def test_hostile_markdown_renders_only_inert_elements_and_safe_links(console: Page, text: str):
    rendered = console.evaluate(RENDER, text)
    assert set(rendered["tags"]) <= ALLOWED_TAGS, rendered["html"][:500]
    assert set(rendered["attributes"]) <= ALLOWED_ATTRIBUTES, rendered["html"][:500]
    for link in rendered["links"]:
        assert link["href"].startswith(("https://", "http://", "mailto:")), link
        assert link["rel"] == "noopener noreferrer" and link["target"] == "_blank", link


def test_markdown_renders_what_replies_commonly_use(console: Page):
    text = (
        "# Title\n\nSome **bold**, *italic*, ~~gone~~ and `code`.\n\n"
        "- one\n- two\n  - nested\n\n1. first\n2. second\n\n"
        "> quoted\n\n```js\nlet a = 1 < 2;\n```\n\n"
        "| h1 | h2 |\n|---|--:|\n| a | b |\n\n"
        "See https://example.com/path?q=1. and <mailto:someone@example.com>"
    )
    rendered = console.evaluate(RENDER, text)
    for tag in ["h3", "strong", "em", "del", "code", "ul", "ol", "blockquote", "pre", "table", "th"]:
        assert tag in rendered["tags"], (tag, rendered["html"])
    hrefs = [link["href"] for link in rendered["links"]]
    assert hrefs == ["https://example.com/path?q=1", "mailto:someone@example.com"]
    assert "let a = 1 < 2;" in rendered["text"]


def test_a_message_shows_its_retries_reasoning_failure_and_usage(console: Page):
    shown = console.evaluate(
        """
        async () => {
          const app = document.querySelector('script[src$="/app.js"]').src;
          const { MessageView } = await import(app.replace(/app\\.js$/, "views/message.js"));
          const record = {
            id: "msg-1", seq: 2, role: "assistant", content: "", status: "streaming",
            tokenUsage: null, createdAt: null, reasoning: ["Calling the calculator"], data: [],
            error: null, retry: {attempt: 2, max_attempts: 3, delay_ms: 2000},
          };
          const view = new MessageView(record, "math");
          const retrying = view.el.querySelector(".retry-note").textContent;
          const reasoning = view.el.querySelector("details.reasoning summary").textContent;
          Object.assign(record, {
            retry: null, status: "failed", error: "the agent is unreachable",
            tokenUsage: {input_tokens: 12, output_tokens: 0},
          });
          view.render();
          return {
            retrying, reasoning,
            retried: view.el.querySelector(".retry-note") !== null,
            status: view.el.querySelector(".message-status").textContent,
            error: view.el.querySelector(".message-error").textContent,
            usage: view.el.querySelector(".usage").textContent,
            open: view.el.querySelector("details.reasoning").open,
          };
        }
        """
    )
    assert shown["retrying"] == "The agent did not answer; retrying 2/3…"
    assert shown["reasoning"] == "Reasoning (1 step)"
    assert shown["open"] is False, "reasoning starts collapsed"
    assert shown["retried"] is False
    assert shown["status"] == "Failed: the agent gave no reply"
    assert shown["error"] == "the agent is unreachable"
    assert shown["usage"] == "Tokens: 12 in · 0 out"
