"""What the interop suites share: the services' URLs from run.sh's
environment, users registered through the gateway, and JSON frames over
WebSockets with every wait bounded. The test modules beside it import it
(pytest puts this directory on sys.path); it holds no tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

# Seconds any one wait may take (a frame, a handshake, a close, a request):
# generous, so that a broken stack fails the test instead of hanging it.
TIMEOUT = 30.0
PASSWORD = "correct horse battery staple"

T = TypeVar("T")
Json = dict[str, Any]


@dataclass(frozen=True)
class User:
    """A user registered through the gateway, and its access token."""

    id: str
    token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def url_of(var: str) -> str:
    """The URL run.sh exported in `var`; the test is skipped without it."""
    url = os.environ.get(var, "").rstrip("/")
    if not url:
        pytest.skip(f"{var} is not set: run these tests with infra/interop/run.sh")
    return url


def ws_url(var: str, path: str) -> str:
    """`path` on the service in `var`, as a ws:// URL."""
    return "ws://" + url_of(var).removeprefix("http://") + path


def run_bounded(test: Callable[[], Awaitable[T]], limit: float) -> T:
    """Runs one test's coroutine; the whole of it is bounded by `limit` seconds too."""
    return asyncio.run(asyncio.wait_for(test(), limit))


def gateway_http() -> httpx.AsyncClient:
    """Plain HTTP to the gateway (never through an HTTP proxy)."""
    return httpx.AsyncClient(
        base_url=url_of("CONFAB_GATEWAY_URL"), timeout=TIMEOUT, trust_env=False
    )


async def new_user(prefix: str) -> User:
    """A user registered and logged in through the gateway, named `prefix-…`."""
    credentials = {"username": f"{prefix}-{uuid.uuid4().hex[:16]}", "password": PASSWORD}
    async with gateway_http() as http:
        registered = await http.post("/api/v1/auth/register", json=credentials)
        assert registered.status_code == 201, registered.text
        login = await http.post("/api/v1/auth/login", json=credentials)
        assert login.status_code == 200, login.text
    return User(id=registered.json()["id"], token=login.json()["access_token"])


def open_ws(url: str, **kwargs: Any) -> connect:
    """`websockets.connect` with every wait bounded and no HTTP proxy."""
    return connect(url, proxy=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT, **kwargs)


async def send(ws: ClientConnection, frame: Json) -> None:
    """`frame` as one JSON text frame."""
    await ws.send(json.dumps(frame))


async def receive(ws: ClientConnection, timeout: float = TIMEOUT) -> Json:
    """The next frame, which must be JSON text, within `timeout` seconds."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str), f"a binary frame: {raw!r}"
    return json.loads(raw)


async def until(ws: ClientConnection, done: Callable[[Json], bool]) -> list[Json]:
    """Frames up to and including the first one `done` accepts."""
    frames = []
    while True:
        frame = await receive(ws)
        frames.append(frame)
        if done(frame):
            return frames
