"""Expiry with a fake clock: readable when expired, EXPIRED on mutation, gone after retention."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from store_helpers import FakeClock

from taskstore.store import (
    InvalidArgument,
    TaskExpired,
    TaskNotFound,
    TaskRecord,
    TaskStatus,
    TaskStore,
)

MakeStore = Callable[..., TaskStore]


def _mutations(store: TaskStore, task_id: str) -> list[Callable[[], object]]:
    return [
        lambda: store.update_status("o", task_id, TaskStatus.COMPLETED, None, set_message=False),
        lambda: store.update_status("o", task_id, None, "progress", set_message=True),
        lambda: store.set_variables("o", task_id, b'{"a":1}'),
        lambda: store.set_result("o", task_id, b"{}"),
        lambda: store.complete_with_result("o", task_id, TaskStatus.FAILED, b"{}", None),
        lambda: store.cancel("o", task_id, None),
    ]


def test_expired_task_readable_but_immutable(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(expired_retention_ms=5000)
    record = store.create("o", "m", 1000)
    store.update_status("o", record.task_id, TaskStatus.COMPLETED, None, set_message=False)
    store.set_result("o", record.task_id, b'{"ok":true}')
    clock.advance(999)
    assert not record.is_expired(clock.now)
    clock.advance(1)
    assert record.is_expired(clock.now)
    assert record.expires_at_ms == clock.now
    before = record.wire_json()
    # Reads still work.
    assert store.get("o", record.task_id) is record
    assert store.get_result("o", record.task_id) == b'{"ok":true}'
    assert [r.task_id for r in store.list("o")[0]] == [record.task_id]
    # Every mutation is EXPIRED, and changes nothing.
    for mutate in _mutations(store, record.task_id):
        with pytest.raises(TaskExpired) as info:
            mutate()
        assert str(info.value) == f"EXPIRED task expired: {record.task_id}"
    assert record.wire_json() == before


def test_expired_working_task_every_mutation(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store()
    task_id = store.create("o", "m", 50).task_id
    clock.advance(50)
    for mutate in _mutations(store, task_id):
        with pytest.raises(TaskExpired):
            mutate()
    assert store.get("o", task_id).status is TaskStatus.WORKING


def test_check_order_not_found_then_expired_then_transition(
    make_store: MakeStore, clock: FakeClock
) -> None:
    store = make_store()
    task_id = store.create("o", "m", 50).task_id
    store.cancel("o", task_id, None)
    clock.advance(50)
    # Expired and terminal: the expiry is reported, not the transition.
    with pytest.raises(TaskExpired):
        store.update_status("o", task_id, TaskStatus.WORKING, None, set_message=False)
    with pytest.raises(TaskNotFound):
        store.update_status("o", "missing", TaskStatus.WORKING, None, set_message=False)


def test_not_found_after_retention(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(expired_retention_ms=60_000)
    task_id = store.create("o", "m", 1000).task_id
    clock.advance(1000 + 59_999)
    assert store.get("o", task_id).task_id == task_id
    clock.advance(1)
    with pytest.raises(TaskNotFound) as info:
        store.get("o", task_id)
    assert str(info.value) == f"NOTFOUND task not found: {task_id}"
    with pytest.raises(TaskNotFound):
        store.cancel("o", task_id, None)


def test_retention_zero_evicts_at_expiry(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(expired_retention_ms=0)
    task_id = store.create("o", "m", 1000).task_id
    clock.advance(999)
    store.get("o", task_id)
    clock.advance(1)
    with pytest.raises(TaskNotFound):
        store.get("o", task_id)
    with pytest.raises(TaskNotFound):
        store.set_result("o", task_id, b"{}")


@pytest.mark.parametrize("read", ["get", "result", "list", "count", "delete", "create"])
def test_never_returned_after_retention_without_sweep(
    make_store: MakeStore, clock: FakeClock, read: str
) -> None:
    store = make_store(expired_retention_ms=100, max_tasks_per_owner=1)
    task_id = store.create("o", "m", 100, task_id="t").task_id
    store.complete_with_result("o", task_id, TaskStatus.COMPLETED, b"1", None)
    clock.advance(200)
    assert store.stats()["tasks"] == 1  # still held: nothing has run
    if read == "get":
        with pytest.raises(TaskNotFound):
            store.get("o", task_id)
    elif read == "result":
        with pytest.raises(TaskNotFound):
            store.get_result("o", task_id)
    elif read == "list":
        assert store.list("o") == ([], None)
    elif read == "count":
        assert store.count("o") == 0
    elif read == "delete":
        assert store.delete("o", task_id) is False
    else:
        # At the limit and reusing the id: the stale task neither counts nor collides.
        store.create("o", "m", task_id="t")
        assert store.count("o") == 1
        return
    assert store.stats()["tasks"] == 0  # lazily evicted on that access
    assert store.stats()["evicted_total"] == 1


def test_cleanup_counts(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(expired_retention_ms=60_000, max_tasks_per_owner=0)
    for _ in range(5):
        store.create("a", "m", 100)
    for _ in range(3):
        store.create("b", "m", 100)
    keep_a = store.create("a", "m", 10_000).task_id
    store.create("b", "m", 10_000)
    clock.advance(100)
    assert store.cleanup_expired("nobody") == 0
    # cleanup evicts expired tasks now, without waiting for retention.
    assert store.cleanup_expired("a") == 5
    assert store.cleanup_expired("a") == 0
    assert store.count("a") == 1
    assert store.get("a", keep_a).task_id == keep_a
    assert store.count("b") == 4
    assert store.cleanup_expired(None) == 3
    assert store.cleanup_expired(None) == 0
    assert store.count(None) == 2
    clock.advance(10_000)
    assert store.cleanup_expired(None) == 2
    assert store.count(None) == 0
    assert store.stats()["evicted_total"] == 10


def test_sweep_is_bounded(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(expired_retention_ms=0, max_tasks_per_owner=0)
    for i in range(1000):
        store.create(f"owner-{i % 37}", "m", 10)
    for _ in range(20):
        store.create("survivor", "m", 10**6)
    assert store.sweep(10) == 0  # nothing due yet
    clock.advance(10)
    assert store.sweep(10) == 10
    assert store.count(None) == 1010
    assert store.sweep(0) == 0
    assert store.sweep(500) == 500
    assert store.sweep(10_000) == 490
    assert store.sweep(10_000) == 0
    assert store.count(None) == 20
    assert store.stats()["evicted_total"] == 1000


def test_sweep_honours_retention(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(expired_retention_ms=1000)
    store.create("o", "m", 10)
    clock.advance(10)
    assert store.sweep(100) == 0
    assert store.stats()["expired"] == 1
    clock.advance(999)
    assert store.sweep(100) == 0
    clock.advance(1)
    assert store.sweep(100) == 1
    assert store.stats()["expired"] == 0


def test_sweep_visits_shards_round_robin(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(shards=4, expired_retention_ms=0, max_tasks_per_owner=0)
    owners = [f"user{i}" for i in range(64)]
    for owner in owners:
        for _ in range(10):
            store.create(owner, "m", 5)
    clock.advance(5)
    seen: set[str] = set()
    store.add_listener(lambda event, owner, record: seen.add(owner))
    for _ in range(8):
        assert store.sweep(3) == 3
    # Budget-limited sweeps rotate through shards instead of draining one first.
    shards_hit = {store._shard(owner) for owner in seen}
    assert len(shards_hit) == 4


def test_deleted_tasks_do_not_pile_up_in_the_heap(make_store: MakeStore) -> None:
    store = make_store(max_tasks_per_owner=0)
    for _ in range(10_000):
        record = store.create("o", "m")
        store.delete("o", record.task_id)
    heap_sizes = [shard.size for shard in store._shards]
    assert sum(heap_sizes) < 200
    assert store.stats()["tasks"] == 0


def test_unlimited_tasks_never_expire(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(max_ttl_ms=0, expired_retention_ms=0)
    record = store.create("o", "m", unlimited=True)
    clock.advance(10**12)
    assert store.sweep(100) == 0
    assert store.cleanup_expired(None) == 0
    assert not record.is_expired(clock.now)
    store.update_status("o", record.task_id, None, "still here", set_message=True)


def test_delete_works_on_expired_tasks(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store()
    task_id = store.create("o", "m", 10).task_id
    clock.advance(10)
    assert store.delete("o", task_id) is True
    assert store.delete("o", task_id) is False
    with pytest.raises(InvalidArgument):
        store.delete("o", "bad id")


def test_clock_going_backwards_is_clamped(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store()
    first = store.create("o", "m")
    clock.advance(-5000)
    second = store.create("o", "m")
    assert second.created_at_ms == first.created_at_ms
    store.update_status("o", first.task_id, None, "x", set_message=True)
    assert first.last_updated_at_ms >= first.created_at_ms
    assert [r.task_id for r in store.list("o")[0]] == [second.task_id, first.task_id]


def test_evicted_event(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(expired_retention_ms=0)
    events: list[tuple[str, str, TaskRecord]] = []
    store.add_listener(lambda e, o, r: events.append((e, o, r)))
    record = store.create("o", "m", 5)
    clock.advance(5)
    assert store.sweep(10) == 1
    assert [(e, o) for e, o, _ in events] == [("created", "o"), ("evicted", "o")]
    assert events[-1][2] is record
