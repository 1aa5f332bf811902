"""Fixtures of the browser suite (infra/browser/run.sh starts the stack).

Every test gets a fresh browser context (its own cookies and storage) whose
requests carry a unique ``X-Forwarded-For``: the gateway of this suite takes
the client IP from it, so each test is its own client for the per-IP login
and register limits, and a test that hits those limits on purpose hurts no
other. Users are fresh too (``new_user``), so tests never share data.

Every page of a test is watched: a JavaScript error thrown on the page, or a
Content-Security-Policy violation reported on its console, fails the test
when it ends.

Selectors the fixtures rely on (the console keeps them): the sign-in form's
fields are labelled "Username" and "Password", its buttons are named
"Sign in" and "Create account", and a signed-in page shows a navigation
landmark named "Main".
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

CONSOLE_URL = os.environ.get("CONSOLE_URL", "http://127.0.0.1:9050")
DASHBOARD_URL = os.environ.get("DASHBOARD_URL", "http://127.0.0.1:8091")
CHROMIUM = os.environ.get("BROWSER_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS", "target/browser-screenshots"))

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

# How the trace and calls views show a call's latency and tokens.
LATENCY = re.compile(r"^\d+ ms$|^\d+\.\d\d s$")
TOKENS = re.compile(r"^\d+ in · \d+ out$")
# Markup a message carries into a view, to be shown as text.
HOSTILE = "<img src=x onerror=alert(1)>"

# Flags for a headless Chromium in a container: no sandbox (no user
# namespaces there), and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

_client_ips = (f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}" for n in itertools.count(1))


def client_ip() -> str:
    """A client IP no other context of this run has used."""
    return next(_client_ips)


@dataclass
class User:
    username: str
    password: str
    ip: str

    def api(self) -> "Api":
        """The JSON API as this user (signs in over HTTP, not in the browser)."""
        return Api.sign_in(self)


class Api:
    """The gateway's JSON API for a test's setup and checks, as one user."""

    def __init__(self, client: httpx.Client, token: str):
        self.client = client
        self.token = token

    @classmethod
    def sign_in(cls, user: User) -> "Api":
        client = httpx.Client(
            base_url=CONSOLE_URL, headers={"x-forwarded-for": user.ip}, timeout=30
        )
        answer = client.post(
            "/api/v1/auth/login", json={"username": user.username, "password": user.password}
        )
        answer.raise_for_status()
        return cls(client, answer.json()["access_token"])

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        answer = self.request("GET", path, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body=None, **kwargs):
        answer = self.request("POST", path, json=body, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def chat(self, message: str, agent: str = "math") -> dict:
        """One finished turn with `agent` in a new conversation."""
        conversation = self.post("/api/v1/conversations", {"agent_id": agent})
        return self.post(
            f"/api/v1/conversations/{conversation['id']}/messages", {"message": message}
        )


def register(username: str, password: str, ip: str) -> None:
    answer = httpx.post(
        f"{CONSOLE_URL}/api/v1/auth/register",
        json={"username": username, "password": password},
        headers={"x-forwarded-for": ip},
        timeout=30,
    )
    answer.raise_for_status()


@pytest.fixture
def new_user():
    """Registers fresh users over the API: `new_user()` → User."""

    def make(prefix: str = "u") -> User:
        username = f"{prefix}{secrets.token_hex(5)}"
        user = User(username, f"pw-{secrets.token_hex(8)}", client_ip())
        register(user.username, user.password, user.ip)
        return user

    return make


@pytest.fixture
def user(new_user) -> User:
    return new_user()


ADMIN_USERNAME = os.environ.get("BROWSER_ADMIN_USERNAME", "")
ADMIN_PASSWORD = os.environ.get("BROWSER_ADMIN_PASSWORD", "")


@pytest.fixture
def admin() -> User:
    """The stack's administrator (run.sh configures the gateway's `[admin]`
    and passes its credentials on), as its own client (a fresh IP)."""
    if not (ADMIN_USERNAME and ADMIN_PASSWORD):
        pytest.skip("no administrator: BROWSER_ADMIN_USERNAME/BROWSER_ADMIN_PASSWORD unset (run.sh sets them)")
    return User(ADMIN_USERNAME, ADMIN_PASSWORD, client_ip())


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """Page errors and CSP violations seen on a context's pages."""

    def __init__(self):
        self.problems: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

        def console(message):
            text = message.text
            if message.type == "error" and re.search(
                r"Content.Security.Policy|Refused to", text, re.IGNORECASE
            ):
                self.problems.append(f"CSP: {text}")

        page.on("console", console)
        return page


@pytest.fixture
def new_context(browser: Browser):
    """Opens browser contexts: `new_context(viewport=PHONE)` → BrowserContext.

    Each has its own cookies and a unique X-Forwarded-For (see the module's
    doc); every page opened in it is watched for errors.
    """
    opened: list[tuple[BrowserContext, Watched]] = []

    def make(viewport=None, ip: str | None = None) -> BrowserContext:
        context = browser.new_context(
            base_url=CONSOLE_URL,
            viewport=viewport or DESKTOP,
            extra_http_headers={"x-forwarded-for": ip or client_ip()},
        )
        watched = Watched()
        context.on("page", watched.watch)
        opened.append((context, watched))
        return context

    yield make
    problems = [problem for _, watched in opened for problem in watched.problems]
    for context, _ in opened:
        context.close()
    assert not problems, "the page reported problems:\n" + "\n".join(problems)


@pytest.fixture
def context(new_context) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, user: User) -> Page:
    """Signs `user` in through the console's form and waits for the app."""
    page.goto("/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    return page


@pytest.fixture
def signed_in(page: Page, user: User) -> Page:
    """A desktop page with a fresh user signed in through the console."""
    return sign_in(page, user)


@pytest.fixture
def screenshot():
    """Saves a screenshot: `screenshot(page, "chat-desktop")` → its path."""

    def take(page: Page, name: str, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
