"""Hostile input: a fuzz run against a server in its own process.

At least 10,000 generated and mutated RESP inputs (every protocol.tcl case from
reference/client-handshakes.md among them) go to the server, each on a fresh connection,
while a second client runs a TASK workload that keeps an exact model of its tasks. The
server must never crash or hang, every reply must parse as RESP and carry a known error code,
the workload must see no error and no corruption (its tasks, listed at the end, are exactly
the model), and the server's memory must come back to within a few MB of its warmed-up size.

Isolation by identity, not by trusting the generator: the server runs with ``requirepass``
(the admin ``default`` user, whose password the fuzzer never sends) and two configured users
without permissions, ``fuzz`` (every fuzz connection authenticates as it, except a share that
stays unauthenticated to exercise the pre-auth limits) and ``work`` (the workload). The fuzzer
therefore can neither run admin commands (FLUSHALL, CONFIG SET, CLIENT KILL, SHUTDOWN...: a few
are sent on purpose and must get NOPERM) nor reach the workload's owner. Generated inputs that
spell an admin command are also dropped, as a second line of defence.

Each input is sent on its own connection, followed by a half-close (``shutdown(SHUT_WR)``): the
server answers what it read, sees end-of-file and closes, so every reply is read to the end
without guessing with quiet timeouts. A share of the inputs is dripped in small chunks to
exercise partial reads. 20 sender threads keep 20 connections in flight at once.

The run happens once per module (the ``fuzz_run`` fixture, ~15 s); three tests judge it:
survival and reply validity, the workload, memory. The bugs the fuzzing found are pinned down
by small deterministic tests at the end (regression tests now that they are fixed); if one
ever reappears, the run tolerates exactly their signature (NESTED_ARRAY_BUG: recognised by
replaying the input through the server's own reader) or withholds their trigger
(HUGE_COUNT_BUG: it would stall every connection in flight for seconds), and says so.

Scale: ``TASKSTORE_LONG=1`` sends 100,000 inputs instead of 10,000 (and runs the workload
correspondingly longer, ~100 s); ``TASKSTORE_FUZZ_SEED=<n>`` picks another deterministic input
set (which inputs are dripped in chunks, and where they are cut, varies from run to run).
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hiredis
import pytest

from helpers import free_port
from rawclient import RawClient, pack

MiB = 1024 * 1024
LONG = os.environ.get("TASKSTORE_LONG", "") not in ("", "0")
N_INPUTS = 100_000 if LONG else 10_000
N_WARMUP = 1_000
SEED = int(os.environ.get("TASKSTORE_FUZZ_SEED", "20261126"))
CONCURRENCY = 20

ADMIN_PASSWORD = "adm-9c41e7d2b5"  # never part of any generated input
FUZZ_USER, FUZZ_PASSWORD = "fuzz", "fz"
WORK_USER, WORK_PASSWORD = "work", "wk-5e8f0a"

KNOWN_CODES = frozenset(
    {
        "ERR",
        "NOAUTH",
        "NOPERM",
        "WRONGPASS",
        "NOPROTO",
        "EXECABORT",
        "NOTFOUND",
        "EXPIRED",
        "INVALIDTRANSITION",
        "NOTREADY",
        "TOOLARGE",
        "LIMIT",
        "EXISTS",
    }
)

CONFIG = f"""
requirepass = "{ADMIN_PASSWORD}"
loglevel = "warning"

[[users]]
name = "{FUZZ_USER}"
password = "{FUZZ_PASSWORD}"

[[users]]
name = "{WORK_USER}"
password = "{WORK_PASSWORD}"
"""

# -- the protocol.tcl cases (reference/client-handshakes.md), with the exact replies ----------
# Sent after "AUTH fuzz fz" on the same connection, so every expected reply starts with +OK.

_SET_X = b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n"
_BIG = 70 * 1024  # more than the 64 KiB line limit
PROTOCOL_TCL: list[tuple[str, bytes, bytes]] = [
    ("*-10 ignored", b"*-10\r\n", b""),
    ("*-10 then PING", b"*-10\r\nPING\r\n", b"+PONG\r\n"),
    (
        "*3000000000",
        b"*3000000000\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    ),
    (
        "expected $ got f",
        _SET_X + b"fooz\r\n",
        b"-ERR Protocol error: expected '$', got 'f'\r\n",
    ),
    ("$-10", _SET_X + b"$-10\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    ("$2000000000", _SET_X + b"$2000000000\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    ("$blabla", _SET_X + b"$blabla\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    ("*1 foo", b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
    (
        "unbalanced quotes",
        b'set """test-key""" test-value\r\nping\r\n',
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
    ),
    # the desync garbage: a little of it waits for more data (closed at our EOF, no reply) ...
    ("\\x00 x16", b"\x00" * 16, b""),
    ("*\\x00 x16", b"*\x00" * 16, b""),
    ("$\\x00 x16", b"$\x00" * 16, b""),
    # ... and enough of it is a protocol error
    ("\\x00 x70K", b"\x00" * _BIG, b"-ERR Protocol error: too big inline request\r\n"),
    ("*\\x00 x35K", b"*\x00" * (_BIG // 2), b"-ERR Protocol error: too big mbulk count string\r\n"),
    ("$\\x00 x35K", b"$\x00" * (_BIG // 2), b"-ERR Protocol error: too big inline request\r\n"),
]

# Admin commands the fuzz user tries on purpose: each must be refused.
ADMIN_ATTEMPTS: list[tuple[bytes, str]] = [
    (pack("FLUSHALL"), "NOPERM"),
    (pack("FLUSHDB"), "NOPERM"),
    (pack("SHUTDOWN"), "NOPERM"),
    (pack("SHUTDOWN", "NOSAVE"), "NOPERM"),
    (pack("CONFIG", "SET", "maxclients", "1"), "NOPERM"),
    (pack("CONFIG", "SET", "requirepass", ""), "NOPERM"),
    (pack("CONFIG", "RESETSTAT"), "NOPERM"),
    (pack("CLIENT", "KILL", "USER", WORK_USER), "NOPERM"),
    (pack("TASK.GET", "x", "OWNER", WORK_USER), "NOPERM"),
    (pack("TASK.LIST", "OWNER", WORK_USER), "NOPERM"),
    (b"FLUSHALL\r\n", "NOPERM"),
    (b"shutdown nosave\r\n", "NOPERM"),
]

# -- the generator ---------------------------------------------------------------------------

_IDS = [f"t{i}" for i in range(12)] + ["", "x" * 257, "id with space", "\xe9t\xe9", "\udcff"]
_STATUSES = ["working", "input_required", "completed", "failed", "cancelled", "WORKING", "done", ""]
_NUMBERS = [
    "0", "1", "-1", "5", "100", "5000", "3600000", "86400000", "86400001", "NONE", "none",
    "9223372036854775807", "9223372036854775808", "18446744073709551616", "1e3", "1.5", " 1",
    "+1", "0x10", "abc", "", "\u0661",
]  # fmt: skip
_JSON = [
    "{}", '{"a":1}', '{"a":null}', '{"a":{"b":[1,2,{"c":null}]}}', '{"s":"\\u00e9\\ud83d\\ude00"}',
    "[1,2]", "null", '"text"', "1", "true", "{", '{"a":}', '{"a":NaN}', '{"a":Infinity}', "1e999",
    '{"a":1e999}', '{"a":1,"a":2}', '{"\\ud800":1}', '"\\ud800"', "\xff\xfe", "", " ", "{}{}",
    '{"a":' * 12 + "1" + "}" * 12,  # deeper than max_variable_depth
    "[" * 3000 + "]" * 3000,  # deeper than the JSON decoder likes
    '{"a":' * 3000 + "1" + "}" * 3000,
    '{"big":"' + "x" * 70_000 + '"}',  # a string over max_string_length
]  # fmt: skip
_MESSAGES = ["progress", "", "\xe9\u2603", "\udcff", "a\r\nb", "x" * 1000]
_WORDS = [
    "PING", "ECHO", "HELLO", "AUTH", "CLIENT", "INFO", "COMMAND", "CONFIG", "MULTI", "EXEC",
    "DISCARD", "WATCH", "UNWATCH", "SELECT", "TIME", "DBSIZE", "ACL", "QUIT", "RESET", "GET",
    "SET", "SUBSCRIBE", "PUBLISH", "TASK.CREATE", "TASK.GET", "TASK.UPDATE", "TASK.LIST",
    "TASK.NOPE", "task.get", "Task.List", "", "\x00", "\xff", "\r\n", "*1", "$4",
]  # fmt: skip


def _forbidden(data: bytes) -> bool:
    """Inputs spelling an admin command are dropped (the fuzz user could not run them anyway)."""
    low = data.lower()
    return (
        any(w in low for w in (b"flushall", b"flushdb", b"shutdown", b"debug", b"kill"))
        or (b"config" in low and b"set" in low)
        or ADMIN_PASSWORD.encode() in low
    )


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")  # "\udcff" becomes the invalid byte 0xff


_LATER_COUNT = re.compile(rb"\n\*(\d{7,})")


def huge_later_count(data: bytes) -> bool:
    """Whether ``data`` holds a ``*N`` header over Redis's limit after its first line, which
    HUGE_COUNT_BUG turns into a stall of every client for seconds."""
    return any(int(m.group(1)) > 1024 * 1024 for m in _LATER_COUNT.finditer(data))


def huge_count_bug_present() -> bool:
    """Probe the server's reader offline: with HUGE_COUNT_BUG, a later *200000000 costs about
    a second (hiredis allocates and frees 200M pointers); without, microseconds."""
    from taskstore.protocol.reader import RequestReader

    reader = RequestReader()
    reader.feed(b"*1\r\n$4\r\nPING\r\n*200000000\r\n")
    t = time.perf_counter()
    try:
        reader.parse()
    except MemoryError:
        return True
    return time.perf_counter() - t > 0.05


class Generator:
    """Deterministic RESP inputs: valid commands, then mutations of them."""

    def __init__(self, seed: int, *, avoid_huge_later_counts: bool = False) -> None:
        self.r = random.Random(seed)
        # while HUGE_COUNT_BUG stalls the server for seconds on such inputs, they would only
        # time out every connection in flight; test_huge_count_after_a_request_* covers them
        self.avoid_huge_later_counts = avoid_huge_later_counts
        self.withheld = 0

    # -- valid commands ---------------------------------------------------------------------

    def pick(self, seq: list[str]) -> str:
        return self.r.choice(seq)

    def task_id(self) -> str:
        r = self.r
        return self.pick(_IDS) if r.random() < 0.8 else "%032x" % r.getrandbits(128)

    def options(self, pairs: list[tuple[str, str]]) -> list[str]:
        r = self.r
        chosen = [p for p in pairs if r.random() < 0.5]
        r.shuffle(chosen)
        out: list[str] = []
        for k, v in chosen:
            out += [k if r.random() < 0.8 else k.lower(), v]
        if r.random() < 0.05:
            out.append(r.choice(pairs or [("OWNER", "")])[0])  # an option without its value
        if r.random() < 0.04:
            out += ["OWNER", self.r.choice(["fuzz", "local", "someone", ""])]
        return out

    def command(self) -> list[str]:
        r = self.r
        kind = r.randrange(40)
        tid = self.task_id()
        status = self.pick(_STATUSES)
        num = self.pick(_NUMBERS)
        msg = self.pick(_MESSAGES)
        js = self.pick(_JSON)
        if kind < 4:
            method = r.choice(["tools/call", "", "\xff", "m" * 300])
            return [
                "TASK.CREATE",
                method,
                *self.options([("TTL", self.pick(_NUMBERS)), ("POLLINTERVAL", num), ("ID", tid)]),
            ]
        if kind < 7:
            return ["TASK.GET", tid, *self.options([])]
        if kind < 10:
            args = ["TASK.UPDATE", tid]
            if r.random() < 0.8:
                args.append(status)
            return args + self.options([("MESSAGE", msg)])
        if kind < 12:
            return ["TASK.SETVARS", tid, js, *self.options([])]
        if kind < 13:
            return ["TASK.SETRESULT", tid, js]
        if kind < 14:
            return ["TASK.RESULT", tid, *self.options([("BLOCK", r.choice(["1", "10", "x"]))])]
        if kind < 16:
            return [
                "TASK.COMPLETE",
                tid,
                r.choice(["completed", "failed", status]),
                js,
                *self.options([("MESSAGE", msg)]),
            ]
        if kind < 17:
            return ["TASK.CANCEL", tid, *self.options([("MESSAGE", msg)])]
        if kind < 19:
            cursor = r.choice(["", "AAAA", "eyJ4IjoxfQ", "!!", "x" * 100, "%x" % r.getrandbits(64)])
            return ["TASK.LIST", *self.options([("CURSOR", cursor), ("LIMIT", num)])]
        if kind < 20:
            return [r.choice(["TASK.CLEANUP", "TASK.CONFIG", "DBSIZE", "TIME", "ACL"])]
        if kind < 21:
            return ["TASK.DEL", tid, *self.options([])]
        if kind < 22:
            return [
                "TASK.WAIT",
                tid,
                *self.options([("STATUS", status), ("BLOCK", r.choice(["1", "20"]))]),
            ]
        if kind < 24:
            return ["PING"] + [msg] * r.randrange(3)
        if kind < 26:
            return ["ECHO"] + [
                r.choice([msg, "\x00\r\n", "e" * r.randrange(1, 20_000)])
            ] * r.choice([0, 1, 1, 1, 2])
        if kind < 28:
            args = ["HELLO"]
            if r.random() < 0.9:
                args.append(r.choice(["2", "3", "3", "1", "4", "x", "-1"]))
            if r.random() < 0.4:
                args += [
                    "AUTH",
                    r.choice([FUZZ_USER, "default", "nobody"]),
                    r.choice([FUZZ_PASSWORD, "bad"]),
                ]
            if r.random() < 0.3:
                args += ["SETNAME", r.choice(["n1", "a b", ""])]
            if r.random() < 0.1:
                args.append("BOGUS")
            return args
        if kind < 30:
            sub = r.choice(
                [
                    "ID",
                    "SETNAME",
                    "GETNAME",
                    "SETINFO",
                    "LIST",
                    "INFO",
                    "NO-EVICT",
                    "NO-TOUCH",
                    "HELP",
                    "NOPE",
                    "",
                ]
            )
            extra = {
                "SETNAME": [r.choice(["n", "a b", "\x01"])],
                "SETINFO": [r.choice(["LIB-NAME", "LIB-VER", "X"]), r.choice(["redis-py", "a b"])],
                "LIST": r.choice(
                    [[], ["TYPE", "normal"], ["ID", "1", "2"], ["TYPE", "pubsub"], ["X"]]
                ),
                "NO-EVICT": [r.choice(["on", "off", "maybe"])],
                "NO-TOUCH": [r.choice(["on", "off"])],
            }.get(sub, [])
            return ["CLIENT", sub, *extra]
        if kind < 31:
            sections = ["server", "clients", "memory", "persistence", "stats", "replication",
                        "keyspace", "tasks", "all", "everything", "default", "nosuch"]  # fmt: skip
            return ["INFO", *r.sample(sections, r.randrange(3))]
        if kind < 32:
            words = r.choice([[], ["COUNT"], ["INFO", "task.get"], ["DOCS", "task.create"],
                              ["DOCS"], ["LIST"], ["GETKEYS", "get", "x"], ["HELP"],
                              ["NOPE"]])  # fmt: skip
            return ["COMMAND", *words]
        if kind < 33:
            return [
                "CONFIG",
                r.choice(["GET", "HELP", "REWRITE"]),
                r.choice(["*", "max*", "requirepass", "timeout"]),
            ]
        if kind < 36:
            return ["MULTI"]  # commands() adds a body and an end
        if kind < 37:
            return [r.choice(["SELECT", "WATCH"]), num] + ([num] if r.random() < 0.2 else [])
        if kind < 38:
            return [
                r.choice(["AUTH"]),
                *r.choice([[FUZZ_USER, FUZZ_PASSWORD], [FUZZ_USER, "bad"], ["x"], ["a", "b", "c"]]),
            ]
        if kind < 39:
            return [
                r.choice(["QUIT", "RESET", "UNWATCH", "SUBSCRIBE", "PUBLISH"]),
                *(["tasks:fuzz"] if r.random() < 0.5 else []),
            ]
        words = [self.pick(_WORDS) for _ in range(r.randrange(1, 6))]
        return words

    def commands(self) -> list[list[str]]:
        """One or more commands (a MULTI block expands into its parts)."""
        out: list[list[str]] = []
        for _ in range(self.r.choice([1, 1, 1, 2, 3])):
            cmd = self.command()
            out.append(cmd)
            if cmd == ["MULTI"]:
                out += [self.command() for _ in range(self.r.randrange(4))]
                out.append([self.r.choice(["EXEC", "EXEC", "DISCARD", "MULTI"])])
        return out

    def encode(self, cmd: list[str]) -> bytes:
        r = self.r
        raw = [_enc(a) for a in cmd]
        if r.random() < 0.75:
            return pack(*raw)
        parts = []
        for a in raw:
            if a and re.fullmatch(rb"[!-~]+", a) and b'"' not in a and b"'" not in a:
                parts.append(a)
            elif r.random() < 0.7:
                esc = "".join(
                    chr(c) if 0x20 <= c < 0x7F and c not in (0x22, 0x5C) else "\\x%02x" % c
                    for c in a
                )
                parts.append(b'"' + esc.encode() + b'"')
            else:
                parts.append(b"'" + a.replace(b"'", b"\\'") + b"'")
        line = b" ".join(parts)
        if r.random() < 0.05:
            line += r.choice([b' "open', b" 'open", b' "x"y', b' "a\\"'])
        return line + r.choice([b"\r\n", b"\r\n", b"\n"])

    # -- mutations ------------------------------------------------------------------------------

    def mutate(self, data: bytes) -> bytes:
        r = self.r
        b = bytearray(data)
        op = r.randrange(12)
        if not b:
            return bytes(r.choice([b"\r\n", b"*", b"$", b"\x00"]))
        i = r.randrange(len(b))
        if op == 0:  # bit flip
            b[i] ^= 1 << r.randrange(8)
        elif op == 1:  # truncation
            del b[i:]
        elif op == 2:  # duplication of a slice
            j = r.randrange(i, len(b) + 1)
            b[j:j] = b[i:j] * r.randrange(1, 4)
        elif op == 3:  # insert interesting bytes
            b[i:i] = r.choice(
                [b"\r", b"\n", b"\r\n", b"\x00", b"*", b"$", b'"', b"'", b" ", b"9", b"\xff", b"-"]
            )
        elif op == 4:  # delete a range
            del b[i : i + r.randrange(1, 8)]
        elif op == 5:  # replace a length with a huge / negative / non-numeric value
            nums = list(re.finditer(rb"[*$](-?\d+)", bytes(b)))
            if nums:
                m = r.choice(nums)
                new = r.choice(
                    [b"2147483648", b"3000000000", b"9223372036854775807", b"9223372036854775808",
                     b"99999999999999999999999", b"-1", b"-10", b"-9223372036854775808", b"0",
                     b"1048576", b"1048577", b"67108864", b"67108865", b"blabla", b"", b"1a", b" 1",
                     b"+1", b"0x10", b"01", b"%d" % (int(m.group(1)) + r.choice([-1, 1]))]
                )  # fmt: skip
                b[m.start(1) : m.end(1)] = new
        elif op == 6:  # NUL bytes
            for _ in range(r.randrange(1, 4)):
                b.insert(r.randrange(len(b) + 1), 0)
        elif op == 7:  # splice with another command (inline into multibulk or the reverse)
            other = self.encode(self.command())
            j = r.randrange(len(other) + 1)
            b = b[:i] + other[j:] if r.random() < 0.5 else bytearray(other[:j]) + b[i:]
        elif op == 8:  # random bytes overwritten
            for _ in range(r.randrange(1, 5)):
                b[r.randrange(len(b))] = r.randrange(256)
        elif op == 9:  # strip or double the CRs
            b = bytearray(bytes(b).replace(b"\r\n", r.choice([b"\n", b"\r\r\n", b"\r"])))
        elif op == 10:  # swap two halves
            b = b[i:] + b[:i]
        else:  # a blank line or *0 / *-1 in between
            b[i:i] = r.choice([b"\r\n", b"*0\r\n", b"*-1\r\n", b"\n\n"])
        return bytes(b)

    def special(self) -> bytes:
        """Declared sizes much larger than the data, long lines and limits."""
        r = self.r
        return r.choice(
            [
                lambda: b"*1048576\r\n$4\r\nPING\r\n",
                lambda: b"*1048577\r\n",
                lambda: b"*%d\r\n" % r.choice([2**31, 2**32 + 1, 10**12]),
                lambda: b"*1\r\n$67108864\r\nabc",
                lambda: b"*1\r\n$67108865\r\n",
                lambda: (
                    b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % r.randrange(10**6, 6 * 10**7)
                    + b"x" * r.randrange(100)
                ),
                lambda: b"*11\r\n" + b"$1\r\na\r\n" * 11,  # over the pre-auth argument limit
                lambda: pack("ECHO", b"y" * r.choice([16 * 1024, 16 * 1024 + 1, 100_000])),
                lambda: b"A" * r.randrange(65 * 1024, 80 * 1024),  # inline line with no end
                lambda: b"PING " + b"B" * r.randrange(65 * 1024, 70 * 1024) + b"\r\n",
                lambda: b"*" + b"1" * r.randrange(65 * 1024, 70 * 1024),
                lambda: b"*1\r\n$" + b"2" * r.randrange(65 * 1024, 70 * 1024),
                lambda: (
                    b"*2\r\n$4\r\nECHO\r\n$3\r\nabc" + b"\r\n" * r.randrange(1, 3) + b"PING\r\n"
                ),
                lambda: b"\r\n" * r.randrange(1, 2000) + b"PING\r\n",
                lambda: b"*0\r\n" * r.randrange(1, 2000) + b"*-1\r\nPING\r\n",
                lambda: pack(*(["PING"] + ["a"] * r.randrange(2000, 20_000))),  # many arguments
                lambda: b'ECHO "unterminated\r\n',
                lambda: b'ECHO \'a\\\'b\' "c\\x4" "\\xzz"\r\n',
                lambda: b"*2\r\n$4\r\nECHO\r\n:12\r\n",
                lambda: b"*1\r\n*1\r\n$4\r\nPING\r\n",
                lambda: b"*1\r\n$4\r\nPING\r\n" * r.randrange(100, 3000),
            ]
        )()

    def input(self) -> bytes:
        r = self.r
        while True:
            if r.random() < 0.04:
                data = self.special()
            else:
                data = b"".join(self.encode(c) for c in self.commands())
                if r.random() < 0.65:
                    for _ in range(r.choice([1, 1, 1, 2, 3, 5])):
                        data = self.mutate(data)
            if _forbidden(data):
                continue
            if self.avoid_huge_later_counts and huge_later_count(data):
                self.withheld += 1
                continue
            return data


# -- sending ---------------------------------------------------------------------------------


@dataclass
class Case:
    data: bytes
    auth: str = "auth"  # auth | hello3 | none | badpass
    expect: bytes | None = None  # the exact reply after the auth reply, when known
    expect_code: str | None = None  # the first error code expected after the auth reply
    chunked: bool = False
    label: str = ""


@dataclass
class Stats:
    inputs: int = 0
    connections: int = 0
    replies: int = 0
    protocol_errors: int = 0
    resets: int = 0
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    protocol_kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    known_bug: list[bytes] = field(default_factory=list)  # inputs hitting NESTED_ARRAY_BUG
    lock: threading.Lock = field(default_factory=threading.Lock)


_AUTH = {
    "auth": pack("AUTH", FUZZ_USER, FUZZ_PASSWORD),
    "hello3": pack("HELLO", "3", "AUTH", FUZZ_USER, FUZZ_PASSWORD),
    "badpass": pack("AUTH", FUZZ_USER, "wrong"),
    "none": b"",
}


def make_cases(gen: Generator, n: int) -> list[Case]:
    r = gen.r
    cases = []
    for _ in range(n):
        auth = r.choices(["auth", "hello3", "none", "badpass"], [70, 10, 15, 5])[0]
        cases.append(Case(gen.input(), auth, chunked=r.random() < 0.12))
    return cases


def fixed_cases() -> list[Case]:
    cases = [Case(data, "auth", expect=exp, label=name) for name, data, exp in PROTOCOL_TCL]
    cases += [Case(data, "none", label="unauthenticated " + name) for name, data, _ in PROTOCOL_TCL]
    cases += [
        Case(data, "auth", expect_code=code, label=f"admin attempt {data!r}")
        for data, code in ADMIN_ATTEMPTS
    ]
    cases += [
        Case(data, "none", expect_code="NOAUTH", label=f"unauthenticated {data!r}")
        for data, _ in ADMIN_ATTEMPTS
    ]
    return cases


def _walk_errors(value: Any, out: list[str]) -> None:
    if isinstance(value, hiredis.ReplyError):
        out.append(str(value))
    elif isinstance(value, list | tuple | set):
        for v in value:
            _walk_errors(v, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk_errors(k, out)
            _walk_errors(v, out)


def check_output(case: Case, out: bytes, reset: bool, stats: Stats) -> None:
    """Every reply parses as RESP, every error carries a known code, nothing follows a
    protocol error, the authentication worked, and the fixed cases get their exact replies."""
    problems: list[str] = []
    reader = hiredis.Reader()
    reader.feed(out)
    replies: list[Any] = []
    try:
        while (value := reader.gets()) is not False:
            replies.append(value)
    except hiredis.ProtocolError as e:
        problems.append(f"reply is not valid RESP: {e}")
    if reader.has_data() and not reset:
        problems.append("reply cut short")
    stats.replies += len(replies)
    for i, value in enumerate(replies):
        errors: list[str] = []
        _walk_errors(value, errors)
        for text in errors:
            code = text.split(" ", 1)[0]
            stats.codes[code] += 1
            if code not in KNOWN_CODES:
                problems.append(f"unknown error code {code!r}: {text[:200]!r}")
            if "internal error" in text:
                problems.append(f"internal error: {text[:200]!r}")
            if text.startswith("ERR Protocol error"):
                stats.protocol_errors += 1
                stats.protocol_kinds[text[len("ERR Protocol error: ") :][:40]] += 1
                if i != len(replies) - 1:
                    problems.append("a reply followed a protocol error")
    if case.auth in ("auth", "hello3") and (
        not replies or isinstance(replies[0], hiredis.ReplyError)
    ):
        problems.append("authentication as the fuzz user failed")
    first_len = len(_AUTH[case.auth]) and _reply_len(out)
    rest = out[first_len:] if case.auth != "none" else out
    if case.expect is not None and rest != case.expect:
        problems.append(f"expected exactly {case.expect!r}")
    if case.expect_code is not None and not rest.startswith(b"-" + case.expect_code.encode()):
        problems.append(f"expected a {case.expect_code} error")
    if not problems:
        return
    if reader_accepts_nested_array(case.data):
        # NESTED_ARRAY_BUG (pinned down by test_nested_array_element_*): its symptoms are an
        # internal error or, when the bad command is the first of a read, an exception out of
        # data_received that drops the connection with no reply at all
        stats.known_bug.append(case.data)
        return
    for why in problems:
        stats.failures.append(
            f"{why}\n    input ({case.auth}) {case.label}: {case.data[:300]!r}"
            f"\n    output: {out[:300]!r}"
        )


NESTED_ARRAY_BUG = (
    "RequestReader._fast accepts an array nested in a request (len() of a list raises no "
    "TypeError), miscounts the bytes consumed and desyncs: the command runs with a list "
    "argument (internal error) and bytes inside a later bulk string run as a command"
)


def reader_accepts_nested_array(data: bytes) -> bool:
    """Whether the server's own request reader, run offline on ``data`` split at some point,
    hands out a command with a non-bytes argument (NESTED_ARRAY_BUG). Used only to recognise
    that known bug in a failing fuzz input; test_nested_array_element_* pins it down."""
    from taskstore.protocol.reader import RequestReader

    n = len(data)
    splits: list[tuple[int, ...]] = [(n,)]
    splits += [(i,) for i in range(1, min(n, 4096))]
    if n <= 200:
        splits += [(i, j) for i in range(1, n) for j in range(i + 1, n)]
    for cuts in splits:
        reader = RequestReader()
        for a, b in zip((0, *cuts), (*cuts, n), strict=True):
            reader.feed(data[a:b])
            cmds, err = reader.parse()
            if any(not isinstance(arg, bytes) for cmd in cmds for arg in cmd):
                return True
            if err is not None:
                break
    return False


def _reply_len(out: bytes) -> int:
    """Length in bytes of the first reply in ``out``."""
    reader = hiredis.Reader()
    for n in range(1, len(out) + 1):
        reader.feed(out[n - 1 : n])
        if reader.gets() is not False:
            return n
    return len(out)


def send_case(port: int, case: Case, stats: Stats, rng: random.Random) -> None:
    """One input on a fresh connection: send it (after the authentication prefix), half-close,
    read every reply until the server closes, check them."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    reset = False
    out = bytearray()
    try:
        data = _AUTH[case.auth] + case.data
        try:
            if case.chunked and len(data) > 1:
                cuts = sorted(
                    rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(1, 5)))
                )
                for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
                    sock.sendall(data[a:b])
                    time.sleep(0.002)
            else:
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (ConnectionError, OSError):
            reset = True  # the server closed first (protocol error, QUIT): read what it sent
        try:
            while chunk := sock.recv(1 << 16):
                out += chunk
        except TimeoutError:
            with stats.lock:
                stats.failures.append(
                    f"no end of reply 15 s after EOF: input {case.data[:300]!r}, "
                    f"got {bytes(out[:300])!r}"
                )
            return
        except ConnectionError:
            reset = True
    finally:
        sock.close()
    with stats.lock:
        stats.inputs += 1
        stats.connections += 1
        if reset:
            stats.resets += 1
        check_output(case, bytes(out), reset, stats)


def run_fuzz(port: int, cases: list[Case], stats: Stats, seed: int) -> None:
    """Send the cases from CONCURRENCY threads, each input on its own connection."""
    it = iter(cases)
    lock = threading.Lock()

    def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        while True:
            with lock:
                case = next(it, None)
            if case is None:
                return
            try:
                send_case(port, case, stats, rng)
            except Exception as e:  # connect failure...: the server must keep accepting
                with stats.lock:
                    stats.failures.append(f"{type(e).__name__}: {e} on input {case.data[:200]!r}")

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# -- the workload ----------------------------------------------------------------------------

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TTL_MS = 3_600_000


@dataclass
class Model:
    task_id: str
    poll: int
    status: str = "working"
    message: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    result: bytes | None = None
    created: str = ""
    updated: str = ""

    def wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status,
            "createdAt": self.created,
            "lastUpdatedAt": self.updated,
            "ttl": TTL_MS,
            "pollInterval": self.poll,
        }
        if self.message is not None:
            d["statusMessage"] = self.message
        if self.variables:
            d["_meta"] = self.variables
        return d


class WorkloadError(AssertionError):
    pass


class Workload(threading.Thread):
    """A well-behaved client with an exact model of its tasks; stops at the first surprise."""

    MAX_LIVE = 150

    def __init__(self, port: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.r = random.Random(seed)
        self.tasks: dict[str, Model] = {}  # insertion order = creation order
        self.errors: list[str] = []
        self.latencies: list[float] = []
        self.created = self.deleted = 0
        self.stop_event = threading.Event()
        self.client: RawClient | None = None

    def call(self, *args: bytes | str | int) -> Any:
        assert self.client is not None
        t = time.perf_counter()
        reply = self.client.call(*args)
        self.latencies.append(time.perf_counter() - t)
        if isinstance(reply, hiredis.ReplyError):
            raise WorkloadError(f"{args[0]!r} {args[1:]!r} -> error {reply}")
        return reply

    def expect(self, reply: Any, m: Model, what: str) -> None:
        if not isinstance(reply, bytes):
            raise WorkloadError(f"{what}: not a bulk string: {reply!r}")
        got = json.loads(reply)
        updated = got.get("lastUpdatedAt", "")
        if not m.created:  # the create reply fixes createdAt
            m.created = got.get("createdAt", "")
            if not _TIME.fullmatch(m.created) or updated != m.created:
                raise WorkloadError(f"{what}: bad timestamps {reply!r}")
        if not _TIME.fullmatch(updated) or updated < m.updated:
            raise WorkloadError(f"{what}: lastUpdatedAt went back: {updated} < {m.updated}")
        m.updated = updated
        want = m.wire()
        if got != want:
            raise WorkloadError(f"{what}: task differs from the model\n  got  {got}\n  want {want}")

    def one_task(self, i: int) -> None:
        r = self.r
        m = Model("%032x" % r.getrandbits(128), r.randrange(100, 10_000))
        self.expect(
            self.call(
                "TASK.CREATE", "tools/call", "TTL", TTL_MS, "POLLINTERVAL", m.poll, "ID", m.task_id
            ),
            m,
            "create",
        )
        self.tasks[m.task_id] = m
        self.created += 1
        v1 = {"n": i, "s": f"\xfcn\xef\u2603 {m.task_id[:8]}", "nested": {"x": [1, 2, {"y": None}]}}
        m.variables.update(v1)
        self.expect(self.call("TASK.SETVARS", m.task_id, json.dumps(v1)), m, "setvars")
        if r.random() < 0.8:
            m.status, m.message = "input_required", f"waiting for input #{i}"
            self.expect(
                self.call("TASK.UPDATE", m.task_id, "input_required", "MESSAGE", m.message),
                m,
                "update",
            )
        v2 = {"n": None, "flag": True, "list": list(range(i % 7))}
        m.variables.pop("n")
        m.variables.update({"flag": True, "list": v2["list"]})
        self.expect(self.call("TASK.SETVARS", m.task_id, json.dumps(v2)), m, "setvars 2")
        if r.random() < 0.5:
            m.message = f"progress {i}"
            self.expect(self.call("TASK.UPDATE", m.task_id, "MESSAGE", m.message), m, "message")
        end = r.randrange(10)
        if end < 5:
            if m.status != "working":
                m.status, m.message = "working", None
                self.expect(self.call("TASK.UPDATE", m.task_id, "working"), m, "back to working")
            result = json.dumps(
                {"content": [{"type": "text", "text": f"done {i}"}], "isError": False}
            ).encode()
            m.status, m.message, m.result = "completed", "done", result
            self.expect(
                self.call("TASK.COMPLETE", m.task_id, "completed", result, "MESSAGE", "done"),
                m,
                "complete",
            )
        elif end < 7:
            result = b'{"isError":true}'
            m.status, m.message, m.result = "failed", None, result
            self.expect(self.call("TASK.COMPLETE", m.task_id, "failed", result), m, "fail")
        elif end < 8:
            m.status, m.message = "cancelled", "stop"
            self.expect(self.call("TASK.CANCEL", m.task_id, "MESSAGE", "stop"), m, "cancel")
        if m.result is not None:
            got = self.call("TASK.RESULT", m.task_id)
            if got != m.result:
                raise WorkloadError(f"result of {m.task_id}: {got!r} != {m.result!r}")
        self.expect(self.call("TASK.GET", m.task_id), m, "get")
        # an older task must not have changed behind our back
        old = self.tasks[r.choice(list(self.tasks))]
        self.expect(self.call("TASK.GET", old.task_id), old, "get older")
        if len(self.tasks) > self.MAX_LIVE:  # keep the workload's memory flat
            oldest = next(iter(self.tasks))
            if self.call("TASK.DEL", oldest) != 1:
                raise WorkloadError(f"TASK.DEL {oldest} did not delete")
            del self.tasks[oldest]
            self.deleted += 1

    def run(self) -> None:
        try:
            with RawClient(self.port) as c:
                self.client = c
                if c.call("AUTH", WORK_USER, WORK_PASSWORD) != b"OK":
                    raise WorkloadError("AUTH work failed")
                i = 0
                while not self.stop_event.is_set():
                    self.one_task(i)
                    i += 1
        except BaseException as e:  # reported by the test
            self.errors.append("".join(traceback.format_exception(e)))

    def verify_listing(self) -> int:
        """Page through TASK.LIST: exactly the model, newest first. Returns the page count."""
        with RawClient(self.port) as c:
            assert c.call("AUTH", WORK_USER, WORK_PASSWORD) == b"OK"
            listed, pages = list_all(c, self.r.randrange(1, 20))
        want = [m.wire() for m in reversed(self.tasks.values())]
        assert [t["taskId"] for t in listed] == [t["taskId"] for t in want]
        for got, exp in zip(listed, want, strict=True):
            assert got == exp
        return pages


def list_all(c: RawClient, limit: int) -> tuple[list[dict[str, Any]], int]:
    tasks: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        args: list[str | int] = ["TASK.LIST", "LIMIT", limit]
        if cursor is not None:
            args += ["CURSOR", cursor]
        reply = c.call(*args)
        assert isinstance(reply, bytes), reply
        page = json.loads(reply)
        tasks += page["tasks"]
        pages += 1
        cursor = page.get("nextCursor")
        if cursor is None:
            return tasks, pages


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# -- the test --------------------------------------------------------------------------------


def drain(stream: Any, lines: list[str]) -> threading.Thread:
    def run() -> None:
        try:
            for line in stream:
                lines.append(line)
        except (ValueError, OSError):  # closed by the fixture's teardown
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@dataclass
class FuzzRun:
    """What one fuzz run left behind, for the tests below to judge."""

    port: int
    proc: subprocess.Popen[str]
    stats: Stats
    workload: Workload
    log_lines: list[str]
    rss_before: int
    rss_after: int
    alive: bool
    pongs: int


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzRun]:
    """One fuzz run with the TASK workload alongside, against a server in its own process;
    the three tests below check its outcome (survival and replies, the workload, memory)."""
    config = tmp_path_factory.mktemp("fuzz") / "fuzz.toml"
    config.write_text(CONFIG)
    port = free_port()
    # A cap on tasks per owner keeps what the run leaves stored the same in both scales: the
    # fuzz owner holds ~100 tasks after 10,000 inputs and, uncapped, ~1,060 (2.4 MiB with their
    # variables and results) after 100,000, which is data, not a leak. The workload never holds
    # more than Workload.MAX_LIVE.
    args = [str(config), "--max-tasks-per-owner", "300", "--mcp-version", "2025-11-25"]
    args += ["--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskstore", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert "ready on" in line, line
        log_lines: list[str] = []
        drain(proc.stderr, log_lines)
        yield _fuzz(port, proc, log_lines)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _fuzz(port: int, proc: subprocess.Popen[str], log_lines: list[str]) -> FuzzRun:
    started = time.monotonic()
    gen = Generator(SEED, avoid_huge_later_counts=huge_count_bug_present())
    warm_cases = make_cases(gen, N_WARMUP)
    # hiredis may allocate the element list of a nested header up to Redis's limit (8 MiB of
    # pointers for *1048576) and free it at once, but after the second time glibc keeps the
    # heap it came from: a one-time step of ~8 MiB in RSS that belongs in the baseline.
    warm_cases += [Case(b"*2\r\n$4\r\nPING\r\n*1048576\r\n", label="warm-up")] * 3
    main_cases = fixed_cases() + make_cases(gen, N_INPUTS)
    random.Random(SEED).shuffle(main_cases)
    generated = time.monotonic() - started

    workload = Workload(port, SEED + 1)
    workload.start()
    stats = Stats()
    run_fuzz(port, warm_cases, stats, SEED + 2)  # the allocator's pools, the first tasks
    time.sleep(1.0)
    rss_before = rss_of(proc.pid)
    t0 = time.monotonic()
    run_fuzz(port, main_cases, stats, SEED + 3)
    fuzz_seconds = time.monotonic() - t0
    workload.stop_event.set()
    workload.join(30)
    if workload.is_alive():
        workload.errors.append("the workload client hung")

    alive = proc.poll() is None
    pongs = 0
    if alive:
        with RawClient(port) as c:
            if c.call("AUTH", FUZZ_USER, FUZZ_PASSWORD) == b"OK":
                for _ in range(5):
                    pongs += c.call("PING") == b"PONG"
                    time.sleep(0.2)
    rss_after = rss_of(proc.pid) if alive else 0

    lat = workload.latencies or [0.0]
    print(
        f"\nfuzz: {stats.inputs} inputs ({len(main_cases)} main + {len(warm_cases)} warm-up; "
        f"{N_INPUTS} generated from seed {SEED}, generated in {generated:.1f} s, sent in "
        f"{fuzz_seconds:.1f} s), {stats.connections} connections, {stats.replies} replies, "
        f"{stats.protocol_errors} protocol errors, {stats.resets} connection resets"
    )
    print(f"  error codes: {dict(stats.codes.most_common())}")
    print(f"  protocol errors: {dict(stats.protocol_kinds.most_common(12))}")
    if gen.withheld:
        print(
            f"  KNOWN BUG: {gen.withheld} generated inputs with a huge later *N withheld "
            f"({HUGE_COUNT_BUG})"
        )
    if stats.known_bug:
        print(
            f"  KNOWN BUG hit by {len(stats.known_bug)} inputs ({NESTED_ARRAY_BUG}), "
            f"e.g. {stats.known_bug[0][:120]!r}"
        )
    print(
        f"  workload: {workload.created} tasks created, {workload.deleted} deleted, "
        f"{len(workload.latencies)} requests, latency p50 {percentile(lat, 0.5) * 1000:.2f} ms, "
        f"p99 {percentile(lat, 0.99) * 1000:.2f} ms, max {max(lat) * 1000:.1f} ms"
    )
    print(
        f"  server RSS after warm-up {rss_before / MiB:.1f} MiB, after the run "
        f"{rss_after / MiB:.1f} MiB, growth {(rss_after - rss_before) / MiB:+.2f} MiB; "
        f"run took {time.monotonic() - started:.1f} s"
    )
    return FuzzRun(port, proc, stats, workload, log_lines, rss_before, rss_after, alive, pongs)


def test_fuzz_server_survives_and_every_reply_is_valid(fuzz_run: FuzzRun) -> None:
    stats = fuzz_run.stats
    assert fuzz_run.alive, "the server process died"
    assert fuzz_run.pongs == 5, "the server does not answer PING after the run"
    assert stats.inputs >= N_INPUTS + len(PROTOCOL_TCL)
    assert not stats.failures, f"{len(stats.failures)} bad replies, first ones:\n" + "\n".join(
        stats.failures[:10]
    )
    bad_log = [line for line in fuzz_run.log_lines if "Traceback" in line or "ERROR" in line]
    if stats.known_bug:  # NESTED_ARRAY_BUG logs tracebacks; skip the log check until it is fixed
        print(f"\n  server log: {len(bad_log)} error lines, not checked (known bug hit)")
    else:
        assert not bad_log, "".join(fuzz_run.log_lines[-40:])


def test_fuzz_workload_sees_no_error_and_no_corruption(fuzz_run: FuzzRun) -> None:
    workload = fuzz_run.workload
    assert not workload.errors, workload.errors[0]
    assert workload.created > 50, "the workload hardly ran"
    assert max(workload.latencies) < 2.0, f"a workload request took {max(workload.latencies):.2f} s"
    # hidden state: the workload's owner holds exactly its model, and the fuzzer sees none of it
    pages = workload.verify_listing()
    with RawClient(fuzz_run.port) as c:
        assert c.call("AUTH", FUZZ_USER, FUZZ_PASSWORD) == b"OK"
        fuzz_tasks, _ = list_all(c, 1000)
        for tid in workload.tasks:
            assert isinstance(c.call("TASK.GET", tid), hiredis.ReplyError)
    leaked = {t["taskId"] for t in fuzz_tasks} & set(workload.tasks)
    assert not leaked, leaked
    print(
        f"\n  listing: {len(workload.tasks)} workload tasks in {pages} pages match the model; "
        f"the fuzz owner holds {len(fuzz_tasks)} tasks"
    )


def test_fuzz_memory_returns_to_baseline(fuzz_run: FuzzRun) -> None:
    grown = fuzz_run.rss_after - fuzz_run.rss_before
    print(f"\n  server RSS growth over the fuzz run: {grown / MiB:+.2f} MiB")
    # "within a few MB": 0.8 MiB measured without the leak (the fuzz owner's ~100 tasks,
    # allocator slack); 3.5-5.5 MiB with the leak of docs/memory.md (the server closing
    # connections: a closed asyncio transport is a reference cycle that the CLI's gc.freeze()
    # put out of reach, and each transport was held 1 s by its close timer)
    assert grown < 2 * MiB, f"RSS grew {grown / MiB:.1f} MiB"


def test_connections_closed_by_a_protocol_error_are_freed(spawn_server) -> None:
    srv = spawn_server()

    def garbage() -> None:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"A" * 80_000)  # an inline line over 64 KiB: "too big inline request"
            s.shutdown(socket.SHUT_WR)
            while s.recv(1 << 16):
                pass

    for _ in range(200):
        garbage()
    time.sleep(1.2)
    before = srv.rss()
    for _ in range(2000):
        garbage()
    time.sleep(1.2)
    grown = srv.rss() - before
    print(f"\n2000 connections closed by a protocol error: RSS {grown / MiB:+.1f} MiB")
    assert grown < 8 * MiB, f"RSS grew {grown / MiB:.1f} MiB"


# -- bugs the fuzz run found, pinned down -----------------------------------------------------
#
# Redis answers both requests below with "-ERR Protocol error: expected '$', got '*'" and closes
# the connection (an element of a request must be a bulk string). taskstore's reader fast path
# (RequestReader._fast, hiredis) accepts a nested array as an argument: len() of a list raises no
# TypeError, so the "plain bulk strings" check passes, and the byte count computed from the
# lengths is wrong for a nested array ("*0\r\n" is 4 bytes, counted as 6), so the reader's
# position lands inside the following data.


def test_nested_array_element_is_a_protocol_error(server) -> None:
    # one write, complete: the miscounts cancel out (+2 +2 -4), hiredis's parse is accepted and
    # TASK.GET runs with list arguments -> "-ERR internal error running 'task.get'", connection open
    with RawClient(server.port) as c:
        out = c.raw(b"*4\r\n$8\r\nTASK.GET\r\n*0\r\n*0\r\n*1\r\n$1\r\nx\r\n", 0.2)
        assert out == b"-ERR Protocol error: expected '$', got '*'\r\n"
        assert c.is_closed(1.0)


def test_nested_array_element_does_not_run_bulk_contents(server) -> None:
    # two writes: the reader skips 2 bytes too many, into "$10", and then runs the contents of
    # the bulk string "PING hello" as an inline command. Actual reply:
    # "*0\r\n-ERR unknown command '0', with args beginning with: \r\n$5\r\nhello\r\n", open.
    with RawClient(server.port) as c:
        out = c.raw(b"*2\r\n$4\r\nECHO\r\n*0\r\n$10", 0.2)
        out += c.raw(b"\r\nPING hello\r\n", 0.2)
        assert out == b"-ERR Protocol error: expected '$', got '*'\r\n"
        assert c.is_closed(1.0)


HUGE_COUNT_BUG = (
    "RequestReader._fast checks only the first header of a read: a later '*N' goes to hiredis "
    "unchecked, which allocates a list of N pointers (up to 2**32-1) and frees it again, so the "
    "event loop stalls O(N) (*1000000000: ~4 s for every client, *3000000000: ~12 s), or "
    "data_received raises MemoryError (*4294967295) and the connection is dropped with no reply"
)


@pytest.mark.parametrize("count", [1_000_000_000, 2**32 - 1])
def test_huge_count_after_a_request_is_refused_at_once(spawn_server, count: int) -> None:
    # Redis: "+PONG", then "-ERR Protocol error: invalid multibulk length" and close, at once;
    # nobody else notices. A server in its own process: the failure mode allocates gigabytes.
    srv = spawn_server()
    with RawClient(srv.port, timeout=60) as other, RawClient(srv.port, timeout=60) as c:
        assert other.call("PING") == b"PONG"
        c.send(b"*1\r\n$4\r\nPING\r\n*%d\r\n" % count)
        time.sleep(0.05)
        t = time.perf_counter()
        assert other.call("PING") == b"PONG"
        stalled = time.perf_counter() - t
        out = b""
        while chunk := c.sock.recv(1 << 16):
            out += chunk
        print(f"\n*{count} after a PING: another client waited {stalled:.2f} s; reply {out!r}")
        assert out == b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
        assert stalled < 1.0, f"another client's PING took {stalled:.1f} s"
