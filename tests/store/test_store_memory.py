"""Memory per live task, measured with tracemalloc (the benchmark compares it with Redis).

A Redis 7 hash of seven short fields with a TTL costs roughly 300-400 bytes per key; the
target is at most twice that. Run with ``-s`` to see the figures. tracemalloc makes each create
several times slower, so the default run measures 10k tasks; TASKSTORE_LONG=1 measures 100k.
"""

from __future__ import annotations

import gc
import os
import tracemalloc

from taskstore.store import StoreConfig, TaskStore

LONG = os.environ.get("TASKSTORE_LONG") == "1"
TASKS = 100_000 if LONG else 10_000
BUDGET_BYTES = 700


def bytes_per_task(owners: int, *, encode: bool) -> float:
    store = TaskStore(StoreConfig(max_tasks_per_owner=0))
    names = [f"user-{i}" for i in range(owners)]
    for name in names:  # owner structures and caches exist before measuring
        store.delete(name, store.create(name, "tools/call").task_id)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(TASKS):
            record = store.create(names[i % owners], "tools/call")
            if encode:
                record.wire_json()  # what TASK.CREATE does: the reply is cached on the record
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert store.count(None) == TASKS
    return (after - before) / TASKS


def test_bytes_per_task() -> None:
    cached = bytes_per_task(1000, encode=True)
    print(f"\nbytes per task ({TASKS} tasks): {cached:.0f} with cached wire JSON", end="")
    if LONG:
        bare = bytes_per_task(1, encode=False)
        print(f", {bare:.0f} without", end="")
        assert bare < cached
    print()
    assert cached <= BUDGET_BYTES
