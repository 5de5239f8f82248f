"""Server commands: INFO, COMMAND, CONFIG, DBSIZE, FLUSHALL/FLUSHDB, BGREWRITEAOF, SHUTDOWN."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from taskstore import __version__
from taskstore.protocol import OK, Raw, SimpleString, Verbatim
from taskstore.server.commands.session import REDIS_VERSION
from taskstore.server.commands.spec import (
    Arg,
    Command,
    CommandError,
    command,
    container,
    syntax_error,
)
from taskstore.server.config import SETTINGS, ConfigError
from taskstore.server.glob import glob_match

if TYPE_CHECKING:
    from taskstore.server.app import Server
    from taskstore.server.connection import Connection

NO_REPLY = Raw(b"")

# -- INFO ---------------------------------------------------------------------

_DEFAULT_SECTIONS = (
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "tasks",
    "keyspace",
)


def _human(n: int) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n}{unit}" if unit == "B" else f"{n:.2f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def rss_bytes() -> int:
    """The process's resident memory (INFO used_memory_rss; the console's chart)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def info_sections(conn: Connection) -> dict[str, list[tuple[str, Any]]]:
    import platform  # INFO only: 1.0 ms of every start-up otherwise
    import resource

    server = conn.server
    cfg = server.config
    now = time.time()
    uptime = int(server.uptime)
    stats = server.stats
    rss = rss_bytes()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    if conn.is_admin:
        store_stats = server.store.stats()
    else:
        # other owners' activity is not this user's business: only its own count
        try:
            store_stats = {"tasks": server.store.count(conn.task_owner())}
        except CommandError:
            store_stats = {"tasks": 0}
    tasks = store_stats.get("tasks", 0)
    loop_name = type(__import__("asyncio").get_event_loop()).__module__.split(".")[0]
    return {
        "server": [
            ("redis_version", REDIS_VERSION),
            ("redis_mode", "standalone"),
            ("taskstore_version", __version__),
            ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
            ("multiplexing_api", loop_name),
            ("python_version", platform.python_version()),
            ("process_id", os.getpid()),
            ("run_id", server.run_id),
            ("tcp_port", server.port),
            ("server_time_usec", int(now * 1_000_000)),
            ("uptime_in_seconds", uptime),
            ("uptime_in_days", uptime // 86400),
            ("hz", cfg.hz),
            ("executable", sys.argv[0] if sys.argv else ""),
        ],
        "clients": [
            ("connected_clients", len(server.clients)),
            ("maxclients", cfg.maxclients),
            ("blocked_clients", server.waiters.count),
            ("pubsub_clients", server.hub.clients),
        ],
        "memory": [
            ("used_memory", rss),
            ("used_memory_human", _human(rss)),
            ("used_memory_rss", rss),
            ("used_memory_rss_human", _human(rss)),
            ("used_memory_peak", ru.ru_maxrss * 1024),
            ("used_memory_peak_human", _human(ru.ru_maxrss * 1024)),
            ("maxmemory", 0),
            ("maxmemory_human", "0B"),
            ("maxmemory_policy", "noeviction"),
            ("mem_allocator", "pymalloc"),
        ],
        "persistence": _persistence(server),
        "stats": [
            ("total_connections_received", stats["total_connections_received"]),
            ("total_commands_processed", server.commands_processed),
            ("instantaneous_ops_per_sec", server.instantaneous_ops_per_sec),
            ("rejected_connections", stats["rejected_connections"]),
            ("expired_keys", store_stats.get("evicted_total", 0)),
            ("evicted_keys", 0),
            ("keyspace_hits", 0),
            ("keyspace_misses", 0),
            ("pubsub_channels", len(server.hub.channels)),
            ("pubsub_patterns", len(server.hub.patterns)),
            ("total_error_replies", stats["total_error_replies"]),
            ("total_protocol_errors", stats["protocol_errors"]),
            ("auth_failures", stats["auth_failures"]),
        ],
        "replication": [
            ("role", "master"),
            ("connected_slaves", 0),
            ("master_failover_state", "no-failover"),
            ("master_replid", server.run_id),
            ("master_replid2", "0" * 40),
            ("master_repl_offset", 0),
            ("second_repl_offset", -1),
            ("repl_backlog_active", 0),
        ],
        "cpu": [
            ("used_cpu_sys", f"{ru.ru_stime:.6f}"),
            ("used_cpu_user", f"{ru.ru_utime:.6f}"),
        ],
        "tasks": [(f"tasks_{k}" if k != "tasks" else k, v) for k, v in store_stats.items()],
        "keyspace": [("db0", f"keys={tasks},expires={tasks},avg_ttl=0")] if tasks else [],
    }


def _persistence(server: Server) -> list[tuple[str, Any]]:
    """Redis's field names; there are no RDB snapshots, only the append-only file."""
    fields: list[tuple[str, Any]] = [
        ("loading", 0),
        ("async_loading", 0),
        ("rdb_changes_since_last_save", 0),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", int(server.started_at)),
        ("rdb_last_bgsave_status", "ok"),
        ("aof_enabled", int(server.aof is not None)),
    ]
    aof = server.aof
    if aof is None:
        fields += [
            ("aof_rewrite_in_progress", 0),
            ("aof_rewrite_scheduled", 0),
            ("aof_last_rewrite_time_sec", -1),
            ("aof_current_rewrite_time_sec", -1),
            ("aof_last_bgrewrite_status", "ok"),
            ("aof_rewrites", 0),
            ("aof_last_write_status", "ok"),
        ]
    else:
        fields += aof.info()
    report = server.load_report
    if report is not None:
        fields += [
            ("loading_loaded_tasks", report.tasks),
            ("loading_time_sec", f"{report.seconds:.3f}"),
        ]
    return fields


@command(
    "bgrewriteaof",
    1,
    flags=("admin", "noscript", "no_async_loading"),
    group="server",
    summary="Rewrites the append-only file to the live tasks, in the background.",
    admin=True,
    categories=("admin", "slow", "dangerous"),
)
def bgrewriteaof(conn: Connection, args: list[bytes]) -> Any:
    server = conn.server
    aof = server.aof
    if aof is None:
        raise CommandError("ERR the append only file is off (appendonly no)")
    if not aof.start_rewrite(server.store):
        raise CommandError("ERR Background append only file rewriting already in progress")
    return SimpleString("Background append only file rewriting started")


def render_info(conn: Connection, names: list[str]) -> str:
    sections = info_sections(conn)
    wanted: list[str] = []
    if not names or names == ["default"]:
        wanted = list(_DEFAULT_SECTIONS)
    else:
        for name in names:
            if name in ("all", "everything", "default"):
                wanted.extend(_DEFAULT_SECTIONS)
            elif name in sections:
                wanted.append(name)
    out: list[str] = []
    seen: set[str] = set()
    for name in wanted:
        if name in seen:
            continue
        seen.add(name)
        if out:
            out.append("")
        out.append("# " + name.capitalize())
        out.extend(f"{k}:{v}" for k, v in sections[name])
    return "\r\n".join(out) + ("\r\n" if out else "")


@command(
    "info",
    -1,
    flags=("loading", "stale", "sentinel"),
    group="server",
    summary="Returns information and statistics about the server.",
    arguments=(Arg("section", optional=True, multiple=True),),
    categories=("slow", "dangerous"),
)
def info(conn: Connection, args: list[bytes]) -> Any:
    names = [a.decode("utf-8", "replace").lower() for a in args[1:]]
    return Verbatim(render_info(conn, names))


# -- COMMAND ------------------------------------------------------------------


def _table() -> dict[bytes, Command]:
    # the table is made of every family, this one included: looked up when a COMMAND runs
    from taskstore.server.commands import TABLE

    return TABLE


def _all_commands() -> list[Command]:
    return list(_table().values())


def _lookup(name: bytes) -> Command | None:
    table = _table()
    text = name.decode("utf-8", "replace").lower()
    if "|" in text:
        parent = table.get(text.split("|", 1)[0].encode())
        return parent.subcommands.get(text) if parent else None
    return table.get(text.encode())


def _command_all(conn: Connection, args: list[bytes]) -> Any:
    return [c.info() for c in _all_commands()]


@command("count", 2, summary="Returns a count of commands.")
def command_count(conn: Connection, args: list[bytes]) -> Any:
    return len(_table())


@command(
    "info",
    -2,
    summary="Returns information about one, multiple or all commands.",
    arguments=(Arg("command-name", optional=True, multiple=True),),
)
def command_info(conn: Connection, args: list[bytes]) -> Any:
    if len(args) == 2:
        return [c.info() for c in _all_commands()]
    return [c.info() if (c := _lookup(a)) else None for a in args[2:]]


@command(
    "docs",
    -2,
    summary="Returns documentary information about one, multiple or all commands.",
    arguments=(Arg("command-name", optional=True, multiple=True),),
)
def command_docs(conn: Connection, args: list[bytes]) -> Any:
    cmds = _all_commands() if len(args) == 2 else [c for a in args[2:] if (c := _lookup(a))]
    return {c.name: c.docs() for c in cmds}


@command(
    "list",
    -2,
    summary="Returns a list of command names.",
    arguments=(
        Arg(
            "filterby",
            "oneof",
            token="FILTERBY",
            optional=True,
            arguments=(
                Arg("module-name", token="MODULE"),
                Arg("category", token="ACLCAT"),
                Arg("pattern", "pattern", token="PATTERN"),
            ),
        ),
    ),
)
def command_list(conn: Connection, args: list[bytes]) -> Any:
    names = [c.name for c in _all_commands()]
    if len(args) == 2:
        return names
    if len(args) != 5 or args[2].lower() != b"filterby":
        raise syntax_error()
    kind, value = args[3].lower(), args[4].decode("utf-8", "replace")
    if kind == b"pattern":
        return [n for n in names if glob_match(value.encode(), n.encode(), nocase=True)]
    if kind == b"aclcat":
        return [c.name for c in _all_commands() if value.lower() in c.categories]
    if kind == b"module":
        return []
    raise syntax_error()


@command(
    "getkeys",
    -3,
    summary="Extracts the key names from an arbitrary command.",
)
def command_getkeys(conn: Connection, args: list[bytes]) -> Any:
    cmd = _lookup(args[2])
    if cmd is None:
        raise CommandError("ERR Invalid command specified")
    raise CommandError("ERR The command has no key arguments")


command_cmd = container(
    "command",
    (command_count, command_info, command_docs, command_list, command_getkeys),
    group="server",
    summary="Returns detailed information about all commands.",
    arity=-1,
    bare=_command_all,
    help=[
        "(no subcommand)",
        "    Return details about all commands.",
        "COUNT",
        "    Return the total number of commands.",
        "GETKEYS <full-command>",
        "    Return the keys of a command (TASK commands have none).",
        "DOCS [<command-name> ...]",
        "    Return documentation details about commands.",
        "INFO [<command-name> ...]",
        "    Return details about the given commands (all when none is given).",
        "LIST [FILTERBY (MODULE <name>|ACLCAT <cat>|PATTERN <pattern>)]",
        "    Return the names of the commands.",
    ],
)


# -- CONFIG -------------------------------------------------------------------


# What Redis clients ask about on connect; fixed here because there is no such setting.
_FIXED_CONFIG = {
    "databases": "1",
    "save": "",
    "appendonly": "no",
    "replica-read-only": "yes",
    "slave-read-only": "yes",
}


@command(
    "get",
    -3,
    summary="Returns the effective values of configuration parameters.",
    arguments=(Arg("parameter", multiple=True),),
)
def config_get(conn: Connection, args: list[bytes]) -> Any:
    cfg = conn.server.config
    result: dict[str, str] = {}
    for raw in args[2:]:
        pattern = raw.decode("utf-8", "replace").lower()
        under = pattern.replace("-", "_")
        for name in SETTINGS:
            if name not in result and glob_match(under.encode(), name.encode(), nocase=True):
                result[name] = cfg.render(name)
                if name == "requirepass" and result[name] and not conn.is_admin:
                    result[name] = "********"  # only admins may read the password
        for name, value in _FIXED_CONFIG.items():
            if name not in result and glob_match(pattern.encode(), name.encode(), nocase=True):
                result[name] = value
    return result


@command(
    "set",
    -4,
    summary="Sets configuration parameters in-flight.",
    arguments=(
        Arg(
            "data",
            "block",
            multiple=True,
            arguments=(Arg("parameter"), Arg("value")),
        ),
    ),
    admin=True,
)
def config_set(conn: Connection, args: list[bytes]) -> Any:
    if len(args) % 2:
        raise CommandError(
            "ERR Unknown option or number of arguments for CONFIG SET - '%s'"
            % args[-1].decode("utf-8", "replace")
        )
    server = conn.server
    cfg = server.config
    pairs = [
        (args[i].decode("utf-8", "replace").lower().replace("-", "_"), args[i + 1])
        for i in range(2, len(args), 2)
    ]
    parsed: dict[str, Any] = {}
    for name, raw in pairs:
        setting = SETTINGS.get(name)
        if setting is None:
            raise CommandError(
                f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )
        if not setting.runtime:
            raise CommandError(
                f"ERR CONFIG SET failed (possibly related to argument '{name}') - "
                "can't set immutable config"
            )
        try:
            parsed[name] = setting.parse(raw.decode("utf-8", "surrogateescape"))
        except ConfigError as e:
            raise CommandError(
                f"ERR CONFIG SET failed (possibly related to argument '{name}') - {e}"
            ) from None
    previous = dict(cfg.values)
    cfg.values.update(parsed)
    try:
        cfg.validate()  # settings that depend on each other (default_ttl_ms <= max_ttl_ms...)
    except ConfigError as e:
        cfg.values.clear()
        cfg.values.update(previous)
        names = "', '".join(parsed)
        raise CommandError(
            f"ERR CONFIG SET failed (possibly related to argument '{names}') - {e}"
        ) from None
    server.apply_settings(parsed)
    return OK


@command("resetstat", 2, summary="Resets the server's statistics.", admin=True)
def config_resetstat(conn: Connection, args: list[bytes]) -> Any:
    server = conn.server
    server.stats.clear()
    server.commands_processed = 0
    server.reset_ops_rate()
    return OK


@command(
    "rewrite",
    2,
    summary="Persists the effective configuration to file.",
    admin=True,
)
def config_rewrite(conn: Connection, args: list[bytes]) -> Any:
    raise CommandError(
        "ERR CONFIG REWRITE is not supported: settings come from the config file and flags"
    )


config_cmd = container(
    "config",
    (config_get, config_set, config_resetstat, config_rewrite),
    group="server",
    summary="A container for server configuration commands.",
    help=[
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Not supported: settings come from the config file and flags.",
    ],
)


# -- keyspace-wide ------------------------------------------------------------


@command(
    "dbsize",
    1,
    flags=("readonly", "fast"),
    group="server",
    summary="Returns the number of tasks (the caller's owner; every owner for admins).",
    categories=("keyspace", "read", "fast"),
)
def dbsize(conn: Connection, args: list[bytes]) -> Any:
    owner = conn.task_owner()
    return conn.server.store.count(None if conn.is_admin else owner)


def _flush(conn: Connection, args: list[bytes]) -> Any:
    if len(args) > 2 or (len(args) == 2 and args[1].lower() not in (b"async", b"sync")):
        raise syntax_error()
    conn.server.store.flush()
    conn.server.waiters.wake_all_gone()
    return OK


_FLUSH_ARGS = (
    Arg(
        "flush-type",
        "oneof",
        optional=True,
        arguments=(
            Arg("async", "pure-token", token="ASYNC"),
            Arg("sync", "pure-token", token="SYNC"),
        ),
    ),
)


def _flush_command(name: str, summary: str) -> Command:
    return command(
        name,
        -1,
        flags=("write",),
        group="server",
        summary=summary,
        arguments=_FLUSH_ARGS,
        admin=True,
        categories=("keyspace", "write", "slow", "dangerous"),
    )(_flush)


flushall = _flush_command("flushall", "Removes every task of every owner.")
flushdb = _flush_command("flushdb", "Removes every task of every owner (there is one database).")


@command(
    "shutdown",
    -1,
    flags=("admin", "noscript", "loading", "stale", "no_multi", "sentinel", "allow_busy"),
    no_multi=True,
    group="server",
    summary="Stops the server (clients' pending replies are sent first).",
    arguments=(
        Arg(
            "save-selector",
            "oneof",
            optional=True,
            arguments=(
                Arg("nosave", "pure-token", token="NOSAVE"),
                Arg("save", "pure-token", token="SAVE"),
            ),
        ),
        Arg("now", "pure-token", token="NOW", optional=True),
        Arg("force", "pure-token", token="FORCE", optional=True),
        Arg("abort", "pure-token", token="ABORT", optional=True),
    ),
    admin=True,
    categories=("admin", "slow", "dangerous"),
)
def shutdown(conn: Connection, args: list[bytes]) -> Any:
    for a in args[1:]:
        if a.lower() not in (b"nosave", b"save", b"now", b"force", b"abort"):
            raise syntax_error()
    if any(a.lower() == b"abort" for a in args[1:]):
        raise CommandError("ERR No shutdown in progress.")
    conn.server.request_shutdown()
    conn.closing = True
    return NO_REPLY  # like Redis: no reply, the connection just closes


#: the family, in the order COMMAND lists it
COMMANDS = (info, command_cmd, config_cmd, dbsize, flushall, flushdb, bgrewriteaof, shutdown)
