"""The expiry wheel: seconds in order, tasks of mixed ttl within one second, full cleanup."""

from __future__ import annotations

from taskstore.store import StoreConfig, TaskStore


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def make(**cfg: int) -> tuple[TaskStore, Clock]:
    clock = Clock(1_000_000_000_000)
    return TaskStore(StoreConfig(max_tasks_per_owner=0, **cfg), clock=clock), clock


def test_cleanup_takes_a_short_ttl_task_behind_a_long_one_in_the_same_second() -> None:
    store, clock = make()
    clock.now = 1_000_000_030_012
    store.create("o", "m", 900, task_id="slow")  # expires at :30.912
    clock.now = 1_000_000_030_154
    store.create("o", "m", 100, task_id="fast")  # expires at :30.254, same second
    clock.now = 1_000_000_030_500
    assert store.cleanup_expired(None) == 1
    assert [r.task_id for r in store.list("o")[0]] == ["slow"]
    clock.now = 1_000_000_031_000
    assert store.cleanup_expired(None) == 1
    assert store.count(None) == 0


def test_sweep_evicts_second_by_second_and_never_early() -> None:
    store, clock = make(expired_retention_ms=0)
    start = clock.now
    for i in range(3000):
        clock.now = start + i  # three seconds of tasks, 1 s ttl each
        store.create("o", "m", 1000)
    clock.now = start + 1000 + 2499  # the first 2500 are due (store time never goes back)
    evicted = 0
    while (n := store.sweep(100)) > 0:
        evicted += n
    assert evicted == 2500
    assert store.count("o") == 500
    clock.now = start + 1000 + 2999
    while store.sweep(100) > 0:
        pass
    assert store.count(None) == 0


def test_sweep_is_bounded_per_call() -> None:
    store, clock = make(expired_retention_ms=0)
    for _ in range(1000):
        store.create("o", "m", 10)
    clock.now += 20
    assert store.sweep(10) == 10
    assert store.count(None) == 990
