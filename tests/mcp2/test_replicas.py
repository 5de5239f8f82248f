"""Several MCP server processes, one taskstore, all real processes: replicas of the demo server
(``python -m taskstore.mcp.demo``) sharing one taskstore server (``python -m taskstore``), driven
by the SDK 2.x client over Streamable HTTP (2026-07-28).

- cross-replica: a task started through replica A is polled, answered and cancelled through
  replica B (the tool keeps running in A); latencies over 20 rounds are printed;
- kill -9 of the replica running a task: its lease runs out and the task ends ``failed``
  (``worker lost``) within the lease plus slack;
- restart: a new demo process serves the tasks an earlier one created.

The latency figures are printed (shown by ``pytest -q``) and, with ``$TASKSTORE_MCP2_FIGURES``
set, appended there as JSON lines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp2.test_extension import TERMINAL, Tasks, TasksRequester, _text
from taskstore.client import MCP_2026_07_28, AsyncTaskClient

FIGURES_ENV = "TASKSTORE_MCP2_FIGURES"
ROUNDS = 20
#: the --lease-ms of the replicas that get killed or restarted
SHORT_LEASE_MS = 1000
#: the taskstore's sweep tick (``--hz 10``: 100 ms)
SWEEP_MS = 100
WORKER_LOST = "worker lost: lease expired"


# -- processes --------------------------------------------------------------------------------


class Proc:
    """A child process whose output goes to a file (nothing can fill a pipe)."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_line(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_text(errors="replace")
            if match := re.search(pattern, text):
                return match
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"no line matching {pattern!r}: {text[-3000:]}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._out.close()
        return self.popen.returncode


def start_taskstore(log: Path) -> tuple[Proc, str]:
    proc = Proc(
        [
            sys.executable,
            "-m",
            "taskstore",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--hz",
            str(1000 // SWEEP_MS),
            "--max-tasks-per-owner",
            "10000",
        ],
        log,
    )
    port = proc.wait_line(r"ready on 127\.0\.0\.1:(\d+)").group(1)
    return proc, f"redis://127.0.0.1:{port}"


def start_demo(taskstore: str, log: Path, lease_ms: int | None = None) -> tuple[Proc, str]:
    args = [sys.executable, "-m", "taskstore.mcp.demo", "--port", "0", "--taskstore", taskstore]
    if lease_ms is not None:
        args += ["--lease-ms", str(lease_ms)]
    proc = Proc(args, log)
    url = proc.wait_line(r"(http://127\.0\.0\.1:\d+/mcp)").group(1)
    return proc, url


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replicas")


@pytest.fixture(scope="module")
def taskstore(logs: Path) -> Iterator[str]:
    """One taskstore server process for the module."""
    proc, url = start_taskstore(logs / "taskstore.log")
    try:
        yield url
    finally:
        assert proc.stop() is not None


@pytest.fixture(scope="module")
def replicas(taskstore: str, logs: Path) -> Iterator[tuple[tuple[Proc, str], tuple[Proc, str]]]:
    """Two demo server processes on that taskstore: A and B."""
    a = start_demo(taskstore, logs / "a.log")
    try:
        b = start_demo(taskstore, logs / "b.log")
        try:
            yield a, b
        finally:
            b[0].stop()
    finally:
        a[0].stop()


# -- helpers ----------------------------------------------------------------------------------


def client(url: str) -> Client:
    return Client(url, mode="2026-07-28", extensions=[TasksRequester()])


async def lease_of(ts: AsyncTaskClient, task_id: str) -> tuple[str | None, Any]:
    """(lease_holder, lease_expires_at) from TASK.INSPECT."""
    reply = await ts.redis.execute_command("TASK.INSPECT", task_id)
    if isinstance(reply, list):  # RESP2: a flat array
        reply = dict(zip(reply[::2], reply[1::2], strict=True))
    fields = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in reply.items()
    }
    return fields["lease_holder"], fields["lease_expires_at"]


async def released(ts: AsyncTaskClient, task_id: str, timeout: float = 5.0) -> None:
    """Wait until the task has no lease (its worker released it after ending the task)."""
    deadline = time.monotonic() + timeout
    while (lease := await lease_of(ts, task_id)) != (None, None):
        assert time.monotonic() < deadline, f"lease never released: {lease}"
        await anyio.sleep(0.01)


def figures(name: str, samples_ms: list[float], capsys: pytest.CaptureFixture[str]) -> str:
    p50 = statistics.median(samples_ms)
    line = (
        f"{name}: p50 {p50:.1f} ms, max {max(samples_ms):.1f} ms, "
        f"min {min(samples_ms):.1f} ms (n={len(samples_ms)})"
    )
    with capsys.disabled():
        print(f"\n[figures] {line}", flush=True)
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"name": name, "samples_ms": samples_ms, "line": line}) + "\n")
    return line


# -- the tests --------------------------------------------------------------------------------


def test_start_on_a_answer_and_cancel_on_b(
    taskstore: str,
    replicas: tuple[tuple[Proc, str], tuple[Proc, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ask_name called through A (the tool runs in A: A's worker holds the lease), polled
    until input_required and answered through B, completes "hello <name>" as seen through B;
    a long count_to started through A and cancelled through B ends cancelled.

    Measured each round, from just before the request is sent to B:
    - answer: until the tool, resumed in A, has stored its result (TASK.COMPLETE) — seen by a
      blocking TASK.RESULT … BLOCK on the taskstore (returns the moment the task is terminal);
    - cancel: until the task's status is ``cancelled`` (TASK.CANCEL by A's worker, which cancels
      the tool) — seen by a blocking TASK.WAIT … STATUS working.
    """
    (proc_a, url_a), (proc_b, url_b) = replicas
    answer_ms: list[float] = []
    cancel_ms: list[float] = []

    async def main() -> None:
        ts = AsyncTaskClient(taskstore, version=MCP_2026_07_28)
        try:
            async with client(url_a) as ca, client(url_b) as cb:
                on_a, on_b = Tasks(ca), Tasks(cb)
                for i in range(ROUNDS):
                    # -- answer through B --------------------------------------------------
                    created = await on_a.call("ask_name", {})
                    tid = created.task_id
                    waiting = await on_b.poll(tid, lambda t: t["status"] == "input_required")
                    holder, expires = await lease_of(ts, tid)
                    assert holder is not None and f"-{proc_a.pid}-" in holder, holder
                    assert expires is not None
                    [key] = waiting["inputRequests"]
                    name = f"Ada {i}"
                    answer = {key: {"action": "accept", "content": {"name": name}}}
                    t0 = time.perf_counter()
                    await on_b.update(tid, answer)
                    result = await ts.result(tid, block=10_000, any=True)
                    answer_ms.append((time.perf_counter() - t0) * 1000)
                    assert _text(result) == f"hello {name}"
                    final = await on_b.get(tid)
                    assert final["status"] == "completed", final
                    assert _text(final["result"]) == f"hello {name}"
                    # the worker releases its lease once it has ended the task
                    await released(ts, tid)

                    # -- cancel through B --------------------------------------------------
                    created = await on_a.call("count_to", {"n": 100_000, "delay_ms": 5})
                    tid = created.task_id
                    await on_b.poll(tid, lambda t: bool(t.get("statusMessage")))
                    t0 = time.perf_counter()
                    await on_b.cancel(tid)
                    task = await ts.wait(tid, status="working", block=10_000)
                    cancel_ms.append((time.perf_counter() - t0) * 1000)
                    assert task is not None and task.status == "cancelled", task
                    final = await on_b.get(tid)
                    assert final["status"] == "cancelled", final
                    # the tool stopped in A: nothing changes any more
                    await anyio.sleep(0.03)
                    later = await on_b.get(tid)
                    assert later["lastUpdatedAt"] == final["lastUpdatedAt"]
                    await released(ts, tid)
        finally:
            await ts.aclose()

    anyio.run(main)
    figures("tasks/update on B -> result stored by the tool resumed on A", answer_ms, capsys)
    figures("tasks/cancel on B -> cancelled", cancel_ms, capsys)
    assert proc_a.popen.poll() is None and proc_b.popen.poll() is None


def test_kill_9_of_the_running_replica_fails_its_task(
    taskstore: str,
    replicas: tuple[tuple[Proc, str], tuple[Proc, str]],
    logs: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A replica with --lease-ms 1000 runs a long count_to; kill -9 of that process: the task
    ends failed (worker lost, the lease holder in the error's data) within the lease plus
    one sweep tick plus slack, as seen through replica B."""
    _, url_b = replicas[1]
    proc, url = start_demo(taskstore, logs / "killed.log", lease_ms=SHORT_LEASE_MS)
    try:

        async def start() -> tuple[str, str]:
            ts = AsyncTaskClient(taskstore, version=MCP_2026_07_28)
            try:
                async with client(url) as c:
                    created = await Tasks(c).call("count_to", {"n": 100_000, "delay_ms": 5})
                async with client(url_b) as cb:
                    await Tasks(cb).poll(created.task_id, lambda t: bool(t.get("statusMessage")))
                holder, _ = await lease_of(ts, created.task_id)
                assert holder is not None and f"-{proc.pid}-" in holder, holder
                return created.task_id, holder
            finally:
                await ts.aclose()

        task_id, holder = anyio.run(start)
        # let a renewal or two happen first: the kill lands anywhere in a lease period
        time.sleep(SHORT_LEASE_MS / 1000 * 0.8)
        killed_at = time.perf_counter()
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(10)

        async def watch() -> tuple[float, dict[str, Any]]:
            ts = AsyncTaskClient(taskstore, version=MCP_2026_07_28)
            try:
                task = await ts.wait(task_id, status="working", block=SHORT_LEASE_MS + 10_000)
                elapsed = (time.perf_counter() - killed_at) * 1000
                assert task is not None and task.status == "failed", task
            finally:
                await ts.aclose()
            async with client(url_b) as cb:
                return elapsed, await Tasks(cb).get(task_id)

        elapsed, seen = anyio.run(watch)
    finally:
        proc.stop()
    assert proc.popen.returncode == -signal.SIGKILL
    assert seen["status"] == "failed", seen
    assert seen["statusMessage"] == "worker lost", seen
    assert seen["error"] == {
        "code": -32603,
        "message": WORKER_LOST,
        "data": {"worker": holder},
    }, seen
    figures(f"kill -9 -> failed (worker lost), --lease-ms {SHORT_LEASE_MS}", [elapsed], capsys)
    # the bound: the last lease (renewed every third of it) + one sweep tick; generous slack
    assert elapsed <= SHORT_LEASE_MS + SWEEP_MS + 1500, elapsed


def test_a_restarted_server_serves_the_earlier_tasks(
    taskstore: str, logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tasks created through one demo process are served by tasks/get of the next one, started
    after the first was stopped (SIGTERM): completed with their result, failed with their
    error; one left waiting for input ends failed (worker lost) once its lease runs out."""
    first, url = start_demo(taskstore, logs / "first.log", lease_ms=SHORT_LEASE_MS)
    try:

        async def before() -> dict[str, str]:
            async with client(url) as c:
                tasks = Tasks(c)
                ids = {
                    "counted": (await tasks.call("count_to", {"n": 2, "delay_ms": 1})).task_id,
                    "failed": (
                        await tasks.call("fail_with", {"code": -32042, "message": "no luck"})
                    ).task_id,
                    "waiting": (await tasks.call("ask_name", {})).task_id,
                }
                await tasks.poll(ids["counted"], lambda t: t["status"] in TERMINAL)
                await tasks.poll(ids["failed"], lambda t: t["status"] in TERMINAL)
                await tasks.poll(ids["waiting"], lambda t: t["status"] == "input_required")
                return ids

        ids = anyio.run(before)
    finally:
        stopped_at = time.perf_counter()
        # uvicorn shuts down gracefully, then re-raises the signal: -SIGTERM
        assert first.stop(signal.SIGTERM) in (0, -signal.SIGTERM)

    second, url = start_demo(taskstore, logs / "second.log")
    try:

        async def after() -> None:
            async with client(url) as c:
                tasks = Tasks(c)
                counted = await tasks.get(ids["counted"])
                assert counted["status"] == "completed", counted
                assert _text(counted["result"]) == "counted to 2"
                failed = await tasks.get(ids["failed"])
                assert failed["status"] == "failed", failed
                assert failed["error"] == {"code": -32042, "message": "no luck"}
                # nobody runs ask_name any more: the stopped process kept its lease, which
                # runs out
                waiting = await tasks.poll(
                    ids["waiting"], lambda t: t["status"] in TERMINAL, timeout=10
                )
                assert waiting["status"] == "failed", waiting
                assert waiting["error"]["message"] == WORKER_LOST
                assert f"-{first.pid}-" in waiting["error"]["data"]["worker"]
                elapsed = (time.perf_counter() - stopped_at) * 1000
                assert elapsed <= SHORT_LEASE_MS + SWEEP_MS + 3000 + 1500, elapsed

        anyio.run(after)
    finally:
        assert second.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
