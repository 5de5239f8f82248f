"""Turn a results dict into the targets, the Markdown report and the bar chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.workloads import THROUGHPUT_WORKLOADS, fmt

TASKSTORES = ("taskstore-asyncio", "taskstore-uvloop")
SHORT = {
    "taskstore-asyncio": "asyncio",
    "taskstore-uvloop": "uvloop",
    "redis": "redis",
    "fakeredis": "fakeredis",
    "taskstore-uvloop+aof-everysec": "uvloop AOF everysec",
    "taskstore-uvloop+aof-always": "uvloop AOF always",
    "redis+aof-everysec": "redis AOF everysec",
    "redis+aof-always": "redis AOF always",
    "floor-bare": "floor (hiredis only)",
    "floor-reader": "floor (taskstore's reader)",
}


def _rows_by_key(results: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, dict[str, Any]]]:
    """(workload, variant, pipeline) -> server -> row, in run order."""
    out: dict[tuple[str, str, int], dict[str, dict[str, Any]]] = {}
    for row in results.get("throughput", []):
        key = (row["workload"], row["variant"], row["pipeline"])
        out.setdefault(key, {})[row["server"]] = row
    order = {w: i for i, w in enumerate(THROUGHPUT_WORKLOADS)}
    variant_order = {"mbulk": 0, "inline": 1}
    return dict(
        sorted(
            out.items(),
            key=lambda kv: (order.get(kv[0][0], 99), kv[0][2], variant_order.get(kv[0][1], 2)),
        )
    )


def ok(row: dict[str, Any] | None) -> bool:
    return row is not None and row.get("status") == "ok"


def cpu(row: dict[str, Any] | None) -> float | None:
    return row["cpu_us_per_op_reported"] if ok(row) else None  # type: ignore[index]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def label(workload: str, variant: str) -> str:
    return f"{workload} ({variant})" if variant else workload


# -- targets -----------------------------------------------------------------------------------


def compute_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = _rows_by_key(results)
    params = results["params"]
    servers = [s for s in TASKSTORES if s in results["servers"]]
    targets: list[dict[str, Any]] = []

    def add(
        name: str, limit: str, values: dict[str, tuple[float | None, bool | None, str]]
    ) -> None:
        targets.append(
            {
                "target": name,
                "limit": limit,
                "per_server": {
                    s: {"value": v[0], "met": v[1], "detail": v[2]} for s, v in values.items()
                },
            }
        )

    def cpu_ratio_target(name: str, key: tuple[str, str, int], limit: float) -> None:
        by_server = rows.get(key, {})
        redis = cpu(by_server.get("redis"))
        values = {}
        for s in servers:
            r = ratio(cpu(by_server.get(s)), redis)
            values[s] = (r, None if r is None else r <= limit, "n/a" if r is None else f"{r:.2f}x")
        add(name, f"<= {limit}x redis", values)

    cpu_ratio_target("CPU/op PING -P16 vs redis", ("ping", "mbulk", 16), 1.2)
    cpu_ratio_target("CPU/op PING -P1 vs redis", ("ping", "mbulk", 1), 1.2)
    cpu_ratio_target("CPU/op TASK.GET vs HGETALL -P16", ("task.get", "", 16), 1.5)
    cpu_ratio_target("CPU/op TASK.CREATE vs HSET 7 fields -P16", ("task.create", "", 16), 2.5)

    values = {}
    for s in servers:
        worst: tuple[float, str] | None = None
        for (w, v, p), by_server in rows.items():
            fr, ts = by_server.get("fakeredis"), by_server.get(s)
            if not (ok(fr) and ok(ts)):
                continue
            r = ts["rps"] / fr["rps"]  # type: ignore[index]
            if worst is None or r < worst[0]:
                worst = (r, f"{label(w, v)} -P{p}")
        if worst is None:
            values[s] = (None, None, "n/a")
        else:
            values[s] = (worst[0], worst[0] >= 20, f"min {worst[0]:.1f}x ({worst[1]})")
    add("throughput vs fakeredis, every workload", ">= 20x", values)

    mem = results.get("memory", {})
    redis_mem = mem.get("redis", {}).get("bytes_per_item")
    values = {}
    for s in servers:
        m = mem.get(s, {}).get("bytes_per_item")
        r = ratio(m, redis_mem)
        values[s] = (
            r,
            None if r is None else r <= 2,
            "n/a" if r is None else f"{r:.2f}x ({m:.0f} vs {redis_mem:.0f} B)",
        )
    n_mem = params["memory_n"]
    add(f"memory per task vs redis hash ({n_mem:,} items)", "<= 2x", values)

    # for expiry and startup, redis's own figures are shown next to taskstore's for reference
    with_ref = servers + (["redis"] if "redis" in results["servers"] else [])
    exp = results.get("expiry", {})
    values = {}
    for s in with_ref:
        e = exp.get(s)
        if not e or e.get("probe_max_ms") is None:
            values[s] = (None, None, "n/a")
            continue
        t = e.get("seconds_to_zero_from_last_expiry")
        met = e["evicted_all"] and e["probe_max_ms"] <= 10 and t is not None and t <= 5
        values[s] = (
            e["probe_max_ms"],
            bool(met),
            f"max {e['probe_max_ms']:.1f} ms, "
            + (f"evicted in {t:.2f} s" if t is not None else "not all evicted"),
        )
    add(f"expiry of {params['expiry_n']:,}: probe max / all evicted", "<= 10 ms / <= 5 s", values)

    live = results.get("live_load", {})
    values = {}
    for s in with_ref:
        e = live.get(s)
        if not e or e.get("probe_max_ms") is None:
            values[s] = (None, None, "n/a")
            continue
        values[s] = (
            e["probe_max_ms"],
            e["probe_max_ms"] < 20 and not e["errors"],
            f"max {e['probe_max_ms']:.1f} ms, p99 {e['probe_p99_ms']:.2f} ms",
        )
    add(
        f"{params.get('live_n', 0):,} live tasks under churn: PING probe max gap",
        "< 20 ms",
        values,
    )

    ls = results.get("list_scaling", {})
    small, large = params["list_sizes"]
    values = {}
    for s in servers:
        r = ls.get(s, {}).get("ratio")
        values[s] = (r, None if r is None else r <= 1.5, "n/a" if r is None else f"{r:.2f}x")
    add(f"TASK.LIST at {large:,} vs {small:,} tasks", "<= 1.5x", values)

    st = results.get("startup", {})
    values = {}
    for s in with_ref:
        v = st.get(s, {}).get("first_pong_median_ms")
        values[s] = (v, None if v is None else v <= 250, "n/a" if v is None else f"{v:.0f} ms")
    add("startup: exec to first PONG (median)", "<= 250 ms", values)
    values = {}
    for s in servers:
        v = st.get(s, {}).get("inprocess", {}).get("server_start_stop_median_ms")
        values[s] = (v, None if v is None else v <= 10, "n/a" if v is None else f"{v:.2f} ms")
    add("startup: in-process Server start+stop (median)", "<= 10 ms", values)
    return targets


# -- Markdown ----------------------------------------------------------------------------------


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    if row["status"] == "unsupported":
        return "unsupported"
    if row["status"] != "ok":
        return f"error ({row['errors']})"
    v = fmt(row["cpu_us_per_op_reported"])
    return v + ("*" if row["cpu_source"] != "stat" else "")


def _r(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}x"


def table(header: list[str], body: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def main_table(results: dict[str, Any]) -> str:
    servers = results["servers"]
    rows = _rows_by_key(results)
    ts = [s for s in (*TASKSTORES, "floor-bare", "floor-reader") if s in servers]
    header = ["workload", "-P"] + [f"{SHORT[s]} µs/op" for s in servers]
    if "redis" in servers:
        header += [f"{SHORT[s]}/redis CPU" for s in ts]
    if "fakeredis" in servers:
        header += [f"{SHORT[s]}/fakeredis req/s" for s in ts]
    body = []
    for (w, v, p), by_server in rows.items():
        line = [label(w, v), str(p)] + [_cell(by_server.get(s)) for s in servers]
        if "redis" in servers:
            line += [_r(ratio(cpu(by_server.get(s)), cpu(by_server.get("redis")))) for s in ts]
        if "fakeredis" in servers:
            fr = by_server.get("fakeredis")
            line += [
                _r(ratio(by_server[s]["rps"], fr["rps"]), 1)  # type: ignore[index]
                if ok(by_server.get(s)) and ok(fr)
                else ""
                for s in ts
            ]
        body.append(line)
    return table(header, body)


def persistence_table(results: dict[str, Any]) -> str:
    """Each appendfsync mode against our cost without the file and Redis's with it."""
    rows = _rows_by_key(results)
    body = []
    for (w, v, p), by_server in rows.items():
        base = cpu(by_server.get("taskstore-uvloop"))
        for mode in ("everysec", "always"):
            ours = cpu(by_server.get(f"taskstore-uvloop+aof-{mode}"))
            theirs = cpu(by_server.get(f"redis+aof-{mode}"))
            if ours is None:
                continue
            body.append(
                [
                    label(w, v),
                    str(p),
                    mode,
                    "" if base is None else f"{base:.2f}",
                    f"{ours:.2f}",
                    _r(ratio(ours, base)),
                    "" if theirs is None else f"{theirs:.2f}",
                    _r(ratio(ours, theirs)),
                ]
            )
    return table(
        [
            "workload",
            "-P",
            "appendfsync",
            "no AOF µs/op",
            "AOF µs/op",
            "÷ no AOF",
            "redis AOF µs/op",
            "÷ redis AOF",
        ],
        body,
    )


def commands_table(results: dict[str, Any]) -> str:
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for row in results.get("throughput", []):
        kind = "taskstore" if row["server"].startswith("taskstore") else "anchor"
        seen.setdefault((row["workload"], row["variant"]), {})[kind] = row["command"]
    body = [
        [label(w, v), c.get("taskstore", ""), c.get("anchor", "")] for (w, v), c in seen.items()
    ]
    return table(
        ["workload", "taskstore command", "redis / fakeredis command"], body, ["l", "l", "l"]
    )


def latency_table(results: dict[str, Any]) -> str:
    servers = results["servers"]
    rows = _rows_by_key(results)
    header = ["workload", "-P"] + [f"{SHORT[s]} req/s · p50/p99 ms" for s in servers]
    body = []
    for (w, v, p), by_server in rows.items():
        cells = []
        for s in servers:
            r = by_server.get(s)
            if r is None:
                cells.append("")
            elif not ok(r):
                cells.append(r["status"])
            else:
                cells.append(f"{fmt(r['rps'])} · {fmt(r['p50_ms'])}/{fmt(r['p99_ms'])}")
        body.append([label(w, v), str(p), *cells])
    return table(header, body)


def render_markdown(results: dict[str, Any], png_name: str | None) -> str:
    m = results["machine"]
    params = results["params"]
    out = [f"# taskstore benchmark: {results['name']} ({results['mode']} mode)", ""]
    out.append(
        f"{m['date']} · {m['cpu_model']} · {m['cores']} cores · Linux {m['kernel']} · "
        f"Python {m['python']} · {m['redis_server']} · taskstore {m['taskstore']} · "
        f"uvloop {m['packages'].get('uvloop')} · hiredis {m['packages'].get('hiredis')} · "
        f"fakeredis {m['packages'].get('fakeredis')} · load average (1/5/15 min) at start "
        f"{m.get('loadavg_start')}, at end {m.get('loadavg_end')} · "
        f"run took {results['duration_seconds']:.0f} s"
    )
    out.append("")
    ns = ", ".join(f"{w} {n:,}" for w, n in params["n"].items())
    out.append(
        f"Load: redis-benchmark -c {params['clients']}, -n: {ns}; fakeredis -n capped at "
        f"{params['fakeredis_n']:,}."
    )
    out.append("")
    if results.get("throughput"):
        out += ["## Server CPU per operation", "", main_table(results), ""]
        out.append(
            "µs/op: server CPU time (utime+stime, /proc/<pid>/stat) ÷ operations. "
            "`*`: fewer than 10 clock ticks were used, so the nanosecond figure from "
            "/proc/<pid>/task/*/schedstat is shown instead. Ratios: CPU/op of taskstore ÷ "
            "redis (lower is better); throughput of taskstore ÷ fakeredis (higher is better)."
        )
        out.append("")
        if png_name:
            out += [f"![server CPU per operation]({png_name})", ""]
        if any("+aof-" in s for s in results["servers"]):
            out += [
                "### Append-only file",
                "",
                persistence_table(results),
                "",
                "Server CPU per operation with `appendonly yes` (a fresh file) against "
                "taskstore-uvloop without it and redis-server with the same `appendfsync`.",
                "",
            ]
        out += ["### Commands", "", commands_table(results), ""]
        out += ["### Throughput and latency (redis-benchmark)", "", latency_table(results), ""]

    if results.get("targets"):
        servers = [s for s in TASKSTORES if s in results["servers"]]
        if "redis" in results["servers"]:
            servers.append("redis")
        header = ["target", "limit"] + [
            c for s in servers for c in (SHORT[s] if s != "redis" else "redis (reference)", "")
        ]
        body = []
        for t in results["targets"]:
            cells = []
            for s in servers:
                ps = t["per_server"].get(s, {})
                met = ps.get("met")
                cells += [
                    ps.get("detail", ""),
                    "" if met is None else ("met" if met else "not met"),
                ]
            body.append([t["target"], t["limit"], *cells])
        out += ["## Targets", "", table(header, body, ["l", "l"] + ["r", "l"] * len(servers)), ""]

    mem = results.get("memory")
    if mem:
        redis_b = mem.get("redis", {}).get("bytes_per_item")
        body = []
        for s, r in mem.items():
            body.append(
                [
                    s,
                    r["what"],
                    f"{r['n']:,}",
                    f"{r['rss_before'] / 2**20:.1f}",
                    f"{r['rss_after'] / 2**20:.1f}",
                    f"{r['bytes_per_item']:.0f}",
                    _r(ratio(r["bytes_per_item"], redis_b)),
                    f"{fmt(r['load_rate'])}/s",
                    str(r["errors"]),
                ]
            )
        out += [
            "## Memory per live item (RSS growth)",
            "",
            table(
                [
                    "server",
                    "item",
                    "items",
                    "RSS before MiB",
                    "RSS after MiB",
                    "bytes/item",
                    "vs redis",
                    "load rate",
                    "errors",
                ],
                body,
                ["l", "l"] + ["r"] * 7,
            ),
            "",
        ]

    exp = results.get("expiry")
    if exp:
        body = []
        for s, e in exp.items():
            body.append(
                [
                    s,
                    f"{e['n']:,}",
                    f"{e['load_seconds']:.1f}",
                    f"{e['expiry_spread_ms']:.0f}",
                    fmt(e["seconds_to_zero_from_last_expiry"]) if e["evicted_all"] else "no",
                    " / ".join(fmt(e[k]) for k in ("probe_p50_ms", "probe_p99_ms", "probe_max_ms")),
                    str(e["probes"]),
                    str(e["errors"]),
                ]
            )
        out += [
            "## Mass expiry",
            "",
            table(
                [
                    "server",
                    "items",
                    "load s",
                    "expiry spread ms",
                    "all evicted after s",
                    "PING probe p50 / p99 / max ms",
                    "probes",
                    "errors",
                ],
                body,
            ),
            "",
            "All items expire at one instant (TTL ≥ 2000 ms, chosen per batch; spread = "
            "latest - earliest expiry instant). 'All evicted after': from the latest expiry "
            "instant to the first DBSIZE poll (every 50 ms) that returns 0.",
            "",
        ]

    live = results.get("live_load")
    if live:
        body = []
        for s, e in live.items():
            body.append(
                [
                    s,
                    f"{e['loaded']:,}",
                    f"{e['load_seconds']:.1f}",
                    f"{e['created']:,} / {e['read']:,} / {e['expiring']:,}",
                    f"{e['server_cpu_s']:.1f}",
                    " / ".join(
                        fmt(e[k]) for k in ("probe_p50_ms", "probe_p99_ms", "probe_p999_ms")
                    ),
                    fmt(e["probe_max_ms"]),
                    str(e["probes"]),
                    str(e["errors"]),
                ]
            )
        out += [
            f"## {results['params'].get('live_n', 0):,} live tasks under churn",
            "",
            table(
                [
                    "server",
                    "live",
                    "load s",
                    "created / read / expired",
                    "server CPU s",
                    "PING probe p50 / p99 / p99.9 ms",
                    "max gap ms",
                    "probes",
                    "errors",
                ],
                body,
            ),
            "",
            f"A PING probe every ms for {results['params'].get('live_window_s', 0):.0f} s while a "
            "second connection creates and reads tasks (HSET + PEXPIRE / HGETALL on redis) and "
            "as many loaded tasks expire: the max gap is the longest the event loop stalled.",
            "",
        ]

    ls = results.get("list_scaling")
    if ls:
        body = []
        for s, r in ls.items():
            for row in r["rows"]:
                body.append(
                    [
                        s,
                        f"{row['tasks']:,}",
                        _cell(row),
                        fmt(row["rps"]),
                        f"{fmt(row['p50_ms'])}/{fmt(row['p99_ms'])}",
                    ]
                )
            body.append([s, "ratio", _r(r.get("ratio")), "", ""])
        out += [
            "## TASK.LIST scaling (a page of 50 from the middle, -P 16)",
            "",
            table(["server", "tasks of the owner", "µs/op", "req/s", "p50/p99 ms"], body),
            "",
        ]

    st = results.get("startup")
    if st:
        body = []
        for s, r in st.items():
            ip = r.get("inprocess", {})
            body.append(
                [
                    s,
                    f"{r['first_pong_median_ms']:.1f}",
                    f"{r['first_pong_min_ms']:.1f}-{r['first_pong_max_ms']:.1f}",
                    f"{ip['server_start_stop_median_ms']:.2f}" if ip else "",
                    f"{ip['thread_start_stop_median_ms']:.2f}" if ip else "",
                    f"{ip['import_ms']:.0f}" if ip else "",
                    f"{r['python_bare_exit_ms']:.0f}" if "python_bare_exit_ms" in r else "",
                ]
            )
        out += [
            "## Startup",
            "",
            table(
                [
                    "server",
                    "exec → first PONG median ms",
                    "min-max ms",
                    "Server start+stop median ms",
                    "ServerThread start+stop median ms",
                    "import taskstore ms",
                    "`python -c pass` ms",
                ],
                body,
            ),
            "",
        ]

    if results.get("notes") or results.get("errors"):
        out += ["## Notes and errors", ""]
        out += [f"- {n}" for n in results.get("notes", [])]
        out += [
            f"- error in {e['workload']} / {e['server']}: {e['error']}" for e in results["errors"]
        ]
        out.append("")
    return "\n".join(out)


# -- chart -------------------------------------------------------------------------------------


def render_chart(results: dict[str, Any], path: Path) -> bool:
    rows = _rows_by_key(results)
    if not rows:
        return False
    try:
        import matplotlib
    except ImportError:
        results.setdefault("notes", []).append(
            "matplotlib is not installed (pip install -r bench/requirements.txt): no chart"
        )
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = results["servers"]
    labels = [f"{label(w, v)}\n-P{p}" for (w, v, p) in rows]
    values = {s: [cpu(by.get(s)) for by in rows.values()] for s in servers}
    flat = [x for vs in values.values() for x in vs if x]
    if not flat:
        return False
    log = max(flat) / min(flat) > 30
    colors = {
        "taskstore-asyncio": "#1f77b4",
        "taskstore-uvloop": "#17becf",
        "redis": "#d62728",
        "fakeredis": "#7f7f7f",
    }
    width = 0.8 / len(servers)
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(labels) + 2), 5.5))
    for i, s in enumerate(servers):
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(labels))]
        ys = [v if v else math.nan for v in values[s]]
        ax.bar(xs, ys, width, label=s, color=colors.get(s))
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel("server CPU µs per operation" + (" (log scale)" if log else ""))
    ax.set_title(
        f"Server CPU per operation, redis-benchmark -c {results['params']['clients']} "
        f"({results['mode']} mode, {results['name']})"
    )
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(ncol=len(servers), loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
