"""The synchronous client: :class:`TaskClient`."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterator

from redis import ConnectionPool, Redis, RedisCluster

from taskstore.client._base import ClientBase
from taskstore.client._functions import SyncFunctionsBackend
from taskstore.client._steps import Blocking, Steps
from taskstore.client._version import sync_hook
from taskstore.client.task import Task, TaskPage

__all__ = ["TaskClient"]


class TaskClient(ClientBase[Redis, ConnectionPool], Blocking):
    """A typed client for the TASK commands, on top of a redis-py ``Redis``.

    Connect with a URL (``TaskClient("redis://alice:pw@127.0.0.1:6379")``; no argument at all
    means ``$TASKSTORE_URL``, else ``redis://127.0.0.1:6379``), a redis-py ``ConnectionPool``
    (``connection_pool=``) or an existing ``Redis`` (``redis=``); a pool or a ``Redis`` passed
    in belongs to the caller, who closes it.
    Extra keyword arguments go to ``Redis.from_url`` (``protocol=3``, ``socket_timeout=…``).
    Replies are parsed the same whatever protocol redis-py negotiates (RESP2 or RESP3) and
    whether or not it decodes responses.

    ``owner=`` makes every command act for that owner (``OWNER <id>``: the connection's user
    needs the ``impersonate`` permission); each method also takes ``owner=`` for one call.

    ``version=`` is the MCP task generation every connection of the client selects when it
    connects (``TASK.VERSION``, reconnects included): ``"2025-11-25"`` (the default: the
    first generation, what :class:`Task` read before 2026-07-28 and the MCP SDK 1.x adapter
    needs) or ``"2026-07-28"`` (tasks come back as DetailedTasks: ``input_requests``,
    ``result``, ``error``); ``None`` sends nothing and leaves it to the server's
    ``mcp_version``. :class:`Task` parses either shape. A pool or a ``Redis`` passed in gets
    the same hook (see docs/mcp.md: its idle connections are reopened, connections in use
    elsewhere at that moment keep their generation until they reconnect).

    Error replies raise the :mod:`taskstore.client.errors` classes, each with ``mcp_code``.
    Durations are milliseconds, as on the wire.
    """

    _redis_type = Redis
    _cluster_type = RedisCluster
    _backend_type = SyncFunctionsBackend
    _hook = staticmethod(sync_hook)

    def _reopen(self) -> None:
        """Disconnect the idle connections now (they reconnect with the hook); a single
        connection gets TASK.VERSION at first use, once, whichever thread comes first."""
        self._redis.connection_pool.disconnect(inuse_connections=False)
        self._pin_lock = threading.Lock()

    def _adopt(self) -> Steps[None]:
        with self._pin_lock:
            if self._pin_single:
                yield from self._select_version()
                self._pin_single = False

    def close(self) -> None:
        """Close the connections (not those of a ``Redis`` or a pool that was passed in)."""
        if self._owns:
            self._redis.close()

    def __enter__(self) -> TaskClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iter_pages(
        self, *, limit: int | None = None, owner: str | None = None
    ) -> Iterator[TaskPage]:
        """Every page of TASK.LIST, following the cursors."""
        page = self.list(limit=limit, owner=owner)
        yield page
        while page.next_cursor is not None:
            page = self.list(cursor=page.next_cursor, limit=limit, owner=owner)
            yield page

    def iter_tasks(self, *, limit: int | None = None, owner: str | None = None) -> Iterator[Task]:
        """Every task of the owner, newest first, ``limit`` per round trip."""
        for page in self.iter_pages(limit=limit, owner=owner):
            yield from page.tasks

    def all_tasks(self, *, owner: str | None = None) -> builtins.list[Task]:
        """Every task of the owner (all pages), newest first."""
        return builtins.list(self.iter_tasks(owner=owner))
