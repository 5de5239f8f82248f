"""Write an append-only file of N tasks the way the server writes it (a TaskStore with the
file as its journal), for restart tests at scale:

    python tests/aofgen.py <dir> <tasks>

Every task is created (owners ``o0``..``o99``, TTL one day); one in ten also gets variables,
one in ten is completed with a result. Prints the entries and bytes written.
"""

from __future__ import annotations

import json
import sys

from taskstore.server.aof import AppendOnlyFile
from taskstore.store import StoreConfig, TaskStatus, TaskStore


def generate(directory: str, tasks: int) -> tuple[int, int]:
    aof = AppendOnlyFile(directory, "taskstore.aof", "no")
    store = TaskStore(StoreConfig(max_tasks_per_owner=0, default_ttl_ms=86_400_000))
    aof.open(store)
    store.set_journal(aof)
    variables = json.dumps({"progress": 0.5, "step": "fetching", "items": [1, 2, 3]})
    result = json.dumps({"content": [{"type": "text", "text": "done " * 10}]})
    for i in range(tasks):
        owner = f"o{i % 100}"
        record = store.create(owner, "tools/call")
        if i % 10 == 3:
            store.set_variables(owner, record.task_id, variables)
        elif i % 10 == 7:
            store.complete_with_result(owner, record.task_id, TaskStatus.COMPLETED, result, None)
        if len(aof.buffer) > 1 << 20:
            aof.commit()
    aof.commit()
    entries = aof.appended
    size = aof.size
    aof.close()
    return entries, size


if __name__ == "__main__":
    entries, size = generate(sys.argv[1], int(sys.argv[2]))
    print(f"{entries} entries, {size} bytes")
