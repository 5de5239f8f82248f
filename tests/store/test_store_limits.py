"""Every limit of design.md section 4, at its boundary and one past it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from store_helpers import FakeClock

from taskstore.store import (
    InvalidArgument,
    LimitExceeded,
    TaskExists,
    TaskStatus,
    TaskStore,
    TooLarge,
)

MakeStore = Callable[..., TaskStore]


# ---------------------------------------------------------------- ttl


def test_ttl_default_and_maximum(make_store: MakeStore) -> None:
    store = make_store(default_ttl_ms=1000, max_ttl_ms=5000)
    assert store.create("o", "m").ttl_ms == 1000
    assert store.create("o", "m", 5000).ttl_ms == 5000
    assert store.create("o", "m", 1).ttl_ms == 1
    with pytest.raises(InvalidArgument) as info:
        store.create("o", "m", 5001)
    assert str(info.value) == "ERR TTL 5001ms exceeds maximum allowed 5000ms"


@pytest.mark.parametrize("ttl", [0, -1, -5000])
def test_ttl_must_be_positive(store: TaskStore, ttl: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        store.create("o", "m", ttl)
    assert str(info.value) == "ERR TTL must be a whole number >= 1 or NONE"


def test_ttl_is_never_clamped(store: TaskStore) -> None:
    with pytest.raises(InvalidArgument, match="exceeds maximum allowed 86400000ms"):
        store.create("o", "m", 86_400_001)
    assert store.count("o") == 0


def test_unlimited_ttl_needs_max_ttl_zero(make_store: MakeStore) -> None:
    limited = make_store()
    with pytest.raises(InvalidArgument) as info:
        limited.create("o", "m", unlimited=True)
    assert str(info.value).startswith("ERR unlimited TTL (TTL NONE) needs max_ttl_ms 0")
    unlimited = make_store(max_ttl_ms=0)
    record = unlimited.create("o", "m", unlimited=True)
    assert record.ttl_ms is None and record.expires_at_ms is None
    assert json.loads(record.wire_json())["ttl"] is None
    # With no maximum, any positive TTL is accepted as given.
    assert unlimited.create("o", "m", 10**12).ttl_ms == 10**12
    with pytest.raises(InvalidArgument, match="mutually exclusive"):
        unlimited.create("o", "m", 5, unlimited=True)


def test_poll_interval(store: TaskStore) -> None:
    assert store.create("o", "m").poll_interval_ms == 5000
    assert store.create("o", "m", poll_interval_ms=1).poll_interval_ms == 1
    with pytest.raises(InvalidArgument, match="POLLINTERVAL"):
        store.create("o", "m", poll_interval_ms=0)


# ---------------------------------------------------------------- tasks per owner


def test_max_tasks_per_owner_counts_terminal_tasks(make_store: MakeStore) -> None:
    store = make_store(max_tasks_per_owner=3)
    ids = [store.create("o", "m").task_id for _ in range(3)]
    store.update_status("o", ids[0], TaskStatus.COMPLETED, None, set_message=False)
    store.cancel("o", ids[1], None)
    with pytest.raises(LimitExceeded) as info:
        store.create("o", "m")
    assert str(info.value) == (
        "LIMIT owner has 3 tasks (max 3): cancel or wait for existing tasks to expire"
    )
    assert info.value.mcp_code == -32603
    # Per owner: another owner is unaffected.
    store.create("other", "m")
    # Deleting frees a slot.
    assert store.delete("o", ids[0])
    store.create("o", "m")


def test_max_tasks_counts_expired_until_evicted(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(max_tasks_per_owner=2, expired_retention_ms=1000)
    store.create("o", "m", 100)
    store.create("o", "m", 100)
    clock.advance(100)  # both expired, still held for retention
    with pytest.raises(LimitExceeded, match="owner has 2 tasks"):
        store.create("o", "m")
    clock.advance(999)
    with pytest.raises(LimitExceeded):
        store.create("o", "m")
    clock.advance(1)  # retention over: evicted lazily before the check
    store.create("o", "m")
    assert store.count("o") == 1


def test_max_tasks_zero_is_unlimited(make_store: MakeStore) -> None:
    store = make_store(max_tasks_per_owner=0)
    for _ in range(250):
        store.create("o", "m")
    assert store.count("o") == 250


def test_max_tasks_exactly_at_boundary(make_store: MakeStore) -> None:
    store = make_store(max_tasks_per_owner=1)
    store.create("o", "m")
    with pytest.raises(LimitExceeded, match=r"owner has 1 tasks \(max 1\)"):
        store.create("o", "m")


# ---------------------------------------------------------------- variables


def _vars_of_size(size: int) -> bytes:
    """A variables object whose compact JSON is exactly ``size`` bytes."""
    # {"k":"..."} is 8 bytes plus the string.
    return json.dumps({"k": "x" * (size - 8)}, separators=(",", ":")).encode()


def test_variable_size_boundary(make_store: MakeStore) -> None:
    store = make_store(max_variable_size_bytes=100)
    task_id = store.create("o", "m").task_id
    assert len(_vars_of_size(100)) == 100
    store.set_variables("o", task_id, _vars_of_size(100))
    with pytest.raises(TooLarge) as info:
        store.set_variables("o", task_id, _vars_of_size(101))
    assert str(info.value) == "TOOLARGE variables are 101 bytes (max 100)"


def test_variable_size_is_of_the_merged_object(make_store: MakeStore) -> None:
    store = make_store(max_variable_size_bytes=30)
    task_id = store.create("o", "m").task_id
    store.set_variables("o", task_id, b'{"a":"0123456789"}')  # 18 bytes
    with pytest.raises(TooLarge) as info:
        store.set_variables("o", task_id, b'{"b":"0123456789"}')  # merged: 35 bytes
    assert str(info.value) == "TOOLARGE variables are 35 bytes (max 30)"
    assert store.get("o", task_id).variables == {"a": "0123456789"}
    # Deleting and adding in one update is measured after the merge: fits.
    store.set_variables("o", task_id, b'{"a":null,"b":"0123456789"}')
    assert store.get("o", task_id).variables == {"b": "0123456789"}


def test_variable_size_counts_utf8_bytes(make_store: MakeStore) -> None:
    store = make_store(max_variable_size_bytes=12)
    task_id = store.create("o", "m").task_id
    store.set_variables("o", task_id, '{"k":"éé"}')  # 12 bytes in UTF-8, 10 characters
    with pytest.raises(TooLarge, match="variables are 14 bytes"):
        store.set_variables("o", task_id, '{"k":"ééé"}')


def _nested(depth: int) -> bytes:
    """An object nesting ``depth`` containers, the variables object itself included."""
    value: object = 1
    for level in range(depth - 1):
        value = {"n": value} if level % 2 else [value]
    return json.dumps({"k": value}).encode()


def test_variable_depth_boundary(make_store: MakeStore) -> None:
    store = make_store(max_variable_depth=4)
    task_id = store.create("o", "m").task_id
    store.set_variables("o", task_id, _nested(4))
    with pytest.raises(TooLarge) as info:
        store.set_variables("o", task_id, _nested(5))
    assert str(info.value) == "TOOLARGE variables nest 5 levels deep (max 4)"
    with pytest.raises(TooLarge, match="variables nest 9 levels deep"):
        store.set_variables("o", task_id, _nested(9))
    store.set_variables("o", task_id, b'{"flat":1}')  # depth 1 always fits


def test_variable_depth_beyond_the_parser(store: TaskStore) -> None:
    task_id = store.create("o", "m").task_id
    deep = b'{"k":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(TooLarge, match="nest too deeply"):
        store.set_variables("o", task_id, deep)


def test_variable_string_length_boundary(make_store: MakeStore) -> None:
    store = make_store(max_string_length=10)
    task_id = store.create("o", "m").task_id
    store.set_variables("o", task_id, json.dumps({"k": "x" * 10, "y" * 10: 1}))
    for bad in ({"k": "x" * 11}, {"z" * 11: 1}, {"k": {"deep": ["x" * 11]}}, {"k": "é" * 6}):
        with pytest.raises(TooLarge) as info:
            store.set_variables("o", task_id, json.dumps(bad, ensure_ascii=False))
        assert str(info.value) == "TOOLARGE string of 11 bytes exceeds max_string_length 10" or (
            str(info.value) == "TOOLARGE string of 12 bytes exceeds max_string_length 10"
        )
    assert store.get("o", task_id).variables == {"k": "x" * 10, "y" * 10: 1}


def test_status_message_length(make_store: MakeStore) -> None:
    store = make_store(max_string_length=10)
    task_id = store.create("o", "m").task_id
    store.update_status("o", task_id, None, "x" * 10, set_message=True)
    with pytest.raises(TooLarge) as info:
        store.update_status("o", task_id, None, "x" * 11, set_message=True)
    assert str(info.value) == "TOOLARGE status message is 11 bytes (max 10)"
    with pytest.raises(TooLarge):
        store.cancel("o", task_id, "x" * 11)
    with pytest.raises(TooLarge, match="request method is 11 bytes"):
        store.create("o", "m" * 11)


# ---------------------------------------------------------------- results


def test_result_size_boundary(make_store: MakeStore) -> None:
    store = make_store(max_result_bytes=20)
    task_id = store.create("o", "m").task_id
    exact = b'{"r":"' + b"x" * 12 + b'"}'
    assert len(exact) == 20
    store.set_result("o", task_id, exact)
    with pytest.raises(TooLarge) as info:
        store.set_result("o", task_id, b'{"r":"' + b"x" * 13 + b'"}')
    assert str(info.value) == "TOOLARGE result is 21 bytes (max 20)"
    # Size is of the text as given, whitespace included.
    with pytest.raises(TooLarge, match="result is 21 bytes"):
        store.set_result("o", task_id, exact + b" ")
    with pytest.raises(TooLarge, match="result is 21 bytes"):
        store.complete_with_result("o", task_id, TaskStatus.COMPLETED, exact + b"\n", None)
    store.update_status("o", task_id, TaskStatus.COMPLETED, None, set_message=False)
    assert store.get_result("o", task_id) == exact


# ---------------------------------------------------------------- list limit


def test_list_limit_boundaries(make_store: MakeStore) -> None:
    store = make_store(list_default_limit=3, list_max_limit=5, max_tasks_per_owner=0)
    for _ in range(7):
        store.create("o", "m")
    assert len(store.list("o")[0]) == 3
    assert len(store.list("o", None, 1)[0]) == 1
    assert len(store.list("o", None, 5)[0]) == 5
    for bad in (0, 6, -1):
        with pytest.raises(InvalidArgument) as info:
            store.list("o", None, bad)
        assert str(info.value) == "ERR LIMIT must be between 1 and 5"


# ---------------------------------------------------------------- ids


@pytest.mark.parametrize(
    "task_id",
    ["a", "x" * 256, "!~", "abc:def", '"quoted"', "back\\slash", "3f2a:uuid-like", "{}[]"],
)
def test_valid_ids(store: TaskStore, task_id: str) -> None:
    record = store.create("o", "m", task_id=task_id)
    assert record.task_id == task_id
    assert store.get("o", task_id) is record
    assert json.loads(record.wire_json())["taskId"] == task_id


@pytest.mark.parametrize(
    "task_id", ["", "x" * 257, "has space", "tab\t", "new\nline", "del\x7f", "é", "nul\x00"]
)
def test_invalid_ids(store: TaskStore, task_id: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        store.create("o", "m", task_id=task_id)
    text = str(info.value)
    assert text.startswith("ERR invalid task id")
    assert "\n" not in text and "\r" not in text
    # Lookups with such an id are rejected the same way (it could never exist).
    with pytest.raises(InvalidArgument):
        store.get("o", task_id)


def test_duplicate_id_per_owner(store: TaskStore) -> None:
    store.create("alice", "m", task_id="job-1")
    with pytest.raises(TaskExists) as info:
        store.create("alice", "m", task_id="job-1")
    assert str(info.value) == "EXISTS task already exists: job-1"
    bob = store.create("bob", "m", task_id="job-1")  # another owner may use the same id
    assert store.get("bob", "job-1") is bob
    assert store.get("alice", "job-1") is not bob


def test_duplicate_id_reported_before_limit(make_store: MakeStore) -> None:
    store = make_store(max_tasks_per_owner=1)
    store.create("o", "m", task_id="x")
    with pytest.raises(TaskExists):
        store.create("o", "m", task_id="x")
    with pytest.raises(LimitExceeded):
        store.create("o", "m", task_id="y")


def test_id_reusable_after_eviction(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(expired_retention_ms=0)
    first = store.create("o", "m", 10, task_id="x")
    clock.advance(10)
    second = store.create("o", "m", task_id="x")
    assert second is not first
    assert store.get("o", "x") is second
