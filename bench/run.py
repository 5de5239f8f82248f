#!/usr/bin/env python3
"""taskstore benchmark harness: taskstore (asyncio, uvloop) vs redis-server vs fakeredis.

    python bench/run.py [--quick] [--only WORKLOAD,...] [--servers SERVER,...] [--name NAME]
                        [--out DIR]

Starts every server itself on free loopback ports, runs the workloads, stops everything (also
on error or SIGTERM) and writes <out>/<name>.json, .md and .png, copied to <out>/latest.*.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness import report  # noqa: E402
from harness.servers import (  # noqa: E402
    FLOORS,
    ROOT,
    SERVER_NAMES,
    child_env,
    is_taskstore,
    stop_all,
)
from harness.workloads import (  # noqa: E402
    THROUGHPUT_WORKLOADS,
    WORKLOADS,
    Ctx,
    make_params,
    run_expiry,
    run_list_scaling,
    run_live_load,
    run_memory,
    run_startup,
    run_throughput,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts: the whole run in ~1 minute")
    ap.add_argument(
        "--only", default="", help=f"comma-separated workloads ({', '.join(WORKLOADS)})"
    )
    ap.add_argument("--servers", default="", help=f"comma-separated ({', '.join(SERVER_NAMES)})")
    ap.add_argument("--name", default="", help="results file name (default: a timestamp)")
    ap.add_argument("--out", default="", help="results directory (default: bench/results)")
    args = ap.parse_args(argv)

    def pick(raw: str, allowed: tuple[str, ...], what: str) -> list[str]:
        if not raw:  # everything but the floors, which serve only PING, HSET and HGETALL
            return [x for x in allowed if x not in FLOORS]
        chosen = [x.strip() for x in raw.split(",") if x.strip()]
        bad = [x for x in chosen if x not in allowed]
        if bad:
            ap.error(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
        return [x for x in allowed if x in chosen]  # canonical order

    args.workloads = pick(args.only, WORKLOADS, "workload")
    args.server_list = pick(args.servers, SERVER_NAMES, "server")
    return args


def _version(cmd: list[str]) -> str | None:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=child_env())
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def machine_info() -> dict[str, Any]:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    packages = {}
    for pkg in ("uvloop", "hiredis", "fakeredis", "redis", "matplotlib"):
        try:
            packages[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            packages[pkg] = None
    ts = _version([sys.executable, "-m", "taskstore", "--version"]) or ""
    git = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _version(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_bytes": mem_total,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "redis_server": _version(["redis-server", "--version"]),
        "redis_benchmark": _version(["redis-benchmark", "--version"]),
        "taskstore": ts.replace("taskstore ", "") or None,
        "git_commit": git,
        "src_modified": bool(dirty),
        "packages": packages,
        "clk_tck": os.sysconf("SC_CLK_TCK"),
        "loadavg_start": "/".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def preflight(servers: list[str], workloads: list[str]) -> list[str]:
    """Servers that can run here; exit if a tool every workload needs is missing."""
    needs_rb = any(w in THROUGHPUT_WORKLOADS or w == "list-scaling" for w in workloads)
    if needs_rb and not shutil.which("redis-benchmark"):
        sys.exit("redis-benchmark not found: apt-get install redis-tools")
    usable = []
    for s in servers:
        if s.startswith("redis") and not shutil.which("redis-server"):
            log("redis-server not found (apt-get install redis-server): skipping 'redis'")
            continue
        if s == "fakeredis":
            try:
                from fakeredis import TcpFakeServer  # noqa: F401
            except ImportError:
                log("fakeredis not importable (pip install -r bench/requirements.txt): skipping")
                continue
        if s == "taskstore-uvloop":
            try:
                import uvloop  # noqa: F401
            except ImportError:
                log("uvloop not installed: skipping 'taskstore-uvloop'")
                continue
        usable.append(s)
    return usable


def run(args: argparse.Namespace) -> int:
    started = time.time()
    name = args.name or datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out) if args.out else BENCH_DIR / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    servers = preflight(args.server_list, args.workloads)
    params = make_params(args.quick)
    results: dict[str, Any] = {
        "name": name,
        "mode": "quick" if args.quick else "full",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "params": params.as_dict(),
        "servers": servers,
        "workloads": args.workloads,
        "throughput": [],
        "memory": {},
        "expiry": {},
        "live_load": {},
        "list_scaling": {},
        "startup": {},
        "notes": [],
        "errors": [],
    }
    log(
        f"benchmark '{name}' ({results['mode']}): {', '.join(args.workloads)} "
        f"on {', '.join(servers)}"
    )
    with tempfile.TemporaryDirectory(prefix="taskstore-bench-") as tmp:
        ctx = Ctx(params=params, log_dir=Path(tmp), log=log, notes=results["notes"])
        try:
            for workload in args.workloads:
                log(f"{workload}")
                for server in servers:
                    if workload == "list-scaling" and not is_taskstore(server):
                        continue
                    try:
                        if workload in THROUGHPUT_WORKLOADS:
                            results["throughput"] += run_throughput(ctx, workload, server)
                        elif workload == "memory":
                            results["memory"][server] = run_memory(ctx, server)
                        elif workload == "expiry":
                            results["expiry"][server] = run_expiry(ctx, server)
                        elif workload == "live-load":
                            results["live_load"][server] = run_live_load(ctx, server)
                        elif workload == "list-scaling":
                            results["list_scaling"][server] = run_list_scaling(ctx, server)
                        elif workload == "startup":
                            results["startup"][server] = run_startup(ctx, server)
                    except Exception as e:
                        log(f"  {workload} / {server} FAILED: {e!r}")
                        results["errors"].append(
                            {
                                "workload": workload,
                                "server": server,
                                "error": f"{type(e).__name__}: {e}"[:1500],
                                "traceback": traceback.format_exc()[-3000:],
                            }
                        )
                    finally:
                        stop_all()
        finally:
            stop_all()

    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"]["loadavg_end"] = "/".join(f"{x:.2f}" for x in os.getloadavg())
    results["duration_seconds"] = time.time() - started
    results["targets"] = report.compute_targets(results)
    for row in results["throughput"]:
        if row["status"] == "unsupported":
            results["notes"].append(
                f"{row['server']} does not support {row['command']} "
                f"({'; '.join(row['error_messages'][:1])})"
            )
        elif row["status"] != "ok":
            results["notes"].append(
                f"{row['workload']} {row['variant']} {row['server']} -P{row['pipeline']}: "
                f"{row['errors']} error(s): {'; '.join(row['error_messages'][:2])}"
            )
    results["notes"] = list(dict.fromkeys(results["notes"]))

    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    png_path = out_dir / f"{name}.png"
    has_png = report.render_chart(results, png_path)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    md_path.write_text(report.render_markdown(results, png_path.name if has_png else None))
    if name != "latest":
        for src, ext in ((json_path, "json"), (md_path, "md"), (png_path, "png")):
            if src.exists():
                dst = out_dir / f"latest.{ext}"
                if ext == "md":  # the chart link must follow the copy
                    dst.write_text(src.read_text().replace(f"]({png_path.name})", "](latest.png)"))
                else:
                    shutil.copyfile(src, dst)
    log(
        f"wrote {json_path}, {md_path.name}{', ' + png_path.name if has_png else ''} "
        f"in {results['duration_seconds']:.0f} s"
    )
    print(report.render_markdown(results, None))
    return 1 if results["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        return run(args)
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
