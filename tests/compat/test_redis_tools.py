"""redis-cli and redis-benchmark (Debian's redis-tools) running the scenario.

- interactive redis-cli in a pseudo-terminal (TERM=xterm-256color, as a user's terminal:
  line editing and argument hints), plain and with ``-3``; a second interactive session
  subscribes to ``tasks:local`` and is left with Ctrl-C;
- ``--no-raw``: one redis-cli process per command, output piped but formatted;
- ``--pipe``: the scenario's batch, then mass insertion of 100,000 TASK.CREATE as RESP;
- redis-benchmark with ``TASK.CREATE tools/call``, 100,000 requests, pipelined by 16.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from helpers import need_tool
from rawclient import RawClient, pack

from .conftest import differences_from_redis, handshake_of, main_connection
from .scenario import CHANNEL, MESSAGES_EXPECTED, SCENARIO, check_scenario, with_id

TIMEOUT = 20
MASS = 100_000
BENCH = ("TASK.CREATE", "tools/call")
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
_PROMPT = re.compile(rb"127\.0\.0\.1:\d+(?:\(TX\))?> $")
_MESSAGE = re.compile(r'1\) "message"\n2\) "' + re.escape(CHANNEL) + r'"\n3\) (".*")\n')


def cli_version() -> str:
    out = subprocess.run(
        [need_tool("redis-cli"), "--version"], capture_output=True, text=True, timeout=TIMEOUT
    ).stdout
    return out.split()[1]


def quote(arg: str) -> str:
    """An argument as a user types it at the redis-cli prompt."""
    if re.fullmatch(r"[A-Za-z0-9_./:-]+", arg):
        return arg
    assert "'" not in arg
    return f"'{arg}'"


def unrepr(text: str) -> str:
    """Undo redis-cli's quoting of a bulk string ("…" with C escapes and \\xHH bytes)."""
    return ast.literal_eval("b" + text).decode("utf-8")


def parse_formatted(text: str) -> dict[str, Any]:
    """One reply as redis-cli prints it in a terminal (or with --no-raw), encoded like the
    other clients' replies. redis-cli's 'error type' is the ``(error)`` prefix it prints."""
    text = text.rstrip("\n")
    if text.startswith("(error) "):
        return {"error": {"class": "(error)", "libraryError": True, "message": text[8:]}}
    if text == "(nil)":
        return {"type": "null", "value": None}
    if m := re.fullmatch(r"\(integer\) (-?\d+)", text):
        return {"type": "integer", "value": int(m.group(1))}
    if text.startswith('"'):
        return {"type": "string", "value": unrepr(text)}
    if re.match(r"\s*1\) ", text):
        items = [re.sub(r"^\s*\d+\) ", "", line) for line in text.split("\n")]
        return {"type": "array", "value": [parse_formatted(i) for i in items]}
    return {"type": "status", "value": text}


def parse_messages(text: str) -> list[str]:
    return [unrepr(m) for m in _MESSAGE.findall(text)]


# -- interactive redis-cli in a pseudo-terminal -------------------------------------------


class CliSession:
    """redis-cli at its prompt, in a terminal we type into; the pty is its controlling
    terminal (``setsid -c``), so Ctrl-C is a real SIGINT."""

    def __init__(self, port: int, *flags: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", REDISCLI_HISTFILE="/dev/null")
        argv = [need_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *flags]
        setsid = shutil.which("setsid")
        self.proc = subprocess.Popen(
            [setsid, "-c", *argv] if setsid else argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
            start_new_session=setsid is None,
        )
        os.close(slave)
        self.master = master
        self.transcript = b""
        self.hints: list[str] = []
        self._read(lambda out: _PROMPT.search(out) is not None)

    def _read(self, done: Callable[[bytes], bool], timeout: float = TIMEOUT) -> bytes:
        start = len(self.transcript)
        deadline = time.monotonic() + timeout
        while not done(self.transcript[start:]):
            left = deadline - time.monotonic()
            assert left > 0, f"redis-cli stalled; transcript: {self.transcript[-3000:]!r}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.1))
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: redis-cli exited
                chunk = b""
            assert chunk, f"redis-cli exited ({self.proc.poll()}): {self.transcript[-3000:]!r}"
            self.transcript += chunk
        return self.transcript[start:]

    def type(self, line: str) -> str:
        """Type a line and Enter; return what redis-cli printed before its next prompt."""
        os.write(self.master, line.encode() + b"\r")
        out = self._read(lambda o: b"\r\n" in o and _PROMPT.search(o) is not None)
        editing, _, printed = out.partition(b"\r\n")  # the line as edited, then the reply
        hint = re.findall(rb"\x1b\[0;90;49m(.*?)\x1b\[0m", editing)
        self.hints.append(hint[0].decode().strip() if hint else "")
        printed = _PROMPT.sub(b"", printed)
        return _ANSI.sub(b"", printed).replace(b"\r\n", b"\n").decode()

    def command(self, args: list[str]) -> dict[str, Any]:
        return parse_formatted(self.type(" ".join(quote(a) for a in args)))

    def subscribe(self, channel: str) -> None:
        os.write(self.master, f"SUBSCRIBE {channel}\r".encode())
        self._read(lambda o: b"3) (integer) 1\r\n" in o)

    def messages(self, count: int, timeout: float = 10.0) -> list[str]:
        """Wait (bounded) until ``count`` messages were printed; return them all."""

        def enough(_: bytes) -> bool:
            return len(parse_messages(self.text())) >= count

        with contextlib.suppress(AssertionError):
            self._read(enough, timeout)
        return parse_messages(self.text())

    def interrupt(self) -> None:
        """Ctrl-C: leaves subscribed mode and returns to the prompt."""
        os.write(self.master, b"\x03")
        self._read(lambda o: _PROMPT.search(o) is not None)

    def text(self) -> str:
        return _ANSI.sub(b"", self.transcript).replace(b"\r\n", b"\n").decode()

    def quit(self) -> int:
        os.write(self.master, b"quit\r")
        return self.proc.wait(TIMEOUT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        with contextlib.suppress(OSError):
            os.close(self.master)


@pytest.fixture
def cli_session() -> Iterator[Callable[..., CliSession]]:
    sessions: list[CliSession] = []

    def start(port: int, *flags: str) -> CliSession:
        s = CliSession(port, *flags)
        sessions.append(s)
        return s

    yield start
    for s in sessions:
        s.kill()


# -- non-interactive redis-cli --------------------------------------------------------------


def cli(
    port: int, *args: str, stdin: bytes | None = None, stderr: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    res = subprocess.run(
        [need_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=120,
    )
    assert res.stderr == stderr, res.stderr
    return res


def batch(port: int, flags: tuple[str, ...], commands: list[list[str]]) -> list[str]:
    """Commands fed to redis-cli on standard input: one connection, one command after the
    other; returns the formatted output, split into one text per reply."""
    text = "".join(" ".join(quote(a) for a in c) + "\n" for c in commands).encode()
    res = cli(port, *flags, "--no-raw", stdin=text)
    assert res.returncode == 0, res
    return _split_replies(res.stdout.decode())


def _split_replies(out: str) -> list[str]:
    replies: list[str] = []
    for line in out.splitlines():
        m = re.match(r"^\s*(\d+)\) ", line)
        if m and m.group(1) != "1" and replies:
            replies[-1] += "\n" + line  # the next element of an array
        else:
            replies.append(line)
    return replies


class Subscriber:
    """``redis-cli --no-raw SUBSCRIBE <channel>`` with its output piped and read in a thread."""

    def __init__(self, port: int, *flags: str) -> None:
        self.proc = subprocess.Popen(
            [
                *(need_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *flags),
                *("--no-raw", "SUBSCRIBE", CHANNEL),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out = b""
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        self.wait(lambda: b"(integer) 1\n" in self.out)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(65536):
            self.out += chunk

    def wait(self, done: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(0.02)
        return done()

    def messages(self, count: int) -> list[str]:
        self.wait(lambda: len(parse_messages(self.out.decode())) >= count, 10)
        return parse_messages(self.out.decode())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(TIMEOUT)
        self._thread.join(TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        return code


# -- the scenario, through any of the redis-cli modes -----------------------------------------


def cli_scenario(
    run: Callable[[list[str]], dict[str, Any]],
    run_multi: Callable[[list[list[str]]], tuple[list[dict[str, Any]], dict[str, Any]]],
    port: int,
    flags: tuple[str, ...],
) -> dict[str, Any]:
    out: dict[str, Any] = {"create": run(SCENARIO["create"])}
    tid = json.loads(out["create"]["value"])["taskId"]
    out["steps"] = {name: run(with_id(cmd, tid)) for name, cmd in SCENARIO["steps"]}
    for _ in range(SCENARIO["list_tasks"]):
        run(SCENARIO["create"])
    out["pages"] = []
    cursor = None
    while len(out["pages"]) < 20:
        cmd = ["TASK.LIST", "LIMIT", str(SCENARIO["page_size"])]
        page = run([*cmd, "CURSOR", cursor] if cursor else cmd)
        out["pages"].append(page)
        cursor = json.loads(page["value"]).get("nextCursor") if "value" in page else None
        if not cursor:
            break
    out["cancel"] = run(with_id(SCENARIO["cancel"], tid))
    # the batch: commands on redis-cli's standard input, one connection
    commands = [with_id(c, SCENARIO["pipeline_id"]) for c in SCENARIO["batch"]]
    out["pipeline"] = [parse_formatted(r) for r in batch(port, flags, commands)]
    queued, exec_reply = run_multi([with_id(c, SCENARIO["multi_id"]) for c in SCENARIO["batch"]])
    assert [q.get("value") for q in queued] == ["OK"] + ["QUEUED"] * len(SCENARIO["batch"])
    assert exec_reply.get("type") == "array", exec_reply
    out["multi"] = {"replies": exec_reply["value"]}
    out["ping"] = run(["PING"])
    out["info"] = run(["INFO", "server"])
    return out


CLI_ERROR = ("(error)",)


@pytest.mark.parametrize("flags", [(), ("-3",)], ids=["resp2", "resp3"])
def test_redis_cli_interactive(
    flags, make_server, logging_proxy, cli_session, reference_redis, row
) -> None:
    """A user at the redis-cli prompt: every scenario command typed in, MULTI/EXEC at the
    prompt, a second terminal subscribed to tasks:local, quit at the end."""
    r = row(
        "redis-cli",
        cli_version(),
        "RESP3" if flags else "RESP2",
        f"interactive in a terminal{' with -3' if flags else ''}; batch from stdin; "
        "subscriber in a second terminal",
    )
    srv = make_server()
    proxy = logging_proxy(srv.port)
    subscriber = cli_session(proxy.port, *flags)
    subscriber.subscribe(CHANNEL)
    session = cli_session(proxy.port, *flags)

    def run_multi(commands: list[list[str]]) -> tuple[list[dict], dict]:
        queued = [session.command(["MULTI"])] + [session.command(c) for c in commands]
        return queued, session.command(["EXEC"])

    out = cli_scenario(session.command, run_multi, proxy.port, flags)
    out["messages"] = subscriber.messages(MESSAGES_EXPECTED)
    subscriber.interrupt()  # Ctrl-C, back at the prompt
    assert subscriber.type("PING") == "PONG\n"
    assert subscriber.quit() == 0
    assert session.quit() == 0
    conn = main_connection(proxy)
    r.handshake = handshake_of(conn)
    assert proxy.wait_closed()
    assert differences_from_redis(conn, srv.port, reference_redis(None)) == []
    check_scenario(out, string_type="string", error_classes=CLI_ERROR)
    # the argument hints come from taskstore's COMMAND DOCS
    assert session.hints[0] == "method [TTL ttl] [POLLINTERVAL poll-interval] [ID id] [OWNER owner]"
    if flags:
        assert r.handshake[0] == "HELLO 3", r.handshake


def test_redis_cli_no_raw(make_server, logging_proxy, reference_redis, row) -> None:
    """One redis-cli process per command, output piped but formatted (``--no-raw``)."""
    r = row(
        "redis-cli",
        cli_version(),
        "RESP2",
        "--no-raw, one process per command; batch and MULTI/EXEC from stdin; "
        "SUBSCRIBE in a background process",
    )
    srv = make_server()
    proxy = logging_proxy(srv.port)
    subscriber = Subscriber(proxy.port)
    try:

        def run(args: list[str]) -> dict[str, Any]:
            res = cli(proxy.port, "--no-raw", *args)
            assert res.returncode == 0, res
            return parse_formatted(res.stdout.decode())

        def run_multi(commands: list[list[str]]) -> tuple[list[dict], dict]:
            replies = batch(proxy.port, (), [["MULTI"], *commands, ["EXEC"]])
            parsed = [parse_formatted(x) for x in replies]
            return parsed[:-1], parsed[-1]

        out = cli_scenario(run, run_multi, proxy.port, ())
        out["messages"] = subscriber.messages(MESSAGES_EXPECTED)
        # without --no-raw (output piped, the default) an error reply prints as its bare
        # text and an empty line, and redis-cli still exits 0 (as with redis-server)
        tid = SCENARIO["pipeline_id"]
        res = cli(proxy.port, *with_id(SCENARIO["cancel"], tid))
        assert res.returncode == 0
        assert res.stdout.decode() == (
            f"INVALIDTRANSITION invalid transition from completed to cancelled for task {tid}\n\n"
        )
    finally:
        code = subscriber.stop()
    assert code in (0, -signal.SIGINT, 128 + signal.SIGINT), code
    conn = main_connection(proxy)
    r.handshake = handshake_of(conn)
    assert proxy.wait_closed()
    assert differences_from_redis(conn, srv.port, reference_redis(None)) == []
    check_scenario(out, string_type="string", error_classes=CLI_ERROR)


def _dbsize(port: int) -> int:
    with RawClient(port) as c:
        return int(c.call("DBSIZE"))


def test_redis_cli_pipe(spawn_server, logging_proxy, reference_redis, row) -> None:
    """``redis-cli --pipe``: the scenario's batch through the proxy, then 100,000
    TASK.CREATE generated as RESP; the reply summary must count 0 errors."""
    r = row(
        "redis-cli",
        cli_version(),
        "RESP2",
        f"--pipe: the batch, then {MASS:,} TASK.CREATE as RESP (--max-tasks-per-owner 0)",
    )
    srv = spawn_server("--max-tasks-per-owner", "0")
    proxy = logging_proxy(srv.port)

    # the batch, pipelined: one expected error (cancelling the completed task)
    commands = [with_id(c, SCENARIO["pipeline_id"]) for c in SCENARIO["batch"]]
    # --pipe prints each error reply on stderr and exits 1 when there was one
    expected = b"INVALIDTRANSITION invalid transition from completed to cancelled for task "
    res = cli(
        proxy.port,
        "--pipe",
        stdin=b"".join(pack(*c) for c in commands),
        stderr=expected + SCENARIO["pipeline_id"].encode() + b"\n",
    )
    assert res.returncode == 1, res
    assert res.stdout.decode().endswith(f"errors: 1, replies: {len(commands)}\n"), res.stdout
    with RawClient(srv.port) as c:
        task = json.loads(c.call("TASK.GET", SCENARIO["pipeline_id"]))
        assert task["status"] == "completed" and task["_meta"] == {"step": 2, "file": "a.txt"}
        assert c.call("TASK.RESULT", SCENARIO["pipeline_id"]) == (
            b'{"content":[{"type":"text","text":"done"}]}'
        )
    conn = main_connection(proxy)
    r.handshake = handshake_of(conn)
    assert proxy.wait_closed()
    assert differences_from_redis(conn, srv.port, reference_redis(None)) == []
    # --pipe ends its input with ECHO <20 random bytes> to know when the last reply came
    echo = conn.commands[-1]
    assert echo[0] == b"ECHO" and len(echo[1]) == 20 and conn.replies[-1] == echo[1]

    before = _dbsize(srv.port)
    mass = pack("TASK.CREATE", "tools/call") * MASS
    res = cli(srv.port, "--pipe", stdin=mass)
    assert res.returncode == 0, res
    summary = res.stdout.decode().splitlines()[-1]
    assert summary == f"errors: 0, replies: {MASS}", res.stdout
    assert _dbsize(srv.port) == before + MASS


def test_redis_benchmark(spawn_server, logging_proxy, reference_redis, row) -> None:
    """``redis-benchmark -n 100000 -P 16 TASK.CREATE tools/call``: no error replies, and
    DBSIZE grew by exactly 100,000 (every request created a task)."""
    exe = need_tool("redis-benchmark")
    version = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, timeout=TIMEOUT
    ).stdout.split()[1]
    r = row(
        "redis-benchmark",
        version,
        "RESP2",
        f"-n {MASS} -P 16 TASK.CREATE tools/call (50 clients; --max-tasks-per-owner 0)",
    )
    srv = spawn_server("--max-tasks-per-owner", "0")

    # what redis-benchmark sends before its requests, through the proxy on a short run
    proxy = logging_proxy(srv.port)
    small = subprocess.run(
        [exe, "-h", "127.0.0.1", "-p", str(proxy.port), "-n", "10", "-c", "1", "-q", *BENCH],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert small.returncode == 0, small.stdout + small.stderr
    assert proxy.wait_closed()
    r.handshake = handshake_of(proxy.conns[0])
    assert differences_from_redis(proxy.conns[0], srv.port, reference_redis(None)) == []

    before = _dbsize(srv.port)
    res = subprocess.run(
        [exe, "-h", "127.0.0.1", "-p", str(srv.port), "-n", str(MASS), "-P", "16", "-q", *BENCH],
        capture_output=True,
        text=True,
        timeout=150,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    final = [line.split("\r")[-1].strip() for line in res.stdout.splitlines() if line.strip()]
    assert re.match(r"^TASK\.CREATE tools/call: [\d.]+ requests per second", final[-1]), final
    text = (res.stdout + res.stderr).lower()
    assert "error" not in text, res.stdout + res.stderr
    assert _dbsize(srv.port) == before + MASS
