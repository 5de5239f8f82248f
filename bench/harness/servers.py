"""Start and stop the servers under test, each as its own process on a free loopback port.

Every server started here is registered; ``stop_all()`` (called from run.py's ``finally``, an
atexit hook and the SIGTERM handler) stops whatever is left. The children also get
PR_SET_PDEATHSIG=SIGKILL, so they die with the harness even if it is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.procstat import cpu_ticks, rss_bytes
from harness.resp import Client, ReplyError

BENCH_DIR = Path(__file__).resolve().parent.parent
ROOT = BENCH_DIR.parent
SRC = ROOT / "src"

#: "+aof-<appendfsync>": the same server with its append-only file on (a fresh temp dir)
PERSISTENT = tuple(
    f"{base}+aof-{mode}"
    for base in ("taskstore-uvloop", "redis")
    for mode in ("everysec", "always")
)
#: "floor-<level>": bench/harness/floor_server.py, the least a Python server can do (issue 16)
FLOORS = ("floor-bare", "floor-reader")
SERVER_NAMES = (
    "taskstore-asyncio",
    "taskstore-uvloop",
    "redis",
    "fakeredis",
    *PERSISTENT,
    *FLOORS,
)

_READY = re.compile(r"ready on (\S+):(\d+)")
_LIVE: set[ServerProc] = set()
_SPAWNED: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def is_taskstore(name: str) -> bool:
    return name.startswith("taskstore")


_AOF_DIRS: list[str] = []


def command(name: str, port: int, extra: tuple[str, ...] = ()) -> list[str]:
    """The command line that runs server `name` on `port` (0: taskstore/fakeredis pick one)."""
    name, _, fsync = name.partition("+aof-")
    if fsync:
        directory = tempfile.mkdtemp(prefix="taskstore-bench-aof-")
        _AOF_DIRS.append(directory)
        # the same settings for both: Redis's names
        extra = (*extra, "--appendonly", "yes", "--dir", directory, "--appendfsync", fsync)
    if is_taskstore(name):
        loop = name.split("-", 1)[1]
        return [
            sys.executable,
            "-m",
            "taskstore",
            "--port",
            str(port),
            "--event-loop",
            loop,
            "--max-tasks-per-owner",
            "0",
            *extra,
        ]
    if name == "redis":
        return [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            *(() if fsync else ("--appendonly", "no")),
            *extra,
        ]
    if name == "fakeredis":
        return [
            sys.executable,
            str(BENCH_DIR / "harness" / "fakeredis_server.py"),
            "--port",
            str(port),
        ]
    if name in FLOORS:
        return [
            sys.executable,
            str(BENCH_DIR / "harness" / "floor_server.py"),
            "--level",
            name.split("-", 1)[1],
            "--port",
            str(port),
        ]
    raise ValueError(f"unknown server {name!r}")


def spawn(
    name: str, port: int, log_path: Path, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it; closed below
    try:
        proc = subprocess.Popen(
            command(name, port, extra),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=str(ROOT),
            preexec_fn=_die_with_parent,
        )
    finally:
        log.close()
    _SPAWNED[:] = [p for p in _SPAWNED if p.poll() is None]
    _SPAWNED.append(proc)
    return proc


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class ServerProc:
    """One running server process."""

    def __init__(self, name: str, log_dir: Path, extra: tuple[str, ...] = ()) -> None:
        self.name = name
        self.extra = extra
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def taskstore(self) -> bool:
        return is_taskstore(self.name)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def start(self, timeout: float = 30.0) -> ServerProc:
        # taskstore and the fakeredis runner pick a free port themselves and print it
        port = 0 if not self.name.startswith("redis") else free_port()
        self.proc = spawn(self.name, port, self.log_path, self.extra)
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {self.proc.returncode}: {self.log_tail()}"
                )
            if port == 0:
                m = _READY.search(self.log_tail(10000))
                if m:
                    self.port = int(m.group(2))
            else:
                self.port = port
            if self.port and self._pong():
                return self
            time.sleep(0.01)
        self.stop()
        raise TimeoutError(f"{self.name} did not answer PING within {timeout} s: {self.log_tail()}")

    def _pong(self) -> bool:
        try:
            with Client(self.port, timeout=2.0) as c:
                return c.call("PING") in (b"PONG", "PONG")
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self._pong()

    def client(self, timeout: float = 120.0) -> Client:
        return Client(self.port, timeout=timeout)

    def cpu_ticks(self) -> int:
        return cpu_ticks(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def dbsize(self) -> int | None:
        try:
            with self.client(timeout=60.0) as c:
                r = c.call("DBSIZE")
            return None if isinstance(r, ReplyError) else int(r)
        except OSError:
            return None

    def error_replies(self) -> int | None:
        """The server's count of error replies (INFO stats total_error_replies), if it has one."""
        try:
            with self.client(timeout=30.0) as c:
                r = c.call("INFO", "stats")
        except OSError:
            return None
        if isinstance(r, ReplyError):
            return None
        m = re.search(rb"total_error_replies:(\d+)", r)
        return int(m.group(1)) if m else None

    def stop(self) -> None:
        proc = self.proc
        _LIVE.discard(self)
        if proc is not None:
            terminate(proc)

    def __enter__(self) -> ServerProc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all() -> None:
    for srv in list(_LIVE):
        try:
            srv.stop()
        except Exception:
            if srv.proc is not None:
                srv.proc.kill()
    _LIVE.clear()
    for proc in _SPAWNED:  # anything started by spawn() directly (the startup workload)
        try:
            terminate(proc, timeout=5)
        except Exception:
            proc.kill()
    _SPAWNED.clear()
    for directory in _AOF_DIRS:
        shutil.rmtree(directory, ignore_errors=True)
    _AOF_DIRS.clear()
