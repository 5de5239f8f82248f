"""A minimal blocking RESP client on a raw socket, with hiredis parsing replies.

Used for setup, pipelined loading (memory, expiry) and the latency probe, where redis-py's own
overhead would be the bottleneck. Error replies come back as ``hiredis.ReplyError`` objects.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from typing import Any

import hiredis

ReplyError = hiredis.ReplyError


def encode(*args: Any) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def encode_many(commands: Iterable[tuple[Any, ...]]) -> bytes:
    return b"".join(encode(*c) for c in commands)


class Client:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 120.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()

    def read(self, n: int = 1) -> list[Any]:
        out: list[Any] = []
        reader, sock = self.reader, self.sock
        while len(out) < n:
            reply = reader.gets()
            if reply is False:
                data = sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("the server closed the connection")
                reader.feed(data)
                continue
            out.append(reply)
        return out

    def call(self, *args: Any) -> Any:
        self.sock.sendall(encode(*args))
        return self.read(1)[0]

    def check(self, *args: Any) -> Any:
        """call(), raising on an error reply."""
        reply = self.call(*args)
        if isinstance(reply, ReplyError):
            raise RuntimeError(f"{args[0]} failed: {reply}")
        return reply

    def pipeline(self, payload: bytes, n: int) -> list[Any]:
        """Send n commands encoded in payload, return their n replies."""
        self.sock.sendall(payload)
        return self.read(n)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def count_errors(replies: list[Any]) -> tuple[int, str | None]:
    errors = [r for r in replies if isinstance(r, ReplyError)]
    return len(errors), (str(errors[0]) if errors else None)
