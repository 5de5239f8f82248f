"""Time taskstore's in-process start+stop, in a clean interpreter of its own.

    python bench/harness/inprocess_startup.py asyncio|uvloop REPEATS

Prints one JSON line: the import time, and REPEATS timings (ms) of
``async with taskstore.Server(port=0): pass`` on the given event loop and of
``with taskstore.ServerThread(port=0): pass`` (which always runs its own asyncio loop), each
after one untimed warm-up.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time


def main() -> int:
    loop_name = sys.argv[1]
    repeats = int(sys.argv[2])
    t0 = time.perf_counter()
    import taskstore
    from taskstore.server import app  # noqa: F401  (what Server's first use imports)

    import_ms = (time.perf_counter() - t0) * 1000

    async def server_runs() -> list[float]:
        async with taskstore.Server(port=0):
            pass
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            async with taskstore.Server(port=0):
                pass
            times.append((time.perf_counter() - t) * 1000)
        return times

    if loop_name == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    else:
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        server_times = runner.run(server_runs())

    with taskstore.ServerThread(port=0):
        pass
    thread_times = []
    for _ in range(repeats):
        t = time.perf_counter()
        with taskstore.ServerThread(port=0):
            pass
        thread_times.append((time.perf_counter() - t) * 1000)

    print(
        json.dumps(
            {
                "loop": loop_name,
                "import_ms": import_ms,
                "server_start_stop_ms": server_times,
                "server_start_stop_median_ms": statistics.median(server_times),
                "thread_start_stop_ms": thread_times,
                "thread_start_stop_median_ms": statistics.median(thread_times),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
