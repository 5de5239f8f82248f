"""Shared fixtures: in-process servers, taskstore in a subprocess, and a real redis-server."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers import free_port, wait_port
from rawclient import RawClient

if TYPE_CHECKING:
    from taskstore.server.app import Server, ServerThread

ROOT = Path(__file__).resolve().parent.parent

#: The tests written for the first MCP task generation (design.md §4-§5) select it explicitly:
#: the servers these fixtures start render 2025-11-25 tasks unless a test asks for
#: ``mcp_version="2026-07-28"`` (tests/server/test_tasks_v2.py and the v2 client tests do).
FIRST_GENERATION = "2025-11-25"


@pytest.fixture
def server() -> Iterator[Server]:
    """A fresh in-process taskstore on a free loopback port."""
    from taskstore.server.app import ServerThread

    with ServerThread(port=0, mcp_version=FIRST_GENERATION) as srv:
        yield srv


@pytest.fixture
def make_server() -> Iterator[Callable[..., Server]]:
    """Start in-process servers with settings; all are stopped after the test."""
    from taskstore.server.app import ServerThread

    runners: list[ServerThread] = []

    def make(**settings: object) -> Server:
        settings.setdefault("port", 0)
        settings.setdefault("mcp_version", FIRST_GENERATION)
        runner = ServerThread(**settings)
        runner.start()
        runners.append(runner)
        return runner.server

    yield make
    for runner in runners:
        runner.stop()


@pytest.fixture
def raw_clients() -> Iterator[Callable[..., RawClient]]:
    """Open raw clients (tests/rawclient.py), optionally RESP3 and logged in; all closed after."""
    opened: list[RawClient] = []

    def open_client(port: int, protocol: int = 2, auth: tuple[str, str] | None = None) -> RawClient:
        c = RawClient(port, protocol=protocol)
        opened.append(c)
        if auth is not None:
            assert c.call_frame("AUTH", *auth) == b"+OK\r\n"
        return c

    yield open_client
    for c in opened:
        c.close()


@pytest.fixture
def open_files() -> Iterator[Callable[[int], None]]:
    """``open_files(n)`` raises this process's open-file limit to ``n`` (servers spawned after
    inherit it); the limit is restored after the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def want(n: int) -> None:
        if soft != resource.RLIM_INFINITY and soft < n:
            if hard != resource.RLIM_INFINITY and hard < n:
                pytest.fail(f"needs {n} open files, the hard limit is {hard} (ulimit -Hn)")
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))

    try:
        yield want
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@dataclass
class Proc:
    proc: subprocess.Popen[str]
    port: int
    #: what the server printed before its "ready on" line (e.g. the AOF load line)
    startup: tuple[str, ...] = ()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        """Resident memory of the process in bytes."""
        with open(f"/proc/{self.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def spawn_server() -> Iterator[Callable[..., Proc]]:
    """Start ``python -m taskstore`` in a subprocess (for memory and signal tests)."""
    procs: list[Proc] = []

    def spawn(*args: str) -> Proc:
        port = free_port()
        if "--mcp-version" not in args:
            args = (*args, "--mcp-version", FIRST_GENERATION)
        proc = subprocess.Popen(
            [sys.executable, "-m", "taskstore", *args, "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        p = Proc(proc, port)
        procs.append(p)
        assert proc.stdout is not None
        before: list[str] = []
        line = proc.stdout.readline()
        while line and "ready on" not in line:
            before.append(line)
            line = proc.stdout.readline()
        assert "ready on" in line, "".join(before) + (proc.stderr.read() if proc.stderr else "")
        p.startup = tuple(before)
        return p

    yield spawn
    for p in procs:
        if p.proc.poll() is None:
            p.proc.terminate()
            try:
                p.proc.wait(10)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
        for stream in (p.proc.stdout, p.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[int]:
    """A real redis-server (Debian package) for side-by-side comparisons; yields its port."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail(
            "redis-server is not installed (apt-get install redis-server); .ci/run installs it"
        )
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
