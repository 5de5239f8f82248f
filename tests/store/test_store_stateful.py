"""Random operation sequences against a plain-dict reference model.

Three owners share some task ids; a fake clock advances between steps so tasks expire and pass
their retention. Every reply (task JSON, result bytes, error text) must match the model, and an
owner never sees another owner's tasks. TASKSTORE_LONG=1 runs many more and longer sequences.

The second-generation operations (MCP 2026-07-28, design.md §5b: ask / answer / answers / fail /
request_cancel) run against the same model, with malformed inputs mixed in. A failing operation
must raise the exact error class and text and leave its record unchanged (both renderings, every
field, the interaction) and notify nobody; after every step both renderings of every task
(first generation: ``ttl``/``pollInterval``/``_meta``; second: ``ttlMs``/``pollIntervalMs`` and
the payload of the status) must match the model.
"""

from __future__ import annotations

import datetime as dt
import json
import marshal
import os
import re
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from taskstore.store import (
    InvalidArgument,
    InvalidTransition,
    LimitExceeded,
    NotReady,
    SecurityConfig,
    StoreConfig,
    TaskError,
    TaskExists,
    TaskExpired,
    TaskNotFound,
    TaskRecord,
    TaskStatus,
    TaskStore,
    TooLarge,
    list_json_v2,
)
from taskstore.store.journal import record_from_state, record_state

LONG = os.environ.get("TASKSTORE_LONG") == "1"
# The long run exceeds the suite's default per-test timeout.
pytestmark = pytest.mark.timeout(3600 if LONG else 300)

OWNERS = ("alice", "bob", "local")
FIXED_IDS = ("shared", "job-1", "job-2")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

MAX_STRING = 12
MAX_DEPTH = 3
MAX_VARS = 48
MAX_RESULT = 40
DEFAULT_TTL = 60_000
LIST_MAX = 5

TERMINAL = {"completed", "failed", "cancelled"}


class MemoryJournal:
    """What a persistence log receives, kept in memory: each state copied at the moment of
    the change (through ``marshal``, as the append-only file writes it)."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []

    def changed(self, record: TaskRecord) -> None:
        self.entries.append(("set", marshal.loads(marshal.dumps(record_state(record), 4))))

    def removed(self, record: TaskRecord) -> None:
        self.entries.append(("remove", record.owner, record.task_id))

    def cleared(self) -> None:
        self.entries.append(("clear",))

    def replay(self) -> list[TaskRecord]:
        states: dict[tuple[str, str], Any] = {}
        for entry in self.entries:
            if entry[0] == "set":
                states[(entry[1][0], entry[1][1])] = entry[1]
            elif entry[0] == "remove":
                states.pop((entry[1], entry[2]), None)
            else:
                states.clear()
        return [record_from_state(state) for state in states.values()]


# The error class behind each reply code: a failure must raise exactly this class.
ERROR_CLASSES: dict[str, type[TaskError]] = {
    "NOTFOUND": TaskNotFound,
    "EXPIRED": TaskExpired,
    "INVALIDTRANSITION": InvalidTransition,
    "NOTREADY": NotReady,
    "TOOLARGE": TooLarge,
    "LIMIT": LimitExceeded,
    "EXISTS": TaskExists,
    "ERR": InvalidArgument,
}
BAD_KEY = "ERR invalid input request key: must be 1-256 printable ASCII characters (0x21-0x7e)"
ALLOWED = {
    "working": {"input_required", "completed", "failed", "cancelled"},
    "input_required": {"working", "completed", "failed", "cancelled"},
}


def iso(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms // 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def compact(value: Any) -> bytes:
    """The store's compact JSON: UTF-8, or all-ASCII escapes when a lone surrogate forbids it."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def json_object(items: dict[str, bytes]) -> bytes:
    body = b",".join(compact(key) + b":" + value for key, value in items.items())
    return b"{" + body + b"}"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def valid_key(key: str) -> bool:
    return 0 < len(key) <= 256 and key.isascii() and key.isprintable() and " " not in key


def longest_string(value: Any) -> int:
    if isinstance(value, str):
        return utf8(value)
    if isinstance(value, dict):
        return max([0, *(utf8(k) for k in value), *(longest_string(v) for v in value.values())])
    if isinstance(value, list):
        return max([0, *(longest_string(v) for v in value)])
    return 0


@dataclass
class Model:
    task_id: str
    status: str
    created: int
    ttl: int | None
    poll: int
    seq: int
    updated: int = 0
    message: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    result: bytes | None = None
    # 2026-07-28: outstanding requests (ask order), every key issued, answers (arrival order)
    requests: dict[str, bytes] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)
    answers: dict[str, bytes] = field(default_factory=dict)
    error: bytes | None = None
    cancel_at: int | None = None
    input_bytes: int = 0

    def head_v2(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"taskId": self.task_id, "status": self.status}
        if self.message is not None:
            doc["statusMessage"] = self.message
        doc["createdAt"] = iso(self.created)
        doc["lastUpdatedAt"] = iso(self.updated)
        doc["ttlMs"] = self.ttl
        doc["pollIntervalMs"] = self.poll
        return doc

    def wire_v2(self) -> dict[str, Any]:
        """The DetailedTask: the payload of the status, nothing for working / cancelled."""
        doc = self.head_v2()
        if self.status == "input_required":
            doc["inputRequests"] = {k: json.loads(v) for k, v in self.requests.items()}
        elif self.status == "completed":
            doc["result"] = {} if self.result is None else json.loads(self.result)
        elif self.status == "failed":
            doc["error"] = (
                json.loads(self.error)
                if self.error is not None
                else {"code": -32603, "message": self.message or "Task failed"}
            )
        return doc

    def result_json(self) -> bytes | None:
        if self.error is not None:  # only TASK.FAIL sets it: the task failed with it
            return b'{"error":' + self.error + b"}"
        return self.result

    def wire(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"taskId": self.task_id, "status": self.status}
        if self.message is not None:
            doc["statusMessage"] = self.message
        doc["createdAt"] = iso(self.created)
        doc["lastUpdatedAt"] = iso(self.updated)
        doc["ttl"] = self.ttl
        doc["pollInterval"] = self.poll
        if self.variables:
            doc["_meta"] = self.variables
        return doc


class Failure(Exception):
    """What the model expects the store to raise: the exact reply text."""


def parse_payload(raw: bytes | str, kind: str, what: str, limit: int) -> Any:
    """A JSON argument as the store reads it: UTF-8 (a ``str`` must encode), at most ``limit``
    bytes, then the syntax, which ``kind`` (the payload tables below) states."""
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise Failure(f"ERR invalid JSON: {what} is not valid UTF-8") from None
    if len(raw) > limit:
        raise Failure(f"TOOLARGE {what} is {len(raw)} bytes (max {limit})")
    if kind == "utf8":
        raise Failure(f"ERR invalid JSON: {what} is not valid UTF-8")
    if kind == "syntax":
        raise Failure("ERR invalid JSON")
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise Failure(f"ERR invalid JSON: {what} must be a JSON object")
    return value


json_leaf = st.none() | st.booleans() | st.integers(-9, 99) | st.text("xyé", max_size=8)
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from("pq"), children, max_size=2)
    ),
    max_leaves=8,
)
variable_updates = st.dictionaries(
    st.sampled_from(["a", "b", "c", "long_key_name_x", "é" * 7]), json_value, max_size=3
)
good_payloads = st.sampled_from(
    [b'{"ok":true}', b"[1,2,3]", b"null", b" 7 ", b'"' + b"x" * 38 + b'"']
)
bad_payloads = st.sampled_from([b'"' + b"x" * 39 + b'"', b"{bad", b""])
payloads = st.one_of(good_payloads, good_payloads, good_payloads, bad_payloads)
messages = st.sampled_from(
    [None, None, "", "half way", "done", "x" * MAX_STRING, "ü" * 6, "x" * 13, "ü" * 7]
)
# For the second-generation rules: rarely too long (the existing rules cover that case).
v2_messages = st.sampled_from([None, None, "", "waiting", "asked", "ü" * 6, "x" * 13])

# Input request keys: a small pool, so keys come back (and must be refused) over a task's life.
VALID_KEYS = ["a", "b", "c", "q1", "elicit-1", 'a"b', "c\\d", "it's", "~", "k" * 256]
BAD_KEYS = ["", "has space", "é", "k" * 257, "tab\t", "\x7f", "nl\n"]
# (Repetition weights a sampled_from: Hypothesis favours the simplest branch of a one_of.)
input_keys = st.sampled_from(VALID_KEYS * 6 + BAD_KEYS)

Payload = tuple[bytes | str, str]
# (payload, kind): "ok" parses to an object (the rules check its shape), "notobject" parses to
# something else, "syntax" is not JSON (or NaN / an out-of-range float), "utf8" is not UTF-8.
# Bytes and str payloads both occur; sizes straddle the max_input_bytes choices (64, 160, 1 MiB).
good_requests: st.SearchStrategy[Payload] = st.sampled_from(
    [
        (b'{"method":"m","params":{}}', "ok"),
        (b'{"method":"m","params":{}}', "ok"),
        (b'{"method":"elicitation/create","params":{"message":"Name?"}}', "ok"),
        (' { "method" : "s" , "params" : { "maxTokens" : 5 } } ', "ok"),
        ('{"params":{"é":"ü"},"method":"m","extra":[1,null]}', "ok"),
        (b'{"method":"m","params":{},"method":"n"}', "ok"),  # duplicate name: the last wins
        ('{"method":"\\ud800","params":{}}', "ok"),  # an escaped lone surrogate is valid JSON
        (b'{"method":"m","params":{"pad":"' + b"p" * 120 + b'"}}', "ok"),
    ]
)
bad_requests: st.SearchStrategy[Payload] = st.sampled_from(
    [
        (b'{"method":1,"params":{}}', "ok"),
        (b'{"method":"m"}', "ok"),
        (b'{"method":"m","params":[]}', "ok"),
        (b'{"method":"m","params":null}', "ok"),
        (b'{"params":{}}', "ok"),
        (b'[{"method":"m","params":{}}]', "notobject"),
        (b'"m"', "notobject"),
        (b"null", "notobject"),
        (b"{bad", "syntax"),
        (b"", "syntax"),
        (b'{"method":"m","params":{"x":NaN}}', "syntax"),
        (b'{"method":"m","params":{"x":1e999}}', "syntax"),
        (b'{"method":"m","params":{}} x', "syntax"),
        (b'{"method":"\xff","params":{}}', "utf8"),
        ('{"method":"\ud800","params":{}}', "utf8"),  # a str that cannot be UTF-8
        (b" " * 70 + b'{"method":"m","params":{}}', "ok"),  # too large as given, small parsed
    ]
)
input_requests = st.integers(0, 3).flatmap(lambda n: bad_requests if n == 3 else good_requests)


def item_lists(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """One to three items; now and then none (an error)."""
    return st.tuples(st.integers(0, 15), st.lists(element, min_size=1, max_size=3)).map(
        lambda drawn: [] if drawn[0] == 7 else drawn[1]
    )


ask_items = item_lists(st.tuples(input_keys, input_requests))
# Well-formed asks under fresh keys, so tasks often wait for input with several requests out.
fresh_asks = st.lists(
    st.tuples(st.text("abcdefgh-_/.0123", min_size=1, max_size=6), good_requests),
    min_size=1,
    max_size=3,
    unique_by=lambda item: item[0],
)
good_responses: st.SearchStrategy[Payload] = st.sampled_from(
    [
        (b'{"action":"accept","content":{"name":"x"}}', "ok"),
        (b"{}", "ok"),
        (' { "action" : "decline" } ', "ok"),
        ('{"action":"accept","content":{"n":"é"}}', "ok"),
        (b'{"content":"' + b"y" * 100 + b'"}', "ok"),
    ]
)
bad_responses: st.SearchStrategy[Payload] = st.sampled_from(
    [
        (b"[]", "notobject"),
        (b"1", "notobject"),
        (b"null", "notobject"),
        (b"{bad", "syntax"),
        (b"", "syntax"),
        (b'{"a":Infinity}', "syntax"),
        (b"\xff", "utf8"),
        ('{"a":"\udfff"}', "utf8"),
    ]
)
input_responses = st.integers(0, 5).flatmap(lambda n: bad_responses if n == 5 else good_responses)
# JSON-RPC errors for fail (held to max_result_bytes, 40 here).
error_objects: st.SearchStrategy[Payload] = st.sampled_from(
    [
        (b'{"code":-32000,"message":"boom"}', "ok"),
        (b'{"code":-32000,"message":"boom"}', "ok"),
        (b'{"code":1,"message":"","data":{"x":[1]}}', "ok"),
        (' {"message":"é","code":0} ', "ok"),
        (b'{"code":"1","message":"m"}', "ok"),
        (b'{"code":1.0,"message":"m"}', "ok"),
        (b'{"code":true,"message":"m"}', "ok"),
        (b'{"code":1}', "ok"),
        (b'{"code":1,"message":null}', "ok"),
        (b'{"message":"m"}', "ok"),
        (b"[1]", "notobject"),
        (b'"x"', "notobject"),
        (b"{bad", "syntax"),
        (b"", "syntax"),
        (b'{"code":1,"message":"x","data":NaN}', "syntax"),
        (b"\xfe{}", "utf8"),
        (b'{"code":1,"message":"' + b"z" * 30 + b'"}', "ok"),  # 51 bytes: too large
    ]
)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1_795_699_497_123
        self.seq = 0
        self.tasks: dict[str, dict[str, Model]] = {owner: {} for owner in OWNERS}
        self.known: list[str] = list(FIXED_IDS)
        self.store = TaskStore()
        self.retention = 0
        self.max_tasks = 0
        self.max_ttl = 0
        self.max_input = 1 << 20
        self.events: list[tuple[str, str, str]] = []
        self.expect_event: str | None = None
        self.noop = False

    @initialize(
        retention=st.sampled_from([0, 5000, 5000, 120_000]),
        max_tasks=st.sampled_from([0, 4]),
        max_ttl=st.sampled_from([0, 100_000]),
        shards=st.sampled_from([1, 4]),
        max_input=st.sampled_from([64, 160, 1 << 20]),
    )
    def setup(
        self, retention: int, max_tasks: int, max_ttl: int, shards: int, max_input: int
    ) -> None:
        self.retention, self.max_tasks, self.max_ttl = retention, max_tasks, max_ttl
        self.max_input = max_input
        config = StoreConfig(
            default_ttl_ms=DEFAULT_TTL,
            max_ttl_ms=max_ttl,
            max_tasks_per_owner=max_tasks,
            max_variable_size_bytes=MAX_VARS,
            max_variable_depth=MAX_DEPTH,
            max_string_length=MAX_STRING,
            max_result_bytes=MAX_RESULT,
            default_poll_interval_ms=500,
            list_default_limit=3,
            list_max_limit=LIST_MAX,
            expired_retention_ms=retention,
            shards=shards,
            max_input_bytes=max_input,
        )
        self.store = TaskStore(config, SecurityConfig(), clock=lambda: self.now)
        self.config = config
        self.journal = MemoryJournal()
        self.store.set_journal(self.journal)
        self.store.add_listener(
            lambda event, owner, record: self.events.append((event, owner, record.task_id))
        )
        # Start with a task per owner under the same id, and one more with a generated id.
        for owner in OWNERS:
            self.create(owner, None, False, "shared", None)
            self.create(owner, 100_000 if max_ttl else None, False, None, 250)
        # One of them starts out waiting for input (2026-07-28).
        self.ask_with("bob", "shared", [("first", (b'{"method":"m","params":{}}', "ok"))], "?")

    # ------------------------------------------------------------ model helpers

    def purge(self) -> None:
        """Tasks past retention do not exist, whether or not the store has reclaimed them."""
        for owned in self.tasks.values():
            for task_id in [
                t
                for t, m in owned.items()
                if m.ttl is not None and self.now >= m.created + m.ttl + self.retention
            ]:
                del owned[task_id]

    def find(self, owner: str, task_id: str) -> Model:
        self.purge()
        model = self.tasks[owner].get(task_id)
        if model is None:
            raise Failure(f"NOTFOUND task not found: {task_id}")
        return model

    def mutable(self, model: Model) -> bool:
        """Neither terminal nor expired: the second-generation operations act on it."""
        expired = model.ttl is not None and self.now >= model.created + model.ttl
        return model.status not in TERMINAL and not expired

    def find_mutable(self, owner: str, task_id: str) -> Model:
        model = self.find(owner, task_id)
        if model.ttl is not None and self.now >= model.created + model.ttl:
            raise Failure(f"EXPIRED task expired: {task_id}")
        return model

    def check_message(self, message: str | None) -> None:
        if message is not None and utf8(message) > MAX_STRING:
            raise Failure(f"TOOLARGE status message is {utf8(message)} bytes (max {MAX_STRING})")

    def check_result(self, payload: bytes) -> None:
        if len(payload) > MAX_RESULT:
            raise Failure(f"TOOLARGE result is {len(payload)} bytes (max {MAX_RESULT})")
        try:
            json.loads(payload)
        except ValueError:
            raise Failure("ERR invalid JSON") from None

    def check_key(self, key: str) -> None:
        if not valid_key(key):
            raise Failure(BAD_KEY)

    def snapshot(self, where: tuple[str, str] | None) -> Any:
        """Everything observable about one record: both renderings (as cached) and the plain
        2026-07-28 Task, every field, the interaction (None reads as an empty one: they render
        the same)."""
        if where is None:
            return None
        try:
            record = self.store.get(*where)
        except TaskError:
            return None
        i = record.interaction
        interaction = (
            ([], [], [], None, None, 0, None, None)
            if i is None
            else (
                list(i.requests.items()),
                sorted(i.issued),
                list(i.answers.items()),
                i.error,
                i.cancel_requested_at_ms,
                i.input_bytes,
                getattr(i, "lease_holder", None),
                getattr(i, "lease_expires_at_ms", None),
            )
        )
        return (
            record.wire_json(),
            record.wire_json_v2(),
            record.task_json_v2(),
            record.result_json(),
            record.status,
            record.status_message,
            record.last_updated_at_ms,
            record.result,
            json.dumps(record.variables),
            interaction,
        )

    def changes(self) -> list[tuple[str, str, str]]:
        """Notifications since the operation started, lazy evictions aside."""
        return [event for event in self.events if event[0] != "evicted"]

    def compare(self, expected: Any, actual: Any, where: tuple[str, str] | None = None) -> Any:
        """Run both sides; results must be equal, or both must fail with the same text (and
        the exact error class), the target record unchanged and no change notified.

        ``expected`` may set ``self.noop`` (a success that must change nothing either) or
        ``self.expect_event`` (the one notification a success must send).
        """
        before = self.snapshot(where)
        self.events.clear()
        self.expect_event, self.noop = None, False
        try:
            want = expected()
        except Failure as failure:
            try:
                got = actual()
            except TaskError as err:
                text = str(failure)
                assert type(err) is ERROR_CLASSES[text.split()[0]], (type(err), text)
                if text == "ERR invalid JSON":
                    assert str(err).startswith("ERR invalid JSON: "), str(err)
                else:
                    assert str(err) == text
                assert self.snapshot(where) == before, f"{text} changed the record"
                assert self.changes() == [], self.changes()
                return None
            raise AssertionError(f"expected {failure}, store returned {got!r}") from None
        got = actual()
        if self.noop:
            assert self.snapshot(where) == before
            assert self.changes() == [], self.changes()
        elif self.expect_event is not None:
            assert where is not None
            assert self.changes() == [(self.expect_event, *where)], self.changes()
        if isinstance(got, TaskRecord):
            doc = json.loads(got.wire_json())
            assert list(doc) == list(want.wire()), (doc, want.wire())
            assert doc == want.wire()
            doc2 = json.loads(got.wire_json_v2())
            assert list(doc2) == list(want.wire_v2()), (doc2, want.wire_v2())
            assert doc2 == want.wire_v2()
        else:
            assert got == want
        return got

    def target(self, data: st.DataObject, prefer: Any = None) -> tuple[str, str]:
        """Mostly a live task (so mutations reach it), sometimes any owner/id pair; with
        ``prefer``, half the time a task whose model satisfies it (when there is one)."""
        self.purge()
        live = [(owner, task_id) for owner in OWNERS for task_id in self.tasks[owner]]
        if prefer is not None:
            chosen = [(o, t) for o, t in live if prefer(self.tasks[o][t])]
            preferred = data.draw(st.booleans(), label="preferred") if chosen else False
            if preferred:
                return data.draw(st.sampled_from(chosen), label="task")
        if live and data.draw(st.integers(0, 9), label="live") < 8:
            return data.draw(st.sampled_from(live), label="task")
        owner = data.draw(st.sampled_from(OWNERS), label="owner")
        return owner, data.draw(st.sampled_from([*self.known, "never-created"]), label="id")

    # ------------------------------------------------------------ rules

    @rule(ms=st.sampled_from([0, 1, 7, 500, 1000, 1999, 2000, 2001, 60_000]))
    def advance(self, ms: int) -> None:
        self.now += ms

    def expiring(self) -> list[Model]:
        self.purge()
        return [
            m
            for owned in self.tasks.values()
            for m in owned.values()
            if m.ttl is not None and self.now < m.created + m.ttl
        ]

    @precondition(lambda self: self.expiring())
    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 0, 1]))
    def advance_to_expiry(self, data: st.DataObject, offset: int) -> None:
        """Jump to a task's expiry (a millisecond either side): it stays readable but takes
        no more asks, answers, failures or cancellation requests, waiting ones included."""
        candidates = self.expiring()
        waiting = [m for m in candidates if m.requests]
        if waiting and data.draw(st.integers(0, 3), label="waiting") > 0:
            candidates = waiting
        model = data.draw(st.sampled_from(candidates), label="task")
        assert model.ttl is not None
        self.now = max(self.now, model.created + model.ttl + offset)

    @rule(
        owner=st.sampled_from(OWNERS),
        ttl=st.sampled_from([None, None, 1, 1000, 3000, 100_000, 200_000, 0]),
        unlimited=st.booleans(),
        explicit=st.none() | st.sampled_from(FIXED_IDS),
        poll=st.sampled_from([None, 250]),
    )
    def create(
        self, owner: str, ttl: int | None, unlimited: bool, explicit: str | None, poll: int | None
    ) -> None:
        unlimited = unlimited and ttl is None and explicit is None  # keep it occasional
        created: list[TaskRecord] = []

        def expected() -> Model:
            if unlimited and self.max_ttl != 0:
                raise Failure(
                    f"ERR unlimited TTL (TTL NONE) needs max_ttl_ms 0; max_ttl_ms is {self.max_ttl}"
                )
            if ttl is not None and ttl < 1:
                raise Failure("ERR TTL must be a whole number >= 1 or NONE")
            if ttl is not None and self.max_ttl and ttl > self.max_ttl:
                raise Failure(f"ERR TTL {ttl}ms exceeds maximum allowed {self.max_ttl}ms")
            self.purge()
            owned = self.tasks[owner]
            if explicit is not None and explicit in owned:
                raise Failure(f"EXISTS task already exists: {explicit}")
            if self.max_tasks and len(owned) >= self.max_tasks:
                raise Failure(
                    f"LIMIT owner has {len(owned)} tasks (max {self.max_tasks}): "
                    "cancel or wait for existing tasks to expire"
                )
            self.seq += 1
            return Model(
                task_id=explicit or "?",
                status="working",
                created=self.now,
                updated=self.now,
                ttl=None if unlimited else (DEFAULT_TTL if ttl is None else ttl),
                poll=500 if poll is None else poll,
                seq=self.seq,
            )

        def actual() -> TaskRecord:
            record = self.store.create(
                owner,
                "tools/call",
                ttl,
                unlimited=unlimited,
                poll_interval_ms=poll,
                task_id=explicit,
            )
            created.append(record)
            return record

        try:
            model = expected()
        except Failure:
            self.compare(expected, actual)
            return
        record = actual()
        if explicit is None:
            assert UUID_RE.match(record.task_id), record.task_id
            assert record.task_id not in self.tasks[owner]
            model.task_id = record.task_id
            self.known.append(record.task_id)
        self.tasks[owner][model.task_id] = model
        self.compare(lambda: model, lambda: record)

    @rule(owner=st.sampled_from(OWNERS), ttl=st.sampled_from([None, 1000, 3000]))
    def create_plain(self, owner: str, ttl: int | None) -> None:
        self.create(owner, ttl, False, None, None)

    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        owner, task_id = self.target(data)
        self.compare(
            lambda: self.find(owner, task_id),
            lambda: self.store.get(owner, task_id),
            (owner, task_id),
        )

    @rule(
        status=st.none() | st.sampled_from(list(TaskStatus)),
        message=messages,
        set_message=st.booleans(),
        data=st.data(),
    )
    def update(
        self,
        status: TaskStatus | None,
        message: str | None,
        set_message: bool,
        data: st.DataObject,
    ) -> None:
        owner, task_id = self.target(data)

        def expected() -> Model:
            if status is None and not set_message:
                raise Failure("ERR nothing to update: give a status or MESSAGE")
            if set_message:
                self.check_message(message)
            model = self.find_mutable(owner, task_id)
            if status is None:
                pass  # a message change: allowed on terminal tasks too (not a transition)
            elif status.value not in ALLOWED.get(model.status, set()):
                raise Failure(
                    f"INVALIDTRANSITION invalid transition from {model.status} to "
                    f"{status.value} for task {task_id}"
                )
            else:
                model.status = status.value
            model.message = message if set_message else None
            model.updated = self.now
            return model

        self.compare(
            expected,
            lambda: self.store.update_status(
                owner, task_id, status, message, set_message=set_message
            ),
            (owner, task_id),
        )

    @rule(message=messages, data=st.data())
    def cancel(self, message: str | None, data: st.DataObject) -> None:
        owner, task_id = self.target(data)

        def expected() -> Model:
            self.check_message(message)
            model = self.find_mutable(owner, task_id)
            if model.status in TERMINAL:
                raise Failure(
                    f"INVALIDTRANSITION invalid transition from {model.status} to cancelled "
                    f"for task {task_id}"
                )
            model.status, model.message, model.updated = "cancelled", message, self.now
            return model

        self.compare(expected, lambda: self.store.cancel(owner, task_id, message), (owner, task_id))

    @rule(
        update=st.one_of(
            variable_updates, variable_updates, variable_updates, st.sampled_from([[1], "{", 3])
        ),
        data=st.data(),
    )
    def set_variables(self, update: Any, data: st.DataObject) -> None:
        owner, task_id = self.target(data)
        payload = update if isinstance(update, str) else json.dumps(update, ensure_ascii=False)

        def expected() -> Model:
            model = self.find_mutable(owner, task_id)
            if payload == "{":
                raise Failure("ERR invalid JSON")
            if not isinstance(update, dict):
                raise Failure("ERR invalid JSON: variables must be a JSON object")
            merged = dict(model.variables)
            for key, value in update.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            if depth(merged) > MAX_DEPTH:
                raise Failure(
                    f"TOOLARGE variables nest {depth(merged)} levels deep (max {MAX_DEPTH})"
                )
            if longest_string(merged) > MAX_STRING:
                raise Failure(
                    f"TOOLARGE string of {longest_string(merged)} bytes exceeds "
                    f"max_string_length {MAX_STRING}"
                )
            size = len(json.dumps(merged, separators=(",", ":"), ensure_ascii=False).encode())
            if size > MAX_VARS:
                raise Failure(f"TOOLARGE variables are {size} bytes (max {MAX_VARS})")
            model.variables, model.updated = merged, self.now
            return model

        self.compare(
            expected, lambda: self.store.set_variables(owner, task_id, payload), (owner, task_id)
        )

    @rule(payload=payloads, data=st.data())
    def set_result(self, payload: bytes, data: st.DataObject) -> None:
        # Half the time (when there is one) a task failed with an error object: a result
        # stored afterwards is what first-generation TASK.RESULT returns from then on.
        owner, task_id = self.target(data, lambda m: m.error is not None)

        def expected() -> None:
            model = self.find_mutable(owner, task_id)
            self.check_result(payload)
            model.result, model.updated = payload, self.now

        self.compare(
            expected, lambda: self.store.set_result(owner, task_id, payload), (owner, task_id)
        )

    @rule(data=st.data())
    def get_result(self, data: st.DataObject) -> None:
        owner, task_id = self.target(data)

        def expected() -> bytes:
            model = self.find(owner, task_id)
            result = model.result_json()
            if model.status not in TERMINAL or result is None:
                raise Failure(f"NOTREADY task {task_id} is {model.status}; no result yet")
            return result

        self.compare(expected, lambda: self.store.get_result(owner, task_id), (owner, task_id))

    @rule(data=st.data())
    def stored_result(self, data: st.DataObject) -> None:
        owner, task_id = self.target(data)
        self.compare(
            lambda: self.find(owner, task_id).result_json(),
            lambda: self.store.stored_result(owner, task_id),
            (owner, task_id),
        )

    @rule(
        status=st.sampled_from(
            [TaskStatus.COMPLETED, TaskStatus.FAILED] * 3 + [TaskStatus.WORKING]
        ),
        payload=payloads,
        message=messages,
        data=st.data(),
    )
    def complete(
        self,
        status: TaskStatus,
        payload: bytes,
        message: str | None,
        data: st.DataObject,
    ) -> None:
        owner, task_id = self.target(data)

        def expected() -> Model:
            if status is TaskStatus.WORKING:
                raise Failure("ERR status must be completed or failed")
            self.check_message(message)
            model = self.find_mutable(owner, task_id)
            if model.status in TERMINAL:
                raise Failure(
                    f"INVALIDTRANSITION invalid transition from {model.status} to "
                    f"{status.value} for task {task_id}"
                )
            self.check_result(payload)
            model.status, model.message, model.result = status.value, message, payload
            model.updated = self.now
            return model

        self.compare(
            expected,
            lambda: self.store.complete_with_result(owner, task_id, status, payload, message),
            (owner, task_id),
        )

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        owner, task_id = self.target(data)

        def expected() -> bool:
            self.purge()
            return self.tasks[owner].pop(task_id, None) is not None

        self.compare(expected, lambda: self.store.delete(owner, task_id))

    # ------------------------------------------------------------ 2026-07-28 rules

    def waiting_for_input(self) -> list[tuple[str, str]]:
        """Tasks in ``input_required`` that may be asked more."""
        self.purge()
        return [
            (owner, task_id)
            for owner in OWNERS
            for task_id, model in self.tasks[owner].items()
            if model.status == "input_required" and self.mutable(model)
        ]

    @rule(
        items=st.one_of(ask_items, fresh_asks),
        message=v2_messages,
        data=st.data(),
    )
    def ask(self, items: list[tuple[str, Payload]], message: str | None, data: Any) -> None:
        self.ask_with(*self.target(data, self.mutable), items, message)

    @precondition(lambda self: self.waiting_for_input())
    @rule(items=fresh_asks, message=v2_messages, data=st.data())
    def ask_again(self, items: list[tuple[str, Payload]], message: str | None, data: Any) -> None:
        """More requests for a task that already waits: its message stays unless replaced."""
        owner, task_id = data.draw(st.sampled_from(self.waiting_for_input()), label="task")
        self.ask_with(owner, task_id, items, message)

    def ask_with(
        self,
        owner: str,
        task_id: str,
        items: list[tuple[str, Payload]],
        message: str | None,
    ) -> None:
        def expected() -> Model:
            if not items:
                raise Failure("ERR TASK.ASK needs at least one key and request")
            for key, _ in items:
                self.check_key(key)
            self.check_message(message)
            model = self.find_mutable(owner, task_id)
            if model.status in TERMINAL:
                raise Failure(
                    f"INVALIDTRANSITION invalid transition from {model.status} to "
                    f"input_required for task {task_id}"
                )
            seen: set[str] = set()
            for key, _ in items:  # every key is checked before any request is parsed
                if key in model.issued or key in seen:
                    raise Failure(f"EXISTS input request key already used: {key}")
                seen.add(key)
            size = model.input_bytes
            encoded: list[tuple[str, bytes]] = []
            for key, (raw, kind) in items:
                what = f"request {key!r}"
                request = parse_payload(raw, kind, what, self.max_input)
                if not isinstance(request.get("method"), str) or not isinstance(
                    request.get("params"), dict
                ):
                    raise Failure(
                        f"ERR {what} must be a JSON object with a string method and an "
                        "object params"
                    )
                encoded.append((key, compact(request)))
                size += len(key) + len(encoded[-1][1])
            if size > self.max_input:
                raise Failure(
                    f"TOOLARGE input requests and answers are {size} bytes (max {self.max_input})"
                )
            for key, request_json in encoded:
                model.requests[key] = request_json
                model.issued.add(key)
            model.input_bytes = size
            if model.status != "input_required":
                model.status, model.message = "input_required", message
            elif message is not None:
                model.message = message  # already waiting: no MESSAGE keeps the message
            model.updated = self.now
            self.expect_event = "asked"
            return model

        self.compare(
            expected,
            lambda: self.store.ask(owner, task_id, [(k, raw) for k, (raw, _) in items], message),
            (owner, task_id),
        )

    def waiting(self) -> list[tuple[str, str]]:
        """Tasks with requests outstanding (terminal and expired ones too: they take none)."""
        self.purge()
        return [
            (owner, task_id)
            for owner in OWNERS
            for task_id, model in self.tasks[owner].items()
            if model.requests
        ]

    @precondition(lambda self: self.waiting())
    @rule(data=st.data())
    def answer_waiting(self, data: st.DataObject) -> None:
        """Well-formed answers for a task that waits: its outstanding keys (some twice), keys
        it asked before, a key never asked."""
        owner, task_id = data.draw(st.sampled_from(self.waiting()), label="task")
        model = self.tasks[owner][task_id]
        keys = st.sampled_from([*model.requests, *model.requests, *sorted(model.issued), "never"])
        items = data.draw(st.lists(st.tuples(keys, good_responses), min_size=1, max_size=3))
        self.answer_with(owner, task_id, items)

    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        owner, task_id = self.target(data, lambda m: m.requests and self.mutable(m))
        model = self.tasks[owner].get(task_id)
        keys = input_keys
        if model is not None and model.requests:
            outstanding = st.sampled_from(list(model.requests))
            keys = st.integers(0, 4).flatmap(lambda n: input_keys if n == 4 else outstanding)
        items = data.draw(item_lists(st.tuples(keys, input_responses)), label="answers")
        self.answer_with(owner, task_id, items)

    def answer_with(self, owner: str, task_id: str, items: list[tuple[str, Payload]]) -> None:
        def expected() -> int:
            if not items:
                raise Failure("ERR TASK.ANSWER needs at least one key and response")
            # Keys are not checked (a malformed one was never asked, so it is not outstanding,
            # and is ignored like any other); every response is parsed, even an ignored one.
            parsed = [
                (key, compact(parse_payload(raw, kind, f"response {key!r}", self.max_input)))
                for key, (raw, kind) in items
            ]
            model = self.find(owner, task_id)
            expired = model.ttl is not None and self.now >= model.created + model.ttl
            accepted: dict[str, bytes] = {}
            if not expired and model.status not in TERMINAL:
                for key, response in parsed:
                    if key in model.requests and key not in accepted:  # the first one counts
                        accepted[key] = response
            if not accepted:
                self.noop = True
                return 0
            size = model.input_bytes + sum(
                len(response) - len(model.requests[key]) for key, response in accepted.items()
            )
            if size > self.max_input:
                raise Failure(
                    f"TOOLARGE input requests and answers are {size} bytes (max {self.max_input})"
                )
            for key, response in accepted.items():
                del model.requests[key]
                model.answers[key] = response
            model.input_bytes = size
            if not model.requests and model.status == "input_required":
                model.status, model.message = "working", None
            model.updated = self.now
            self.expect_event = "answered"
            return len(accepted)

        self.compare(
            expected,
            lambda: self.store.answer(owner, task_id, [(k, raw) for k, (raw, _) in items]),
            (owner, task_id),
        )

    @rule(data=st.data())
    def answers(self, data: st.DataObject) -> None:
        owner, task_id = self.target(data)

        def expected() -> bytes:
            self.noop = True  # a read: consumes nothing
            return json_object(self.find(owner, task_id).answers)

        self.compare(expected, lambda: self.store.answers(owner, task_id), (owner, task_id))

    @rule(error=error_objects, message=v2_messages, data=st.data())
    def fail(self, error: Payload, message: str | None, data: Any) -> None:
        owner, task_id = self.target(data, self.mutable)
        raw, kind = error

        def expected() -> Model:
            self.check_message(message)
            model = self.find_mutable(owner, task_id)
            if model.status in TERMINAL:
                raise Failure(
                    f"INVALIDTRANSITION invalid transition from {model.status} to failed "
                    f"for task {task_id}"
                )
            value = parse_payload(raw, kind, "error", MAX_RESULT)
            if not is_int(value.get("code")) or not isinstance(value.get("message"), str):
                raise Failure(
                    "ERR error must be a JSON-RPC error object: an integer code and a string "
                    "message"
                )
            model.error, model.status, model.message = compact(value), "failed", message
            model.updated = self.now
            self.expect_event = "failed"
            return model

        self.compare(
            expected, lambda: self.store.fail(owner, task_id, raw, message), (owner, task_id)
        )

    @rule(message=v2_messages, data=st.data())
    def request_cancel(self, message: str | None, data: st.DataObject) -> None:
        # Half the time a task whose message a request without MESSAGE must keep.
        owner, task_id = self.target(
            data, lambda m: self.mutable(m) and m.cancel_at is None and m.message is not None
        )

        def expected() -> Model:
            self.check_message(message)
            model = self.find_mutable(owner, task_id)
            if model.status in TERMINAL or model.cancel_at is not None:
                self.noop = True  # repeated, or too late: nothing changes, no error
                return model
            model.cancel_at, model.updated = self.now, self.now
            if message is not None:
                model.message = message
            self.expect_event = "cancel_requested"
            return model

        self.compare(
            expected,
            lambda: self.store.request_cancel(owner, task_id, message),
            (owner, task_id),
        )

    @rule(owner=st.sampled_from(OWNERS), limit=st.sampled_from([None, 1, 2, LIST_MAX]))
    def list_all(self, owner: str, limit: int | None) -> None:
        pages: list[list[TaskRecord]] = []
        cursor = None
        while True:
            page, cursor = self.store.list(owner, cursor, limit)
            pages.append(page)
            if cursor is None:
                break
            assert len(page) == (limit or 3)
        self.purge()
        want = sorted(self.tasks[owner].values(), key=lambda m: m.seq, reverse=True)
        got = [record for page in pages for record in page]
        assert [r.task_id for r in got] == [m.task_id for m in want]
        for record, model in zip(got, want, strict=True):
            assert record.owner == owner
            assert json.loads(record.wire_json()) == model.wire()
            item = json.loads(record.task_json_v2())
            assert list(item) == list(model.head_v2()) and item == model.head_v2()
        # The second-generation envelope: plain Tasks, nextCursor only when more remain.
        page, cursor = self.store.list(owner, None, limit)
        envelope = json.loads(list_json_v2(page, cursor))
        assert envelope["tasks"] == [m.head_v2() for m in want[: len(page)]]
        assert ("nextCursor" in envelope) == (cursor is not None)

    @rule(owner=st.none() | st.sampled_from(OWNERS))
    def cleanup(self, owner: str | None) -> None:
        self.purge()
        expired = 0
        for name in OWNERS if owner is None else (owner,):
            owned = self.tasks[name]
            for task_id in [
                t for t, m in owned.items() if m.ttl is not None and self.now >= m.created + m.ttl
            ]:
                del owned[task_id]
                expired += 1
        evicted = self.store.cleanup_expired(owner)
        # The store may also reclaim tasks past retention that the model already dropped.
        assert evicted >= expired

    @rule(budget=st.sampled_from([0, 1, 3, 100]))
    def sweep(self, budget: int) -> None:
        assert 0 <= self.store.sweep(budget) <= budget

    @rule(owner=st.sampled_from(OWNERS))
    def count(self, owner: str) -> None:
        self.purge()
        assert self.store.count(owner) == len(self.tasks[owner])

    @invariant()
    def renderings_match_model(self) -> None:
        """Both generations' JSON and the interaction of every task the model holds."""
        self.purge()
        for owner in OWNERS:
            for task_id, model in self.tasks[owner].items():
                record = self.store.get(owner, task_id)
                v1 = json.loads(record.wire_json())
                assert list(v1) == list(model.wire()) and v1 == model.wire(), (v1, model.wire())
                v2 = json.loads(record.wire_json_v2())
                want = model.wire_v2()
                assert list(v2) == list(want) and v2 == want, (v2, want)
                if "inputRequests" in want:  # outstanding requests, in the order asked
                    assert list(v2["inputRequests"]) == list(model.requests)
                plain = json.loads(record.task_json_v2())
                assert list(plain) == list(model.head_v2()) and plain == model.head_v2()
                assert record.result_json() == model.result_json()
                i = record.interaction
                if i is None:
                    assert not model.issued and model.error is None and model.cancel_at is None
                    continue
                assert list(i.requests.items()) == list(model.requests.items())
                assert i.issued == model.issued
                assert list(i.answers.items()) == list(model.answers.items())
                assert i.error == model.error
                assert i.cancel_requested_at_ms == model.cancel_at
                assert i.input_bytes == model.input_bytes

    @invariant()
    def journal_replays_to_the_same_store(self) -> None:
        """A store rebuilt from the journal alone (what a restart loads) holds every live
        record with the same state, and lists every owner's tasks in the same order."""
        restored = TaskStore(self.config, SecurityConfig(), clock=lambda: self.now)
        restored.restore(self.journal.replay())
        live = {(r.owner, r.task_id): record_state(r) for r in self.store.live_records()}
        again = {(r.owner, r.task_id): record_state(r) for r in restored.live_records()}
        assert again == live
        for owner in OWNERS:
            assert [r.task_id for r in restored.list(owner, limit=LIST_MAX)[0]] == [
                r.task_id for r in self.store.list(owner, limit=LIST_MAX)[0]
            ]
            for task_id in live:
                if task_id[0] == owner:
                    assert restored.get(owner, task_id[1]).wire_json_v2() == (
                        self.store.get(owner, task_id[1]).wire_json_v2()
                    )

    @invariant()
    def totals_are_consistent(self) -> None:
        stats = self.store.stats()
        by_status = sum(stats[s.value] for s in TaskStatus)
        assert stats["tasks"] == by_status == self.store.count(None)
        self.purge()
        assert stats["tasks"] >= sum(len(owned) for owned in self.tasks.values())
        assert stats["owners"] <= len(OWNERS)


StoreMachine.TestCase.settings = settings(
    max_examples=1000 if LONG else 120,
    stateful_step_count=100 if LONG else 50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestStoreMachine = StoreMachine.TestCase
