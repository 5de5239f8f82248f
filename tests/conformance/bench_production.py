"""Benchmark rows of the production path, one run (``python tests/conformance/bench_production.py
[--n N]``; test_bench_production.py runs it small):

* the client's create and get round trips (``TaskClient.from_url``, µs per call, one client,
  sequential) on taskstore (``python -m taskstore`` in its own process) and on redis-server +
  the Functions library, measured in the same run on the same machine;
* redis-server's CPU per ``FCALL ts_create`` / ``FCALL ts_get``: ``usec_per_call`` of
  ``INFO commandstats`` (the function's own time) and the process's CPU time from /proc per
  call (everything: parsing, networking, the function); taskstore's process CPU per call too.

Both servers listen on 127.0.0.1 on free ports and are stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from conformance.backends import (  # noqa: E402
    PYTHON,
    binary,
    child_env,
    free_port,
    start_server,
    stop,
    wait_ping,
)
from taskstore.client import TaskClient  # noqa: E402
from taskstore.functions import load  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def commandstat(url: str, name: str) -> tuple[int, float]:
    r = redis.Redis.from_url(url, decode_responses=True)
    try:
        stats = r.info("commandstats").get(f"cmdstat_{name}", {})
        return int(stats.get("calls", 0)), float(stats.get("usec", 0))
    finally:
        r.close()


def timed(n: int, call: Callable[[int], object]) -> float:
    """µs per call of ``call(i)`` for i in range(n)."""
    start = time.perf_counter()
    for i in range(n):
        call(i)
    return (time.perf_counter() - start) / n * 1e6


def run(n: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-production-"))
    ts_port = free_port()
    ts_proc = subprocess.Popen(
        [PYTHON, "-m", "taskstore", "--port", str(ts_port), "--max-tasks-per-owner", "0"],
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rd_port = free_port()
    rd_proc = None
    try:
        wait_ping(ts_port, ts_proc)  # type: ignore[arg-type]
        rd_proc = start_server(binary("redis-server"), tmp / "redis", rd_port)
        rd_url = f"redis://127.0.0.1:{rd_port}"
        load(rd_url)
        from taskstore.store.config import StoreConfig

        config = StoreConfig(max_tasks_per_owner=0)
        for name, url, pid in (
            ("taskstore", f"redis://127.0.0.1:{ts_port}", ts_proc.pid),
            ("redis + library", rd_url, rd_proc.pid),
        ):
            # taskstore: the anonymous connection's own owner (local); Redis: the same name
            client = TaskClient.from_url(url, owner=None, config=config)
            try:
                for _ in range(200):  # warm up
                    client.get(client.create().task_id)
                ids: list[str] = []
                row: dict[str, object] = {"server": name}
                for op in ("create", "get"):
                    calls0, usec0 = commandstat(url, "fcall") if name != "taskstore" else (0, 0)
                    cpu0 = cpu_seconds(pid)
                    if op == "create":
                        us = timed(n, lambda i, c=client, out=ids: out.append(c.create().task_id))
                    else:
                        us = timed(n, lambda i, c=client, got=ids: c.get(got[i]))
                    cpu = (cpu_seconds(pid) - cpu0) / n * 1e6
                    row[f"{op} µs/call"] = round(us, 1)
                    row[f"{op} server CPU µs/call"] = round(cpu, 1)
                    if name != "taskstore":
                        calls1, usec1 = commandstat(url, "fcall")
                        row[f"{op} FCALL usec_per_call"] = round(
                            (usec1 - usec0) / max(1, calls1 - calls0), 1
                        )
                rows.append(row)
            finally:
                client.close()
    finally:
        if rd_proc is not None:
            stop(rd_proc)
        stop(ts_proc)  # type: ignore[arg-type]
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000, help="calls per operation")
    args = parser.parse_args()
    for row in run(args.n):
        print(" | ".join(f"{k}: {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
