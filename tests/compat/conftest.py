"""Fixtures of the client compatibility suite: the logging proxy, Node.js, and the results
table (each matrix test declares its row; the outcome is filled in by a report hook and
test_clients_doc.py renders docs/clients.md from it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hiredis
import pytest

from helpers import free_port, wait_port
from rawclient import RawClient

from .proxy import Conn, LoggingProxy

COMPAT = Path(__file__).resolve().parent
NODE_DIR = COMPAT / "node"
SNIPPETS = COMPAT / "snippets"


@dataclass
class Row:
    """One line of the table in docs/clients.md."""

    client: str
    version: str
    protocol: str
    options: str
    handshake: list[str] = field(default_factory=list)
    result: str = "not run"
    nodeid: str = ""


ROWS: dict[str, Row] = {}  # by node id, in the order the tests ran
EXPECTED_ROWS: list[str] = []  # node ids of every collected matrix test


@pytest.fixture
def row(request: pytest.FixtureRequest) -> Callable[..., Row]:
    """``row(client, version, protocol, options)`` declares this test's row."""

    def declare(client: str, version: str, protocol: str, options: str) -> Row:
        r = Row(client, version, protocol, options, nodeid=request.node.nodeid)
        ROWS[request.node.nodeid] = r
        return r

    return declare


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # the docs test renders the results of every other compat test: run it last
    last = [i for i in items if i.get_closest_marker("clients_doc")]
    if last:
        items[:] = [i for i in items if not i.get_closest_marker("clients_doc")] + last


def pytest_collection_finish(session: pytest.Session) -> None:
    EXPECTED_ROWS[:] = [i.nodeid for i in session.items if "row" in getattr(i, "fixturenames", ())]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clients_doc: renders docs/clients.md; runs last")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    r = ROWS.get(item.nodeid)
    if r is not None:
        if report.when == "call":
            if hasattr(report, "wasxfail"):
                r.result = "xfail" if report.skipped else "XPASS"
            else:
                r.result = "pass" if report.passed else "fail"
        elif report.failed:  # setup or teardown error
            r.result = "error"
    return report


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture
def logging_proxy() -> Iterator[Callable[[int], LoggingProxy]]:
    """Start a logging proxy in front of a server port; all are closed after the test."""
    proxies: list[LoggingProxy] = []

    def start(port: int) -> LoggingProxy:
        p = LoggingProxy(port).__enter__()
        proxies.append(p)
        return p

    yield start
    for p in proxies:
        p.close()


def need_node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not installed (apt-get install nodejs npm); scripts/test.sh installs it"
        )
    if not (COMPAT / "node_modules").is_dir():
        pytest.fail("the Node.js clients are not installed: npm ci --prefix tests/compat")
    return node


def npm_version(alias: str) -> str:
    """The version of an aliased package, as installed from the lockfile."""
    return json.loads((COMPAT / "node_modules" / alias / "package.json").read_text())["version"]


def run_node(script: Path, *args: str, env: dict[str, str], timeout: float = 60) -> Any:
    """Run a Node.js script; it must exit 0 with nothing on stderr and print one JSON line."""
    res = subprocess.run(
        [need_node(), str(script), *args],
        cwd=script.parent,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stderr}\n{res.stdout[-2000:]}"
    assert res.stderr == "", res.stderr
    return json.loads(res.stdout)


# -- handshakes ---------------------------------------------------------------------------


def describe_command(args: list[bytes]) -> str:
    """A command as the docs show it: arguments that say what was asked, secrets masked,
    values that only identify the library left out."""
    words = [a.decode("utf-8", "replace") for a in args]
    name = words[0].upper()
    if name == "HELLO":
        out, i = ["HELLO"], 1
        while i < len(words):
            w = words[i].upper()
            if w == "AUTH":
                out += ["AUTH", words[i + 1], "***"]
                i += 3
            elif w == "SETNAME":
                out += ["SETNAME", words[i + 1]]
                i += 2
            else:
                out.append(words[i])
                i += 1
        return " ".join(out)
    if name == "AUTH":
        return "AUTH " + " ".join([*words[1:-1], "***"])
    if name == "CLIENT" and len(words) > 2 and words[1].upper() == "SETINFO":
        return f"CLIENT SETINFO {words[2].upper()}"
    if name == "CLIENT" and len(words) > 1 and words[1].upper() == "MAINT_NOTIFICATIONS":
        return "CLIENT MAINT_NOTIFICATIONS " + " ".join(words[2:])
    if name in {"CLIENT", "CONFIG", "COMMAND"}:
        return " ".join([name, *(w.upper() for w in words[1:2]), *words[2:]])
    return " ".join([name, *words[1:]])


def main_connection(proxy: LoggingProxy) -> Conn:
    """The first connection that ran a TASK command (not the subscriber's)."""
    for conn in proxy.conns:
        if any(c and c[0].upper().startswith(b"TASK.") for c in conn.commands):
            return conn
    raise AssertionError(f"no connection sent a TASK command: {[c.names() for c in proxy.conns]}")


def handshake_commands(conn: Conn) -> list[list[bytes]]:
    """The commands a client sent on a connection before its first TASK command or
    subscription: its connection handshake."""
    out = []
    for cmd in conn.commands:
        name = cmd[0].decode("utf-8", "replace").upper() if cmd else ""
        if name.startswith("TASK.") or name in {"SUBSCRIBE", "PSUBSCRIBE"}:
            break
        out.append(cmd)
    return out


def handshake_of(conn: Conn) -> list[str]:
    """The handshake as the docs show it, each command with the error reply it got, if any."""
    out = []
    for i, cmd in enumerate(handshake_commands(conn)):
        text = describe_command(cmd)
        reply = conn.replies[i] if i < len(conn.replies) else None
        if isinstance(reply, hiredis.ReplyError):
            text += f" → error `{reply}`"
        out.append(text)
    return out


def _kind(reply: Any) -> str:
    if isinstance(reply, hiredis.ReplyError):
        return f"error {reply}"
    return type(reply).__name__


# CLIENT SETINFO came with Redis 7.2, after the redis-server that Debian 12 ships (7.0):
# taskstore answers it as Redis 7.2+ does, the reference server cannot
_NEWER_THAN_REFERENCE = {"CLIENT SETINFO": "ERR unknown subcommand 'SETINFO'. Try CLIENT HELP."}


def differences_from_redis(conn: Conn, ours: int, redis_port: int) -> list[str]:
    """Replay a client's handshake on fresh connections to taskstore and to a real
    redis-server set up the same way (password or not); return each command whose reply
    differs in kind (its type, or the error text)."""
    commands = handshake_commands(conn)
    diffs = []
    with RawClient(ours) as a, RawClient(redis_port) as b:
        for cmd in commands:
            ra, rb = a.call(*cmd), b.call(*cmd)
            name = describe_command(cmd)
            if _kind(ra) == _kind(rb):
                continue
            if any(
                name.startswith(p) and str(rb) == text for p, text in _NEWER_THAN_REFERENCE.items()
            ):
                continue
            diffs.append(f"{name}: taskstore {_kind(ra)!r}, redis-server {_kind(rb)!r}")
    return diffs


@pytest.fixture(scope="session")
def reference_redis(redis_server: int) -> Iterator[Callable[[str | None], int]]:
    """``reference_redis(password)``: the port of a real redis-server, with that
    ``requirepass`` (None: the shared one of tests/conftest.py)."""
    started: dict[str, tuple[subprocess.Popen[bytes], int]] = {}

    def get(password: str | None) -> int:
        if password is None:
            return redis_server
        if password not in started:
            port = free_port()
            proc = subprocess.Popen(
                [
                    *(shutil.which("redis-server") or "redis-server", "--port", str(port)),
                    *("--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                    *("--requirepass", password),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started[password] = (proc, port)
            wait_port(port)
        return started[password][1]

    yield get
    for proc, _ in started.values():
        proc.terminate()
        proc.wait(10)
