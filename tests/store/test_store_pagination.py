"""TASK.LIST pagination: positions not pointers, newest first, owner-bound cursors."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from store_helpers import FakeClock

from taskstore.store import InvalidArgument, TaskRecord, TaskStore, list_json

MakeStore = Callable[..., TaskStore]


def _walk(store: TaskStore, owner: str, limit: int) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page, cursor = store.list(owner, cursor, limit)
        ids.extend(r.task_id for r in page)
        if cursor is None:
            return ids


def test_newest_first_with_same_millisecond_ties(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(max_tasks_per_owner=0)
    created = []
    for i in range(30):
        created.append(store.create("o", "m").task_id)
        if i % 4 == 3:
            clock.advance(1)  # several tasks share each millisecond
    assert _walk(store, "o", 7) == created[::-1]
    assert _walk(store, "o", 1000) == created[::-1]


def test_pages_stable_under_concurrent_creates_and_deletes(
    make_store: MakeStore, clock: FakeClock
) -> None:
    store = make_store(max_tasks_per_owner=0, list_max_limit=1000)
    rng = random.Random(7)
    initial = []
    for _ in range(1000):
        initial.append(store.create("o", "m").task_id)
        clock.advance(rng.choice((0, 0, 1, 3)))
    newest_first = initial[::-1]
    position = {task_id: i for i, task_id in enumerate(newest_first)}
    deleted: set[str] = set()
    created_later: set[str] = set()
    returned: list[str] = []
    cursor = None
    first = True
    while first or cursor is not None:
        first = False
        page, cursor = store.list("o", cursor, 7)
        returned.extend(r.task_id for r in page)
        # Between pages: new tasks, and deletions both behind and ahead of the position.
        for _ in range(3):
            created_later.add(store.create("o", "m").task_id)
            clock.advance(1)
        alive = [t for t in initial if t not in deleted]
        for victim in rng.sample(alive, min(4, len(alive))):
            assert store.delete("o", victim)
            deleted.add(victim)
        if cursor is not None:
            # Deleting the very task the cursor was taken after must not break it.
            last = page[-1].task_id
            if last not in deleted:
                store.delete("o", last)
                deleted.add(last)
    assert len(returned) == len(set(returned)), "a task was returned twice"
    assert not set(returned) & created_later, "a task created after page 1 appeared"
    assert [position[t] for t in returned] == sorted(position[t] for t in returned)
    # Every task present at the start and never deleted was returned.
    assert set(initial) - deleted <= set(returned)
    # And nothing that was deleted before its page was read appeared after deletion.
    assert set(returned) <= set(initial)


def test_last_page_has_no_cursor(make_store: MakeStore) -> None:
    store = make_store(max_tasks_per_owner=0)
    for _ in range(14):
        store.create("o", "m")
    page, cursor = store.list("o", None, 7)
    assert len(page) == 7 and cursor is not None
    page, cursor = store.list("o", cursor, 7)
    assert len(page) == 7 and cursor is None  # exactly exhausted: no nextCursor
    assert store.list("nobody") == ([], None)


def test_cursor_skips_tasks_evicted_meanwhile(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(max_tasks_per_owner=0, expired_retention_ms=0)
    short = [store.create("o", "m", 100).task_id for _ in range(5)]
    long = [store.create("o", "m", 10_000).task_id for _ in range(5)]
    page, cursor = store.list("o", None, 3)
    assert [r.task_id for r in page] == long[::-1][:3]
    clock.advance(100)  # the short-lived five are now past retention
    page, cursor = store.list("o", cursor, 3)
    assert [r.task_id for r in page] == long[::-1][3:]
    assert cursor is None  # the rest were due: none remain, so no nextCursor
    assert all(store.count("o") == 5 for _ in short)


def _cursor_for(store: TaskStore, owner: str) -> str:
    for _ in range(3):
        store.create(owner, "m")
    cursor = store.list(owner, None, 1)[1]
    assert cursor is not None
    return cursor


def test_other_owner_cursor_is_invalid(store: TaskStore) -> None:
    alice = _cursor_for(store, "alice")
    _cursor_for(store, "bob")
    with pytest.raises(InvalidArgument) as info:
        store.list("bob", alice, 10)
    assert str(info.value) == "ERR invalid cursor"


def test_cursor_from_another_store_is_invalid(clock: FakeClock) -> None:
    one, two = TaskStore(clock=clock), TaskStore(clock=clock)
    cursor = _cursor_for(one, "o")
    _cursor_for(two, "o")
    with pytest.raises(InvalidArgument, match=r"^ERR invalid cursor$"):
        two.list("o", cursor, 10)


def _mutations(cursor: str) -> list[str]:
    raw = base64.urlsafe_b64decode(cursor)
    variants = [
        "",
        "x",
        cursor + "A",
        cursor[:-1],
        cursor.upper(),
        cursor.replace("A", "B", 1) if "A" in cursor else cursor.replace("B", "A", 1),
        cursor + "\n",
        " " + cursor,
        "é" * len(cursor),
        base64.urlsafe_b64encode(raw[:1] + (5).to_bytes(8, "big") + raw[9:]).decode(),
        base64.urlsafe_b64encode(b"\x02" + raw[1:]).decode(),
        base64.b64encode(raw).decode() + "==",
        json.dumps({"seq": 1}),
        "0" * len(cursor),
    ]
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        variants.append(base64.urlsafe_b64encode(bytes(flipped)).decode())
    return [v for v in variants if v != cursor]


def test_forged_and_mutated_cursors_are_invalid(store: TaskStore) -> None:
    cursor = _cursor_for(store, "o")
    store.list("o", cursor, 10)  # genuine: fine
    for forged in _mutations(cursor):
        with pytest.raises(InvalidArgument) as info:
            store.list("o", forged, 10)
        assert str(info.value) == "ERR invalid cursor", forged


class _CountingIndex:
    """Wraps an owner's index to count the records a listing walks over."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.touched = 0

    def newest_first(self, before: int | None = None) -> Iterator[TaskRecord]:
        for record in self.inner.newest_first(before):
            self.touched += 1
            yield record


def test_list_cost_does_not_depend_on_position(make_store: MakeStore) -> None:
    """O(log n + limit): a page deep in 100k tasks touches only about ``limit`` records."""
    store = make_store(max_tasks_per_owner=0)
    for _ in range(100_000):
        store.create("o", "m")
    cursor = None
    for _ in range(3):
        page, cursor = store.list("o", cursor, 1000)
    entry = store._shard("o").owners["o"]
    counting = _CountingIndex(entry.index)
    entry.index = counting  # type: ignore[assignment]
    page, cursor = store.list("o", cursor, 10)
    entry.index = counting.inner
    assert len(page) == 10 and cursor is not None
    assert counting.touched == 11  # ten returned, one peeked to know more remain


def test_list_json_shape(store: TaskStore) -> None:
    records = [store.create("o", "m") for _ in range(3)]
    page, cursor = store.list("o", None, 2)
    assert cursor is not None
    doc = json.loads(list_json(page, cursor))
    assert list(doc) == ["tasks", "nextCursor"]
    assert doc["nextCursor"] == cursor
    assert [t["taskId"] for t in doc["tasks"]] == [records[2].task_id, records[1].task_id]
    last, none = store.list("o", cursor, 2)
    assert json.loads(list_json(last, none)) == {"tasks": [json.loads(records[0].wire_json())]}
    assert list_json([], None) == b'{"tasks":[]}'
