"""`taskstore-server` / `python -m taskstore` as a process (design.md §8): the startup line,
configuration errors (one line on stderr, exit code 2), the TOML file and flag precedence,
protected mode, signals and SHUTDOWN."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import taskstore
from helpers import free_port, wait_port
from rawclient import RawClient
from taskstore.server.cli import build_config
from taskstore.server.config import ConfigError

SCRIPT = shutil.which("taskstore-server")
MODULE = [sys.executable, "-m", "taskstore"]
#: The console script when installed (pip install -e .), else `python -m taskstore`.
DEFAULT_CMD = [SCRIPT] if SCRIPT else MODULE

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None

#: Plain asyncio, where a test needs a predictable loop (the default is uvloop when installed).
LOOP = ["--event-loop", "asyncio"]


def run(
    *args: str, cmd: list[str] | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(cmd or DEFAULT_CMD), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Running:
    proc: subprocess.Popen[str]
    port: int
    startup: str

    def client(self, **kw: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, **kw)

    def finish(self, timeout: float = 10) -> tuple[int, str, str]:
        """Wait for exit; return (exit code, rest of stdout, stderr)."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


@pytest.fixture
def launch() -> Iterator[Callable[..., Running]]:
    """Start the server with exactly the given arguments; wait for its startup line."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, port: int, cmd: list[str] | None = None) -> Running:
        proc = subprocess.Popen(
            [*(cmd or DEFAULT_CMD), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait(10)
            pytest.fail(
                f"server exited ({proc.returncode}) before its startup line: {proc.stderr.read()}"
            )
        wait_port(port)
        return Running(proc, port, line)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


# -- startup -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["console-script", "python-m"])
def test_startup_line(launch, how: str) -> None:
    if how == "console-script":
        if SCRIPT is None:
            pytest.skip("taskstore-server is not on PATH (pip install -e . installs it)")
        cmd = [SCRIPT]
    else:
        cmd = MODULE
    port = free_port()
    started = time.perf_counter()
    srv = launch("--port", str(port), cmd=cmd, port=port)
    print(f"{how}: startup line after {time.perf_counter() - started:.3f} s: {srv.startup!r}")
    line = srv.startup
    assert line.endswith("\n")
    assert taskstore.__version__ in line
    assert f"127.0.0.1:{port}" in line
    assert "anonymous access on" in line  # loopback bind: anonymous on by default
    assert srv.client().ping() is True
    srv.proc.send_signal(signal.SIGTERM)
    code, rest, err = srv.finish()
    assert code == 0, err
    assert rest == "", "more than one line on stdout"
    assert "Traceback" not in err


def test_help_and_version() -> None:
    for flag in ("--help", "-h"):
        res = run(flag)
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("usage: taskstore-server")
        # every setting has its flag listed
        for opt in (
            "--port",
            "--bind",
            "--requirepass",
            "--maxclients",
            "--protected-mode",
            "--max-tasks-per-owner",
            "--expired-retention-ms",
            "--proto-max-bulk-len",
        ):
            assert opt in res.stdout, opt
        assert res.stderr == ""
    res = run("--version")
    assert res.returncode == 0
    assert res.stdout == f"taskstore {taskstore.__version__}\n"
    assert res.stderr == ""


def test_startup_does_not_import_what_only_some_commands_need() -> None:
    """tomllib (a config file), platform and resource (INFO) are imported when first needed, not
    by every start (bench/README.md, "Start-up before and after"). Run without ``site``, so that
    no .pth file of the environment imports them."""
    code = (
        "import sys, taskstore.server.cli, taskstore.server.app\n"
        "print(*[m for m in ('tomllib', 'platform', 'resource') if m in sys.modules])"
    )
    paths = [str(Path(taskstore.__file__).resolve().parent.parent), *site.getsitepackages()]
    res = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "\n"


# -- configuration errors ----------------------------------------------------------------


def _assert_config_error(res: subprocess.CompletedProcess[str], *names: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("taskstore-server: "), line
    for name in names:
        assert name in line, (name, line)
    return line


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--nosuch", "1"], ["--nosuch"]),
        (["--port", "abc"], ["port", "abc"]),
        (["--maxclients", "0"], ["maxclients"]),
        (["--loglevel", "loud"], ["loglevel", "loud"]),
        (["--shards", "3"], ["shards"]),
        (["--port"], ["--port"]),  # missing value
    ],
    ids=lambda v: " ".join(v) if v and v[0].startswith("-") else "",
)
def test_bad_flags(args: list[str], names: list[str]) -> None:
    _assert_config_error(run(*args), *names)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--port=abc"], ["port", "abc"]),
        (["--port", "-1"], ["port"]),
        (["--max-tasks-per-owner", "lots"], ["max_tasks_per_owner"]),
        (["--protected-mode", "maybe"], ["protected_mode"]),
        (["--event-loop", "fast"], ["event_loop"]),
        (["--maxclients", "10", "--timeout"], ["--timeout"]),  # missing value at the end
        (["--port", "1", "extra"], ["extra"]),  # stray positional argument
        (["--requirepass"], ["--requirepass"]),
    ],
    ids=lambda v: " ".join(v) if v and v[0].startswith("-") else "",
)
def test_bad_flags_main(
    args: list[str], names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """More bad command lines, through cli.main() in this process (same code path, no
    interpreter start-up per case)."""
    from taskstore.server.cli import main

    code = main(args)
    out, err = capsys.readouterr()
    _assert_config_error(subprocess.CompletedProcess(args, code, out, err), *names)


def test_port_out_of_range() -> None:
    # if the bug is present the asyncio server dies at bind(); the timeout guards uvloop
    _assert_config_error(run("--port", "70000", *LOOP, timeout=10), "port", "70000")


def test_bad_toml_syntax(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("port = \nmaxclients = 5\n")
    line = _assert_config_error(run(str(path)), str(path))
    assert "line 1" in line


def test_unknown_toml_key(tmp_path: Path) -> None:
    path = tmp_path / "unknown.toml"
    path.write_text("maxclients = 5\nno_such_setting = 1\n")
    _assert_config_error(run(str(path)), "no_such_setting")


def test_bad_toml_value(tmp_path: Path) -> None:
    path = tmp_path / "badvalue.toml"
    path.write_text('maxclients = "many"\n')
    _assert_config_error(run(str(path)), "maxclients", "many")
    path.write_text("default_ttl_ms = 10\nmax_ttl_ms = 5\n")  # values fine alone, not together
    _assert_config_error(run(str(path)), "default_ttl_ms", "max_ttl_ms")


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    _assert_config_error(run(str(path)), str(path))


# -- TOML file and flags ----------------------------------------------------------------


def test_toml_file_sets_values_and_flags_override(launch, tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "taskstore.toml"
    path.write_text(
        f"port = {port}\n"
        'bind = "127.0.0.1"\n'
        "maxclients = 123\n"
        "timeout = 7\n"
        "max_tasks_per_owner = 5\n"
        "expired_retention_ms = 1234\n"
        'proto_max_bulk_len = "1mb"\n'
        'loglevel = "warning"\n'
        "allow_anonymous = true\n"
        'event_loop = "asyncio"\n'
    )
    srv = launch(str(path), "--maxclients", "50", "--max-tasks-per-owner=9", port=port)
    assert f"127.0.0.1:{port}" in srv.startup
    r = srv.client(decode_responses=True)
    cfg = r.config_get("*")
    assert cfg["maxclients"] == "50"  # flag beats file
    assert cfg["max_tasks_per_owner"] == "9"  # flag (with =) beats file
    assert cfg["timeout"] == "7"  # from the file
    assert cfg["expired_retention_ms"] == "1234"
    assert cfg["proto_max_bulk_len"] == str(1024 * 1024)
    assert cfg["loglevel"] == "warning"
    assert cfg["allow_anonymous"] == "yes"
    assert cfg["port"] == str(port)
    # untouched settings keep their defaults
    assert cfg["hz"] == "10"
    assert cfg["protected_mode"] == "yes"
    r.close()


def test_port_in_use() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        res = run("--port", str(port))
    line = _assert_config_error(res, str(port))
    assert "in use" in line


@pytest.mark.parametrize("bind", ["0.0.0.0", "127.0.0.1 0.0.0.0"])
def test_protected_mode_refuses_open_bind(bind: str) -> None:
    # Checked in-process first, so a broken check never makes a test listen on 0.0.0.0.
    with pytest.raises(ConfigError):
        build_config(["--bind", bind, "--port", "0"])
    line = _assert_config_error(run("--bind", bind, "--port", "0"), "0.0.0.0")
    assert "protected-mode" in line
    assert "requirepass" in line


def test_protected_mode_checks_config_only() -> None:
    """The allowed cases, checked without binding anything but loopback."""
    cfg = build_config(["--bind", "0.0.0.0", "--protected-mode", "no", "--port", "0"])
    assert cfg.bind == "0.0.0.0" and cfg.protected_mode is False
    assert cfg.anonymous is False  # not loopback: no anonymous access unless asked for
    cfg = build_config(["--bind", "0.0.0.0", "--requirepass", "pw", "--port", "0"])
    assert cfg.requirepass == "pw"
    cfg = build_config(["--bind", "127.0.0.1 ::1", "--port", "0"])
    assert cfg.loopback_only


# -- stopping ----------------------------------------------------------------------------


def _client_line(r: redis.Redis, client_id: int) -> dict[str, str]:
    for entry in r.client_list():
        if int(entry["id"]) == client_id:
            return entry
    raise AssertionError(f"client {client_id} not listed")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_after_pending_reply(launch, sig: signal.Signals) -> None:
    port = free_port()
    srv = launch("--port", str(port), port=port)
    payload = b"x" * (16 * 1024 * 1024)
    admin = srv.client(decode_responses=True)
    with RawClient(port, timeout=20) as c:
        cid = c.call("CLIENT", "ID")
        # a 16 MiB reply cannot fit the socket buffers while we do not read: it stays pending
        c.send(b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % len(payload) + payload + b"\r\n")
        deadline = time.monotonic() + 15
        while (entry := _client_line(admin, cid))["cmd"] != "echo":
            assert time.monotonic() < deadline, entry
            time.sleep(0.01)
        print(f"pending reply bytes in the server at {sig.name}: omem={entry['omem']}")
        admin.close()
        started = time.perf_counter()
        srv.proc.send_signal(sig)
        assert c.reply() == payload  # the whole pending reply arrives
        assert c.is_closed(), "connection still open after the server stopped"
    code, rest, err = srv.finish()
    print(f"{sig.name}: exited {code} after {time.perf_counter() - started:.3f} s")
    assert code == 0, err
    assert rest == ""
    assert sig.name in err  # logged at loglevel notice
    assert "Traceback" not in err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_shutdown_command(launch) -> None:
    port = free_port()
    srv = launch("--port", str(port), port=port)
    # no retries: the closed connection is the answer, there is nothing to reconnect to
    r = srv.client(retry=Retry(NoBackoff(), 0))
    assert r.ping() is True
    started = time.perf_counter()
    assert r.shutdown() is None  # redis-py takes the closed connection as success
    code, rest, err = srv.finish()
    print(f"SHUTDOWN: exited {code} after {time.perf_counter() - started:.3f} s")
    assert code == 0, err
    assert rest == ""
    assert "Traceback" not in err


def test_shutdown_raw_no_reply_and_other_clients(launch) -> None:
    """SHUTDOWN gets no reply (as in Redis); other clients are closed too; exit code 0."""
    port = free_port()
    srv = launch("--port", str(port), port=port)
    with RawClient(port) as other, RawClient(port) as c:
        assert other.call("PING") == b"PONG"
        assert c.raw(b"*1\r\n$8\r\nSHUTDOWN\r\n", settle=0.5) == b""
        assert c.is_closed()
        assert other.is_closed()
    code, _, err = srv.finish()
    assert code == 0, err


@pytest.mark.parametrize("loop", ["default", "asyncio", "uvloop"])
def test_event_loops_serve(launch, loop: str) -> None:
    """No --event-loop means uvloop when installed (as in the Docker image), else asyncio.

    Regression: connection_made used to assert isinstance(transport, asyncio.Transport),
    which uvloop's transports are not, so with uvloop every connection was reset."""
    if loop == "uvloop" and not HAVE_UVLOOP:
        pytest.skip("uvloop is not installed (pip install -e '.[uvloop]')")
    port = free_port()
    args = [] if loop == "default" else ["--event-loop", loop]
    srv = launch("--port", str(port), *args, port=port)
    expected = loop if loop != "default" else ("uvloop" if HAVE_UVLOOP else "asyncio")
    assert f", {expected}," in srv.startup, srv.startup
    try:
        r = srv.client(retry=Retry(NoBackoff(), 0), decode_responses=True)
        assert r.ping() is True
        assert r.echo("tracer") == "tracer"
        assert r.info("server")["multiplexing_api"] == expected
        # a pipeline of many commands answered in order on this loop
        pipe = r.pipeline(transaction=False)
        for i in range(500):
            pipe.echo(str(i))
        assert pipe.execute() == [str(i) for i in range(500)]
        r.close()
    finally:
        srv.proc.send_signal(signal.SIGTERM)
        code, _, err = srv.finish()
    assert code == 0
    assert "Traceback" not in err, err
