"""Every connection of a client's pool selects the client's MCP task generation.

taskstore renders tasks in one generation per connection (``TASK.VERSION``; docs/commands.md), and
the server's default (setting ``mcp_version``) is not the client's to assume. So the clients
put a hook into redis-py's connection settings (``redis_connect_func``): after redis-py's own
handshake (``on_connect``: HELLO, AUTH, SELECT, CLIENT SETNAME) it sends ``TASK.VERSION <v>``
on each new socket, reconnects included. If that fails (an unsupported version), redis-py
closes the socket and the command that was about to run raises; a connection never serves a
command in another generation than its client's.

A server older than TASK.VERSION speaks the first generation only: for ``2025-11-25`` its
``unknown command`` is accepted, for ``2026-07-28`` it is the error.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any, Final

from redis.exceptions import ResponseError

from taskstore.client.task import MCP_2025_11_25, MCP_VERSIONS, McpVersion

__all__ = [
    "DEFAULT_VERSION",
    "accept_version_error",
    "async_hook",
    "check_version",
    "hook_version",
    "install_hook",
    "sync_hook",
]

#: What the clients select unless told otherwise: the generation the :class:`Task` fields,
#: the MCP SDK 1.x adapter and the clients' users before 2026-07-28 were written for.
DEFAULT_VERSION: Final[McpVersion] = MCP_2025_11_25

_MARK: Final = "_taskstore_mcp_version"

ConnectFunc = Callable[[Any], Any]


def check_version(version: object) -> McpVersion | None:
    """``version`` if it is a generation this client can parse (or None), else ValueError."""
    if version is None or version in MCP_VERSIONS:
        return version
    raise ValueError(
        f"unsupported MCP version {version!r} (supported: {', '.join(MCP_VERSIONS)}, or None "
        "for the server's default)"
    )


def hook_version(func: object) -> str | None:
    """The generation a connect hook of ours selects, None for any other callable."""
    return getattr(func, _MARK, None) if func is not None else None


def accept_version_error(version: str, exc: ResponseError) -> bool:
    """Whether TASK.VERSION's error reply still leaves the connection in ``version``: a
    server without the command (``unknown command``) renders the first generation."""
    text = str(exc)
    if text.startswith("ERR "):
        text = text[4:]
    return version == MCP_2025_11_25 and text.startswith("unknown command")


def sync_hook(version: McpVersion, previous: ConnectFunc | None) -> ConnectFunc:
    """A ``redis_connect_func`` for redis-py's synchronous connections: ``previous`` (a
    connect function the caller had, else ``on_connect``), then ``TASK.VERSION``."""

    def select_mcp_version(conn: Any) -> None:
        if previous is None:
            conn.on_connect()
        else:
            previous(conn)
        conn.send_command("TASK.VERSION", version, check_health=False)
        try:
            conn.read_response()
        except ResponseError as exc:
            if not accept_version_error(version, exc):
                raise

    setattr(select_mcp_version, _MARK, version)
    return select_mcp_version


def async_hook(version: McpVersion, previous: ConnectFunc | None) -> ConnectFunc:
    """The asyncio twin of :func:`sync_hook` (a coroutine function: redis.asyncio awaits
    ``redis_connect_func`` only when it is one)."""

    async def select_mcp_version(conn: Any) -> None:
        if previous is None:
            await conn.on_connect()
        else:
            done = previous(conn)
            if inspect.isawaitable(done):
                await done
        await conn.send_command("TASK.VERSION", version, check_health=False)
        try:
            await conn.read_response()
        except ResponseError as exc:
            if not accept_version_error(version, exc):
                raise

    setattr(select_mcp_version, _MARK, version)
    return select_mcp_version


def _known_connections(redis: Any, threaded: bool) -> list[Any]:
    """The connection objects a redis-py client's pool has made so far (best effort: the
    pools keep them in private attributes), and the client's own single connection."""
    pool = redis.connection_pool
    found: dict[int, Any] = {}
    lock = getattr(pool, "_lock", None) if threaded else None
    # the synchronous pools guard their lists with a threading lock; asyncio's need none
    with lock if lock is not None else contextlib.nullcontext():
        for name in ("_available_connections", "_in_use_connections", "_connections"):
            try:
                conns = list(getattr(pool, name, None) or ())
            except (TypeError, RuntimeError):
                continue
            for conn in conns:
                if conn is not None and hasattr(conn, "redis_connect_func"):
                    found[id(conn)] = conn
    single = getattr(redis, "connection", None)
    if single is not None:
        found[id(single)] = single
    return list(found.values())


def install_hook(
    redis: Any,
    version: McpVersion,
    make_hook: Callable[[McpVersion, ConnectFunc | None], ConnectFunc],
    *,
    threaded: bool,
) -> list[Any]:
    """Make a caller's redis-py client (and its pool) select ``version`` on every connect.

    The pool's connection settings get the hook (every connection it opens from now on), and
    so do the connection objects it made before (when they reconnect). Connections that are
    open already are the caller's to recycle (the clients disconnect the idle ones and pin a
    single connection with TASK.VERSION). A pool that selects another generation already
    (another client's hook) is a ValueError: one pool, one generation.

    Returns the connection objects that had no hook of ours (they may be open in the server's
    default generation).
    """
    kwargs = redis.connection_pool.connection_kwargs
    current = kwargs.get("redis_connect_func")
    have = hook_version(current)
    if have is not None and have != version:
        raise ValueError(
            f"this connection pool selects MCP version {have} already (another client's "
            f"version=); it cannot serve {version} too"
        )
    hook = current if have is not None else make_hook(version, current)
    kwargs["redis_connect_func"] = hook
    rehooked = []
    for conn in _known_connections(redis, threaded):
        own = conn.redis_connect_func
        if hook_version(own) is None:
            conn.redis_connect_func = hook if own is current else make_hook(version, own)
            rehooked.append(conn)
    return rehooked
