"""Byte-for-byte: taskstore answers as the real redis-server does, on the same requests."""

from __future__ import annotations

import pytest

from rawclient import RawClient, pack

# Each case: the raw bytes of one or more requests sent on a fresh connection. The replies
# must be identical to redis-server's (Debian's 7.0, same machine).
SAME_AS_REDIS = {
    "ping": b"PING\r\n",
    "ping message": pack("PING", "hello"),
    "ping arity": pack("PING", "a", "b"),
    "echo": pack("ECHO", b"\x00\r\nbinary"),
    "echo arity": pack("ECHO"),
    "unknown command": pack("FOO", "a", "b"),
    "unknown command no args": pack("NOSUCH"),
    "unknown command long args": pack("NOSUCH", "x" * 100, "y" * 100, "z"),
    "unknown command lower case": b"nosuch arg\r\n",
    "unknown subcommand": pack("CLIENT", "blah"),
    "unknown subcommand config": pack("CONFIG", "blah"),
    "unknown subcommand command": pack("COMMAND", "blah"),
    "subcommand arity": pack("CLIENT", "SETNAME"),
    "container arity": pack("CLIENT"),
    "select 0": pack("SELECT", "0"),
    "select out of range": pack("SELECT", "16") + pack("SELECT", "-1"),
    "select not integer": pack("SELECT", "x"),
    "auth without password": pack("AUTH", "secret"),
    "auth default user, no password set": pack("AUTH", "default", "anything"),
    "auth unknown user": pack("AUTH", "nobody", "x"),
    "auth syntax": pack("AUTH", "a", "b", "c"),
    "hello bad version": pack("HELLO", "4") + pack("HELLO", "1") + pack("HELLO", "abc"),
    "hello bad option": pack("HELLO", "3", "FOO"),
    "hello auth missing args": pack("HELLO", "3", "AUTH", "default"),
    "hello wrong password": pack("HELLO", "3", "AUTH", "nobody", "x"),
    "exec without multi": pack("EXEC"),
    "discard without multi": pack("DISCARD"),
    "multi nested": pack("MULTI") + pack("MULTI") + pack("DISCARD"),
    "watch inside multi": pack("MULTI") + pack("WATCH", "k") + pack("DISCARD"),
    "multi exec": pack("MULTI") + pack("PING") + pack("ECHO", "x") + pack("EXEC"),
    "multi execabort unknown": pack("MULTI") + pack("FOO") + pack("PING") + pack("EXEC"),
    "multi execabort arity": pack("MULTI") + pack("ECHO") + pack("EXEC") + pack("PING"),
    "multi discard": pack("MULTI") + pack("PING") + pack("DISCARD") + pack("PING"),
    "watch unwatch": pack("WATCH", "a", "b") + pack("UNWATCH"),
    "client getname unset": pack("CLIENT", "GETNAME"),
    "client setname": pack("CLIENT", "SETNAME", "n1") + pack("CLIENT", "GETNAME"),
    "client setname invalid": pack("CLIENT", "SETNAME", "a b"),
    "client setname empty": pack("CLIENT", "SETNAME", "") + pack("CLIENT", "GETNAME"),
    "client no-evict": pack("CLIENT", "NO-EVICT", "on") + pack("CLIENT", "NO-EVICT", "maybe"),
    "client kill unknown": pack("CLIENT", "KILL", "1.2.3.4:5"),
    "client kill id": pack("CLIENT", "KILL", "ID", "999999"),
    "client kill syntax": pack("CLIENT", "KILL", "ID"),
    "config set unknown": pack("CONFIG", "SET", "nosuch", "1"),
    "config get save appendonly": pack("CONFIG", "GET", "appendonly"),
    "config get nothing": pack("CONFIG", "GET", "nosuch*"),
    "unwatch": pack("UNWATCH"),
    "reset": pack("CLIENT", "SETNAME", "x")
    + pack("MULTI")
    + pack("RESET")
    + pack("CLIENT", "GETNAME"),
    "flushall syntax": pack("FLUSHALL", "x"),
    "shutdown syntax": pack("SHUTDOWN", "blah"),
    "info unknown section": pack("INFO", "nosuch"),
    "inline quoting": b"ECHO \"a b\\x41\"\r\nECHO 'c d'\r\n",
    "empty lines and *0": b"\r\n\r\n*0\r\n*-1\r\nPING\r\n",
    "quit": pack("QUIT"),
}


def exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    with RawClient(port) as c:
        out = c.raw(data, settle=0.1)
        return out, c.is_closed(0.1)


@pytest.mark.parametrize("case", sorted(SAME_AS_REDIS))
def test_same_bytes_as_redis(case: str, server, redis_server: int) -> None:
    data = SAME_AS_REDIS[case]
    ours = exchange(server.port, data)
    theirs = exchange(redis_server, data)
    assert ours == theirs


# Redis's tests/unit/protocol.tcl cases plus the limits of design.md §7: the exact error,
# then the connection is closed.
PROTOCOL_ERRORS = {
    "out of range multibulk length": (b"*3000000000\r\n", "invalid multibulk length"),
    "multibulk length over 1M": (b"*1048577\r\n", "invalid multibulk length"),
    "wrong multibulk payload header": (
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
        "expected '$', got 'f'",
    ),
    "negative multibulk payload length": (
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n",
        "invalid bulk length",
    ),
    "out of range multibulk payload length": (
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
        "invalid bulk length",
    ),
    "non-number multibulk payload length": (
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
        "invalid bulk length",
    ),
    "multibulk request not followed by bulk arguments": (b"*1\r\nfoo\r\n", "expected '$', got 'f'"),
    "unbalanced number of quotes": (
        b'set """test-key""" test-value\r\nping\r\n',
        "unbalanced quotes in request",
    ),
    "too big mbulk count string": (b"*" + b"1" * 70000, "too big mbulk count string"),
    "too big inline request": (b"PING " + b"x" * 70000, "too big inline request"),
    "garbage star nul": (b"*\x00" * 40000, "too big mbulk count string"),
    "garbage nul inline": (b"\x00" * 70000, "too big inline request"),
    "bulk over proto_max_bulk_len": (b"*1\r\n$67108865\r\n", "invalid bulk length"),
}


@pytest.mark.parametrize("case", sorted(PROTOCOL_ERRORS))
def test_protocol_error_closes_only_that_connection(case: str, server) -> None:
    data, message = PROTOCOL_ERRORS[case]
    with RawClient(server.port) as other, RawClient(server.port) as bad:
        other.send(pack("PING"))
        assert other.reply() == b"PONG"
        reply = bad.raw(data, settle=0.3)
        assert reply == f"-ERR Protocol error: {message}\r\n".encode()
        assert bad.is_closed()
        # the other connection is served meanwhile and afterwards
        assert other.call("ECHO", "still here") == b"still here"


@pytest.mark.parametrize(
    "case",
    # Redis 7.0 allows up to INT_MAX elements and 512 MiB bulks; design.md §7 sets 1M / 64 MiB
    [
        c
        for c in sorted(PROTOCOL_ERRORS)
        if c not in ("bulk over proto_max_bulk_len", "multibulk length over 1M")
    ],
)
def test_protocol_errors_match_redis(case: str, server, redis_server: int) -> None:
    data, _ = PROTOCOL_ERRORS[case]
    assert exchange(server.port, data) == exchange(redis_server, data)


def test_commands_before_a_protocol_error_run(server) -> None:
    with RawClient(server.port) as c:
        out = c.raw(pack("PING") + pack("ECHO", "a") + b"*1\r\nfoo\r\n" + pack("PING"), 0.3)
        assert out == b"+PONG\r\n$1\r\na\r\n-ERR Protocol error: expected '$', got 'f'\r\n"
        assert c.is_closed()


@pytest.mark.parametrize("garbage", [b"\x00" * 3, b"*\x00", b"$\x00", b"\xff\xfe\r\n"])
def test_garbage_does_not_hang_or_crash(garbage: bytes, server) -> None:
    # protocol.tcl "Protocol desync regression test": garbage is answered or the
    # connection closed, and the server keeps serving
    with RawClient(server.port) as c:
        c.raw(garbage * 100 + b"\r\n", 0.2)
    with RawClient(server.port) as c:
        assert c.call("PING") == "PONG" or c.call("PING") == b"PONG"


def test_ten_thousand_pipelined_commands_in_one_write(server) -> None:
    with RawClient(server.port) as c:
        c.send(b"".join(pack("ECHO", str(i)) for i in range(10_000)))
        for i in range(10_000):
            assert c.reply() == str(i).encode()
