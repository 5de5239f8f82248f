"""Reply encoding for RESP2 and RESP3, with Redis's RESP3 → RESP2 downgrade.

Python values map onto RESP types:

=====================  ======================  =================================
value                  RESP3                   RESP2 (as Redis downgrades)
=====================  ======================  =================================
``bytes`` / ``str``    bulk string ``$``       bulk string
``SimpleString``       ``+``                   ``+``
``ErrorReply``         ``-``                   ``-``
``int``                ``:``                   ``:``
``bool``               ``#t`` / ``#f``         ``:1`` / ``:0``
``float``              double ``,``            bulk string
``None``               null ``_``              ``$-1``
``list`` / ``tuple``   array ``*``             array
``dict``               map ``%``               flat array of 2N
``set`` / frozenset    set ``~``               array
``Verbatim``           verbatim ``=``          bulk string
``Push``               push ``>``              array
``Replies``            each item as its own reply (one command, several answers)
``Raw``                (already encoded, sent as is)
=====================  ======================  =================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


class SimpleString(str):
    """A ``+`` status reply such as ``OK`` or ``PONG``."""

    __slots__ = ()


class ErrorReply(str):
    """A ``-`` error reply; the text starts with the error code (``ERR``, ``NOAUTH``...)."""

    __slots__ = ()


class Verbatim(str):
    """RESP3 verbatim string (``txt`` format), a bulk string in RESP2."""

    __slots__ = ()


class Push(list[Any]):
    """RESP3 out-of-band push (pub/sub messages); an array in RESP2."""

    __slots__ = ()


class Replies(list[Any]):
    """Several top-level replies from one command (SUBSCRIBE a b c answers three times)."""

    __slots__ = ()


class Raw(bytes):
    """Bytes that are already an encoded reply (constants on hot paths)."""

    __slots__ = ()


OK = Raw(b"+OK\r\n")
PONG = Raw(b"+PONG\r\n")
QUEUED = Raw(b"+QUEUED\r\n")


def _error_line(text: str) -> bytes:
    # Redis replaces newlines in error text so the reply stays one line.
    return ("-" + text.replace("\r", " ").replace("\n", " ") + "\r\n").encode(
        "utf-8", "surrogateescape"
    )


def _double_text(v: float) -> bytes:
    if math.isinf(v):
        return b"inf" if v > 0 else b"-inf"
    if math.isnan(v):
        return b"nan"
    return repr(v).encode() if v != int(v) or abs(v) >= 1e17 else b"%d" % int(v)


def _enc_bytes(v: bytes, out: list[bytes], resp3: bool) -> None:
    out.append(b"$%d\r\n%s\r\n" % (len(v), v))


def _enc_str(v: str, out: list[bytes], resp3: bool) -> None:
    b = v.encode("utf-8", "surrogateescape")
    out.append(b"$%d\r\n%s\r\n" % (len(b), b))


def _enc_simple(v: str, out: list[bytes], resp3: bool) -> None:
    out.append(b"+%s\r\n" % v.encode("utf-8", "surrogateescape"))


def _enc_error(v: str, out: list[bytes], resp3: bool) -> None:
    out.append(_error_line(v))


def _enc_int(v: int, out: list[bytes], resp3: bool) -> None:
    out.append(b":%d\r\n" % v)


def _enc_bool(v: bool, out: list[bytes], resp3: bool) -> None:
    if resp3:
        out.append(b"#t\r\n" if v else b"#f\r\n")
    else:
        out.append(b":1\r\n" if v else b":0\r\n")


def _enc_float(v: float, out: list[bytes], resp3: bool) -> None:
    t = _double_text(v)
    out.append(b",%s\r\n" % t if resp3 else b"$%d\r\n%s\r\n" % (len(t), t))


def _enc_none(v: None, out: list[bytes], resp3: bool) -> None:
    out.append(b"_\r\n" if resp3 else b"$-1\r\n")


def _enc_array(v: list[Any] | tuple[Any, ...], out: list[bytes], resp3: bool) -> None:
    out.append(b"*%d\r\n" % len(v))
    for item in v:
        _ENCODERS.get(item.__class__, _enc_slow)(item, out, resp3)


def _enc_push(v: Push, out: list[bytes], resp3: bool) -> None:
    out.append((b">%d\r\n" if resp3 else b"*%d\r\n") % len(v))
    for item in v:
        _ENCODERS.get(item.__class__, _enc_slow)(item, out, resp3)


def _enc_replies(v: Replies, out: list[bytes], resp3: bool) -> None:
    for item in v:
        _ENCODERS.get(item.__class__, _enc_slow)(item, out, resp3)


def _enc_map(v: dict[Any, Any], out: list[bytes], resp3: bool) -> None:
    out.append(b"%%%d\r\n" % len(v) if resp3 else b"*%d\r\n" % (2 * len(v)))
    for key, item in v.items():
        _ENCODERS.get(key.__class__, _enc_slow)(key, out, resp3)
        _ENCODERS.get(item.__class__, _enc_slow)(item, out, resp3)


def _enc_set(v: set[Any] | frozenset[Any], out: list[bytes], resp3: bool) -> None:
    out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(v))
    for item in v:
        _ENCODERS.get(item.__class__, _enc_slow)(item, out, resp3)


def _enc_verbatim(v: Verbatim, out: list[bytes], resp3: bool) -> None:
    b = v.encode("utf-8", "surrogateescape")
    if resp3:
        out.append(b"=%d\r\ntxt:%s\r\n" % (len(b) + 4, b))
    else:
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))


def _enc_raw(v: Raw, out: list[bytes], resp3: bool) -> None:
    out.append(v)


def _enc_slow(v: Any, out: list[bytes], resp3: bool) -> None:
    """Subclasses of the basic types (IntEnum, str subclasses, bytearray...)."""
    for base, fn in _BASES:
        if isinstance(v, base):
            fn(v, out, resp3)
            return
    raise TypeError(f"cannot encode {type(v).__name__} as a RESP reply")


_Encoder = Callable[[Any, list[bytes], bool], None]

_ENCODERS: dict[type, _Encoder] = {
    bytes: _enc_bytes,
    str: _enc_str,
    int: _enc_int,
    bool: _enc_bool,
    float: _enc_float,
    type(None): _enc_none,
    list: _enc_array,
    tuple: _enc_array,
    dict: _enc_map,
    set: _enc_set,
    frozenset: _enc_set,
    SimpleString: _enc_simple,
    ErrorReply: _enc_error,
    Verbatim: _enc_verbatim,
    Push: _enc_push,
    Replies: _enc_replies,
    Raw: _enc_raw,
}

# Order matters: most specific first.
_BASES: list[tuple[type, _Encoder]] = [
    (Raw, _enc_raw),
    (ErrorReply, _enc_error),
    (SimpleString, _enc_simple),
    (Verbatim, _enc_verbatim),
    (Push, _enc_push),
    (bool, _enc_bool),
    (int, _enc_int),
    (float, _enc_float),
    (str, _enc_str),
    (bytes, _enc_bytes),
    (bytearray, _enc_bytes),
    (memoryview, lambda v, out, r3: _enc_bytes(bytes(v), out, r3)),
    (list, _enc_array),
    (tuple, _enc_array),
    (dict, _enc_map),
    (set, _enc_set),
    (frozenset, _enc_set),
]


def encode_into(value: Any, out: list[bytes], resp3: bool) -> None:
    """Append the encoding of ``value`` to ``out`` (chunks joined later, once per write)."""
    _ENCODERS.get(value.__class__, _enc_slow)(value, out, resp3)


def encode(value: Any, resp3: bool = False) -> bytes:
    out: list[bytes] = []
    _ENCODERS.get(value.__class__, _enc_slow)(value, out, resp3)
    return b"".join(out)


def error_bytes(text: str) -> bytes:
    """An encoded ``-`` error line (same for both protocol versions)."""
    return _error_line(text)
