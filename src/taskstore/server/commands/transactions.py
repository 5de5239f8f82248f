"""MULTI / EXEC / DISCARD / WATCH / UNWATCH.

redis-py's ``pipeline()`` wraps its commands in MULTI/EXEC by default. Commands run one
after another on the event loop, so a queued transaction never interleaves with another
client. There are no keys to watch: WATCH is accepted and never aborts an EXEC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskstore.protocol import OK
from taskstore.server.commands.spec import Arg, CommandError, command

if TYPE_CHECKING:
    from taskstore.server.connection import Connection


@command(
    "multi",
    1,
    flags=("noscript", "loading", "stale", "fast", "allow_busy"),
    group="transactions",
    summary="Starts a transaction.",
    since="1.2.0",
    categories=("fast", "transaction"),
)
def multi(conn: Connection, args: list[bytes]) -> Any:
    if conn.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    conn.multi = []
    conn.multi_dirty = False
    return OK


@command(
    "exec",
    1,
    flags=("noscript", "loading", "stale", "skip_slowlog"),
    group="transactions",
    summary="Executes all commands in a transaction.",
    since="1.2.0",
    categories=("slow", "transaction"),
)
def exec_(conn: Connection, args: list[bytes]) -> Any:
    queued = conn.multi
    if queued is None:
        raise CommandError("ERR EXEC without MULTI")
    dirty = conn.multi_dirty
    conn.multi = None
    conn.multi_dirty = False
    if dirty:
        raise CommandError("EXECABORT Transaction discarded because of previous errors.")
    conn.in_exec = True  # blocking commands answer at once inside a transaction, as in Redis
    try:
        return [conn.call(cmd, cmd_args) for cmd, cmd_args in queued]
    finally:
        conn.in_exec = False


@command(
    "discard",
    1,
    flags=("noscript", "loading", "stale", "fast", "allow_busy"),
    group="transactions",
    summary="Discards a transaction.",
    since="2.0.0",
    categories=("fast", "transaction"),
)
def discard(conn: Connection, args: list[bytes]) -> Any:
    if conn.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    conn.multi = None
    conn.multi_dirty = False
    return OK


@command(
    "watch",
    -2,
    flags=("noscript", "loading", "stale", "fast", "allow_busy"),
    group="transactions",
    summary="Accepted for compatibility; there are no keys, so nothing is watched.",
    since="2.2.0",
    arguments=(Arg("key", "key", multiple=True),),
    categories=("fast", "transaction"),
)
def watch(conn: Connection, args: list[bytes]) -> Any:
    if conn.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    return OK


@command(
    "unwatch",
    1,
    flags=("noscript", "loading", "stale", "fast", "allow_busy"),
    group="transactions",
    summary="Accepted for compatibility.",
    since="2.2.0",
    categories=("fast", "transaction"),
)
def unwatch(conn: Connection, args: list[bytes]) -> Any:
    return OK


#: the family, in the order COMMAND lists it
COMMANDS = (multi, exec_, discard, watch, unwatch)
