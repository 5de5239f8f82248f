"""A raw client that hands back whole RESP2/RESP3 frames as the exact bytes received
(blocking and pub/sub tests compare replies byte for byte)."""

from __future__ import annotations

import socket

import hiredis

from rawclient import pack


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


def decode(frame: bytes) -> object:
    reader = hiredis.Reader()
    reader.feed(frame)
    return reader.gets()


class Wire:
    """A loopback socket: send commands, receive one complete frame at a time, verbatim."""

    def __init__(self, port: int, protocol: int = 2, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        if protocol == 3:
            assert self.call("HELLO", "3").startswith(b"%")

    def send(self, *cmds: tuple[object, ...]) -> None:
        self.sock.sendall(b"".join(pack(*c) for c in cmds))

    def frame(self) -> bytes:
        while True:
            end = _frame_end(self.buf, 0) if self.buf else None
            if end is not None:
                out, self.buf = self.buf[:end], self.buf[end:]
                return out
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"connection closed (buffered: {self.buf!r})")
            self.buf += chunk

    def call(self, *args: object) -> bytes:
        self.send(args)
        return self.frame()

    def value(self, *args: object) -> object:
        return decode(self.call(*args))

    def nothing_pending(self) -> bool:
        """True when no byte has arrived (and none is buffered) right now."""
        if self.buf:
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
        assert self.call("PING") == b"+PONG\r\n"
        assert self.buf == b""

    def close(self) -> None:
        self.sock.close()

    def frames(self, n: int) -> list[bytes]:
        return [self.frame() for _ in range(n)]

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bulk(data: bytes | str) -> bytes:
    """The exact bytes of a bulk string reply."""
    b = data.encode() if isinstance(data, str) else data
    return b"$%d\r\n%s\r\n" % (len(b), b)


def error(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"
