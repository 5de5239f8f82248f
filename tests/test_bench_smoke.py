"""Smoke test of the benchmark harness: a short quick-mode run of bench/run.py must produce a
well-formed report with no errors. It checks shapes and signs, never timings."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"
WORKLOADS = ("ping", "task.get")
PIPELINES = (1, 16)


def run_quick(out: str, name: str, *args: str) -> None:
    """``bench/run.py --quick`` into ``out``; it must exit 0."""
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--name", name, "--out", out, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(ROOT),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.timeout(900)
def test_bench_quick_smoke() -> None:
    if not RUN.exists():
        pytest.skip("bench/run.py is not there")
    if shutil.which("redis-benchmark") is None:
        pytest.skip("redis-benchmark is not installed")
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as out:
        run_quick(out, "smoke-test", "--only", ",".join(WORKLOADS))
        out_dir = Path(out)
        data = json.loads((out_dir / "smoke-test.json").read_text())
        md = (out_dir / "smoke-test.md").read_text()
        assert (out_dir / "latest.json").exists()
        if importlib.util.find_spec("matplotlib") is not None:
            assert (out_dir / "smoke-test.png").read_bytes().startswith(b"\x89PNG")
        check_report(data, md)
    assert not Path(out).exists()  # the results went away with the temporary directory


def check_report(data: dict, md: str) -> None:
    for key in (
        "name",
        "mode",
        "machine",
        "params",
        "servers",
        "throughput",
        "targets",
        "notes",
        "errors",
        "duration_seconds",
    ):
        assert key in data, key
    assert data["name"] == "smoke-test"
    assert data["mode"] == "quick"
    assert data["errors"] == [], data["errors"]
    machine = data["machine"]
    for key in ("cpu_model", "cores", "python", "redis_server", "taskstore", "packages", "date"):
        assert machine.get(key), key
    assert "taskstore-asyncio" in data["servers"]
    if shutil.which("redis-server"):
        assert "redis" in data["servers"]

    rows = data["throughput"]
    seen = {(r["workload"], r["server"], r["pipeline"]) for r in rows}
    for workload in WORKLOADS:
        for server in data["servers"]:
            for pipeline in PIPELINES:
                assert (workload, server, pipeline) in seen, (workload, server, pipeline)
    for r in rows:
        where = f"{r['workload']} {r['variant']} {r['server']} -P{r['pipeline']}"
        if r["status"] == "unsupported":  # only fakeredis may lack a command (inline PING)
            assert r["server"] == "fakeredis", where
            continue
        assert r["status"] == "ok", (where, r["error_messages"])
        assert r["errors"] == 0, where
        assert r["ops"] > 0, where
        assert r["cpu_seconds"] >= 0, where
        assert r["cpu_us_per_op_reported"] > 0, where
        assert r["rps"] > 0, where
        assert 0 < r["p50_ms"] <= r["p99_ms"], where
        assert r["cpu_source"] in ("stat", "schedstat"), where

    assert "## Server CPU per operation" in md
    assert "## Targets" in md
    targets = {t["target"]: t for t in data["targets"]}
    assert any(name.startswith("CPU/op PING -P16") for name in targets)


@pytest.mark.timeout(600)
def test_bench_floor_servers_answer_the_workloads_they_serve() -> None:
    """The floor servers (bench/harness/floor_server.py, the yardsticks of bench/README.md
    "The floor") run PING, HGETALL and HSET through redis-benchmark without an error; the
    reader level refuses what taskstore's reader refuses."""
    if shutil.which("redis-benchmark") is None:
        pytest.fail("redis-benchmark is not installed (apt-get install redis-tools)")
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as out:
        run_quick(
            out,
            "floor",
            "--only",
            "ping,task.get,task.create",
            "--servers",
            "floor-bare,floor-reader",
        )
        data = json.loads((Path(out) / "floor.json").read_text())
    rows = data["throughput"]
    served = {(r["server"], r["workload"], r["pipeline"]) for r in rows if r["status"] == "ok"}
    for server in ("floor-bare", "floor-reader"):
        for workload in ("ping", "task.get", "task.create"):
            for pipeline in PIPELINES:
                assert (server, workload, pipeline) in served, (server, workload, pipeline)
    assert all(r["cpu_us_per_op_reported"] > 0 for r in rows if r["status"] == "ok")
    # inline PING: the bare level leaves it to hiredis (refused), the reader reads it
    inline = {r["server"]: r["status"] for r in rows if r.get("variant") == "inline"}
    assert inline.get("floor-reader") == "ok" and inline.get("floor-bare") == "error", inline
