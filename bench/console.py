"""What the browser console costs the server (docs/console.md, "What it costs").

    python bench/console.py                      # about 3 minutes on 2 cores
    python bench/console.py --baseline c6c35c3   # also the -P 16 rows without the console

Part A, the console off: nothing of it is imported or registered (checked in a subprocess), and
redis-benchmark -P 16 (TASK.GET, TASK.CREATE) costs the server the same CPU per operation as
the same commit without the console: ``git archive HEAD`` twice into temporary directories,
and in the second the files the console changed (server/app.py, cli.py, config.py) taken as
they were at ``--baseline`` (the commit before the console) and taskstore/console removed.

Part B, a page watching: ``taskstore-server`` (a process of its own) takes 1,000 TASK.UPDATEs
a second from redis-py for ``--seconds``, over 100 tasks of the anonymous owner; its CPU
(schedstat nanoseconds, and utime + stime from /proc/<pid>/stat as a cross-check) is read
around each run, in five modes (MODES): the console off; on with no page; its event stream
read by curl (no browser); a headless chromium on about:blank (the browser's presence alone);
the same chromium on the console page (Debian's chromium, as the tests use it). The modes
alternate for ``--rounds`` rounds; the medians are reported, the page's differences round by
round too, with how busy the machine was (all CPUs, /proc/stat) and what the driver and the
reader (curl, the browser) used. ``--part a`` or ``--part b`` runs one part.

Not part of the test suite (its timing would depend on the machine); the numbers in
docs/console.md come from here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests"))

from harness.procstat import CLK_TCK, cpu_ticks, sched_ns  # noqa: E402
from harness.rbench import run as redis_benchmark  # noqa: E402

TASKS = 100


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- processes --------------------------------------------------------------------------------


class ServerProc:
    """``python -m taskstore`` from ``src`` (this tree or a baseline's), until stop()."""

    def __init__(self, src: Path, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(src), PYTHONUNBUFFERED="1")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "taskstore", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        assert self.proc.stdout is not None
        self.ready = self.proc.stdout.readline()
        if "ready on" not in self.ready:
            self.stop()
            raise RuntimeError(f"server did not start: {self.ready}{self.proc.stderr.read()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ticks(self) -> int:
        return cpu_ticks(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def tree_ticks(root: int) -> int:
    """CPU ticks of a process and all its descendants (the browser's many processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += cpu_ticks(pid)
        except (OSError, ValueError, IndexError):
            pass
        todo += children.get(pid, [])
    return total


# -- part A: the console off ----------------------------------------------------------------------

PROBE = textwrap.dedent(
    """
    import asyncio, sys
    from taskstore.server.app import Server

    async def main():
        async with Server(port=0) as server:  # console_port 0, the default
            server.store.create("local", "tools/call")
            print(json.dumps({
                "aiohttp_imported": "aiohttp" in sys.modules,
                "console_modules": [m for m in sys.modules if m.startswith("taskstore.console")],
                "store_listeners": len(server.store._listeners),
            }))

    import json
    asyncio.run(main())
    """
)


#: What the console changed outside its own package.
CONSOLE_EDITS = ("server/app.py", "server/cli.py", "server/config.py")


def _extract(into: Path, baseline: str | None) -> Path:
    """``src`` of HEAD under ``into``; with ``baseline``, without the console (see above)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "HEAD", "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    src = into / "src"
    if baseline:
        for name in CONSOLE_EDITS:
            old = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{baseline}:src/taskstore/{name}"],
                capture_output=True,
                check=True,
            )
            (src / "taskstore" / name).write_bytes(old.stdout)
        shutil.rmtree(src / "taskstore" / "console")
    return src


def import_time_us(src: Path) -> int:
    """Cumulative import time of taskstore.server.cli (the CLI's start), in microseconds."""
    best = None
    for _ in range(5):
        res = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import taskstore.server.cli"],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(src)),
            check=True,
        )
        assert "aiohttp" not in res.stderr
        for line in res.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| taskstore\.server\.cli$", line)
            if m:
                value = int(m.group(1))
                best = value if best is None else min(best, value)
    assert best is not None
    return best


def part_a(trees: dict[str, Path], rounds: int) -> dict[str, object]:
    src = trees["with console code"]
    res = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(src)),
        check=True,
    )
    out: dict[str, object] = {"probe": json.loads(res.stdout)}
    out["import_time_us"] = {name: import_time_us(tree) for name, tree in trees.items()}
    rows: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):
        for name, tree in trees.items():
            server = ServerProc(tree, "--max-tasks-per-owner", "0")
            try:
                with redis.Redis(port=server.port) as client:
                    client.execute_command("TASK.CREATE", "tools/call", "ID", "bench-get")
                for label, test, n in (
                    ("TASK.GET", ["TASK.GET", "bench-get"], 400_000),
                    ("TASK.CREATE", ["TASK.CREATE", "tools/call"], 200_000),
                ):
                    t0 = server.ticks()
                    result = redis_benchmark(server.port, test, n=n, pipeline=16)
                    used = (server.ticks() - t0) / CLK_TCK
                    if not result.ok:
                        raise RuntimeError(f"{name} {label}: {result.error_lines}")
                    row = rows.setdefault(f"{label} -P 16 {name}", {"us": [], "rps": []})
                    row["us"].append(used / n * 1e6)
                    row["rps"].append(result.rps or 0.0)
            finally:
                server.stop()
    out["benchmark"] = {
        key: {
            "server_cpu_us_per_op": round(statistics.median(v["us"]), 3),
            "rps": round(statistics.median(v["rps"])),
            "runs_us": [round(x, 3) for x in v["us"]],
        }
        for key, v in rows.items()
    }
    return out


# -- part B: a page watching 1,000 changes a second -------------------------------------------


def drive(port: int, seconds: float, rate: int) -> int:
    """TASK.UPDATE MESSAGE at ``rate`` a second, one command per round trip (as MCP servers
    update their tasks), ``rate / 100`` of them every 10 ms; returns how many were sent."""
    per_tick = rate // 100
    sent = 0
    with redis.Redis(port=port) as client:
        start = time.monotonic()
        tick = 0
        while True:
            now = time.monotonic()
            if now - start >= seconds:
                break
            for _ in range(per_tick):
                client.execute_command("TASK.UPDATE", f"t{sent % TASKS}", "MESSAGE", f"step {sent}")
                sent += 1
            tick += 1
            delay = start + tick / 100 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    return sent


def measure(server: ServerProc, seconds: float, rate: int, browser_pid: int | None) -> dict:
    driver_t0 = os.times()
    m0 = machine_ticks()
    s0 = server.ticks()
    n0 = sched_ns(server.pid)
    b0 = tree_ticks(browser_pid) if browser_pid else 0
    w0 = time.monotonic()
    sent = drive(server.port, seconds, rate)
    wall = time.monotonic() - w0
    n1 = sched_ns(server.pid)
    s1 = server.ticks()
    b1 = tree_ticks(browser_pid) if browser_pid else 0
    m1 = machine_ticks()
    driver_t1 = os.times()
    busy = (m1[0] - m0[0]) / max(m1[1] - m0[1], 1)
    return {
        "updates": sent,
        "wall_s": round(wall, 2),
        "rate": round(sent / wall),
        # nanoseconds on CPU (schedstat; the server's threads all live through a run), and
        # the kernel's clock ticks (10 ms each) as a cross-check
        "server_cpu_pct": round(100 * (n1 - n0) / 1e9 / wall, 2),
        "server_cpu_pct_ticks": round(100 * (s1 - s0) / CLK_TCK / wall, 1),
        "browser_cpu_pct": round(100 * (b1 - b0) / CLK_TCK / wall, 1) if browser_pid else None,
        "driver_cpu_pct": round(
            100
            * ((driver_t1.user - driver_t0.user) + (driver_t1.system - driver_t0.system))
            / wall,
            1,
        ),
        "machine_busy_pct": round(100 * busy, 1),
        "cpus": os.cpu_count(),
    }


def open_page(browser) -> None:
    browser.wait(lambda: browser.text("#live") == "● live", 10, "the page connects")
    browser.wait(lambda: len(browser.rows()) == 50, 10, "the page lists tasks")


#: Part B's modes, in the order each round runs them.
MODES = (
    "console off",
    "console on, no page",
    "event stream read by curl",
    "browser on about:blank",
    "page open",
)


def part_b(src: Path, seconds: float, rate: int, rounds: int) -> dict[str, object]:
    from console.browser import Browser, missing

    reason = missing()
    if reason:
        raise SystemExit(reason)
    console_port = free_port()
    off = ServerProc(src, "--max-tasks-per-owner", "0")
    on = ServerProc(src, "--max-tasks-per-owner", "0", "--console-port", str(console_port))
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    try:
        for server in (off, on):
            with redis.Redis(port=server.port) as client:
                pipe = client.pipeline(transaction=False)
                for i in range(TASKS):
                    pipe.execute_command("TASK.CREATE", "tools/call", "ID", f"t{i}")
                pipe.execute()
        for r in range(rounds):
            print(f"round {r + 1}/{rounds}", file=sys.stderr)
            runs["console off"].append(measure(off, seconds, rate, None))
            runs["console on, no page"].append(measure(on, seconds, rate, None))
            # the same stream read by curl, no browser on the machine
            curl = subprocess.Popen(
                ["curl", "-sN", "-o", "/dev/null", f"http://127.0.0.1:{console_port}/api/events"]
            )
            try:
                time.sleep(1)
                runs["event stream read by curl"].append(measure(on, seconds, rate, curl.pid))
            finally:
                curl.terminate()
                curl.wait()
            # one browser: first on about:blank (what its presence alone does to the
            # server's figure), then on the console
            browser = Browser()
            try:
                browser.get("about:blank")
                time.sleep(1)
                pid = browser.driver.service.process.pid
                runs["browser on about:blank"].append(measure(on, seconds, rate, pid))
                browser.get(f"http://127.0.0.1:{console_port}/")
                open_page(browser)
                time.sleep(1)
                pid = browser.driver.service.process.pid
                runs["page open"].append(measure(on, seconds, rate, pid))
                shown = browser.rows()[0]["message"]
                assert shown.startswith("step "), shown  # the page was following
            finally:
                browser.quit()
    finally:
        off.stop()
        on.stop()
    summary = {}
    for mode, items in runs.items():
        summary[mode] = {
            "server_cpu_pct_median": statistics.median(i["server_cpu_pct"] for i in items),
            "runs": items,
        }
    base = summary["console on, no page"]["server_cpu_pct_median"]
    for mode, key in (("page open", "page"), ("event stream read by curl", "curl")):
        value = summary[mode]["server_cpu_pct_median"]
        summary[f"{key}_added_points"] = round(value - base, 2)
        summary[f"{key}_added_pct"] = round(100 * (value - base) / base, 1) if base else None
    # against the same browser showing about:blank: the page's own cost
    blank = summary["browser on about:blank"]["server_cpu_pct_median"]
    page = summary["page open"]["server_cpu_pct_median"]
    summary["page_vs_blank_points"] = round(page - blank, 2)
    summary["page_vs_blank_pct"] = round(100 * (page - blank) / blank, 1) if blank else None
    # the same, round by round (a slow drift of the machine cancels out in a pair)
    for key, other in (
        ("page_minus_blank", "browser on about:blank"),
        ("page_minus_no_page", "console on, no page"),
    ):
        diffs = [
            p["server_cpu_pct"] - o["server_cpu_pct"]
            for p, o in zip(runs["page open"], runs[other], strict=True)
        ]
        rel = [
            100 * (p["server_cpu_pct"] - o["server_cpu_pct"]) / o["server_cpu_pct"]
            for p, o in zip(runs["page open"], runs[other], strict=True)
        ]
        summary[key] = {
            "median_points": round(statistics.median(diffs), 3),
            "median_pct": round(statistics.median(rel), 1),
            "points": [round(d, 3) for d in diffs],
        }
    return summary


def report(a: dict | None, b: dict | None, args: argparse.Namespace) -> str:
    with open("/proc/loadavg") as f:
        loadavg = " ".join(f.read().split()[:3])
    lines = [
        f"bench/console.py --seconds {args.seconds:g} --rate {args.rate} --rounds {args.rounds}"
        + (f" --baseline {args.baseline}" if args.baseline else "")
        + (f" --part {args.part}" if args.part != "both" else ""),
        f"machine: {os.cpu_count()} CPUs, load average at the end {loadavg}",
    ]
    if a is not None:
        lines += [
            "",
            "Part A, console off",
            f"  probe (Server with console_port 0): {json.dumps(a['probe'])}",
            f"  import taskstore.server.cli, cumulative us (best of 5): {a['import_time_us']}",
            "  redis-benchmark -P 16 -c 50, server CPU us/op (median) and rps:",
        ]
        for key, row in sorted(a["benchmark"].items()):
            lines.append(
                f"    {key:<28} {row['server_cpu_us_per_op']:>7.3f} us/op  {row['rps']:>8} rps"
                f"  runs {row['runs_us']}"
            )
    if b is None:
        return "\n".join(lines)
    lines += ["", f"Part B, {args.rate} TASK.UPDATEs a second for {args.seconds:g} s"]
    for mode in MODES:
        row = b[mode]
        lines.append(f"  {mode:<26} server CPU {row['server_cpu_pct_median']:>5.2f} % (median)")
        for run in row["runs"]:
            extra = (
                f", reader {run['browser_cpu_pct']} %" if run["browser_cpu_pct"] is not None else ""
            )
            lines.append(
                f"      {run['updates']} updates in {run['wall_s']} s ({run['rate']}/s): server "
                f"{run['server_cpu_pct']} % ({run['server_cpu_pct_ticks']} % in ticks), driver "
                f"{run['driver_cpu_pct']} %{extra}, machine "
                f"busy {run['machine_busy_pct']} % of {run['cpus']} CPUs"
            )
    lines += [
        f"  a page open adds {b['page_added_points']} percentage points of one CPU to the "
        f"server ({b['page_added_pct']} % more than with the console on and no page)",
        f"  the stream read by curl adds {b['curl_added_points']} points ({b['curl_added_pct']} %)",
        f"  the page against the same browser on about:blank: {b['page_vs_blank_points']} "
        f"points ({b['page_vs_blank_pct']} %)",
    ]
    for key, label in (("page_minus_blank", "about:blank"), ("page_minus_no_page", "no page")):
        pair = b[key]
        lines.append(
            f"  round by round, page minus {label}: median {pair['median_points']} points "
            f"({pair['median_pct']} %), each round {pair['points']}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="git revision to compare part A with")
    parser.add_argument("--json", help="also write every number to this file")
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskstore-console-bench-") as tmp:
        trees = {"with console code": _extract(Path(tmp) / "current", None)}
        if args.baseline:
            trees["without"] = _extract(Path(tmp) / "baseline", args.baseline)
        a = part_a(trees, args.rounds) if args.part != "b" else None
        b = None
        if args.part != "a":
            b = part_b(trees["with console code"], args.seconds, args.rate, args.rounds)
    print(report(a, b, args))
    if args.json:
        Path(args.json).write_text(json.dumps({"a": a, "b": b}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
