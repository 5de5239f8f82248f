"""Fixtures of the console tests: a taskstore with the console on and four users, redis-cli
as a real process, and headless chromium."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from console.browser import Browser, missing
from helpers import free_port, need_tool

if TYPE_CHECKING:
    from taskstore.server.app import Server

#: Each sees its own owner; ops is an admin, svc may impersonate.
USERS = [
    {"name": "alice", "password": "alice-pw"},
    {"name": "bob", "password": "bob-pw"},
    {"name": "ops", "password": "ops-pw", "permissions": ["admin"]},
    {"name": "svc", "password": "svc-pw", "permissions": ["impersonate"]},
]
PASSWORDS = {user["name"]: user["password"] for user in USERS}


@dataclass
class Console:
    """A running server with its console, and ways to talk to both."""

    server: Server
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        assert self.server.console is not None
        return self.server.console.url.rstrip("/")

    def cli(self, *args: str, user: str | None = None) -> str:
        """One redis-cli command as ``user`` (None: the anonymous default user); its output."""
        auth = (
            [] if user is None else ["--user", user, "--pass", PASSWORDS[user], "--no-auth-warning"]
        )
        res = subprocess.run(
            [need_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(self.port), *auth, *args],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    def http(
        self,
        path: str,
        user: str | None = None,
        password: str | None = None,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request to the console: (status, headers, body)."""
        sent = dict(headers or {})
        if user is not None:
            secret = PASSWORDS.get(user, "") if password is None else password
            sent["Authorization"] = (
                "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
            )
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
            sent.setdefault("X-Taskstore-Console", "1")
        request = urllib.request.Request(self.url + path, data=data, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, dict(e.headers), e.read()

    def json(self, path: str, user: str | None = None, **kw: Any) -> Any:
        status, _, body = self.http(path, user, **kw)
        assert status == 200, (status, body)
        return json.loads(body)


@pytest.fixture
def make_console(make_server: Callable[..., Server]) -> Callable[..., Console]:
    """Start a server with the console on a free loopback port (settings as keywords)."""

    def make(**settings: Any) -> Console:
        settings.setdefault("users", USERS)
        settings.setdefault("mcp_version", "2026-07-28")
        settings.setdefault("console_port", free_port())
        return Console(make_server(**settings))

    return make


@pytest.fixture
def console(make_console: Callable[..., Console]) -> Console:
    return make_console()


@pytest.fixture
def browsers() -> Iterator[Callable[[], Browser]]:
    """Open headless chromiums; every one is quit after the test. A missing chromium fails
    the test (the test command installs it), it never skips it."""
    reason = missing()
    if reason is not None:
        pytest.fail(reason)
    opened: list[Browser] = []

    def open_browser() -> Browser:
        browser = Browser()
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        browser.quit()


@pytest.fixture
def browser(browsers: Callable[[], Browser]) -> Browser:
    return browsers()
