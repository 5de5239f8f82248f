"""The Functions library itself: hostile raw FCALLs answered byte for byte as taskstore's own
TASK commands answer them, the loader (`python -m taskstore.functions load|check`), the
client's error when the library is missing or outdated, and the slot spread on the cluster."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conformance.backends import (
    LIMITS,
    PYTHON,
    Backend,
    binary,
    child_env,
    free_port,
    start_server,
    stop,
)
from taskstore.client import AsyncTaskClient, LibraryNotLoaded, TaskClient
from taskstore.functions import config_arg, library_code, library_version, load

CFG = config_arg(LIMITS)
STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CURSOR = re.compile(rb'"nextCursor":"[A-Za-z0-9_-]{28}"')


class Pair:
    """The same TASK command on taskstore (TASK.* … OWNER o) and on Redis (FCALL ts_* …)."""

    def __init__(self, backends: dict[str, Backend], owner: str) -> None:
        self.owner = owner
        self.ts = redis.Redis.from_url(backends["taskstore"].url, single_connection_client=True)
        self.ts.execute_command("TASK.VERSION", "2025-11-25")
        self.rd = redis.Redis.from_url(backends["redis"].url)
        self.generation = "2025-11-25"

    def close(self) -> None:
        self.ts.close()
        self.rd.close()

    def v2(self) -> None:
        self.ts.execute_command("TASK.VERSION", "2026-07-28")
        self.generation = "2026-07-28"

    def _run(self, conn: redis.Redis, args: tuple[Any, ...]) -> Any:
        try:
            return conn.execute_command(*args)
        except redis.ResponseError as e:
            text = str(e)
            # redis-py strips a leading "ERR "; both sides alike
            return ("error", text)

    def both(self, command: str, *args: Any) -> tuple[Any, Any]:
        ts = self._run(self.ts, (f"TASK.{command}", *args, "OWNER", self.owner))
        head: list[Any] = [self.generation, CFG]
        if command == "CREATE":
            head.append("00" * 16)
        rd = self._run(
            self.rd, ("FCALL", f"ts_{command.lower()}", 1, f"ts:{{{self.owner}}}:", *head, *args)
        )
        return ts, rd

    def same(self, command: str, *args: Any) -> Any:
        ts, rd = self.both(command, *args)
        if isinstance(ts, dict):  # a RESP3 map (TASK.INSPECT); the function's is flat
            ts = [x for kv in ts.items() for x in kv]
        assert normal(ts) == normal(rd), (command, args)
        return ts


def normal(reply: Any) -> Any:
    """A reply without what differs by design: timestamps, and cursors (MACs under each
    server's own secret)."""
    if isinstance(reply, bytes):
        return CURSOR.sub(b"<cursor>", STAMP.sub(b"<t>", reply))
    if isinstance(reply, list):
        return [normal(x) for x in reply]
    return reply


@pytest.fixture
def pair(backends: dict[str, Backend]) -> Iterator[Pair]:
    p = Pair(backends, Backend("x", "").owner("pair"))
    try:
        yield p
    finally:
        p.close()


JSON_INPUTS: list[bytes] = [
    b'{"a":',
    b"[1]",
    b'"x"',
    b"NaN",
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":-Infinity}',
    b'{"a":1e400}',
    b'{"a" 1}',
    b'{"a":1,}',
    b'{"a":1 "b":2}',
    b'{"a":01}',
    b'{"a":-}',
    b'{"a":"\x01"}',
    b'{"a":"\\x"}',
    b'{"a":"\\u12"}',
    b'{"a":"unterminated}',
    b'\xef\xbb\xbf{"a":1}',
    b'{"a":"\xff"}',
    b'{"a":"\xed\xa0\x80"}',
    b"",
    b"   ",
    b'{"a":1} x',
    b'\n\n {"a":\n [1,\n x]}',
    b'{"\xc3\xa9":"\xc3\xa9", "b": tru}',
    b' {"a" : 1 } ',
    b'{"a":{"b":1},"a":2,"c":3}',
    b'{"n":[1.0,1E2,-0,-0.0,1e-7,123456789012345678901234567890,0.1e1,5e-324,'
    b"1.7976931348623157e308,1e16,1e15,123.456e-10,0.30000000000000004,2.5E+3]}",
    b'{"s":"\\ud83d\\ude00\\u00e9\\/\\b\\f\\n\\r\\t\\"\\\\ \\u0000\\u001f\\u007f\\u2028"}',
    b'{"s":"\\udc00 lone"}',
    b'{"s":"\\ud800\\u0041"}',
    b'{"t":[true,false,null,{},[],""]}',
    b'{"a":' + b"[" * 3 + b"]" * 3 + b"}",
    b'{"a":' + b"[" * 700 + b"]" * 700 + b"}",
    # what a lenient JSON parser lets through
    b"[1.]",
    b"[-.5]",
    b"[1.e5]",
    b"[+1]",
    b"[0x10]",
    b"[-01]",
    b'["raw\ttab"]',
    b'["raw\nnewline"]',
    b'{"v":"1.x and -.5 in a string","n":[1.5,-0.5]}',
    b'["\\ud800"]',
    b"[1,2]\n",
]


@pytest.mark.parametrize("data", JSON_INPUTS, ids=range(len(JSON_INPUTS)))
def test_setvars_json_parity(pair: Pair, data: bytes) -> None:
    """Parsing and re-encoding JSON: the same reply (task JSON or error) on both."""
    pair.same("CREATE", "tools/call", "ID", "v")
    with_limits = pair.same("SETVARS", "v", data)
    assert with_limits is not None


MERGES: list[bytes] = [
    b'{"a":1,"b":"x\\"y","c":{"d":[1,{"e":null}]},"\\u00e9":"\\u00fc","q\\"k":2.50}',
    b'{"b":null,"z":[],"a":{"n":-0.0}}',
    b'{"b":"back","q\\"k":null,"s":"a,b}c]d{e[f\\\\"}',
    b'{"c":null,"t":true,"f":false,"n":1e22}',
    b'{"ghost":null}',
    b'{"s":"\\udc00"}',  # a lone surrogate: the whole text becomes ASCII
    b'{"more":"\\u00e9"}',
    b'{"s":null}',
    b'{"more":null,"a":null,"z":null,"\\u00e9":null,"b":null,"t":null,"f":null,"n":null}',
    b'{"again":1}',
]


def test_setvars_merge_parity(pair: Pair) -> None:
    """Successive merges into stored variables (keys kept in place, nulls deleting, escapes,
    the ASCII fallback and back): the same task JSON after each."""
    pair.same("CREATE", "tools/call", "ID", "m")
    for data in MERGES + JSON_INPUTS:
        pair.same("SETVARS", "m", data)
    pair.same("INSPECT", "m")


@pytest.mark.parametrize("data", JSON_INPUTS, ids=range(len(JSON_INPUTS)))
def test_result_and_object_parity(pair: Pair, data: bytes) -> None:
    pair.v2()
    pair.same("CREATE", "tools/call", "ID", "r")
    pair.same("SETRESULT", "r", data)
    pair.same("RESULT", "r", "ANY")
    pair.same("ASK", "r", "k", data)
    pair.same("ASK", "r", "q", b'{"method":"m","params":' + data + b"}")
    pair.same("FAIL", "r", data)
    pair.same("GET", "r")


ARGUMENT_CASES: list[tuple[str, tuple[Any, ...]]] = [
    ("CREATE", ("m", "TTL", "abc")),
    ("CREATE", ("m", "TTL", "0060000", "ID", "c1")),  # leading zeros; alive to the end
    ("CREATE", ("m", "ttl", "100", "pollinterval", "20", "id", "c2")),
    ("CREATE", ("m", "TTL", "none")),
    ("CREATE", ("m", "POLLINTERVAL", "0x1")),
    ("CREATE", ("m", "ID")),
    ("CREATE", ("m", "FOO", "bar")),
    ("CREATE", (b"\xff",)),
    ("CREATE", ("m", "ID", "a\x7fb")),
    ("CREATE", ("m", "ID", "x" * 256)),
    ("CREATE", ("m", "TTL", "99999999999999999999999")),
    ("GET", ("c1", "extra")),
    ("GET", ("",)),
    ("UPDATE", ("c1", "Working")),
    ("UPDATE", ("c1", "\x01bad")),
    ("UPDATE", ("c1", "x" * 70)),
    ("UPDATE", ("c1", "working", "MESSAGE")),
    ("UPDATE", ("c1", "MESSAGE", b"\xff")),
    ("UPDATE", ("c1", "input_required", "message", "lower-case option")),
    ("UPDATE", ("c1", "MESSAGE", "only the message")),
    ("COMPLETE", ("c1", "done", "{}")),
    ("COMPLETE", ("c1", "working", "{}")),
    ("COMPLETE", ("c1", "completed", "[1,", "MESSAGE", "m")),
    ("LIST", ("LIMIT", "abc")),
    ("LIST", ("LIMIT", "0")),
    ("LIST", ("LIMIT", "51")),
    ("LIST", ("CURSOR", "")),
    ("LIST", ("CURSOR", "!" * 28)),
    ("LIST", ("CURSOR", "AQAAAAAAAAACPOCaLKEU8M1VU79z")),
    ("LIST", ("LIMIT", "1", "LIMIT", "2")),
    ("LIST", ("BOGUS",)),
    ("WAIT", ("c1", "STATUS", "nope", "BLOCK", "10")),
    ("WAIT", ("c1", "BLOCK", "abc")),
    ("WAIT", ("c1", "BLOCK", "99999999999999999999")),
    ("WAIT", ("c1", "BLOCK", "-0", "STATUS", "completed")),
    ("RESULT", ("c1", "BLOCK", "-1")),
    ("RESULT", ("c1", "ANY", "EXTRA")),
    ("ANSWERS", ("c1", "BLOCK", "1.5")),
    ("ASK", ("c1", "k")),
    ("ASK", ("c1", "MESSAGE", "m")),
    ("ASK", ("c1", "k", '{"method":"m","params":{}}', "MESSAGE")),
    ("ASK", ("c1", "it's", "[]")),
    ("ASK", ("c1", 'say "hi"', "[]")),
    ("ASK", ("c1", "both'\"\\", "[]")),
    ("ASK", ("c1", "k", '{"method":"m","params":{}}', "k", '{"method":"m","params":{}}')),
    ("ANSWER", ("c1", "k", "{}", "MESSAGE", "m")),
    ("ANSWER", ("c1", "k")),
    ("ANSWER", ("c1", "\x01", "[]")),
    ("ANSWER", ("c1", "it's", "{}")),
    ("FAIL", ("c1", '{"code":1,"message":"m"}', "MESSAGE", b"\xff")),
    ("CANCEL", ("c1", "REQUEST", "REQUEST")),
    ("CANCEL", ("c1", "NOW")),
    ("LEASE", ("c1", "w", "1.5")),
    ("LEASE", ("c1", "w", "-1")),
    ("LEASE", ("c1", "w w", "10")),
    ("LEASE", ("c1", "w", "86400001")),
    ("DEL", ("bad id",)),
    ("DEL", ("c1", "extra")),
    ("INSPECT", ("missing",)),
    ("SETVARS", ("missing", "{}")),
    ("SETRESULT", ("c1", "1", "x")),
    ("CLEANUP", ("x",)),
]


def test_argument_parity(pair: Pair) -> None:
    """Options, option order, case, malformed numbers, ids, cursors, keys: the same replies."""
    for command, args in ARGUMENT_CASES:
        pair.same(command, *args)
    pair.same("CREATE", "m", "ID", "c1")
    for command, args in ARGUMENT_CASES:
        pair.same(command, *args)
    pair.same("INSPECT", "c1")
    pair.same("LIST")


def test_contract_errors(backends: dict[str, Backend]) -> None:
    """What only FCALL callers can get wrong: the key, the generation, the config."""
    r = redis.Redis.from_url(backends["redis"].url, decode_responses=True)
    try:

        def err(*args: Any) -> str:
            with pytest.raises(redis.ResponseError) as e:
                r.execute_command(*args)
            return str(e.value)

        assert err("FCALL", "ts_get", 1, "ts:{a}b}:", "2025-11-25", CFG, "x") == (
            "OWNER must not contain { or } (the hash tag of its keys)"
        )
        for owner in ("", "a b", "é", "x" * 257):
            assert err("FCALL", "ts_get", 1, f"ts:{{{owner}}}:", "2025-11-25", CFG, "x") == (
                "OWNER must be 1-256 printable ASCII characters without spaces"
            )
        for key in ("other", "ts:{a}", "ts:a:", "xts:{a}:"):
            assert err("FCALL", "ts_get", 1, key, "2025-11-25", CFG, "x") == (
                "invalid owner key: expected ts:{<owner>}:"
            )
        assert err("FCALL", "ts_get", 2, "ts:{a}:", "ts:{a}:", "2025-11-25", CFG, "x") == (
            "taskstore functions take one key: the owner's prefix ts:{<owner>}:"
        )
        assert err("FCALL", "ts_get", 1, "ts:{a}:", "2025-11-26", CFG, "x") == (
            "unsupported MCP version '2025-11-26' (supported: 2025-11-25, 2026-07-28)"
        )
        assert err("FCALL", "ts_get", 1, "ts:{a}:", "2025-11-25", "1,2,3", "x").startswith(
            "invalid taskstore config argument: expected 12 whole numbers"
        )
        bad = CFG.split(",")
        bad[0] = str(LIMITS.max_ttl_ms + 1)
        assert err("FCALL", "ts_get", 1, "ts:{a}:", "2025-11-25", ",".join(bad), "x") == (
            f"invalid taskstore config argument: default_ttl_ms ({LIMITS.max_ttl_ms + 1}) must "
            f"not exceed max_ttl_ms ({LIMITS.max_ttl_ms})"
        )
        bad = CFG.split(",")
        bad[9] = "51"
        assert err("FCALL", "ts_get", 1, "ts:{a}:", "2025-11-25", ",".join(bad), "x") == (
            "invalid taskstore config argument: list_default_limit (51) must not exceed "
            "list_max_limit (50)"
        )
        assert err("FCALL", "ts_create", 1, "ts:{a}:", "2025-11-25", CFG, "zz", "m") == (
            "ts_create needs 32 lower-case hex digits of random bytes before its arguments"
        )
        # a key of the owner's prefix holding another type: Redis's own error, nothing written
        r.set("ts:{wt}:t:x", "a string")
        assert err("FCALL", "ts_get", 1, "ts:{wt}:", "2025-11-25", CFG, "x").startswith("WRONGTYPE")
        r.set("ts:{wt}:idx", "a string")
        assert err(
            "FCALL", "ts_create", 1, "ts:{wt}:", "2025-11-25", CFG, "ab" * 16, "m"
        ).startswith("WRONGTYPE")
        assert r.get("ts:{wt}:idx") == "a string"
        assert r.fcall("ts_version", 0) == library_version()
    finally:
        r.close()


# -- loading and checking ------------------------------------------------------------------


@pytest.fixture
def bare_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of its own, without the library."""
    port = free_port()
    proc = start_server(binary("redis-server"), tmp_path / "bare", port)
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop(proc)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "taskstore.functions", *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_load_and_check(bare_redis: str) -> None:
    host = bare_redis.removeprefix("redis://")
    missing = cli("check", bare_redis)
    assert missing.returncode == 1
    assert missing.stdout == (
        f"{host}: taskstore library missing (run: python -m taskstore.functions load <redis-url>)\n"
    )
    with pytest.raises(LibraryNotLoaded) as e:
        TaskClient.from_url(bare_redis, owner="a")
    assert str(e.value) == (
        "the taskstore Functions library is not loaded on this server: load it with "
        f"`python -m taskstore.functions load {bare_redis}`"
    )
    loaded = cli("load", bare_redis)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout == f"{host}: taskstore library {library_version()} loaded\n"
    ok = cli("check", bare_redis)
    assert (ok.returncode, ok.stdout) == (
        0,
        f"{host}: taskstore library {library_version()} (current)\n",
    )
    with TaskClient.from_url(bare_redis, owner="a") as c:
        assert c.backend == "functions"
        assert c.create().status == "working"
    # an older library under the same name
    old = library_code().replace(f"local VERSION = '{library_version()}'", "local VERSION = '0.9'")
    r = redis.Redis.from_url(bare_redis)
    try:
        r.function_load(old, replace=True)
    finally:
        r.close()
    outdated = cli("check", bare_redis)
    assert outdated.returncode == 1
    assert "taskstore library 0.9 (outdated: this package has" in outdated.stdout
    with pytest.raises(LibraryNotLoaded) as e2:
        TaskClient.from_url(bare_redis.replace("redis://", "redis://default:sekrit@"), owner="a")
    assert str(e2.value) == (
        f"the taskstore Functions library on this server is version 0.9, this client needs "
        f"{library_version()}: load it with `python -m taskstore.functions load "
        f"redis://default:***@{host}`"
    )
    assert cli("load", bare_redis).returncode == 0
    assert cli("version").stdout == f"{library_version()}\n"


def test_cluster_slot_spread(
    backends: dict[str, Backend], capsys: pytest.CaptureFixture[str]
) -> None:
    """Owners spread over the three primaries; every key of an owner in its owner's slot."""
    cluster = backends["cluster"]
    owners = [f"spread-{i}" for i in range(24)]
    for owner in owners:
        c = TaskClient.from_url(cluster.url, owner=owner, config=LIMITS)
        try:
            t = c.create()
            c.set_variables(t.task_id, {"o": owner})
            assert c.list().tasks[0].task_id == t.task_id
        finally:
            c.close()
    per_node: dict[str, list[str]] = {}
    for url in cluster.nodes:
        node = redis.Redis.from_url(url, decode_responses=True)
        try:
            keys = [k for k in node.scan_iter("ts:{spread-*", count=1000)]
            slots = {k: node.cluster("keyslot", k) for k in keys}
            by_owner: dict[str, set[int]] = {}
            for key, slot in slots.items():
                owner = key.split("{", 1)[1].split("}", 1)[0]
                by_owner.setdefault(owner, set()).add(slot)
            # every key of an owner is in one slot, on one node
            assert all(len(s) == 1 for s in by_owner.values()), by_owner
            for owner in by_owner:
                assert node.cluster("keyslot", f"ts:{{{owner}}}:") in by_owner[owner]
                assert node.cluster("keyslot", f"tasks:{{{owner}}}") in by_owner[owner]
            per_node[url] = sorted(by_owner)
        finally:
            node.close()
    assert sorted(o for os_ in per_node.values() for o in os_) == sorted(owners)
    assert all(per_node[url] for url in cluster.nodes), per_node  # all three primaries
    with capsys.disabled():
        print("\nslot spread of 24 owners over the cluster's primaries:")
        for url, on_node in per_node.items():
            print(f"  {url}: {len(on_node)} owners")
    counts = Counter(len(v) for v in per_node.values())
    assert sum(n * k for n, k in counts.items()) == 24


def test_cluster_needs_the_library_on_every_primary(backends: dict[str, Backend]) -> None:
    cluster = backends["cluster"]
    last = redis.Redis.from_url(cluster.nodes[-1])
    try:
        last.function_delete("taskstore")
        with pytest.raises(LibraryNotLoaded) as e:
            TaskClient.from_url(cluster.url, owner="a")
        assert str(e.value).startswith("the taskstore Functions library is not loaded")
        asyncio.run(_async_refused(cluster.url))
    finally:
        loaded = load(cluster.url)
        last.close()
    assert [n.version for n in loaded] == [library_version()] * 3
    with TaskClient.from_url(cluster.url, owner="a") as c:
        assert c.create().status == "working"


async def _async_refused(url: str) -> None:
    with pytest.raises(LibraryNotLoaded):
        await AsyncTaskClient.from_url(url, owner="a")
