"""Reply encoding, RESP2 and RESP3, checked by decoding with hiredis."""

from __future__ import annotations

import hiredis
import pytest

from taskstore.protocol import (
    OK,
    ErrorReply,
    Push,
    SimpleString,
    Verbatim,
    encode,
)


def decode(data: bytes):
    r = hiredis.Reader()
    r.feed(data)
    value = r.gets()
    assert r.gets() is False, "exactly one reply"
    return value


@pytest.mark.parametrize(
    ("value", "resp2", "resp3"),
    [
        (b"abc", b"$3\r\nabc\r\n", b"$3\r\nabc\r\n"),
        ("é", b"$2\r\n\xc3\xa9\r\n", b"$2\r\n\xc3\xa9\r\n"),
        (SimpleString("OK"), b"+OK\r\n", b"+OK\r\n"),
        (ErrorReply("ERR bad"), b"-ERR bad\r\n", b"-ERR bad\r\n"),
        (ErrorReply("ERR two\r\nlines"), b"-ERR two  lines\r\n", b"-ERR two  lines\r\n"),
        (42, b":42\r\n", b":42\r\n"),
        (-1, b":-1\r\n", b":-1\r\n"),
        (True, b":1\r\n", b"#t\r\n"),
        (False, b":0\r\n", b"#f\r\n"),
        (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
        (None, b"$-1\r\n", b"_\r\n"),
        ([], b"*0\r\n", b"*0\r\n"),
        ([1, b"a"], b"*2\r\n:1\r\n$1\r\na\r\n", b"*2\r\n:1\r\n$1\r\na\r\n"),
        ({"a": 1}, b"*2\r\n$1\r\na\r\n:1\r\n", b"%1\r\n$1\r\na\r\n:1\r\n"),
        ({b"x"}, b"*1\r\n$1\r\nx\r\n", b"~1\r\n$1\r\nx\r\n"),
        (Verbatim("hi"), b"$2\r\nhi\r\n", b"=6\r\ntxt:hi\r\n"),
        (
            Push(["message", b"c", b"m"]),
            b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
            b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
        ),
        (OK, b"+OK\r\n", b"+OK\r\n"),
    ],
)
def test_encoding(value: object, resp2: bytes, resp3: bytes) -> None:
    assert encode(value, resp3=False) == resp2
    assert encode(value, resp3=True) == resp3


def test_nested_round_trip() -> None:
    value = {"server": "redis", "proto": 3, "modules": [], "nested": [{"k": [None, 2.5]}]}
    assert decode(encode(value, resp3=False)) == [
        b"server",
        b"redis",
        b"proto",
        3,
        b"modules",
        [],
        b"nested",
        [[b"k", [None, b"2.5"]]],
    ]
    r3 = decode(encode(value, resp3=True))
    assert r3 == {
        b"server": b"redis",
        b"proto": 3,
        b"modules": [],
        b"nested": [{b"k": [None, 2.5]}],
    }


def test_unencodable_value_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        encode(object())
