"""Sans-IO request reader: bytes in, commands (lists of bytes) out.

Two paths share one buffer:

* the fast path hands well-formed multibulk requests to ``hiredis.Reader``
  (parsing in C is several times faster than any Python loop here);
* the exact path is a Python transcription of Redis's ``processInlineBuffer`` /
  ``processMultibulkBuffer``. It handles inline commands, blank lines, ``*0``/``*-1``,
  partial commands at the end of the buffer, and decides every protocol error.

hiredis allocates an array as soon as it reads its header, so it is never shown a header
that could declare more than 999 elements: the data is cut before the first such header (a
scan at C speed) and the exact path reads from there. A batch hiredis parsed is accepted only
if encoding its requests again gives back exactly its bytes (plain bulk strings, canonical
headers); anything else is re-read by the exact path from the last known command boundary,
so both paths give the same commands and the same errors. The exact path keeps its place in a
request that arrives over many reads, so each byte is parsed once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, repeat
from typing import cast

import hiredis

#: Redis's PROTO_INLINE_MAX_SIZE: longest header or inline line accepted.
INLINE_MAX_SIZE = 64 * 1024
#: Redis's limit on the element count of one request.
MULTIBULK_MAX = 1024 * 1024
#: Before authentication (when auth is required) Redis accepts at most this much.
UNAUTH_MAX_ARGS = 10
UNAUTH_MAX_BULK = 16 * 1024

_CRLF = b"\r\n"
_STAR = 0x2A  # '*'


class ProtocolError(Exception):
    """A request that cannot be parsed; the text is the reply (without ``-``).

    Redis answers it and then closes the connection.
    """


class QueryBufferLimit(Exception):
    """The client sent more unparsed data than ``client_query_buffer_limit``."""


def _string2ll(data: bytes | bytearray) -> int | None:
    """Parse a decimal integer exactly as Redis's string2ll accepts it."""
    n = len(data)
    if n == 0 or n > 20:
        return None
    start = 1 if data[0] == 0x2D else 0  # '-'
    if start == n:
        return None
    first = data[start]
    if first == 0x30:  # '0'
        return 0 if n == 1 else None
    if not 0x31 <= first <= 0x39:
        return None
    for i in range(start + 1, n):
        if not 0x30 <= data[i] <= 0x39:
            return None
    value = int(data)
    if not -(2**63) <= value < 2**63:
        return None
    return value


def _ends_word(line: bytes, i: int) -> bool:
    """A closing quote must be followed by a space or nothing (sdssplitargs)."""
    return i >= len(line) or line[i] in b" \n\r\t\x0b\x0c"


def split_inline(line: bytes) -> list[bytes] | None:
    """Split an inline command like Redis's sdssplitargs; None on unbalanced quotes."""
    if 0x22 not in line and 0x27 not in line:  # no quotes: plain whitespace split
        return line.split()
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \n\r\t\x0b\x0c":
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        inq = insq = False
        while True:
            if inq or insq:
                if i >= n:
                    return None  # an unterminated quote
                c = line[i]
                if (
                    inq
                    and c == 0x5C  # backslash
                    and i + 3 < n
                    and line[i + 1] == 0x78  # 'x'
                    and _ishex(line[i + 2])
                    and _ishex(line[i + 3])
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif inq and c == 0x5C and i + 1 < n:
                    i += 1
                    c = line[i]
                    cur.append(
                        {0x6E: 0x0A, 0x72: 0x0D, 0x74: 0x09, 0x62: 0x08, 0x61: 0x07}.get(c, c)
                    )
                elif insq and c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    cur.append(0x27)
                elif c == (0x22 if inq else 0x27):  # the closing quote
                    if not _ends_word(line, i + 1):
                        return None
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \n\r\t\x0b\x0c":
                    i += 1
                    break
                if c == 0x22:
                    inq = True
                elif c == 0x27:
                    insq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


def _find_c(buf: bytearray, char: bytes, start: int) -> int:
    """Find ``char`` as Redis's strchr() does on its query buffer: a NUL byte ends the search.

    So ``*\x00\r\n`` is not a complete header to Redis: it waits for more data (and
    eventually answers "too big ... string"), and so do we.
    """
    i = buf.find(char, start)
    if i < 0:
        return -1
    return -1 if buf.find(b"\x00", start, i) >= 0 else i


# An array or push header of four digits or more: a count over 999, maybe far more. Two
# searches with a literal first byte (memchr speed) cost a fifth of one with a class.
_LARGE_ARRAY = re.compile(rb"\*\d{4}")
_LARGE_PUSH = re.compile(rb">\d{4}")


def _large_header(data: bytes | bytearray, start: int, end: int) -> int:
    """Where the first header that may declare over 999 elements begins, or -1."""
    m = _LARGE_ARRAY.search(data, start, end)
    if m is not None:
        end = m.start()
    # push headers are rare in requests: a byte search first (no regex call for most reads)
    if data.find(b">", start, end) >= 0:
        p = _LARGE_PUSH.search(data, start, end)
        if p is not None:
            return p.start()
    return -1 if m is None else end


# (hiredis's stub declares a one-element tuple; it takes any number of elements)
_pack = cast(Callable[[tuple[bytes, ...]], bytes], hiredis.pack_command)


def _canonical(cmds: list[list[bytes]], data: bytes | bytearray) -> bool:
    """Whether ``data`` is exactly the canonical encoding of ``cmds`` (arrays of bulk
    strings), nothing before, between or after them: then hiredis read nothing Redis would
    refuse, and the read held no part of a request.

    hiredis reads every reply type, Redis only arrays of bulk strings. What differs is the
    type byte of a header, since hiredis itself refuses any number that is not canonical
    (leading zeros, signs, spaces: tests/protocol/test_reader.py). Three ways to check, the
    cheapest that is exact for the read:

    - Up to three requests: encode them again in C (``hiredis.pack_command``) and compare.
    - More, up to 8 KiB: every argument hiredis returns as bytes is a verbatim slice of the
      read. Delete the bytes canonical headers are made of (``*``, ``$``, digits, CR, LF) from
      the read and from the joined arguments: what is left of the read is longer exactly
      when some header holds another byte (a type other than ``*``/``$``, a verbatim
      string's format) or bytes follow the last request. A request hiredis has not finished
      (only header bytes, say ``*2\r\n``) leaves nothing, so the read must also end with
      CRLF and hold no CR beyond the requests' own: one per array header, two per bulk
      string, and those inside the arguments. Any value that is not bytes (numbers, nulls,
      errors, nested arrays, a bare bulk string at the top) makes the join raise TypeError.
      Half to a third of the cost of encoding every request again.
    - Larger reads: compare sizes, which copies nothing. The canonical size is the payload
      plus ``*``/``$`` headers whose digit counts come from one ``str()`` of the counts and one
      of the lengths (``len(str([8, 36])) == digits + 2 * items``). Sizes alone are exact only
      when no element can take more bytes than its canonical form, or stand in for an array
      with as many: a verbatim string (``=``), an attribute (``|``), a map, set or push at the
      top (``%``, ``~``, ``>``). A read holding any of those bytes is checked as above; what
      is left (simple strings, numbers, nulls, errors, nested arrays) takes fewer bytes or
      fails the type check.
    """
    if len(cmds) < 4:
        return b"".join(map(_pack, map(tuple, cmds))) == data
    if len(data) <= 8192 or _SIZE_UNSAFE.search(data) is not None:
        payload = b"".join(chain.from_iterable(cmds))  # TypeError for anything but bytes
        return (
            data.endswith(b"\r\n")
            and data.count(b"\r") == len(cmds) + 2 * sum(map(len, cmds)) + payload.count(b"\r")
            and len(data.translate(None, _HEADER_BYTES))
            == len(payload.translate(None, _HEADER_BYTES))
        )
    args = list(chain.from_iterable(cmds))
    if not all(map(isinstance, args, repeat(bytes))):
        return False
    lengths = list(map(len, args))
    counts = list(map(len, cmds))
    size = len(counts) + len(str(counts)) + 3 * len(args) + sum(lengths) + len(str(lengths))
    return size == len(data)


#: the bytes of canonical request headers (see _canonical)
_HEADER_BYTES = b"*$0123456789\r\n"

#: type bytes after which sizes alone could hide a request Redis refuses (see _canonical)
_SIZE_UNSAFE = re.compile(rb"[=|%~>]")


def _ishex(c: int) -> bool:
    return 0x30 <= c <= 0x39 or 0x61 <= c <= 0x66 or 0x41 <= c <= 0x46


@dataclass
class ReaderLimits:
    proto_max_bulk_len: int = 64 * 1024 * 1024
    client_query_buffer_limit: int = 1024 * 1024 * 1024


class RequestReader:
    """Incremental request parser for one connection.

    ``feed(data)`` then ``parse()``; ``parse`` returns the complete commands read so far
    and the protocol error that stopped it, if any (the commands before an error are
    still executed, as Redis does, then the error is sent and the connection closed).

    Set ``unauthenticated`` while the client must authenticate first: Redis's small
    pre-auth limits then apply and ``parse`` yields one command at a time, because the
    next command's limits depend on whether this one authenticates.
    """

    __slots__ = (
        "_args",
        "_buf",
        "_count",
        "_hi",
        "_need",
        "_next",
        "_pos",
        "_ready",
        "limits",
        "unauthenticated",
    )

    def __init__(self, limits: ReaderLimits | None = None) -> None:
        self.limits = limits or ReaderLimits()
        self.unauthenticated = False
        self._buf = bytearray()
        self._pos = 0
        self._need = 0  # parse is pointless until the buffer holds this many bytes
        # A multibulk request the exact path has partly read: its element count, the
        # arguments so far and the offset (from _pos) of the next element header. Kept so
        # a request arriving over many reads is parsed once, not again from its start.
        self._count = 0
        self._args: list[bytes] | None = None
        self._next = 0
        # a hiredis reader that has consumed everything fed to it (reused), or None
        self._hi: hiredis.Reader | None = None
        # commands parsed straight from a read, before anything in the buffer
        self._ready: list[list[bytes]] = []

    def feed(self, data: bytes) -> None:
        if (
            self._pos >= len(self._buf)
            and not self.unauthenticated
            and data[:1] == b"*"
            and len(data) <= self.limits.client_query_buffer_limit
            and self._whole(data)
        ):
            return  # the common read: whole plain requests, parsed without a copy
        self._buf += data
        if len(self._buf) - self._pos > self.limits.client_query_buffer_limit:
            raise QueryBufferLimit("closing client that reached max query buffer length")

    def _whole(self, data: bytes) -> bool:
        """Parse a read that holds only whole, plain multibulk requests (see :meth:`_fast`
        for the check) into ``_ready``; False, with nothing changed, for anything else."""
        if _LARGE_ARRAY.search(data) is not None or (
            b">" in data and _LARGE_PUSH.search(data) is not None
        ):
            return False  # _large_header's test, for a whole read (no bounds to pass: cheaper)
        size = len(data)
        # _hiredis written out, and _canonical's test for one request (the commonest read):
        # this runs once per read of every client
        hi = self._hi
        if hi is None:
            hi = self._hi = hiredis.Reader()
        try:
            hi.feed(data)
            gets = hi.gets
            cmds: list[list[bytes]] = []
            while (cmd := gets()) is not False:
                cmds.append(cmd)
            ok = (
                not hi.has_data()
                and (
                    _pack(tuple(cmds[0])) == data
                    if len(cmds) == 1
                    else bool(cmds) and _canonical(cmds, data)
                )
                and (size <= self.limits.proto_max_bulk_len or not self._over_max_bulk(cmds))
            )
        except (hiredis.ProtocolError, TypeError):
            ok = False
        if not ok:
            self._hi = None
            return False
        if [] in cmds:  # "*0" requests are ignored, as Redis does
            cmds = [c for c in cmds if c]
        if self._ready:
            self._ready += cmds
        else:
            self._ready = cmds
        return True

    def _hiredis(
        self, data: bytes | bytearray, start: int, length: int
    ) -> tuple[list[list[bytes]], bool]:
        """Give hiredis ``length`` bytes of ``data`` from ``start``: every request it
        completes, and whether it holds part of another (it raises hiredis.ProtocolError on
        what it cannot read)."""
        hi = self._hi
        if hi is None:
            hi = self._hi = hiredis.Reader()
        hi.feed(data, start, length)  # type: ignore[arg-type]  # any buffer works
        gets = hi.gets
        cmds: list[list[bytes]] = []
        append = cmds.append
        while (cmd := gets()) is not False:
            append(cmd)
        return cmds, hi.has_data()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed into commands."""
        return len(self._buf) - self._pos

    def parse(self) -> tuple[list[list[bytes]], ProtocolError | None]:
        out = self._ready
        if out:
            self._ready = []
            if self._pos >= len(self._buf):
                return out, None
        else:
            out = []
        buf = self._buf
        if len(buf) < self._need:
            return out, None
        self._need = 0
        err: ProtocolError | None = None
        try:
            if self.unauthenticated:
                cmd = self._parse_one_exact()
                if cmd is not None:
                    out.append(cmd)
            else:
                self._parse_all(out)
        except ProtocolError as e:
            # Drop the traceback: it would tie this reader and its buffer into a reference
            # cycle that only the cyclic garbage collector could free.
            err = e.with_traceback(None)
        self._compact()
        return out, err

    # -- internals --------------------------------------------------------

    def _compact(self) -> None:
        buf = self._buf
        if self._pos >= len(buf):
            buf.clear()
            self._pos = 0
        elif self._pos > 65536:
            del buf[: self._pos]
            if self._need:
                self._need -= self._pos
            self._pos = 0

    def _parse_all(self, out: list[list[bytes]]) -> None:
        buf = self._buf
        end = len(buf)
        # After the fast path refuses a batch, the exact path reads the rest of it:
        # retrying hiredis after every request would copy the buffer over and over.
        fast = self._args is None
        while self._pos < end:
            if fast and buf[self._pos] == _STAR:
                if self._fast(out):
                    return
                fast = False
            cmd = self._parse_one_exact()
            if cmd is None:
                if self._need or self._pos >= len(buf):
                    return
                continue  # an ignored empty request (blank line, *0, *-1)
            out.append(cmd)

    def _fast(self, out: list[list[bytes]]) -> bool:
        """Read complete plain multibulk requests with hiredis; False to use the exact path.

        One check for the whole batch, in C: the requests hiredis returns, encoded again
        canonically (``hiredis.pack_command``), must be exactly the bytes they came from. That
        holds only if every request was an array of bulk strings with canonical headers;
        anything else (simple strings or numbers as elements, nested types, leading zeros,
        ``*-1``) differs, fails to encode, or makes hiredis raise, and the exact path, which
        decides every protocol error as Redis does, re-reads the batch.
        """
        buf = self._buf
        pos = self._pos
        end = len(buf)
        # hiredis allocates a list as soon as it reads an array header, so it only gets the
        # bytes before any header that could declare a large count (the first one included).
        large = _large_header(buf, pos, end)
        if large >= 0:
            end = large
            if end == pos:
                return False
        try:
            cmds, partial = self._hiredis(buf, pos, end - pos)
            packed = b"".join(map(_pack, map(tuple, cmds)))
        except (hiredis.ProtocolError, TypeError):
            self._hi = None
            return False
        tail = pos + len(packed)
        if partial:
            self._hi = None  # it holds part of a request: start afresh next time
        if (
            not cmds
            or (tail >= end if partial else tail != end)
            or not buf.startswith(packed, pos)
            or (len(packed) > self.limits.proto_max_bulk_len and self._over_max_bulk(cmds))
        ):
            self._hi = None
            return False  # not plain canonical RESP: the exact path re-reads the batch
        if [] in cmds:  # "*0" requests are ignored, as Redis does
            cmds = [c for c in cmds if c]
        out += cmds
        self._pos = tail
        # done, unless a partial request or bytes held back from hiredis follow: the exact
        # path checks their headers now (limits, errors) and waits for the rest
        return tail >= len(buf)

    def _over_max_bulk(self, cmds: list[list[bytes]]) -> bool:
        return max(map(len, chain.from_iterable(cmds))) > self.limits.proto_max_bulk_len

    def _parse_one_exact(self) -> list[bytes] | None:
        """One request by Redis's rules, or None (need more data / ignored request)."""
        buf = self._buf
        pos = self._pos
        if buf[pos] != _STAR:
            return self._inline()
        unauth = self.unauthenticated
        args = self._args
        if args is None:
            nl = self._line(b"\r", pos, "mbulk count string")
            if nl < 0:
                return None
            if nl + 1 >= len(buf):  # wait for the \n
                self._need = nl + 2
                return None
            count = _string2ll(buf[pos + 1 : nl])
            if count is None or count > MULTIBULK_MAX:
                raise ProtocolError("ERR Protocol error: invalid multibulk length")
            if unauth and count > UNAUTH_MAX_ARGS:
                raise ProtocolError("ERR Protocol error: unauthenticated multibulk length")
            p = nl + 2
            if count <= 0:
                self._pos = p
                return None
            args = []
        else:  # resume a request read in part before
            count = self._count
            p = pos + self._next
        max_bulk = self.limits.proto_max_bulk_len
        while len(args) < count:
            self._args, self._count, self._next = args, count, p - pos  # resume here
            if p >= len(buf):
                self._need = p + 1
                return None
            try:
                nl = self._line(b"\r", p, "bulk count string")
            except ProtocolError:
                self._args = None
                raise
            if nl < 0:
                return None
            if nl + 1 >= len(buf):
                self._need = nl + 2
                return None
            self._args = None  # errors below end the request
            if buf[p] != 0x24:  # '$'
                raise ProtocolError("ERR Protocol error: expected '$', got '%s'" % chr(buf[p]))
            size = _string2ll(buf[p + 1 : nl])
            if size is None or size < 0 or size > max_bulk:
                raise ProtocolError("ERR Protocol error: invalid bulk length")
            if unauth and size > UNAUTH_MAX_BULK:
                raise ProtocolError("ERR Protocol error: unauthenticated bulk length")
            data_start = nl + 2
            if len(buf) < data_start + size + 2:
                self._args = args
                self._need = data_start + size + 2
                return None
            args.append(bytes(buf[data_start : data_start + size]))
            p = data_start + size + 2  # Redis skips the two bytes after the data unchecked
        self._args = None
        self._pos = p
        return args

    def _line(self, end: bytes, pos: int, what: str) -> int:
        """Where the line from ``pos`` ends (at ``end``), or -1 until it has arrived; a line
        longer than Redis's PROTO_INLINE_MAX_SIZE is its "too big <what>" error."""
        buf = self._buf
        nl = _find_c(buf, end, pos)
        if nl < 0:
            if len(buf) - pos > INLINE_MAX_SIZE:
                raise ProtocolError(f"ERR Protocol error: too big {what}")
            self._need = len(buf) + 1
        return nl

    def _inline(self) -> list[bytes] | None:
        buf = self._buf
        pos = self._pos
        nl = self._line(b"\n", pos, "inline request")
        if nl < 0:
            return None
        line_end = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl
        args = split_inline(bytes(buf[pos:line_end]))
        if args is None:
            raise ProtocolError("ERR Protocol error: unbalanced quotes in request")
        self._pos = nl + 1
        if self.unauthenticated and len(args) > UNAUTH_MAX_ARGS:
            raise ProtocolError("ERR Protocol error: unauthenticated multibulk length")
        return args or None
