"""Turning the console on and off: nothing of it exists while it is off, its store listener
exists only while a page watches, the CLI's startup line, a missing aiohttp, a busy port,
and CONFIG SET console_port at runtime."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from console.conftest import Console
from console.test_http import Events
from helpers import free_port
from taskstore.console import MISSING_AIOHTTP
from taskstore.server.app import ServerThread
from taskstore.server.config import ConfigError

PROBE = textwrap.dedent(
    """
    import asyncio, sys
    from taskstore.server.app import Server

    async def main():
        async with Server(port=0, console_port=int(sys.argv[1])) as server:
            server.store.create("local", "tools/call")
            listeners = len(server.store._listeners)
            console = sorted(m for m in sys.modules if m.startswith("taskstore.console"))
            print("aiohttp" in sys.modules, console, listeners, server.console is not None)

    asyncio.run(main())
    """
)


def probe(console_port: int) -> str:
    res = subprocess.run(
        [sys.executable, "-c", PROBE, str(console_port)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_console_off_imports_and_registers_nothing() -> None:
    assert probe(0) == "False [] 0 False"
    # on, with no page open: imported, but still no listener on the store
    on = probe(free_port())
    assert on.startswith("True ['taskstore.console', ")
    assert on.endswith(" 0 True")


def test_cli_import_does_not_import_aiohttp() -> None:
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import taskstore.server.cli"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "taskstore.server.cli" in res.stderr
    assert "aiohttp" not in res.stderr
    assert "taskstore.console" not in res.stderr


def test_listener_only_while_a_page_watches(console: Console) -> None:
    store = console.server.store
    feed = console.server.console.feed

    def listening() -> bool:
        return feed.on_change in store._listeners

    assert not listening()
    first = Events(console, "alice")
    second = Events(console, "bob")
    try:
        first.next("hello")
        second.next("hello")
        assert listening() and feed.streams == 2
        first.close()
        deadline = time.monotonic() + 5
        while feed.streams != 1:  # noticed at the next write (the stats, every second)
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert listening()
    finally:
        first.close()
        second.close()
    deadline = time.monotonic() + 5
    while feed.streams or listening():
        assert time.monotonic() < deadline, "the listener stayed"
        time.sleep(0.05)


def test_cli_startup_line_prints_the_url() -> None:
    console_port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "taskstore",
            "--port",
            str(free_port()),
            "--console-port",
            str(console_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "ready on 127.0.0.1:" in line, line
        assert line.rstrip().endswith(f"; console on http://127.0.0.1:{console_port}/"), line
        with urllib.request.urlopen(f"http://127.0.0.1:{console_port}/", timeout=10) as r:
            assert b"taskstore console" in r.read()
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_missing_aiohttp_is_one_line() -> None:
    script = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "from taskstore.server.cli import main\n"
        f"sys.exit(main(['--port', '0', '--console-port', '{free_port()}']))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr == f"taskstore-server: {MISSING_AIOHTTP}\n"
    assert MISSING_AIOHTTP == (
        "console_port: the console needs aiohttp, which is not installed: "
        "pip install 'taskstore[console]'"
    )


def test_busy_console_port_refuses_to_start() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        runner = ServerThread(port=0, console_port=port)
        with pytest.raises(ConfigError) as e:
            runner.start()
        assert str(e.value) == f"console_port {port} is already in use (127.0.0.1)"
        res = subprocess.run(
            [sys.executable, "-m", "taskstore", "--port", "0", "--console-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 2
        assert res.stderr == (
            f"taskstore-server: console_port {port} is already in use (127.0.0.1)\n"
        )


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/me", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def _until(condition, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_config_set_console_port_at_runtime(make_console) -> None:
    console = make_console(console_port=0)
    assert console.server.console is None
    assert console.cli("CONFIG", "GET", "console_port") == "console_port\n0"
    first, second = free_port(), free_port()
    assert console.cli("CONFIG", "SET", "console_port", str(first)) == "OK"
    _until(lambda: _serving(first), "the console starts")
    assert console.cli("CONFIG", "GET", "console_port") == f"console_port\n{first}"

    # a busy port: refused, the console stays where it was
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        reply = console.cli("CONFIG", "SET", "console_port", str(taken))
    assert reply == (
        "ERR CONFIG SET failed (possibly related to argument 'console_port') - "
        f"console_port {taken} is already in use (127.0.0.1)"
    )
    assert console.cli("CONFIG", "GET", "console_port") == f"console_port\n{first}"
    assert _serving(first)

    # moved: the new port answers, the old one is let go
    assert console.cli("CONFIG", "SET", "console_port", str(second)) == "OK"
    _until(lambda: _serving(second), "the console moves")
    _until(lambda: not _serving(first), "the old port is let go")

    # off
    assert console.cli("CONFIG", "SET", "console_port", "0") == "OK"
    _until(lambda: not _serving(second), "the console stops")
    assert console.server.console is None
    assert console.cli("CONFIG", "SET", "console_port", "70000").startswith(
        "ERR CONFIG SET failed (possibly related to argument 'console_port') - "
        "console_port: must be at most 65535"
    )


def test_stop_with_a_page_open_is_quick(make_console) -> None:
    console_port = free_port()
    runner = ServerThread(port=0, console_port=console_port)
    runner.start()
    try:
        events = Events(Console(runner.server), None)
        events.next("hello")
        start = time.monotonic()
        runner.stop()
        assert time.monotonic() - start < 3
        with pytest.raises(EOFError):
            while True:
                events.next(timeout=3)
        events.close()
    finally:
        runner.stop()
