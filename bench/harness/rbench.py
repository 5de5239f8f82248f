"""Run redis-benchmark 7.0 once and parse what it says.

Throughput and latency come from ``--csv``: one header line, then one line per test with
rps, avg/min/p50/p95/p99/max latency in ms (histogram-based, HdrHistogram inside
redis-benchmark). redis-benchmark 7.0 stops at the first error reply, printing
"Error from server: ..." and exiting with status 1, so a run with an error reply is detected
from its exit status and that line; the server-side count (INFO total_error_replies) is read
separately by the caller.
"""

from __future__ import annotations

import csv
import io
import subprocess
from dataclasses import dataclass, field


@dataclass
class BenchResult:
    ok: bool
    rps: float | None = None
    avg_ms: float | None = None
    min_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    returncode: int = 0
    error_lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unsupported: bool = False
    timed_out: bool = False


def run(
    port: int,
    test: list[str],
    *,
    n: int,
    pipeline: int,
    clients: int = 50,
    timeout: float = 600.0,
) -> BenchResult:
    """`test` is either ["-t", "ping_mbulk"] or a command with its arguments (which may start
    with "-r", "N" for __rand_int__)."""
    cmd = [
        "redis-benchmark",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-c",
        str(clients),
        "-n",
        str(n),
        "-P",
        str(pipeline),
        "--csv",
        *test,
    ]
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return BenchResult(
            ok=False,
            timed_out=True,
            returncode=-1,
            error_lines=[f"redis-benchmark timed out after {timeout:.0f} s", out[-300:]],
        )
    text = proc.stdout + "\n" + proc.stderr
    errors = [
        ln.strip() for ln in text.splitlines() if "Error from server" in ln or "(error)" in ln
    ]
    errors += [
        ln.strip()
        for ln in proc.stderr.splitlines()
        if ln.strip() and not ln.startswith("WARNING") and ln.strip() not in errors
    ]
    warnings = [ln.strip() for ln in text.splitlines() if ln.startswith("WARNING")]
    res = BenchResult(ok=False, returncode=proc.returncode, error_lines=errors, warnings=warnings)
    res.unsupported = any("unknown command" in e.lower() for e in errors)
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    data = [r for r in rows if r and r[0] != "test" and len(r) >= 8]
    if data:
        r = data[-1]
        try:
            res.rps, res.avg_ms, res.min_ms, res.p50_ms, res.p95_ms, res.p99_ms, res.max_ms = (
                float(x) for x in r[1:8]
            )
        except ValueError:
            res.error_lines.append(f"unparseable csv line: {r}")
    res.ok = proc.returncode == 0 and not errors and res.rps is not None and res.rps > 0
    return res
