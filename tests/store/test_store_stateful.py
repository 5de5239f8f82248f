"""Random operation sequences against a plain-dict reference model.

Three owners share some task ids; a fake clock advances between steps so tasks expire and pass
their retention. Every reply (task JSON, result bytes, error text) must match the model, and an
owner never sees another owner's tasks. TASKSTORE_LONG=1 runs many more and longer sequences.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from taskstore.store import (
    SecurityConfig,
    StoreConfig,
    TaskError,
    TaskRecord,
    TaskStatus,
    TaskStore,
)

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

    @initialize(
        retention=st.sampled_from([0, 5000, 5000]),
        max_tasks=st.sampled_from([0, 4]),
        max_ttl=st.sampled_from([0, 100_000]),
        shards=st.sampled_from([1, 4]),
    )
    def setup(self, retention: int, max_tasks: int, max_ttl: int, shards: int) -> None:
        self.retention, self.max_tasks, self.max_ttl = retention, max_tasks, max_ttl
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
        )
        self.store = TaskStore(config, SecurityConfig(), clock=lambda: self.now)
        # Start with a task per owner under the same id, and one more with a generated id.
        for owner in OWNERS:
            self.create(owner, None, False, "shared", None)
            self.create(owner, 100_000 if max_ttl else None, False, None, 250)

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

    def compare(self, expected: Any, actual: Any) -> None:
        """Run both sides; results must be equal, or both must fail with the same text."""
        try:
            want = expected()
        except Failure as failure:
            try:
                got = actual()
            except TaskError as err:
                text = str(failure)
                if text == "ERR invalid JSON":
                    assert str(err).startswith("ERR invalid JSON: "), str(err)
                else:
                    assert str(err) == text
                return
            raise AssertionError(f"expected {failure}, store returned {got!r}") from None
        got = actual()
        if isinstance(got, TaskRecord):
            doc = json.loads(got.wire_json())
            assert list(doc) == list(want.wire()), (doc, want.wire())
            assert doc == want.wire()
        else:
            assert got == want

    def target(self, data: st.DataObject) -> tuple[str, str]:
        """Mostly a live task (so mutations reach it), sometimes any owner/id pair."""
        self.purge()
        live = [(owner, task_id) for owner in OWNERS for task_id in self.tasks[owner]]
        if live and data.draw(st.integers(0, 9), label="live") < 8:
            return data.draw(st.sampled_from(live), label="task")
        owner = data.draw(st.sampled_from(OWNERS), label="owner")
        return owner, data.draw(st.sampled_from([*self.known, "never-created"]), label="id")

    # ------------------------------------------------------------ rules

    @rule(ms=st.sampled_from([0, 1, 7, 500, 1000, 1999, 2000, 2001, 60_000]))
    def advance(self, ms: int) -> None:
        self.now += ms

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
        self.compare(lambda: self.find(owner, task_id), lambda: self.store.get(owner, task_id))

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

        self.compare(expected, lambda: self.store.cancel(owner, task_id, message))

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

        self.compare(expected, lambda: self.store.set_variables(owner, task_id, payload))

    @rule(payload=payloads, data=st.data())
    def set_result(self, payload: bytes, data: st.DataObject) -> None:
        owner, task_id = self.target(data)

        def expected() -> None:
            model = self.find_mutable(owner, task_id)
            self.check_result(payload)
            model.result, model.updated = payload, self.now

        self.compare(expected, lambda: self.store.set_result(owner, task_id, payload))

    @rule(data=st.data())
    def get_result(self, data: st.DataObject) -> None:
        owner, task_id = self.target(data)

        def expected() -> bytes:
            model = self.find(owner, task_id)
            if model.status not in TERMINAL or model.result is None:
                raise Failure(f"NOTREADY task {task_id} is {model.status}; no result yet")
            return model.result

        self.compare(expected, lambda: self.store.get_result(owner, task_id))

    @rule(data=st.data())
    def stored_result(self, data: st.DataObject) -> None:
        owner, task_id = self.target(data)
        self.compare(
            lambda: self.find(owner, task_id).result,
            lambda: self.store.stored_result(owner, task_id),
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
        )

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        owner, task_id = self.target(data)

        def expected() -> bool:
            self.purge()
            return self.tasks[owner].pop(task_id, None) is not None

        self.compare(expected, lambda: self.store.delete(owner, task_id))

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
