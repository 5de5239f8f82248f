"""Drive many connections that end in one particular way, and measure what the server keeps.

Used by tests/server/test_memory.py, and runnable on its own to measure a server by hand:

    python tests/conndriver.py [--kinds quit,reset] [-n 100000] [--event-loop asyncio]

Every way a connection can end is here (design.md §9: "server RSS flat across connections of
every kind of closing"): the client closes, the server closes after QUIT / a protocol error /
a maxclients refusal / the idle timeout / a pub/sub output-limit disconnect / CLIENT KILL, and
the client resets the connection in the middle of a request.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from rawclient import pack

#: Connections open at once for the kinds that end in batches (output limit, CLIENT KILL,
#: idle timeout). The warm-up runs one batch first, so the server's memory high-water mark
#: (arenas that held a batch of live connections) is reached before the baseline is read.
#: Bigger batches leave more allocator noise: 5,000 at once measured +20 B per connection
#: over 100,000 where 500 measured +0.6.
BATCH = int(os.environ.get("CONNDRIVER_BATCH", 1000))
#: The idle timeout closes clients after 1-2 s, whatever their number: larger batches.
IDLE_BATCH = 5 * BATCH
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset
_BIG = 128 * 1024  # one pub/sub message: more than the kernel takes for one subscriber


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _drain(s: socket.socket) -> bytes:
    """Read until the server closes (EOF or reset); what it sent."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _expect(s: socket.socket, reply: bytes) -> None:
    data = b""
    while len(data) < len(reply):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    if data != reply:
        raise AssertionError(f"expected {reply!r}, got {data!r}")


class Control:
    """One admin connection for settings and INFO (RESP2, inline-free)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = _connect(port)
        self.file = self.sock.makefile("rb")

    def call(self, *args: str | bytes) -> bytes:
        request = pack(*args)
        try:
            self.sock.sendall(request)
            return self._read()
        except (BrokenPipeError, ConnectionResetError, EOFError):
            # closed by the idle timeout while the batch was being opened: once more
            self.close()
            self.sock = _connect(self.port)
            self.file = self.sock.makefile("rb")
            self.sock.sendall(request)
            return self._read()

    def _read(self) -> bytes:
        line = self.file.readline()
        if not line:
            raise EOFError
        kind, rest = line[:1], line[1:-2]
        if kind == b"$":
            n = int(rest)
            return b"" if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"-":
            raise AssertionError(rest.decode())
        if kind == b"*":
            return b"\n".join(self._read() for _ in range(int(rest)))
        return rest

    def clients(self) -> int:
        for line in self.call("INFO", "clients").splitlines():
            if line.startswith(b"connected_clients:"):
                return int(line.split(b":")[1])
        raise AssertionError("no connected_clients in INFO")

    def settle(self, clients: int = 1, timeout: float = 30.0) -> None:
        """Wait until only ``clients`` connections remain and the close timers have run."""
        deadline = time.monotonic() + timeout
        while self.clients() > clients:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.clients()} clients still connected")
            time.sleep(0.05)
        time.sleep(0.3)  # let the server run the closes it has scheduled

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# -- the ways a connection ends ----------------------------------------------------------------


def client_closes(ctl: Control, n: int) -> None:
    for _ in range(n):
        with _connect(ctl.port) as s:
            s.sendall(b"PING\r\n")
            _expect(s, b"+PONG\r\n")


def quit_(ctl: Control, n: int) -> None:
    for _ in range(n):
        with _connect(ctl.port) as s:
            s.sendall(b"QUIT\r\n")
            if _drain(s) != b"+OK\r\n":
                raise AssertionError("QUIT did not answer +OK and close")


def protocol_error(ctl: Control, n: int) -> None:
    for _ in range(n):
        with _connect(ctl.port) as s:
            s.sendall(b"*1\r\n$x\r\n")
            if not _drain(s).startswith(b"-ERR Protocol error"):
                raise AssertionError("no protocol error")


def maxclients(ctl: Control, n: int) -> None:
    ctl.call("CONFIG", "SET", "maxclients", "1")  # the control connection is the one
    try:
        for _ in range(n):
            with _connect(ctl.port) as s:
                if _drain(s) != b"-ERR max number of clients reached\r\n":
                    raise AssertionError("not refused")
    finally:
        ctl.call("CONFIG", "SET", "maxclients", "10000")


def reset_mid_request(ctl: Control, n: int) -> None:
    for _ in range(n):
        s = _connect(ctl.port)
        # the reply to PING proves the server has read the half request after it, too
        s.sendall(b"PING\r\n*3\r\n$4\r\nECHO\r\n$10\r\nabc")
        _expect(s, b"+PONG\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
        s.close()


def _batches(n: int, size: int = BATCH) -> list[int]:
    return [min(size, n - i) for i in range(0, n, size)]


def _open(
    ctl: Control, count: int, hello: bytes, reply: bytes, rcvbuf: int = 0
) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.socket()
        if rcvbuf:
            # a small window and a small segment size: the server's kernel then takes only
            # some 100 KiB for this socket (loopback's 64 KiB segments make that ~1.3 MiB)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        s.settimeout(30)
        s.connect(("127.0.0.1", ctl.port))
        s.sendall(hello)
        _expect(s, reply)
        socks.append(s)
    return socks


def _end_all(socks: list[socket.socket]) -> None:
    for s in socks:
        _drain(s)
        s.close()


def idle_timeout(ctl: Control, n: int) -> None:
    ctl.call("CONFIG", "SET", "timeout", "1")
    try:
        for count in _batches(n, IDLE_BATCH):
            socks = _open(ctl, count, b"PING\r\n", b"+PONG\r\n")
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:  # keep the control connection itself busy
                ctl.call("PING")
                time.sleep(0.1)
            for s in socks:
                while True:
                    try:
                        if s.recv(65536) == b"":
                            break
                    except TimeoutError:
                        raise AssertionError("idle client not closed") from None
                    except ConnectionResetError:
                        break
                    ctl.call("PING")
                s.close()
    finally:
        ctl.call("CONFIG", "SET", "timeout", "0")


def output_limit(ctl: Control, n: int) -> None:
    ctl.call("CONFIG", "SET", "pubsub_output_limit", "1024")
    subscribe = b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nleak\r\n"
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nleak\r\n:1\r\n"
    try:
        for count in _batches(n):
            socks = _open(ctl, count, subscribe, confirm, rcvbuf=4096)
            ctl.call("PUBLISH", "leak", b"x" * _BIG)
            _end_all(socks)
    finally:
        ctl.call("CONFIG", "SET", "pubsub_output_limit", str(32 * 1024 * 1024))


def client_kill(ctl: Control, n: int) -> None:
    for count in _batches(n):
        socks = _open(ctl, count, b"PING\r\n", b"+PONG\r\n")
        killed = int(ctl.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
        if killed != count:
            raise AssertionError(f"CLIENT KILL killed {killed} of {count}")
        _end_all(socks)


KINDS: dict[str, Callable[[Control, int], None]] = {
    "client-closes": client_closes,
    "quit": quit_,
    "protocol-error": protocol_error,
    "maxclients": maxclients,
    "idle-timeout": idle_timeout,
    "output-limit": output_limit,
    "client-kill": client_kill,
    "reset-mid-request": reset_mid_request,
}


# -- measuring ---------------------------------------------------------------------------------


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Growth:
    kind: str
    connections: int
    before: int
    after: int
    seconds: float

    @property
    def per_connection(self) -> float:
        return (self.after - self.before) / self.connections

    def __str__(self) -> str:
        return (
            f"{self.kind:<18} {self.connections:>7} connections: RSS {self.before / 2**20:7.2f} -> "
            f"{self.after / 2**20:7.2f} MiB, {self.per_connection:+8.1f} B per connection "
            f"({self.connections / self.seconds:,.0f}/s)"
        )


def measure(pid: int, port: int, kind: str, n: int, warmup: int = IDLE_BATCH) -> Growth:
    """Warm up with ``warmup`` connections of the kind, then drive ``n`` more; RSS growth."""
    drive = KINDS[kind]
    ctl = Control(port)
    try:
        drive(ctl, warmup)
        ctl.settle()
        before = rss(pid)
        start = time.perf_counter()
        drive(ctl, n)
        seconds = time.perf_counter() - start
        ctl.settle()
        return Growth(kind, n, before, rss(pid), seconds)
    finally:
        ctl.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("-n", type=int, default=20_000)
    ap.add_argument("--event-loop", default="auto")
    ap.add_argument("--port", type=int, default=0, help="measure a running server (needs --pid)")
    ap.add_argument("--pid", type=int, default=0)
    opts = ap.parse_args()
    proc = None
    port, pid = opts.port, opts.pid
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskstore",
                "--port",
                str(port),
                "--event-loop",
                opts.event_loop,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        print(proc.stdout.readline().strip())
        pid = proc.pid
    try:
        for kind in opts.kinds.split(","):
            print(measure(pid, port, kind, opts.n), flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
