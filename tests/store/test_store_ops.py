"""Operations, the wire JSON (validated against the MCP models), events and statistics."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import mcp_types
import pytest
from store_helpers import T0, FakeClock

from taskstore.store import (
    InvalidArgument,
    InvalidTransition,
    NotReady,
    TaskNotFound,
    TaskRecord,
    TaskStatus,
    TaskStore,
    TooLarge,
    list_json,
)
from taskstore.store.timefmt import format_ms

MakeStore = Callable[..., TaskStore]


def _iso(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# ---------------------------------------------------------------- wire form


def test_wire_json_exact(store: TaskStore) -> None:
    record = store.create("o", "tools/call", task_id="t-1")
    assert record.wire_json() == (
        b'{"taskId":"t-1","status":"working","createdAt":"2026-11-26T13:24:57.123Z",'
        b'"lastUpdatedAt":"2026-11-26T13:24:57.123Z","ttl":3600000,"pollInterval":5000}'
    )


def test_wire_json_key_order_and_optional_keys(store: TaskStore, clock: FakeClock) -> None:
    record = store.create("o", "m", 1000, poll_interval_ms=250)
    clock.advance(1500 - 1000 + 1)
    store.update_status("o", record.task_id, None, 'say "hi"\n', set_message=True)
    store.set_variables("o", record.task_id, b'{"step":2,"io.example/x":{"a":[1,2]}}')
    doc = json.loads(record.wire_json())
    assert list(doc) == [
        "taskId",
        "status",
        "statusMessage",
        "createdAt",
        "lastUpdatedAt",
        "ttl",
        "pollInterval",
        "_meta",
    ]
    assert doc["statusMessage"] == 'say "hi"\n'
    assert doc["_meta"] == {"step": 2, "io.example/x": {"a": [1, 2]}}
    assert doc["ttl"] == 1000 and doc["pollInterval"] == 250
    assert doc["createdAt"] == _iso(T0) and doc["lastUpdatedAt"] == _iso(T0 + 501)
    # Removing every variable removes _meta; clearing the message removes statusMessage.
    store.set_variables("o", record.task_id, b'{"step":null,"io.example/x":null}')
    store.update_status("o", record.task_id, None, None, set_message=True)
    assert list(json.loads(record.wire_json())) == [
        "taskId",
        "status",
        "createdAt",
        "lastUpdatedAt",
        "ttl",
        "pollInterval",
    ]
    assert record.variables is None


def test_wire_json_is_compact_utf8(store: TaskStore) -> None:
    record = store.create("o", "m")
    store.update_status("o", record.task_id, None, "café ✓", set_message=True)
    store.set_variables("o", record.task_id, '{"k": "naïve", "n": [1, 2.5, true, null]}')
    raw = record.wire_json()
    assert "café ✓".encode() in raw
    assert b'"_meta":{"k":"na\xc3\xafve","n":[1,2.5,true,null]}' in raw
    assert b": " not in raw and b", " not in raw


def test_lone_surrogates_still_give_valid_json(store: TaskStore) -> None:
    record = store.create("o", "m")
    store.update_status("o", record.task_id, None, "bad \udcff byte", set_message=True)
    store.set_variables("o", record.task_id, b'{"s":"\\ud800"}')
    raw = record.wire_json()
    raw.decode("utf-8")  # strict: valid UTF-8
    doc = json.loads(raw)
    assert doc["statusMessage"] == "bad \udcff byte"
    assert doc["_meta"] == {"s": "\ud800"}


@pytest.mark.parametrize(
    "ms",
    [0, 999, 1000, T0, 1_700_000_000_000, 951_782_400_000, 4_102_444_799_999, 86_399_999],
)
def test_timestamp_format(ms: int) -> None:
    assert format_ms(ms) == _iso(ms)


def test_wire_json_is_cached_and_invalidated(store: TaskStore, clock: FakeClock) -> None:
    record = store.create("o", "m")
    first = record.wire_json()
    assert store.get("o", record.task_id).wire_json() is first  # not re-encoded
    steps: list[Callable[[], object]] = [
        lambda: store.update_status("o", record.task_id, None, "m", set_message=True),
        lambda: store.set_variables("o", record.task_id, b'{"a":1}'),
        lambda: store.set_result("o", record.task_id, b"{}"),
        lambda: store.update_status(
            "o", record.task_id, TaskStatus.INPUT_REQUIRED, None, set_message=False
        ),
        lambda: store.complete_with_result("o", record.task_id, TaskStatus.COMPLETED, b"1", "ok"),
    ]
    previous = first
    for step in steps:
        clock.advance(1)
        step()
        current = record.wire_json()
        assert current != previous
        assert json.loads(current)["lastUpdatedAt"] == _iso(clock.now)
        assert record.wire_json() is current
        previous = current


# ---------------------------------------------------------------- MCP models


def _validate_task(raw: bytes) -> None:
    task = mcp_types.Task.model_validate_json(raw)
    assert task.task_id == json.loads(raw)["taskId"]
    # GetTaskResult / CancelTaskResult are Result & Task: _meta lands in Result.meta.
    get_result = mcp_types.GetTaskResult.model_validate_json(raw)
    assert get_result.status == task.status
    mcp_types.CancelTaskResult.model_validate_json(raw)
    mcp_types.CreateTaskResult.model_validate_json(b'{"task":' + raw + b"}")
    dt.datetime.fromisoformat(task.created_at.replace("Z", "+00:00"))
    dt.datetime.fromisoformat(task.last_updated_at.replace("Z", "+00:00"))


def test_wire_json_validates_against_mcp_models(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(max_ttl_ms=0)
    created = store.create("o", "tools/call")
    _validate_task(created.wire_json())
    updated = store.create("o", "tools/call", 5000, poll_interval_ms=100)
    store.update_status("o", updated.task_id, TaskStatus.INPUT_REQUIRED, "need", set_message=True)
    store.set_variables("o", updated.task_id, b'{"k":{"nested":[1,"two"]}}')
    _validate_task(updated.wire_json())
    meta = mcp_types.GetTaskResult.model_validate_json(updated.wire_json()).meta
    assert meta == {"k": {"nested": [1, "two"]}}
    cancelled = store.cancel("o", store.create("o", "m").task_id, "user asked")
    _validate_task(cancelled.wire_json())
    done = store.create("o", "m", unlimited=True)
    clock.advance(7)
    store.complete_with_result("o", done.task_id, TaskStatus.FAILED, b'{"isError":true}', "boom")
    _validate_task(done.wire_json())
    assert mcp_types.Task.model_validate_json(done.wire_json()).ttl is None
    page, cursor = store.list("o", None, 2)
    listed = mcp_types.ListTasksResult.model_validate_json(list_json(page, cursor))
    assert listed.next_cursor == cursor
    assert [t.task_id for t in listed.tasks] == [done.task_id, cancelled.task_id]
    rest, end = store.list("o", cursor, 10)
    final = mcp_types.ListTasksResult.model_validate_json(list_json(rest, end))
    assert final.next_cursor is None and len(final.tasks) == 2
    assert {t.status for t in listed.tasks + final.tasks} == {
        "failed",
        "cancelled",
        "input_required",
        "working",
    }


# ---------------------------------------------------------------- variables and results


def test_variables_merge_and_delete(store: TaskStore) -> None:
    task_id = store.create("o", "m").task_id
    store.set_variables("o", task_id, b'{"a":1,"b":{"x":1}}')
    store.set_variables("o", task_id, b'{"b":{"y":2},"c":"z","missing":null}')
    assert store.get("o", task_id).variables == {"a": 1, "b": {"y": 2}, "c": "z"}
    store.set_variables("o", task_id, b"{}")
    assert store.get("o", task_id).variables == {"a": 1, "b": {"y": 2}, "c": "z"}
    store.set_variables("o", task_id, b'{"a":null,"b":null,"c":null}')
    assert store.get("o", task_id).variables is None


@pytest.mark.parametrize(
    ("payload", "start"),
    [
        (b"[1,2]", "ERR invalid JSON: variables must be a JSON object"),
        (b'"text"', "ERR invalid JSON: variables must be a JSON object"),
        (b"null", "ERR invalid JSON: variables must be a JSON object"),
        (b"{", "ERR invalid JSON: "),
        (b'{"a":NaN}', "ERR invalid JSON: NaN is not valid JSON"),
        (b'{"a":Infinity}', "ERR invalid JSON: Infinity is not valid JSON"),
        (b'{"a":1e999}', "ERR invalid JSON: number 1e999 is out of range"),
        (b'{"a":"\xff"}', "ERR invalid JSON: variables is not valid UTF-8"),
        (b'{"a":1} x', "ERR invalid JSON: Extra data"),
        (b"", "ERR invalid JSON: Expecting value"),
    ],
)
def test_bad_variables(store: TaskStore, payload: bytes, start: str) -> None:
    task_id = store.create("o", "m").task_id
    store.set_variables("o", task_id, b'{"keep":true}')
    before = store.get("o", task_id).wire_json()
    with pytest.raises(InvalidArgument) as info:
        store.set_variables("o", task_id, payload)
    assert str(info.value).startswith(start)
    assert "\n" not in str(info.value)
    assert store.get("o", task_id).wire_json() is before


def test_result_stored_as_given(store: TaskStore) -> None:
    task_id = store.create("o", "m").task_id
    text = b'{ "content" : [ {"type":"text","text":"hi"} ],\n "isError": false }'
    store.set_result("o", task_id, text)
    assert store.get("o", task_id).status is TaskStatus.WORKING  # status unchanged
    with pytest.raises(NotReady, match="is working; no result yet"):
        store.get_result("o", task_id)
    store.update_status("o", task_id, TaskStatus.COMPLETED, None, set_message=False)
    assert store.get_result("o", task_id) == text
    # Allowed after completion (the seed's choice): a result may follow the status update.
    store.set_result("o", task_id, '"ünïcode"')
    assert store.get_result("o", task_id) == '"ünïcode"'.encode()


def test_stored_result_whatever_the_status(store: TaskStore, clock: FakeClock) -> None:
    """TASK.RESULT … ANY: the stored result at any status; None when there is none."""
    task_id = store.create("o", "m", 1000).task_id
    assert store.stored_result("o", task_id) is None
    store.set_result("o", task_id, b'{"partial":true}')
    assert store.stored_result("o", task_id) == b'{"partial":true}'
    store.update_status("o", task_id, TaskStatus.INPUT_REQUIRED, None, set_message=False)
    assert store.stored_result("o", task_id) == b'{"partial":true}'
    store.cancel("o", task_id, None)
    assert store.stored_result("o", task_id) == store.get_result("o", task_id)
    other = store.create("o", "m").task_id
    store.cancel("o", other, None)
    assert store.stored_result("o", other) is None  # terminal, no result
    with pytest.raises(TaskNotFound):
        store.stored_result("o", "nope")
    with pytest.raises(TaskNotFound):
        store.stored_result("someone-else", task_id)
    with pytest.raises(InvalidArgument, match="invalid task id"):
        store.stored_result("o", "has space")
    clock.advance(1000)  # expired: still readable until evicted
    assert store.stored_result("o", task_id) == b'{"partial":true}'


@pytest.mark.parametrize("payload", [b"{", b"NaN", b"", b"\xff", b"[1,]", b"{'a':1}"])
def test_bad_results(store: TaskStore, payload: bytes) -> None:
    task_id = store.create("o", "m").task_id
    with pytest.raises(InvalidArgument, match=r"^ERR invalid JSON: "):
        store.set_result("o", task_id, payload)
    assert store.get("o", task_id).result is None


def test_variables_allowed_on_terminal_tasks(store: TaskStore) -> None:
    task_id = store.create("o", "m").task_id
    store.cancel("o", task_id, None)
    record = store.set_variables("o", task_id, b'{"why":"user"}')
    assert record.variables == {"why": "user"}
    assert record.status is TaskStatus.CANCELLED


# ---------------------------------------------------------------- complete_with_result


def _snapshot(record: TaskRecord) -> tuple[object, ...]:
    return (record.status, record.status_message, record.result, record.wire_json())


def test_complete_with_result(store: TaskStore, clock: FakeClock) -> None:
    task_id = store.create("o", "m").task_id
    clock.advance(10)
    record = store.complete_with_result("o", task_id, TaskStatus.COMPLETED, b'{"v":1}', "done")
    assert (record.status, record.status_message) == (TaskStatus.COMPLETED, "done")
    assert store.get_result("o", task_id) == b'{"v":1}'
    assert record.last_updated_at_ms == T0 + 10
    failed = store.create("o", "m").task_id
    store.update_status("o", failed, TaskStatus.INPUT_REQUIRED, "q", set_message=True)
    record = store.complete_with_result("o", failed, TaskStatus.FAILED, b"{}", None)
    assert record.status is TaskStatus.FAILED and record.status_message is None


@pytest.mark.parametrize("status", [TaskStatus.WORKING, TaskStatus.CANCELLED])
def test_complete_with_result_needs_a_completion_status(
    store: TaskStore, status: TaskStatus
) -> None:
    task_id = store.create("o", "m").task_id
    with pytest.raises(InvalidArgument, match=r"^ERR status must be completed or failed$"):
        store.complete_with_result("o", task_id, status, b"{}", None)


def test_complete_with_result_is_atomic(make_store: MakeStore) -> None:
    store = make_store(max_result_bytes=10)
    task_id = store.create("o", "m").task_id
    store.set_result("o", task_id, b'"old"')
    store.update_status("o", task_id, None, "busy", set_message=True)
    record = store.get("o", task_id)
    before = _snapshot(record)
    with pytest.raises(InvalidArgument):
        store.complete_with_result("o", task_id, TaskStatus.COMPLETED, b"{bad", "x")
    assert _snapshot(record) == before
    with pytest.raises(TooLarge):
        store.complete_with_result("o", task_id, TaskStatus.COMPLETED, b'"0123456789"', "x")
    assert _snapshot(record) == before
    with pytest.raises(TooLarge):
        store.complete_with_result("o", task_id, TaskStatus.COMPLETED, b"1", "x" * 70_000)
    assert _snapshot(record) == before
    store.cancel("o", task_id, "stop")
    cancelled = _snapshot(record)
    with pytest.raises(InvalidTransition) as info:
        store.complete_with_result("o", task_id, TaskStatus.COMPLETED, b'"new"', "x")
    assert str(info.value) == (
        f"INVALIDTRANSITION invalid transition from cancelled to completed for task {task_id}"
    )
    assert _snapshot(record) == cancelled
    assert store.stats()["cancelled"] == 1 and store.stats()["completed"] == 0


# ---------------------------------------------------------------- events, counts, stats


def test_listener_events(store: TaskStore) -> None:
    events: list[tuple[str, str, str]] = []
    listener = lambda e, o, r: events.append((e, o, r.status.value))  # noqa: E731
    store.add_listener(listener)
    task_id = store.create("o", "m").task_id
    store.update_status("o", task_id, None, "p", set_message=True)
    store.set_variables("o", task_id, b'{"a":1}')
    store.set_result("o", task_id, b"1")
    store.complete_with_result("o", task_id, TaskStatus.COMPLETED, b"2", None)
    other = store.create("o", "m").task_id
    store.cancel("o", other, None)
    store.delete("o", other)
    with pytest.raises(InvalidTransition):
        store.cancel("o", task_id, None)  # failed operations send nothing
    assert events == [
        ("created", "o", "working"),
        ("updated", "o", "working"),
        ("variables", "o", "working"),
        ("result", "o", "working"),
        ("completed", "o", "completed"),
        ("created", "o", "working"),
        ("cancelled", "o", "cancelled"),
        ("deleted", "o", "cancelled"),
    ]
    store.remove_listener(listener)
    store.create("o", "m")
    assert len(events) == 8


def test_counts_stats_and_flush(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(max_tasks_per_owner=0, expired_retention_ms=1000)
    a = [store.create("a", "m", 100).task_id for _ in range(4)]
    b = [store.create("b", "m").task_id for _ in range(3)]
    store.update_status("a", a[0], TaskStatus.INPUT_REQUIRED, None, set_message=False)
    store.update_status("a", a[1], TaskStatus.COMPLETED, None, set_message=False)
    store.complete_with_result("b", b[0], TaskStatus.FAILED, b"{}", None)
    store.cancel("b", b[1], None)
    assert (store.count("a"), store.count("b"), store.count("c"), store.count(None)) == (4, 3, 0, 7)
    clock.advance(100)
    stats = store.stats()
    assert stats == {
        "tasks": 7,
        "working": 3,
        "input_required": 1,
        "completed": 1,
        "failed": 1,
        "cancelled": 1,
        "owners": 2,
        "expired": 4,
        "evicted_total": 0,
        "created_total": 7,
    }
    clock.advance(1000)
    assert store.count("a") == 0  # exact per owner: past retention is gone
    stats = store.stats()
    assert (stats["tasks"], stats["owners"], stats["expired"], stats["evicted_total"]) == (
        3,
        1,
        0,
        4,
    )
    store.flush()
    assert store.count(None) == 0 and store.count("b") == 0
    stats = store.stats()
    assert (stats["tasks"], stats["owners"], stats["working"], stats["created_total"]) == (
        0,
        0,
        0,
        7,
    )
    store.create("b", "m", task_id=b[2])  # ids are free again


def test_owners_are_isolated_with_shared_ids(store: TaskStore) -> None:
    for owner in ("alice", "bob", "local"):
        store.create(owner, "m", task_id="shared")
        store.create(owner, "m", task_id=f"own-{owner}")
    store.cancel("alice", "shared", None)
    assert store.get("bob", "shared").status is TaskStatus.WORKING
    assert {r.task_id for r in store.list("bob")[0]} == {"shared", "own-bob"}
    assert store.delete("local", "shared")
    assert store.get("alice", "shared").status is TaskStatus.CANCELLED
    assert store.count("local") == 1


def test_generated_ids_are_uuid4_and_never_shared_with_a_forked_child(tmp_path) -> None:
    """Ids come from a pool of OS randomness (one read per 64 ids): every one is a version 4,
    RFC 4122 variant UUID, all distinct, and a forked child does not reuse the parent's pool."""
    import os
    import uuid

    store = TaskStore()
    ids = [store._new_task_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert str(parsed) == task_id
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    store._new_task_id()  # the pool now holds ids the child must not repeat
    pid = os.fork()
    if pid == 0:  # the child: write its next ids and leave at once
        with open(tmp_path / "child", "w") as f:
            f.write(" ".join(store._new_task_id() for _ in range(70)))
        os._exit(0)
    os.waitpid(pid, 0)
    child = set((tmp_path / "child").read_text().split())
    parent = {store._new_task_id() for _ in range(70)}
    assert len(child) == 70 and not child & parent


def test_a_listener_may_remove_itself_while_called() -> None:
    """The server stops listening when its last waiter is woken, from inside the listener:
    the listeners after it must still hear of that change."""
    store = TaskStore()
    heard: list[str] = []

    def once(event: str, owner: str, record: TaskRecord) -> None:
        heard.append("once")
        store.remove_listener(once)

    store.add_listener(lambda e, o, r: heard.append("last"))
    store.add_listener(once, first=True)
    store.create("alice", "tools/call")
    store.create("alice", "tools/call")
    assert heard == ["once", "last", "last"]
