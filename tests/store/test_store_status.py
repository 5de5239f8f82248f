"""The MCP status state machine: every one of the 25 (from, to) pairs, with exact replies."""

from __future__ import annotations

import itertools

import pytest

from taskstore.store import (
    InvalidArgument,
    InvalidTransition,
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
def test_message_only_update(store: TaskStore, current: TaskStatus) -> None:
    task_id = _task_in(store, current)
    if current.is_terminal:
        with pytest.raises(InvalidTransition) as info:
            store.update_status("o", task_id, None, "progress", set_message=True)
        assert str(info.value) == (
            f"INVALIDTRANSITION task {task_id} is {current.value}: terminal tasks do not change"
        )
    else:
        record = store.update_status("o", task_id, None, "50%", set_message=True)
        assert record.status is current
        assert record.status_message == "50%"
        # MESSAGE alone keeps the status; clearing the message is a message-only update too.
        record = store.update_status("o", task_id, None, None, set_message=True)
        assert record.status_message is None


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
