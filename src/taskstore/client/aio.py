"""The asyncio client: :class:`AsyncTaskClient`."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

from redis.asyncio import ConnectionPool, Redis, RedisCluster

from taskstore.client._base import ClientBase
from taskstore.client._functions import AsyncFunctionsBackend
from taskstore.client._steps import Awaiting, Steps
from taskstore.client._version import async_hook
from taskstore.client.task import Task, TaskPage

__all__ = ["AsyncTaskClient"]


class AsyncTaskClient(ClientBase[Redis, ConnectionPool], Awaiting):
    """The asyncio twin of :class:`TaskClient`, on top of ``redis.asyncio.Redis``: the same
    constructor, ``from_url``, methods (coroutines here), return types and exceptions."""

    _redis_type = Redis
    _cluster_type = RedisCluster
    _backend_type = AsyncFunctionsBackend
    _hook = staticmethod(async_hook)

    def _reopen(self) -> None:
        """At first use (disconnecting is a coroutine here): see :meth:`_adopt`."""
        self._recycle = True

    def _adopt(self) -> Steps[None]:
        """First use with a caller's pool: reopen the connections opened before the hook."""
        pin, self._recycle, self._pin_single = self._pin_single, False, False
        yield lambda: self._redis.connection_pool.disconnect(inuse_connections=False)
        if pin:
            yield from self._select_version()

    async def aclose(self) -> None:
        """Close the connections (not those of a ``Redis`` or a pool that was passed in)."""
        if self._owns:
            await self._redis.aclose()

    async def __aenter__(self) -> AsyncTaskClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def iter_pages(
        self, *, limit: int | None = None, owner: str | None = None
    ) -> AsyncIterator[TaskPage]:
        """Every page of TASK.LIST, following the cursors."""
        page = await self.list(limit=limit, owner=owner)
        yield page
        while page.next_cursor is not None:
            page = await self.list(cursor=page.next_cursor, limit=limit, owner=owner)
            yield page

    async def iter_tasks(
        self, *, limit: int | None = None, owner: str | None = None
    ) -> AsyncIterator[Task]:
        """Every task of the owner, newest first, ``limit`` per round trip."""
        async for page in self.iter_pages(limit=limit, owner=owner):
            for task in page.tasks:
                yield task

    async def all_tasks(self, *, owner: str | None = None) -> builtins.list[Task]:
        """Every task of the owner (all pages), newest first."""
        return [task async for task in self.iter_tasks(owner=owner)]
