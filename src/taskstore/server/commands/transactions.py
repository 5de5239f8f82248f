"""MULTI / EXEC / DISCARD / WATCH / UNWATCH.

redis-py's ``pipeline()`` wraps its commands in MULTI/EXEC by default. Commands run one
after another on the event loop, so a queued transaction never interleaves with another
client. There are no keys to watch: WATCH is accepted and never aborts an EXEC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskstore.protocol import OK
from taskstore.server.commands.spec import Arg, Command, CommandError, Handler, command

if TYPE_CHECKING:
    from taskstore.server.connection import Connection

_FAST = ("noscript", "loading", "stale", "fast", "allow_busy")


def _transaction(
    name: str,
    arity: int,
    summary: str,
    since: str,
    flags: tuple[str, ...] = _FAST,
    arguments: tuple[Arg, ...] = (),
) -> Callable[[Handler], Command]:
    return command(
        name,
        arity,
        flags=flags,
        group="transactions",
        summary=summary,
        since=since,
        arguments=arguments,
        categories=("fast" if "fast" in flags else "slow", "transaction"),
    )


@_transaction("multi", 1, "Starts a transaction.", "1.2.0")
def multi(conn: Connection, args: list[bytes]) -> Any:
    if conn.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    conn.multi = []
    conn.multi_dirty = False
    return OK


@_transaction(
    "exec",
    1,
    "Executes all commands in a transaction.",
    "1.2.0",
    ("noscript", "loading", "stale", "skip_slowlog"),
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


@_transaction("discard", 1, "Discards a transaction.", "2.0.0")
def discard(conn: Connection, args: list[bytes]) -> Any:
    if conn.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    conn.multi = None
    conn.multi_dirty = False
    return OK


@_transaction(
    "watch",
    -2,
    "Accepted for compatibility; there are no keys, so nothing is watched.",
    "2.2.0",
    _FAST,
    (Arg("key", "key", multiple=True),),
)
def watch(conn: Connection, args: list[bytes]) -> Any:
    if conn.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    return OK


@_transaction("unwatch", 1, "Accepted for compatibility.", "2.2.0")
def unwatch(conn: Connection, args: list[bytes]) -> Any:
    return OK


#: the family, in the order COMMAND lists it
COMMANDS = (multi, exec_, discard, watch, unwatch)
