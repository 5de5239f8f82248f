"""The workloads. Each one starts fresh servers, measures, and stops them again.

Throughput workloads (ping, task.get, task.create, task.update, task.list) drive each server
with redis-benchmark and read the server's CPU time around the run; the others (memory, expiry,
list-scaling, startup) use their own clients. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import rbench
from harness.procstat import CpuMeter
from harness.resp import Client, ReplyError, count_errors, encode
from harness.servers import BENCH_DIR, ServerProc, free_port, is_taskstore, spawn, terminate

THROUGHPUT_WORKLOADS = ("ping", "task.get", "task.create", "task.update", "task.list")
OTHER_WORKLOADS = ("memory", "expiry", "live-load", "list-scaling", "startup")
WORKLOADS = THROUGHPUT_WORKLOADS + OTHER_WORKLOADS

#: below this many clock ticks the /proc/<pid>/stat figure is too coarse (±1 tick is >10 %)
MIN_PRECISE_TICKS = 10
BATCH = 1000


@dataclass
class Params:
    quick: bool
    n: dict[str, int]
    fakeredis_n: int  # cap on redis-benchmark -n for fakeredis
    memory_n: int
    expiry_n: int
    fakeredis_keys: int  # cap on N for fakeredis in memory and expiry
    list_sizes: tuple[int, int]
    list_scaling_n: int
    expiry_timeout_s: float
    live_n: int  # live items during the live-load window
    live_window_s: float
    pipelines: tuple[int, ...] = (1, 16)
    clients: int = 50
    expiry_ttl_ms: int = 2000
    live_rate: int = 5000  # creates (and as many reads and expiries) per second in live-load
    startup_repeats: int = 5
    inprocess_repeats: int = 20

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def make_params(quick: bool) -> Params:
    if quick:
        return Params(
            quick=True,
            n=dict.fromkeys(THROUGHPUT_WORKLOADS, 2000),
            fakeredis_n=2000,
            memory_n=10_000,
            expiry_n=10_000,
            fakeredis_keys=5_000,
            list_sizes=(100, 5_000),
            list_scaling_n=2000,
            expiry_timeout_s=30.0,
            live_n=20_000,
            live_window_s=5.0,
        )
    return Params(
        quick=False,
        n={
            "ping": 200_000,
            "task.get": 200_000,
            "task.create": 100_000,
            "task.update": 200_000,
            "task.list": 50_000,
        },
        fakeredis_n=20_000,
        memory_n=1_000_000,
        expiry_n=1_000_000,
        fakeredis_keys=20_000,
        list_sizes=(100, 100_000),
        list_scaling_n=50_000,
        expiry_timeout_s=90.0,
        live_n=1_000_000,
        live_window_s=20.0,
    )


@dataclass
class Ctx:
    params: Params
    log_dir: Path
    log: Callable[[str], None]
    notes: list[str] = field(default_factory=list)


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task_hash_fields(task_id: str, ttl: int, message: str = "Processing step 2 of 5") -> list[str]:
    now = iso_now()
    return [
        "taskId",
        task_id,
        "status",
        "working",
        "statusMessage",
        message,
        "createdAt",
        now,
        "lastUpdatedAt",
        now,
        "ttl",
        str(ttl),
        "pollInterval",
        "5000",
    ]


def new_task(c: Client, *extra: Any) -> str:
    reply = c.check("TASK.CREATE", "tools/call", *extra)
    return str(json.loads(reply)["taskId"])


def pipelined(c: Client, payload: bytes, n: int) -> tuple[list[Any], int, str | None]:
    replies = c.pipeline(payload, n)
    errs, first = count_errors(replies)
    return replies, errs, first


# -- throughput workloads (redis-benchmark) ----------------------------------------------------


@dataclass
class Variant:
    variant: str
    command: str  # what the table shows
    test: list[str]  # redis-benchmark arguments after the options
    growth: str = "none"  # DBSIZE change expected: none | exact (+n) | at_most (0 < d <= n)
    setup: tuple[tuple[str, ...], ...] = ()  # commands sent before redis-benchmark connects


def setup_throughput(workload: str, srv: ServerProc) -> list[Variant]:
    """Prepare the server's data for `workload`; return what redis-benchmark should send."""
    ts = srv.taskstore
    if workload == "ping":
        return [
            Variant("mbulk", "PING", ["-t", "ping_mbulk"]),
            Variant("inline", "PING (inline)", ["-t", "ping_inline"]),
        ]
    with srv.client() as c:
        if workload == "task.get":
            if ts:
                tid = new_task(c, "TTL", "86400000")
                c.check("TASK.UPDATE", tid, "MESSAGE", "Processing step 2 of 5")  # all 7 fields
                # both MCP generations' JSON, chosen for redis-benchmark's new connections
                return [
                    Variant(
                        "" if version == "2025-11-25" else "v2",
                        f"TASK.GET <id> ({version} JSON)",
                        ["TASK.GET", tid],
                        setup=(("CONFIG", "SET", "mcp_version", version),),
                    )
                    for version in ("2025-11-25", "2026-07-28")
                ]
            c.check("HSET", "task:1", *task_hash_fields(str(uuid.uuid4()), 86400000))
            return [Variant("", "HGETALL task:1", ["HGETALL", "task:1"])]
        if workload == "task.create":
            if ts:
                return [
                    Variant("", "TASK.CREATE tools/call", ["TASK.CREATE", "tools/call"], "exact")
                ]
            fields = task_hash_fields(str(uuid.uuid4()), 3600000, message="x")
            return [
                Variant(
                    "",
                    "HSET task:__rand_int__ (7 fields)",
                    ["-r", "1000000", "HSET", "task:__rand_int__", *fields],
                    "at_most",
                )
            ]
        if workload == "task.update":
            if ts:
                tid = new_task(c, "TTL", "86400000")
                return [
                    Variant(
                        "",
                        "TASK.UPDATE <id> MESSAGE progress",
                        ["TASK.UPDATE", tid, "MESSAGE", "progress"],
                    )
                ]
            c.check("HSET", "task:1", *task_hash_fields(str(uuid.uuid4()), 86400000))
            return [
                Variant(
                    "",
                    "HSET task:1 (2 fields)",
                    ["HSET", "task:1", "status", "working", "lastUpdatedAt", iso_now()],
                )
            ]
        if workload == "task.list":
            if ts:
                payload = encode("TASK.CREATE", "tools/call") * 200
                _, errs, first = pipelined(c, payload, 200)
                if errs:
                    raise RuntimeError(f"creating 200 tasks: {errs} errors ({first})")
                return [Variant("", "TASK.LIST LIMIT 50 (200 tasks)", ["TASK.LIST", "LIMIT", "50"])]
            base = int(time.time() * 1000)
            members: list[Any] = []
            for i in range(200):
                members += [base + i, str(uuid.uuid4())]
            c.check("ZADD", "tasks:local", *members)
            return [
                Variant(
                    "",
                    "ZREVRANGE tasks:local 0 49 (200 members)",
                    ["ZREVRANGE", "tasks:local", "0", "49"],
                )
            ]
    raise ValueError(workload)


def measure(
    ctx: Ctx,
    srv: ServerProc,
    workload: str,
    v: Variant,
    n: int,
    pipeline: int,
) -> dict[str, Any]:
    """One redis-benchmark run against srv, with the server's CPU read around it."""
    if v.setup:
        with srv.client() as c:
            for cmd in v.setup:
                c.check(*cmd)
    err0 = srv.error_replies()
    db0 = srv.dbsize()
    meter = CpuMeter(srv.pid).start()
    t0 = time.perf_counter()
    res = rbench.run(
        srv.port, v.test, n=n, pipeline=pipeline, clients=ctx.params.clients, timeout=900.0
    )
    wall = time.perf_counter() - t0
    meter.stop()
    alive = srv.alive()
    err1 = srv.error_replies() if alive else None
    db1 = srv.dbsize() if alive else None
    messages = list(res.error_lines)
    errors = 0
    if err0 is not None and err1 is not None:
        # redis-benchmark's own CONFIG GET at start-up is answered normally by all three
        errors = err1 - err0
    if (res.returncode != 0 or res.error_lines) and errors == 0:
        errors = 1  # redis-benchmark stops at the first error reply
    growth = None if db0 is None or db1 is None else db1 - db0
    if growth is not None and alive and not res.error_lines:
        if v.growth == "exact" and growth != n:
            errors += abs(n - growth)
            messages.append(f"DBSIZE grew by {growth}, expected {n}")
        elif v.growth == "at_most" and not 0 < growth <= n:
            errors += 1
            messages.append(f"DBSIZE grew by {growth}, expected 1..{n}")
        elif v.growth == "none" and growth != 0:
            errors += abs(growth)
            messages.append(f"DBSIZE changed by {growth}, expected no change")
    if not alive:
        errors += 1
        messages.append(f"server not answering after the run: {srv.log_tail(500)}")
    if res.unsupported:
        status = "unsupported"
    elif errors or not res.ok:
        status = "error"
        errors = max(errors, 1)
    else:
        status = "ok"
    ticks = meter.ticks
    sched_s = meter.sched_seconds
    precise = ticks >= MIN_PRECISE_TICKS or srv.name == "fakeredis" or sched_s <= 0
    cpu_s = meter.seconds
    row = {
        "workload": workload,
        "variant": v.variant,
        "server": srv.name,
        "command": v.command,
        "pipeline": pipeline,
        "clients": ctx.params.clients,
        "ops": n,
        "status": status,
        "errors": errors,
        "error_messages": messages[:5],
        "cpu_ticks": ticks,
        "cpu_seconds": cpu_s,
        "cpu_us_per_op": cpu_s / n * 1e6,
        "sched_cpu_seconds": sched_s,
        "sched_cpu_us_per_op": sched_s / n * 1e6,
        # the figure the tables show: /proc/<pid>/stat unless it is under MIN_PRECISE_TICKS
        "cpu_source": "stat" if precise else "schedstat",
        "cpu_us_per_op_reported": (cpu_s if precise else sched_s) / n * 1e6,
        "wall_seconds": wall,
        "server_cpu_utilization": (cpu_s / wall) if wall > 0 else None,
        "rps": res.rps,
        "avg_ms": res.avg_ms,
        "p50_ms": res.p50_ms,
        "p95_ms": res.p95_ms,
        "p99_ms": res.p99_ms,
        "max_ms": res.max_ms,
        "dbsize_before": db0,
        "dbsize_after": db1,
        "benchmark_warnings": res.warnings,
    }
    if status != "ok":
        ctx.log(f"    {status}: {'; '.join(messages[:2])}")
    return row


def run_throughput(ctx: Ctx, workload: str, server: str) -> list[dict[str, Any]]:
    p = ctx.params
    n = p.n[workload]
    if server == "fakeredis":
        n = min(n, p.fakeredis_n)
    rows: list[dict[str, Any]] = []
    with ServerProc(server, ctx.log_dir) as srv:
        variants = setup_throughput(workload, srv)
        for pipeline in p.pipelines:
            for v in variants:
                row = measure(ctx, srv, workload, v, n, pipeline)
                rows.append(row)
                ctx.log(
                    f"  {workload}{' ' + v.variant if v.variant else ''} {server} -P {pipeline}: "
                    f"{fmt(row['cpu_us_per_op_reported'])} us/op, {fmt(row['rps'])} req/s, "
                    f"p99 {fmt(row['p99_ms'])} ms [{row['status']}]"
                )
    return rows


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


# -- bulk loading ------------------------------------------------------------------------------


def _hash_batch(start: int, count: int, ttl_ms: int) -> bytes:
    """HSET task:<i> with the 7 task fields (a fresh taskId each) + PEXPIRE task:<i> ttl_ms."""
    now = iso_now().encode()
    ttl = str(ttl_ms).encode()
    out = []
    for i in range(start, start + count):
        key = b"task:%d" % i
        tid = str(uuid.uuid4()).encode()
        out.append(
            b"*16\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n$6\r\ntaskId\r\n$36\r\n%s\r\n"
            b"$6\r\nstatus\r\n$7\r\nworking\r\n$13\r\nstatusMessage\r\n$1\r\nx\r\n"
            b"$9\r\ncreatedAt\r\n$%d\r\n%s\r\n$13\r\nlastUpdatedAt\r\n$%d\r\n%s\r\n"
            b"$3\r\nttl\r\n$%d\r\n%s\r\n$12\r\npollInterval\r\n$4\r\n5000\r\n"
            b"*3\r\n$7\r\nPEXPIRE\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
            % (
                len(key),
                key,
                tid,
                len(now),
                now,
                len(now),
                now,
                len(ttl),
                ttl,
                len(key),
                key,
                len(ttl),
                ttl,
            )
        )
    return b"".join(out)


def load_items(
    srv: ServerProc,
    c: Client,
    n: int,
    ttl_for_batch: Callable[[], int | None],
    first_key: int = 0,
) -> tuple[int, str | None]:
    """Create n tasks (taskstore) or n task hashes task:<first_key..> with PEXPIRE (redis,
    fakeredis) in pipelined batches of BATCH. ttl_for_batch() gives each batch's TTL in ms
    (None: the server default for taskstore, 1 h for the hashes). Returns (error replies, first
    error)."""
    errors = 0
    first: str | None = None
    done = 0
    while done < n:
        k = min(BATCH, n - done)
        ttl = ttl_for_batch()
        if srv.taskstore:
            cmd = (
                ("TASK.CREATE", "tools/call")
                if ttl is None
                else ("TASK.CREATE", "tools/call", "TTL", ttl)
            )
            payload, replies = encode(*cmd) * k, k
        else:
            payload = _hash_batch(first_key + done, k, 3600000 if ttl is None else ttl)
            replies = 2 * k
        _, e, f = pipelined(c, payload, replies)
        errors += e
        first = first or f
        done += k
    return errors, first


# -- memory ------------------------------------------------------------------------------------


def run_memory(ctx: Ctx, server: str) -> dict[str, Any]:
    p = ctx.params
    n = min(p.memory_n, p.fakeredis_keys) if server == "fakeredis" else p.memory_n
    with ServerProc(server, ctx.log_dir) as srv, srv.client() as c:
        # warm-up: the first task/hash pulls in code paths and allocator arenas of its own
        load_items(srv, c, 1, lambda: None, first_key=10**12)
        time.sleep(0.2)
        rss0 = srv.rss()
        db0 = srv.dbsize() or 0
        t0 = time.perf_counter()
        errors, first = load_items(srv, c, n, lambda: None)
        load_s = time.perf_counter() - t0
        time.sleep(0.2)
        rss1 = srv.rss()
        db1 = srv.dbsize() or 0
        if db1 - db0 != n:
            errors += abs(n - (db1 - db0))
            first = first or f"DBSIZE grew by {db1 - db0}, expected {n}"
        used_memory = None
        if not srv.taskstore:
            info = c.call("INFO", "memory")
            if not isinstance(info, ReplyError):
                for line in info.split(b"\r\n"):
                    if line.startswith(b"used_memory:"):
                        used_memory = int(line.split(b":")[1])
    result = {
        "n": n,
        "rss_before": rss0,
        "rss_after": rss1,
        "bytes_per_item": (rss1 - rss0) / n,
        "load_seconds": load_s,
        "load_rate": n / load_s if load_s > 0 else None,
        "used_memory_after": used_memory,
        "errors": errors,
        "error_message": first,
        "what": "task (TASK.CREATE tools/call)" if srv.taskstore else "hash of 7 fields + PEXPIRE",
    }
    ctx.log(
        f"  memory {server}: {n:,} items, {result['bytes_per_item']:.0f} B/item "
        f"(RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB), loaded in {load_s:.1f} s"
    )
    return result


# -- expiry ------------------------------------------------------------------------------------

PING = b"*1\r\n$4\r\nPING\r\n"


def ping_every_ms(
    probe: socket.socket, lat: list[float], go_on: Callable[[], bool]
) -> tuple[int, str | None]:
    """Send PING on ``probe`` every millisecond (one at a time) while ``go_on()``; append each
    round trip's seconds to ``lat``; returns (replies other than +PONG, the first of them)."""
    errors = 0
    first: str | None = None
    next_t = time.perf_counter()
    while go_on():
        t = time.perf_counter()
        probe.sendall(PING)
        buf = b""
        while not buf.endswith(b"\r\n"):
            chunk = probe.recv(64)
            if not chunk:
                raise ConnectionError("server closed the probe connection")
            buf += chunk
        lat.append(time.perf_counter() - t)
        if buf != b"+PONG\r\n":
            errors += 1
            first = first or buf.decode(errors="replace").strip()
        next_t += 0.001
        delay = next_t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            next_t = time.perf_counter()
    return errors, first


def _wait_dbsize_zero(srv: ServerProc, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.dbsize() == 0:
            return True
        time.sleep(0.02)
    return False


def run_expiry(ctx: Ctx, server: str) -> dict[str, Any]:
    """N items that all expire at one instant; a PING probe every ms while they are evicted.

    Loading 1M items takes longer than the 2000 ms TTL, so each batch's TTL is chosen so that
    every item expires at the same wall-clock instant, ttl_ms after the loading is expected to
    end (for quick runs of 10k items this is ~TTL 2000 for every item). A calibration load
    first measures the loading rate to predict the end of loading.
    """
    p = ctx.params
    n = min(p.expiry_n, p.fakeredis_keys) if server == "fakeredis" else p.expiry_n
    extra = ("--expired-retention-ms", "0") if is_taskstore(server) else ()
    with ServerProc(server, ctx.log_dir, extra) as srv, srv.client() as c:
        # calibration: loading rate, with items that expire at once
        k = min(n, max(2000, n // 20))
        t0 = time.perf_counter()
        load_items(srv, c, k, lambda: 300, first_key=10**12)
        rate = k / max(time.perf_counter() - t0, 1e-6)
        if not _wait_dbsize_zero(srv, 30.0):
            c.check("FLUSHALL")
        # loading slows down as the store grows (and the machine may be shared): be generous
        est_load_s = n / rate * 1.7 + 0.5
        expire_at_ms = time.time() * 1000 + est_load_s * 1000 + p.expiry_ttl_ms
        instants: list[float] = []

        def ttl_for_batch() -> int:
            now_ms = time.time() * 1000
            ttl = max(p.expiry_ttl_ms, round(expire_at_ms - now_ms))
            instants.append(now_ms + ttl)
            return ttl

        t0 = time.perf_counter()
        errors, first = load_items(srv, c, n, ttl_for_batch)
        load_s = time.perf_counter() - t0
        loaded = srv.dbsize() or 0
        first_expiry = min(instants) / 1000
        last_expiry = max(instants) / 1000
        if time.time() >= first_expiry:
            ctx.notes.append(
                f"expiry/{server}: loading ran past the first expiry instant; "
                f"DBSIZE was {loaded:,} of {n:,} when it ended"
            )
        elif loaded != n:
            errors += abs(n - loaded)
            first = first or f"DBSIZE {loaded} after loading, expected {n}"

        # probe + DBSIZE poller from the first expiry instant
        time.sleep(max(0.0, first_expiry - time.time()))
        zero = threading.Event()
        samples: list[tuple[float, int]] = []
        zero_at: list[float] = []

        def poll() -> None:
            with srv.client(timeout=60.0) as pc:
                while not zero.is_set():
                    d = pc.call("DBSIZE")
                    t = time.time()
                    d = -1 if isinstance(d, ReplyError) else int(d)
                    samples.append((t, d))
                    if d == 0:
                        zero_at.append(t)
                        zero.set()
                        return
                    if t - first_expiry > p.expiry_timeout_s:
                        return
                    time.sleep(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        lat: list[float] = []
        probe = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        poller.start()
        try:
            deadline = time.perf_counter() + p.expiry_timeout_s
            e, f = ping_every_ms(
                probe,
                lat,
                lambda: not zero.is_set() and time.perf_counter() < deadline and poller.is_alive(),
            )
            errors, first = errors + e, first or f
        finally:
            probe.close()
            zero.set()
            poller.join(timeout=60)
        alive = srv.alive()
    lat_ms = sorted(x * 1000 for x in lat)
    evicted = bool(zero_at)
    result = {
        "n": n,
        "ttl_ms": p.expiry_ttl_ms,
        "load_seconds": load_s,
        "expiry_spread_ms": (last_expiry - first_expiry) * 1000,
        "dbsize_at_first_expiry": samples[0][1] if samples else None,
        "evicted_all": evicted,
        "seconds_to_zero_from_last_expiry": (zero_at[0] - last_expiry) if evicted else None,
        "seconds_to_zero_from_first_expiry": (zero_at[0] - first_expiry) if evicted else None,
        "dbsize_poll_interval_ms": 50,
        "probes": len(lat_ms),
        "probe_p50_ms": pct(lat_ms, 50),
        "probe_p99_ms": pct(lat_ms, 99),
        "probe_p999_ms": pct(lat_ms, 99.9),
        "probe_max_ms": lat_ms[-1] if lat_ms else None,
        "dbsize_samples": [(round(t - first_expiry, 3), d) for t, d in samples][:400],
        "errors": errors + (0 if alive else 1),
        "error_message": first if alive else f"server died: {first}",
    }
    ctx.log(
        f"  expiry {server}: {n:,} items, evicted in "
        f"{fmt(result['seconds_to_zero_from_last_expiry'])} s, probe p99 "
        f"{fmt(result['probe_p99_ms'])} ms, max {fmt(result['probe_max_ms'])} ms "
        f"({len(lat_ms)} probes)"
    )
    return result


# -- live-load ---------------------------------------------------------------------------------


def run_live_load(ctx: Ctx, server: str) -> dict[str, Any]:
    """A PING probe every ms while the server holds ``live_n`` items under churn.

    Loads ``live_n`` items (1 h TTL) of which the last ``live_rate * live_window_s`` are given
    TTLs that make them expire evenly across the measuring window; during the window a second
    connection creates ``live_rate`` items/s and reads as many back (TASK.CREATE + TASK.GET,
    or HSET + PEXPIRE + HGETALL), in pipelined batches every 10 ms. So the live population stays
    at ``live_n`` while items are created, read and expire, and the probe sees every pause of
    the server's event loop: garbage collection of a heap with a million records above all
    (docs/memory.md).
    """
    p = ctx.params
    n = min(p.live_n, p.fakeredis_keys) if server == "fakeredis" else p.live_n
    churn = min(p.live_rate * p.live_window_s, n // 2)
    extra = ("--expired-retention-ms", "0") if is_taskstore(server) else ()
    with ServerProc(server, ctx.log_dir, extra) as srv, srv.client() as c:
        t0 = time.perf_counter()
        errors, first = load_items(srv, c, int(n - churn), lambda: 3_600_000)
        rate = (n - churn) / max(time.perf_counter() - t0, 1e-6)
        window_start = time.time() + churn / rate * 1.7 + 1.0
        expiring = {"done": 0}

        def ttl_for_batch() -> int:
            at = window_start + expiring["done"] / p.live_rate
            expiring["done"] += BATCH
            return max(1, round((at - time.time()) * 1000))

        e, f = load_items(srv, c, int(churn), ttl_for_batch, first_key=10**12)
        errors, first = errors + e, first or f
        load_s = time.perf_counter() - t0
        loaded = srv.dbsize() or 0
        time.sleep(max(0.0, window_start - time.time()))

        stop = threading.Event()
        churned = {"created": 0, "read": 0, "errors": 0}

        def churn_loop() -> None:
            step = max(1, p.live_rate // 100)  # every 10 ms
            key = 2 * 10**12
            recent: list[bytes] = []
            with srv.client(timeout=60.0) as lc:
                next_t = time.perf_counter()
                while not stop.is_set():
                    if srv.taskstore:
                        payload = encode("TASK.CREATE", "tools/call") * step
                        payload += b"".join(encode("TASK.GET", i) for i in recent[-step:])
                        replies = lc.pipeline(payload, step + len(recent[-step:]))
                        for r in replies[:step]:
                            if isinstance(r, bytes):
                                recent.append(json.loads(r)["taskId"].encode())
                    else:
                        payload = _hash_batch(key, step, 3_600_000)
                        payload += b"".join(
                            encode("HGETALL", b"task:%d" % k) for k in range(key - step, key)
                        )
                        replies = lc.pipeline(payload, 3 * step)
                        key += step
                    churned["created"] += step
                    churned["read"] += min(step, len(recent)) if srv.taskstore else step
                    churned["errors"] += count_errors(replies)[0]
                    del recent[:-step]
                    next_t += 0.01
                    delay = next_t - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        next_t = time.perf_counter()

        loader = threading.Thread(target=churn_loop, daemon=True)
        lat: list[float] = []
        probe = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cpu0 = srv.cpu_ticks()
        loader.start()
        try:
            deadline = time.perf_counter() + p.live_window_s
            e, f = ping_every_ms(probe, lat, lambda: time.perf_counter() < deadline)
            errors, first = errors + e, first or f
        finally:
            probe.close()
            stop.set()
            loader.join(timeout=60)
        cpu = (srv.cpu_ticks() - cpu0) / os.sysconf("SC_CLK_TCK")
        dbsize_end = srv.dbsize()
        alive = srv.alive()
    lat_ms = sorted(x * 1000 for x in lat)
    result = {
        "n": n,
        "loaded": loaded,
        "dbsize_end": dbsize_end,
        "load_seconds": load_s,
        "window_s": p.live_window_s,
        "created": churned["created"],
        "read": churned["read"],
        "expiring": int(churn),
        "server_cpu_s": cpu,
        "probes": len(lat_ms),
        "probe_p50_ms": pct(lat_ms, 50),
        "probe_p99_ms": pct(lat_ms, 99),
        "probe_p999_ms": pct(lat_ms, 99.9),
        "probe_max_ms": lat_ms[-1] if lat_ms else None,
        "errors": errors + churned["errors"] + (0 if alive else 1),
        "error_message": first if alive else f"server died: {first}",
    }
    ctx.log(
        f"  live-load {server}: {loaded:,} live, {churned['created']:,} created / "
        f"{churned['read']:,} read / {int(churn):,} expiring in {p.live_window_s:.0f} s; probe "
        f"p99 {fmt(result['probe_p99_ms'])} ms, max {fmt(result['probe_max_ms'])} ms "
        f"({len(lat_ms)} probes)"
    )
    return result


def pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


# -- list-scaling ------------------------------------------------------------------------------


def middle_cursor(c: Client, size: int) -> str:
    """A cursor half-way through an owner's `size` tasks, paging with the largest LIMIT."""
    skip = size // 2
    cursor: str | None = None
    while skip > 0:
        k = min(1000, skip)
        args: list[Any] = ["TASK.LIST", "LIMIT", k]
        if cursor:
            args += ["CURSOR", cursor]
        page = json.loads(c.check(*args))
        if len(page["tasks"]) != k or not page.get("nextCursor"):
            raise RuntimeError(f"TASK.LIST LIMIT {k}: {len(page['tasks'])} tasks, no cursor")
        cursor = page["nextCursor"]
        skip -= k
    assert cursor is not None
    return cursor


def run_list_scaling(ctx: Ctx, server: str) -> dict[str, Any]:
    p = ctx.params
    out: dict[str, Any] = {"sizes": list(p.list_sizes), "rows": []}
    with ServerProc(server, ctx.log_dir) as srv, srv.client() as c:
        have = 0
        for size in p.list_sizes:
            errors, first = load_items(srv, c, size - have, lambda: None)
            if errors:
                raise RuntimeError(f"creating {size - have} tasks: {errors} errors ({first})")
            have = size
            cursor = middle_cursor(c, size)
            page = json.loads(c.check("TASK.LIST", "CURSOR", cursor, "LIMIT", "50"))
            if len(page["tasks"]) != 50:
                raise RuntimeError(f"middle page has {len(page['tasks'])} tasks, expected 50")
            v = Variant(
                f"{size} tasks",
                f"TASK.LIST CURSOR <middle> LIMIT 50 ({size:,} tasks)",
                ["TASK.LIST", "CURSOR", cursor, "LIMIT", "50"],
            )
            row = measure(ctx, srv, "list-scaling", v, p.list_scaling_n, 16)
            row["tasks"] = size
            out["rows"].append(row)
            ctx.log(
                f"  list-scaling {server} {size:,} tasks: "
                f"{fmt(row['cpu_us_per_op_reported'])} us/op, {fmt(row['rps'])} req/s"
            )
    small, large = out["rows"]
    if small["cpu_us_per_op_reported"] > 0:
        out["ratio"] = large["cpu_us_per_op_reported"] / small["cpu_us_per_op_reported"]
    else:
        out["ratio"] = None
    return out


# -- startup -----------------------------------------------------------------------------------


def first_pong_ms(ctx: Ctx, server: str) -> float:
    """Spawn the server on a free port; connect + PING as fast as possible until PONG."""
    port = free_port()
    log_path = ctx.log_dir / f"startup-{server}-{time.monotonic_ns()}.log"
    t0 = time.perf_counter()
    proc = spawn(server, port, log_path)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{server} exited: {log_path.read_text(errors='replace')[-500:]}"
                )
            if time.perf_counter() - t0 > 30:
                raise TimeoutError(f"{server}: no PONG within 30 s")
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                time.sleep(0.0002)
                continue
            try:
                s.sendall(PING)
                data = s.recv(64)
                if data.startswith(b"+PONG"):
                    return (time.perf_counter() - t0) * 1000
            except OSError:
                pass
            finally:
                s.close()
    finally:
        terminate(proc)


def bare_python_ms() -> float:
    """exec -> exit of `python -c pass` with the same interpreter: the floor under first PONG."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - t0) * 1000


def inprocess(ctx: Ctx, loop: str) -> dict[str, Any]:
    script = BENCH_DIR / "harness" / "inprocess_startup.py"
    from harness.servers import ROOT, child_env

    proc = subprocess.run(
        [sys.executable, str(script), loop, str(ctx.params.inprocess_repeats)],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
        cwd=str(ROOT),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"in-process startup ({loop}) failed: {proc.stderr[-800:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_startup(ctx: Ctx, server: str) -> dict[str, Any]:
    reps = ctx.params.startup_repeats
    first_pong_ms(ctx, server)  # warm the page cache (python, site-packages); not counted
    times = [first_pong_ms(ctx, server) for _ in range(reps)]
    out: dict[str, Any] = {
        "first_pong_ms": times,
        "first_pong_median_ms": statistics.median(times),
        "first_pong_min_ms": min(times),
        "first_pong_max_ms": max(times),
    }
    if is_taskstore(server):
        out["inprocess"] = inprocess(ctx, server.split("-", 1)[1])
        out["python_bare_exit_ms"] = statistics.median(bare_python_ms() for _ in range(reps))
    ctx.log(
        f"  startup {server}: first PONG median {out['first_pong_median_ms']:.1f} ms"
        + (
            f", in-process Server start+stop median "
            f"{out['inprocess']['server_start_stop_median_ms']:.2f} ms, ServerThread "
            f"{out['inprocess']['thread_start_stop_median_ms']:.2f} ms"
            if "inprocess" in out
            else ""
        )
    )
    return out
