"""Worker leases (TASK.LEASE): a task whose worker stops renewing ends ``failed``, so a worker
process that dies does not leave its tasks ``working`` for ever (docs/commands.md)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import redis

V2 = "2026-07-28"


@pytest.fixture
def r(make_server: Any) -> Any:
    srv = make_server(mcp_version=V2)
    client = redis.Redis.from_url(srv.url, decode_responses=True)
    yield client
    client.close()


def error(r: Any, *args: Any) -> str:
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*args)
    return str(e.value)


def test_lease_take_renew_release(r: Any) -> None:
    r.execute_command("TASK.CREATE", "tools/call", "ID", "t")
    assert r.execute_command("TASK.LEASE", "t", "w1", 5000) == 5000
    assert error(r, "TASK.LEASE", "t", "w2", 5000).startswith("LEASED task t is leased by")
    assert r.execute_command("TASK.LEASE", "t", "w1", 5000) == 5000  # renewal
    rec = r.execute_command("TASK.INSPECT", "t")
    rec = dict(zip(rec[::2], rec[1::2], strict=True)) if isinstance(rec, list) else rec
    assert rec["lease_holder"] == "w1" and rec["lease_expires_at"].endswith("Z")
    assert r.execute_command("TASK.LEASE", "t", "w1", 0) == 0  # released
    assert r.execute_command("TASK.LEASE", "t", "w2", 5000) == 5000  # free to take
    before = json.loads(r.execute_command("TASK.GET", "t"))
    assert before["status"] == "working"  # a lease is not a change clients see
    r.execute_command("TASK.COMPLETE", "t", "completed", "{}")
    assert r.execute_command("TASK.LEASE", "t", "w2", 5000) == 0  # nothing left to run


def test_a_lease_that_runs_out_fails_the_task_and_wakes_waiters(r: Any) -> None:
    r.execute_command("TASK.CREATE", "tools/call", "ID", "lost")
    r.execute_command("TASK.LEASE", "lost", "w1", 200)
    started = time.monotonic()
    task = json.loads(r.execute_command("TASK.WAIT", "lost", "STATUS", "working", "BLOCK", 5000))
    waited = time.monotonic() - started
    assert task["status"] == "failed"
    assert task["error"] == {
        "code": -32603,
        "message": "worker lost: lease expired",
        "data": {"worker": "w1"},
    }
    assert task["statusMessage"] == "worker lost"
    assert waited > 0.15, waited  # not before the lease ran out


def test_bad_lease_arguments(r: Any) -> None:
    r.execute_command("TASK.CREATE", "tools/call", "ID", "b")
    assert "whole number" in error(r, "TASK.LEASE", "b", "w", "-1")
    assert "whole number" in error(r, "TASK.LEASE", "b", "w", "soon")
    assert "between 0 and 86400000" in error(r, "TASK.LEASE", "b", "w", 86_400_001)
    assert "invalid worker" in error(r, "TASK.LEASE", "b", "a b", 100)
    assert error(r, "TASK.LEASE", "nope", "w", 100) == "NOTFOUND task not found: nope"
    assert "wrong number of arguments" in error(r, "TASK.LEASE", "b", "w")


WORKER = r"""
import sys, time, redis
r = redis.Redis(port=int(sys.argv[1]))
while True:
    r.execute_command("TASK.LEASE", sys.argv[2], "worker-a", 500)
    print("renewed", flush=True)
    time.sleep(0.1)
"""


def test_kill_9_of_the_worker_process_fails_its_task_within_the_lease(make_server: Any) -> None:
    srv = make_server(mcp_version=V2)
    r = redis.Redis.from_url(srv.url, decode_responses=True)
    r.execute_command("TASK.CREATE", "tools/call", "ID", "job")
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(srv.port), "job"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        for _ in range(5):
            assert worker.stdout.readline().strip() == "renewed"
        assert json.loads(r.execute_command("TASK.GET", "job"))["status"] == "working"
        worker.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        worker.wait()
        task = json.loads(r.execute_command("TASK.WAIT", "job", "STATUS", "working", "BLOCK", 5000))
        after = time.monotonic() - killed
    finally:
        worker.kill()
        worker.wait()
        r.close()
    assert task["status"] == "failed" and task["error"]["message"] == "worker lost: lease expired"
    # the lease (500 ms) plus at most one sweep tick (100 ms) after the last renewal
    assert after < 3.0, after  # generous: a loaded machine; the figure is printed
    print(f"\n  task failed {after * 1000:.0f} ms after its worker was killed (lease 500 ms)")
