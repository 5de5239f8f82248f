"""The raw test client: a bare loopback socket speaking RESP, no client library in the way.

Two views of what the server sends:

- ``call()`` / ``reply()``: the next reply decoded by hiredis (errors come back as
  ``hiredis.ReplyError`` values);
- ``call_frame()`` / ``frame()`` / ``frames()``: the next whole RESP2/RESP3 frame as the exact
  bytes received (blocking and pub/sub tests compare replies byte for byte).

Bytes that ``frame()`` read past its frame stay in ``buf`` and are the first ``reply()`` sees;
``raw()``, ``read_quiet()``, ``read_exact()`` and ``is_closed()`` read the socket directly.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import hiredis


def pack(*args: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings (``str`` as UTF-8, ``int`` in decimal)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def bulk(data: bytes | str) -> bytes:
    """The exact bytes of a bulk string reply."""
    b = data.encode() if isinstance(data, str) else data
    return b"$%d\r\n%s\r\n" % (len(b), b)


def error(text: str) -> bytes:
    """The exact bytes of an error reply."""
    return b"-" + text.encode() + b"\r\n"


def decode(frame: bytes) -> object:
    """One whole frame decoded by hiredis."""
    reader = hiredis.Reader()
    reader.feed(frame)
    return reader.gets()


def _frame_end(buf: bytes, pos: int) -> int | None:
    """End offset of the RESP2/RESP3 frame starting at ``pos``, None if incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return None
    kind = buf[pos : pos + 1]
    after = nl + 2
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return after
    n = int(buf[pos + 1 : nl])
    if kind in (b"$", b"=", b"!"):
        if n < 0:
            return after
        end = after + n + 2
        return end if len(buf) >= end else None
    if kind in (b"*", b">", b"~", b"%", b"|"):
        if n < 0:
            return after
        if kind in (b"%", b"|"):
            n *= 2
        for _ in range(n):
            nxt = _frame_end(buf, after)
            if nxt is None:
                return None
            after = nxt
        return after
    raise ValueError(f"not a RESP frame: {buf[pos : pos + 40]!r}")


_MISSING = object()


class RawClient:
    """One loopback connection; ``protocol=3`` sends ``HELLO 3`` first."""

    def __init__(
        self, port: int, host: str = "127.0.0.1", timeout: float = 10.0, *, protocol: int = 2
    ) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = hiredis.Reader(notEnoughData=_MISSING)
        self.timeout = timeout
        #: received bytes not yet returned by frame()
        self.buf = b""
        if protocol == 3:
            assert self.call_frame("HELLO", "3").startswith(b"%")

    # -- sending --------------------------------------------------------------

    def send(self, *data: bytes | tuple[object, ...]) -> None:
        """Send bytes as they are and commands given as tuples (``pack``), in one write."""
        self.sock.sendall(b"".join(pack(*d) if isinstance(d, tuple) else d for d in data))

    # -- decoded replies --------------------------------------------------------

    def reply(self) -> Any:
        """The next decoded reply (errors come back as hiredis.ReplyError values)."""
        if self.buf:
            self.reader.feed(self.buf)
            self.buf = b""
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

    # -- exact frames -----------------------------------------------------------

    def frame(self) -> bytes:
        """The next whole frame, verbatim."""
        assert not self.reader.has_data(), "reply() holds bytes received before this frame"
        while True:
            end = _frame_end(self.buf, 0) if self.buf else None
            if end is not None:
                out, self.buf = self.buf[:end], self.buf[end:]
                return out
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"connection closed (buffered: {self.buf!r})")
            self.buf += chunk

    def frames(self, n: int) -> list[bytes]:
        return [self.frame() for _ in range(n)]

    def call_frame(self, *args: object) -> bytes:
        """Send one command; its reply frame, verbatim."""
        self.send(args)
        return self.frame()

    def nothing_pending(self) -> bool:
        """True when no byte has arrived (and none is buffered) right now."""
        if self.buf or self.reader.has_data():
            return False
        self.sock.setblocking(False)
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf += chunk
        return False

    def assert_idle(self) -> None:
        """Nothing more was sent: the next reply is the PONG of a fresh PING."""
        assert self.nothing_pending(), self.buf
        assert self.call_frame("PING") == b"+PONG\r\n"
        assert self.buf == b""

    # -- the socket as it is ---------------------------------------------------

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
