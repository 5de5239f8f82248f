"""The MCP status state machine: every one of the 25 (from, to) pairs, with exact replies."""

from __future__ import annotations

import itertools

import pytest
from store_helpers import FakeClock

from taskstore.store import (
    InvalidArgument,
    InvalidTransition,
    TaskExpired,
    TaskStatus,
    TaskStore,
    parse_status,
)

S = TaskStatus
ALLOWED = {
    (S.WORKING, S.INPUT_REQUIRED),
    (S.WORKING, S.COMPLETED),
    (S.WORKING, S.FAILED),
    (S.WORKING, S.CANCELLED),
    (S.INPUT_REQUIRED, S.WORKING),
    (S.INPUT_REQUIRED, S.COMPLETED),
    (S.INPUT_REQUIRED, S.FAILED),
    (S.INPUT_REQUIRED, S.CANCELLED),
}


def _task_in(store: TaskStore, status: TaskStatus) -> str:
    """A task of owner "o" currently in ``status``."""
    task_id = store.create("o", "tools/call").task_id
    if status is not S.WORKING:
        # Every other status is one step away from working.
        store.update_status("o", task_id, status, None, set_message=False)
    return task_id


@pytest.mark.parametrize(
    ("current", "new"),
    list(itertools.product(TaskStatus, TaskStatus)),
    ids=lambda s: s.value,
)
def test_every_transition(store: TaskStore, current: TaskStatus, new: TaskStatus) -> None:
    task_id = _task_in(store, current)
    assert store.get("o", task_id).status is current
    if (current, new) in ALLOWED:
        record = store.update_status("o", task_id, new, "why", set_message=True)
        assert record.status is new
        assert record.status_message == "why"
    else:
        with pytest.raises(InvalidTransition) as info:
            store.update_status("o", task_id, new, "why", set_message=True)
        assert str(info.value) == (
            f"INVALIDTRANSITION invalid transition from {current.value} to {new.value} "
            f"for task {task_id}"
        )
        assert store.get("o", task_id).status is current


@pytest.mark.parametrize("current", list(TaskStatus), ids=lambda s: s.value)
def test_cancel_from_every_status(store: TaskStore, current: TaskStatus) -> None:
    task_id = _task_in(store, current)
    if current.is_terminal:
        with pytest.raises(InvalidTransition) as info:
            store.cancel("o", task_id, None)
        assert str(info.value) == (
            f"INVALIDTRANSITION invalid transition from {current.value} to cancelled "
            f"for task {task_id}"
        )
    else:
        record = store.cancel("o", task_id, "stop")
        assert record.status is S.CANCELLED
        assert record.status_message == "stop"


@pytest.mark.parametrize("current", list(TaskStatus), ids=lambda s: s.value)
def test_message_only_update(store: TaskStore, clock: FakeClock, current: TaskStatus) -> None:
    """MESSAGE alone is not a transition: allowed on every status, terminal ones included."""
    task_id = _task_in(store, current)
    clock.advance(5)
    record = store.update_status("o", task_id, None, "50%", set_message=True)
    assert record.status is current
    assert record.status_message == "50%"
    assert record.last_updated_at_ms == clock.now
    assert b'"statusMessage":"50%"' in record.wire_json()
    # MESSAGE alone keeps the status; clearing the message is a message-only update too.
    record = store.update_status("o", task_id, None, None, set_message=True)
    assert record.status is current
    assert record.status_message is None
    assert b"statusMessage" not in record.wire_json()


@pytest.mark.parametrize("terminal", [S.COMPLETED, S.FAILED, S.CANCELLED], ids=lambda s: s.value)
def test_terminal_message_update_keeps_status_result_and_counts(
    store: TaskStore, terminal: TaskStatus
) -> None:
    task_id = _task_in(store, terminal)
    store.set_result("o", task_id, b'{"v":1}')
    before = store.stats()
    store.update_status("o", task_id, None, "after the end", set_message=True)
    assert store.stats() == before
    assert store.get_result("o", task_id) == b'{"v":1}'
    # a status change, even to the same terminal status and with a message, still is refused
    for new in TaskStatus:
        with pytest.raises(InvalidTransition):
            store.update_status("o", task_id, new, "x", set_message=True)
    assert store.get("o", task_id).status_message == "after the end"


def test_message_update_of_an_expired_task_is_refused(store: TaskStore, clock: FakeClock) -> None:
    for status in (S.WORKING, S.COMPLETED):
        task_id = store.create("o", "tools/call", 1000).task_id
        if status is not S.WORKING:
            store.update_status("o", task_id, status, "done", set_message=True)
        clock.advance(1000)
        with pytest.raises(TaskExpired):
            store.update_status("o", task_id, None, "late", set_message=True)
        assert store.get("o", task_id).status_message == (None if status is S.WORKING else "done")


def test_status_change_without_message_clears_it(store: TaskStore) -> None:
    task_id = store.create("o", "tools/call").task_id
    store.update_status("o", task_id, None, "thinking", set_message=True)
    record = store.update_status("o", task_id, S.INPUT_REQUIRED, None, set_message=False)
    assert record.status_message is None
    assert b"statusMessage" not in record.wire_json()


def test_update_needs_something(store: TaskStore) -> None:
    task_id = store.create("o", "tools/call").task_id
    with pytest.raises(InvalidArgument) as info:
        store.update_status("o", task_id, None, None, set_message=False)
    assert str(info.value).startswith("ERR ")


def test_terminal_flags() -> None:
    assert [s.is_terminal for s in TaskStatus] == [False, False, True, True, True]


@pytest.mark.parametrize("name", ["working", "input_required", "completed", "failed", "cancelled"])
def test_parse_status_names(name: str) -> None:
    assert parse_status(name).value == name
    assert parse_status(name) == name  # a str enum: compares equal to its wire name


@pytest.mark.parametrize("name", ["Working", "WORKING", "input-required", "done", "", "working "])
def test_parse_status_rejects(name: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_status(name)
    assert str(info.value).startswith("ERR invalid status")
    assert "\n" not in str(info.value)


def test_parse_status_never_echoes_control_characters() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_status("x\r\n-OK")
    assert "\r" not in str(info.value) and "\n" not in str(info.value)
