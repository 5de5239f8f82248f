"""A logging TCP proxy: it sits between a client library and taskstore and records, per
connection, the commands the client sent and the replies it got.

It is how the suite learns what a client sends on connect (its handshake): the server has no
command log, and CLIENT LIST / INFO commandstats do not carry that information. Bytes are
forwarded unchanged in both directions; parsing happens on copies.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import hiredis

_MISSING = object()
PARSE_LIMIT = 200  # commands parsed per connection; after that bytes are only forwarded


@dataclass
class Conn:
    index: int
    commands: list[list[bytes]] = field(default_factory=list)
    replies: list[Any] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def names(self) -> list[str]:
        return [c[0].decode("utf-8", "replace").upper() for c in self.commands if c]


class RequestParser:
    """Client-to-server bytes into commands: multibulk requests, inline commands, and the
    blank lines Redis skips (redis-cli --pipe sends one before its closing ECHO, which
    hiredis.Reader would refuse)."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[list[bytes]]:
        self.buf += data
        out: list[list[bytes]] = []
        while True:
            cmd = self._one()
            if cmd is None:
                return out
            if cmd:
                out.append(cmd)

    def _one(self) -> list[bytes] | None:
        buf = self.buf
        end = buf.find(b"\n")
        if end < 0:
            return None
        if not buf.startswith(b"*"):  # inline command or blank line
            self.buf = buf[end + 1 :]
            return buf[:end].strip().split()
        count = int(buf[1:end])
        pos, args = end + 1, []
        for _ in range(max(count, 0)):
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(buf[pos + 1 : line_end])
            start = line_end + 2
            if len(buf) < start + size + 2:
                return None
            args.append(buf[start : start + size])
            pos = start + size + 2
        self.buf = buf[pos:]
        return args


class LoggingProxy:
    """``with LoggingProxy(server_port) as proxy:`` then connect clients to ``proxy.port``."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(0.25)  # accept() wakes up to notice close()
        self.port = int(self.listener.getsockname()[1])
        self.conns: list[Conn] = []
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)

    def __enter__(self) -> LoggingProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        for t in [self._acceptor, *self._threads]:
            if t.is_alive():
                t.join(5)

    def wait_closed(self, count: int | None = None, timeout: float = 10.0) -> bool:
        """Wait until every connection seen so far (or the first ``count``) has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                conns = list(self.conns)
            if count is not None and len(conns) < count:
                time.sleep(0.02)
                continue
            if all(c.done.is_set() for c in conns[: count or len(conns)]):
                return True
            time.sleep(0.02)
        return False

    # -- plumbing ---------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                conn = Conn(len(self.conns))
                self.conns.append(conn)
                self._socks += [client, upstream]
            finished = threading.Event()
            for src, dst, upward in ((client, upstream, True), (upstream, client, False)):
                t = threading.Thread(
                    target=self._pump,
                    args=(conn, src, dst, upward, finished),
                    name=f"proxy-{conn.index}-{'up' if upward else 'down'}",
                    daemon=True,
                )
                self._threads.append(t)
                t.start()

    def _pump(
        self,
        conn: Conn,
        src: socket.socket,
        dst: socket.socket,
        upward: bool,
        finished: threading.Event,
    ) -> None:
        reader = hiredis.Reader(notEnoughData=_MISSING)
        requests = RequestParser()
        parsing = True
        try:
            while True:
                try:
                    data = src.recv(1 << 16)
                except OSError:
                    data = b""
                if not data:
                    break
                if parsing:
                    try:
                        if upward:
                            conn.commands += requests.feed(data)
                        else:
                            reader.feed(data)
                            while (item := reader.gets()) is not _MISSING:
                                conn.replies.append(item)
                        if len(conn.commands) > PARSE_LIMIT:
                            parsing = False
                    except (hiredis.ProtocolError, ValueError):
                        parsing = False  # not parseable: stop recording, keep forwarding
                try:
                    dst.sendall(data)
                except OSError:
                    break
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            if finished.is_set():
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.close()
                conn.done.set()
            else:
                finished.set()
