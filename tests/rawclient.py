"""A bare socket client for byte-exact tests (no client library in the way)."""

from __future__ import annotations

import socket
import time
from typing import Any

import hiredis


class RawClient:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = hiredis.Reader(notEnoughData=_MISSING)
        self.timeout = timeout

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> Any:
        """The next decoded reply (errors come back as hiredis.ReplyError values)."""
        while True:
            value = self.reader.gets()
            if value is not _MISSING:
                return value
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("connection closed")
            self.reader.feed(chunk)

    def call(self, *args: bytes | str | int) -> Any:
        self.send(pack(*args))
        return self.reply()

    def raw(self, data: bytes, settle: float = 0.2) -> bytes:
        """Send bytes and return every byte received until the server is quiet."""
        self.sock.sendall(data)
        return self.read_quiet(settle)

    def read_quiet(self, settle: float = 0.2) -> bytes:
        out = b""
        self.sock.settimeout(settle)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(self.timeout)
        return out

    def read_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError(f"closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def is_closed(self, wait: float = 2.0) -> bool:
        """True when the server closed the connection (after sending what it had)."""
        deadline = time.monotonic() + wait
        self.sock.settimeout(0.05)
        try:
            while time.monotonic() < deadline:
                try:
                    if self.sock.recv(1 << 16) == b"":
                        return True
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    return True
            return False
        finally:
            self.sock.settimeout(self.timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_MISSING = object()


def pack(*args: bytes | str | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)
