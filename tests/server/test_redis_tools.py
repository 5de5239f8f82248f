"""The stock Redis tools against taskstore: redis-cli (one-shot and interactive, through a
pseudo-terminal), redis-benchmark, and inline commands as telnet/redis-cli send them
(design.md §6 and §7)."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import subprocess
import time

import pytest

import taskstore
from helpers import need_tool
from rawclient import RawClient

CLI_TIMEOUT = 20


def redis_cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    exe = need_tool("redis-cli")
    return subprocess.run(
        [exe, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def commands_processed(port: int) -> int:
    """INFO stats total_commands_processed, asked over the wire."""
    with RawClient(port) as c:  # one connection, one command: nothing else is counted
        info = c.call("INFO", "stats").decode()
    return int(re.search(r"^total_commands_processed:(\d+)", info, re.M).group(1))


# -- one-shot redis-cli -------------------------------------------------------


def test_cli_ping(server) -> None:
    res = redis_cli(server.port, "PING")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "PONG\n"
    assert res.stderr == ""


def test_cli_ping_message_and_echo(server) -> None:
    assert redis_cli(server.port, "PING", "hello there").stdout == "hello there\n"
    assert redis_cli(server.port, "ECHO", "a b  c").stdout == "a b  c\n"


def test_cli_hello3_prints_map(server) -> None:
    res = redis_cli(server.port, "-3", "--no-raw", "HELLO", "3")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    # redis-cli prints a RESP3 map as `n# "key" => value`
    assert all(re.match(r'^\d+# "', line) for line in lines), res.stdout
    entries = dict(re.match(r'^\d+# "([^"]+)" => (.*)$', line).groups() for line in lines)
    assert entries["server"] == '"redis"'
    assert entries["version"] == '"7.4.0"'
    assert entries["proto"] == "(integer) 3"
    assert re.fullmatch(r"\(integer\) \d+", entries["id"])
    assert entries["mode"] == '"standalone"'
    assert entries["role"] == '"master"'
    assert entries["modules"] == "(empty array)"


def test_cli_info_server(server) -> None:
    res = redis_cli(server.port, "INFO", "server")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "# Server"
    fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    assert fields["redis_version"] == "7.4.0"
    assert fields["taskstore_version"] == taskstore.__version__
    assert fields["redis_mode"] == "standalone"
    assert fields["tcp_port"] == str(server.port)
    # only the server section was asked for
    assert not any(line.startswith("# ") for line in lines[1:])


def test_cli_command_docs_ping(server) -> None:
    res = redis_cli(server.port, "--no-raw", "COMMAND", "DOCS", "ping")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert out.startswith('1) "ping"\n'), out
    assert '"summary"' in out
    assert '"arguments"' in out
    assert '"message"' in out  # PING's one optional argument
    assert '"optional"' in out or "optional" in out


def test_cli_command_count_matches_list(server) -> None:
    res = redis_cli(server.port, "--no-raw", "COMMAND", "COUNT")
    assert res.returncode == 0, res.stderr
    m = re.fullmatch(r"\(integer\) (\d+)\n", res.stdout)
    assert m, res.stdout
    names = redis_cli(server.port, "COMMAND", "LIST").stdout.split()
    assert int(m.group(1)) == len(names)
    assert {"ping", "echo", "hello", "info", "command", "config", "shutdown"} <= set(names)


def test_cli_command_info_ping(server) -> None:
    res = redis_cli(server.port, "--no-raw", "COMMAND", "INFO", "ping")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["1)", "1)", '"ping"']
    assert lines[1].split() == ["2)", "(integer)", "-1"]  # arity: PING [message]
    assert "fast" in res.stdout
    # an unknown command is a nil entry, as in Redis
    res = redis_cli(server.port, "--no-raw", "COMMAND", "INFO", "nosuchcommand")
    assert res.stdout == "1) (nil)\n"


# -- authentication -------------------------------------------------------------


def test_cli_requirepass(make_server) -> None:
    srv = make_server(requirepass="pw")
    ok = redis_cli(srv.port, "-a", "pw", "--no-auth-warning", "PING")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "PONG\n"

    # -a without --no-auth-warning still works (redis-cli just warns on stderr)
    warned = redis_cli(srv.port, "-a", "pw", "PING")
    assert warned.stdout == "PONG\n"
    assert "password" in warned.stderr.lower()

    noauth = redis_cli(srv.port, "PING")
    assert "PONG" not in noauth.stdout
    assert "NOAUTH Authentication required." in noauth.stdout + noauth.stderr

    wrong = redis_cli(srv.port, "-a", "nope", "--no-auth-warning", "PING")
    assert "PONG" not in wrong.stdout
    assert "WRONGPASS" in wrong.stdout + wrong.stderr


# -- inline commands over a raw socket -------------------------------------------


def _exchange(c: RawClient, request: bytes, expected: bytes) -> None:
    c.send(request)
    assert c.read_exact(len(expected)) == expected, request


def test_inline_commands_raw_socket(server) -> None:
    with RawClient(server.port) as c:
        _exchange(c, b"PING\r\n", b"+PONG\r\n")
        _exchange(c, b'ECHO "a b"\r\n', b"$3\r\na b\r\n")
        _exchange(c, b"ECHO 'c d'\r\n", b"$3\r\nc d\r\n")
        # telnet style: several inline commands in one packet, replies in order
        _exchange(c, b'PING\r\nECHO "x y"\r\nPING hi\r\n', b"+PONG\r\n$3\r\nx y\r\n$2\r\nhi\r\n")
        # bare \n line endings (netcat) are accepted too
        _exchange(c, b"PING\n", b"+PONG\r\n")
        # and nothing else was sent
        assert c.read_quiet(0.2) == b""


def test_inline_commands_match_redis(server, redis_server) -> None:
    """Byte-identical answers to the inline forms redis-cli and telnet users type."""
    requests = (
        b"PING\r\n"
        b'ECHO "a b"\r\n'
        b'ECHO "tab\\there"\r\n'
        b'ECHO "\\x41\\x42"\r\n'
        b"ECHO ''\r\n"
        b"\r\nPING\r\n"
        b'ECHO "unbalanced\r\n'  # last: a protocol error that closes the connection
    )
    with RawClient(server.port) as ours, RawClient(redis_server) as real:
        got, want = ours.raw(requests, settle=0.3), real.raw(requests, settle=0.3)
        assert want.endswith(b"-ERR Protocol error: unbalanced quotes in request\r\n"), want
        assert got == want
        assert ours.is_closed()


# -- interactive redis-cli through a pseudo-terminal -------------------------------

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class InteractiveCli:
    """redis-cli in interactive mode, attached to a pseudo-terminal we type into."""

    def __init__(self, port: int) -> None:
        exe = need_tool("redis-cli")
        self.prompt = f"127.0.0.1:{port}> ".encode()
        master, slave = pty.openpty()
        self.master = master
        env = dict(os.environ, TERM="dumb", HOME=os.environ.get("HOME", "/tmp"))
        env["REDISCLI_HISTFILE"] = "/dev/null"  # leave no history file behind
        self.proc = subprocess.Popen(
            [exe, "-h", "127.0.0.1", "-p", str(port)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        os.close(slave)
        self.transcript = b""

    def read_until(self, needle: bytes, timeout: float = 10.0) -> bytes:
        """Read until ``needle`` appears in the new output; return the new output."""
        start = len(self.transcript)
        deadline = time.monotonic() + timeout
        while needle not in self.transcript[start:]:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.master], [], [], min(left, 0.1))
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: redis-cli exited and the pty closed
                chunk = b""
            if not chunk:
                break
            self.transcript += chunk
        new = self.transcript[start:]
        assert needle in new, (
            f"redis-cli never printed {needle!r}; exit code {self.proc.poll()}; "
            f"transcript: {self.transcript!r}"
        )
        return new

    def run(self, line: str) -> str:
        """Type a line and return what redis-cli printed before the next prompt."""
        os.write(self.master, line.encode() + b"\r")
        out = self.read_until(self.prompt)
        out = out[: out.rindex(self.prompt)]
        text = _ANSI.sub(b"", out).replace(b"\r", b"").decode()
        echoed, _, rest = text.partition("\n")  # the terminal echoes what we typed
        assert echoed.strip() == line, text
        return rest

    def close(self) -> int:
        try:
            if self.proc.poll() is None:
                os.write(self.master, b"quit\r")
                try:
                    return self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            return self.proc.wait(5)
        finally:
            os.close(self.master)


@pytest.fixture
def interactive(server):
    sessions: list[InteractiveCli] = []

    def start() -> InteractiveCli:
        s = InteractiveCli(server.port)
        sessions.append(s)
        return s

    yield start
    for s in sessions:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(5)
        with contextlib.suppress(OSError):
            os.close(s.master)


def test_interactive_session_ping_echo(interactive) -> None:
    cli = interactive()
    cli.read_until(cli.prompt)
    assert cli.run("PING") == "PONG\n"
    assert cli.run('ECHO "hello world"') == '"hello world"\n'
    assert cli.run("PING again") == '"again"\n'
    assert cli.run("NOSUCHCMD x").startswith("(error) ERR unknown command 'NOSUCHCMD'")
    assert cli.close() == 0


def test_interactive_startup_uses_command_docs(interactive, server) -> None:
    """At startup redis-cli 7 builds its help and hints from COMMAND DOCS: HELP then shows
    taskstore's own summaries, which redis-cli cannot know otherwise."""
    before = commands_processed(server.port)
    cli = interactive()
    cli.read_until(cli.prompt)
    # redis-cli sent its startup commands (COMMAND DOCS) and got through them
    # more than our own INFO: redis-cli sent its startup commands and got through them
    assert commands_processed(server.port) > before + 1
    assert cli.proc.poll() is None
    help_dbsize = cli.run("HELP DBSIZE")
    assert "Returns the number of tasks" in help_dbsize, help_dbsize
    help_ping = cli.run("HELP PING")
    assert "PING" in help_ping
    assert "[message]" in help_ping  # argument hint built from the docs' arguments
    assert "Returns the server's liveliness response." in help_ping
    # a command redis-cli has never heard of: its help can only come from COMMAND DOCS
    with RawClient(server.port) as c:
        docs = c.call("COMMAND", "DOCS", "task.get")
    summary = docs[1][docs[1].index(b"summary") + 1].decode()
    assert summary
    assert summary in cli.run("HELP TASK.GET")
    assert cli.run("PING") == "PONG\n"
    assert cli.close() == 0


def test_command_docs_flags_are_status_replies(server, redis_server) -> None:
    """The root cause, at the byte level, next to what redis-server sends."""
    flags = b"$5\r\nflags\r\n*1\r\n+optional\r\n"
    with RawClient(redis_server) as real:
        assert flags in real.raw(b"COMMAND DOCS ping\r\n")
    with RawClient(server.port) as ours:
        assert flags in ours.raw(b"COMMAND DOCS ping\r\n")


# -- redis-benchmark ---------------------------------------------------------------


def _benchmark(port: int, *extra: str) -> tuple[str, str, float]:
    exe = need_tool("redis-benchmark")
    started = time.perf_counter()
    res = subprocess.run(
        [exe, "-h", "127.0.0.1", "-p", str(port), "-t", "ping", "-n", "20000", "-q", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout, res.stderr, elapsed


def _final_lines(out: str) -> list[str]:
    # with -q, progress is redrawn with \r; the last segment of each line is the result
    return [line.split("\r")[-1].strip() for line in out.split("\n") if line.strip()]


@pytest.mark.parametrize(
    ("pipeline", "password"),
    [(None, None), ("16", None), ("16", "pw")],
    ids=["plain", "P16", "P16-requirepass"],
)
def test_redis_benchmark_ping(make_server, pipeline: str | None, password: str | None) -> None:
    srv = make_server(requirepass=password) if password else make_server()
    extra = [*(("-P", pipeline) if pipeline else ()), *(("-a", password) if password else ())]
    out, err, elapsed = _benchmark(srv.port, *extra)
    lines = _final_lines(out)
    results = {}
    for line in lines:
        m = re.match(r"^(PING_INLINE|PING_MBULK): ([\d.]+) requests per second", line)
        if m:
            results[m.group(1)] = float(m.group(2))
    print(f"redis-benchmark {' '.join(extra)}: {results} ({elapsed:.2f} s)")
    assert set(results) == {"PING_INLINE", "PING_MBULK"}, out
    assert all(rps > 0 for rps in results.values())
    text = (out + err).lower()
    for bad in ("error", "warning", "could not", "closed", "reset", "noauth"):
        assert bad not in text, out + err
    # every request was answered: 20000 PING_INLINE + 20000 PING_MBULK reached the server
    if password is None:
        assert commands_processed(srv.port) >= 40000
