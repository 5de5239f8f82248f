"""The asyncio client: :class:`AsyncTaskClient`."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar, cast

from redis import RedisError, ResponseError
from redis.asyncio import ConnectionPool, Redis, RedisCluster

from taskstore.client import _commands as cmd
from taskstore.client._commands import TTL
from taskstore.client._functions import (
    AsyncFunctionsBackend,
    OwnerTag,
    check_library,
    config_arg,
    config_dict,
    generation,
    is_cluster_info,
    is_taskstore,
    missing_library,
)
from taskstore.client._version import (
    DEFAULT_VERSION,
    accept_version_error,
    async_hook,
    check_version,
    install_hook,
)
from taskstore.client.errors import translate
from taskstore.client.task import McpVersion, Task, TaskInspection, TaskPage, TaskStatus
from taskstore.store.config import StoreConfig

__all__ = ["AsyncTaskClient"]

T = TypeVar("T")


class AsyncTaskClient:
    """The asyncio twin of :class:`TaskClient`, on top of ``redis.asyncio.Redis``.

    Connect with a URL (``TaskClient("redis://alice:pw@127.0.0.1:6379")``; no argument at all
    means ``$TASKSTORE_URL``, else ``redis://127.0.0.1:6379``), a redis-py ``ConnectionPool``
    (``connection_pool=``) or an existing ``Redis`` (``redis=``); a pool or a ``Redis`` passed
    in belongs to the caller, who closes it.
    Extra keyword arguments go to ``Redis.from_url`` (``protocol=3``, ``socket_timeout=…``).
    Replies are parsed the same whatever protocol redis-py negotiates (RESP2 or RESP3) and
    whether or not it decodes responses.

    ``owner=`` makes every command act for that owner (``OWNER <id>``: the connection's user
    needs the ``impersonate`` permission); each method also takes ``owner=`` for one call.

    ``version=`` is the MCP task generation every connection selects when it connects
    (``TASK.VERSION``, reconnects included): ``"2025-11-25"`` (the default), ``"2026-07-28"``
    or ``None`` (the server's ``mcp_version``), as for :class:`TaskClient`.

    Error replies raise the :mod:`taskstore.client.errors` classes, each with ``mcp_code``.
    Durations are milliseconds, as on the wire.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        connection_pool: ConnectionPool | None = None,
        redis: Redis | None = None,
        owner: str | None = None,
        version: McpVersion | None = DEFAULT_VERSION,
        **redis_options: Any,
    ) -> None:
        given = sum(x is not None for x in (url, connection_pool, redis))
        if given > 1:
            raise TypeError("pass at most one of url, connection_pool and redis")
        self._version = check_version(version)
        self._recycle = self._pin_single = False
        if redis is not None:
            self._redis, self._owns = redis, False
        elif connection_pool is not None:
            self._redis, self._owns = Redis(connection_pool=connection_pool), True
        else:
            if self._version is not None:
                previous = redis_options.get("redis_connect_func")
                redis_options["redis_connect_func"] = async_hook(self._version, previous)
            from_url = cast(Callable[..., Redis], Redis.from_url)
            self._redis, self._owns = from_url(url or cmd.default_url(), **redis_options), True
        if self._version is not None and (redis is not None or connection_pool is not None):
            # the caller's pool: its settings get the hook; the connections it opened before
            # are reopened at first use (idle ones; a single connection by TASK.VERSION)
            stale = install_hook(self._redis, self._version, async_hook, threaded=False)
            if stale:
                self._recycle = True
                single = self._redis.connection
                self._pin_single = single is not None and any(c is single for c in stale)
        self._execute = cast(Callable[..., Awaitable[Any]], self._redis.execute_command)
        self._functions: AsyncFunctionsBackend | None = None
        self.owner = owner

    @classmethod
    async def from_url(
        cls,
        url: str | None = None,
        *,
        owner: str | None = None,
        version: McpVersion | None = DEFAULT_VERSION,
        config: StoreConfig | None = None,
        **redis_options: Any,
    ) -> AsyncTaskClient:
        """A client for taskstore, or for Redis / Valkey with the taskstore Functions library
        (standalone or cluster), told apart on connect; the asyncio twin of
        :meth:`TaskClient.from_url` (same arguments, behaviour and errors)."""
        url = url or cmd.default_url()
        check_version(version)
        from_url = cast(Callable[..., Redis], Redis.from_url)
        probe = from_url(url, **redis_options)
        server: Redis | RedisCluster = probe
        try:
            info = await probe.info("server")
            if is_taskstore(info):
                await probe.aclose()
                return cls(url, owner=owner, version=version, **redis_options)
            if is_cluster_info(info):
                await probe.aclose()
                server = RedisCluster.from_url(url, **redis_options)
            try:
                if isinstance(server, RedisCluster):  # every primary must have it
                    replies = await server.execute_command(
                        "FCALL", "ts_version", 0, target_nodes=RedisCluster.PRIMARIES
                    )
                    for reply in cast(dict[Any, Any], replies).values():
                        check_library(reply, url)
                else:
                    check_library(await server.fcall("ts_version", 0), url)
            except ResponseError as e:
                missing = missing_library(e, url)
                if missing is None:
                    raise
                raise missing from None
        except BaseException as e:
            await probe.aclose()
            if server is not probe:
                await server.aclose()
            err = translate(e) if isinstance(e, RedisError) else None
            if err is None:
                raise
            raise err from None
        client = cls(redis=cast(Redis, server), owner=owner, version=None)
        client._owns = True
        client._version = version
        backend = AsyncFunctionsBackend(server, generation(version), config_arg(config), owner)
        client._functions = backend
        client._execute = backend.execute
        return client

    @property
    def redis(self) -> Redis:
        """The underlying redis-py client (a ``RedisCluster`` on a Redis Cluster)."""
        return self._redis

    @property
    def backend(self) -> Literal["taskstore", "functions"]:
        """``"functions"`` when this client speaks to Redis/Valkey's taskstore library."""
        return "taskstore" if self._functions is None else "functions"

    @property
    def mcp_version(self) -> McpVersion | None:
        """The MCP task generation the client's connections select (None: the server's)."""
        return self._version

    async def _adopt(self) -> None:
        """First use with a caller's pool: reopen the connections opened before the hook."""
        pin, self._recycle, self._pin_single = self._pin_single, False, False
        await self._redis.connection_pool.disconnect(inuse_connections=False)
        if pin:
            assert self._version is not None
            try:
                await self._execute(*cmd.version_args(self._version))
            except ResponseError as e:
                if not accept_version_error(self._version, e):
                    raise

    async def aclose(self) -> None:
        """Close the connections (not those of a ``Redis`` or a pool that was passed in)."""
        if self._owns:
            await self._redis.aclose()

    async def __aenter__(self) -> AsyncTaskClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _owner(self, owner: str | None) -> str | None:
        chosen = self.owner if owner is None else owner
        if self._functions is not None and chosen is not None:
            return OwnerTag(chosen)  # the key prefix's owner, not an OWNER option
        return chosen

    async def _call(self, args: cmd.Args, parse: Callable[[Any], T]) -> T:
        try:
            if self._recycle:
                await self._adopt()
            reply = await self._execute(*args)
        except RedisError as e:
            err = translate(e)
            if err is None:
                raise
            raise err from None
        return parse(reply)

    # -- commands ---------------------------------------------------------------------------

    async def create(
        self,
        method: str = "tools/call",
        *,
        ttl: TTL = None,
        poll_interval: int | None = None,
        task_id: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """TASK.CREATE: a new ``working`` task for request ``method``.

        ``ttl`` in ms (server default when None; ``"none"``/:data:`UNLIMITED` for unlimited,
        only with ``max_ttl_ms 0``), ``poll_interval`` in ms, ``task_id`` to choose the id.
        """
        args = cmd.create_args(method, ttl, poll_interval, task_id, self._owner(owner))
        return await self._call(args, cmd.parse_task)

    async def get(self, task_id: str, *, owner: str | None = None) -> Task:
        """TASK.GET (expired tasks too, until evicted)."""
        return await self._call(cmd.get_args(task_id, self._owner(owner)), cmd.parse_task)

    async def update(
        self,
        task_id: str,
        status: TaskStatus | None = None,
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """TASK.UPDATE: a new status (its message becomes ``message``, or none), or only a new
        message (terminal tasks too: a message change is not a transition)."""
        args = cmd.update_args(task_id, status, message, self._owner(owner))
        return await self._call(args, cmd.parse_task)

    async def set_variables(
        self, task_id: str, variables: Mapping[str, Any], *, owner: str | None = None
    ) -> Task:
        """TASK.SETVARS: merge ``variables`` into the task's (a ``None`` value deletes a key)."""
        args = cmd.set_variables_args(task_id, variables, self._owner(owner))
        return await self._call(args, cmd.parse_task)

    async def set_result(self, task_id: str, result: Any, *, owner: str | None = None) -> None:
        """TASK.SETRESULT: store ``result`` (any JSON value); the status does not change."""
        await self._call(cmd.set_result_args(task_id, result, self._owner(owner)), cmd.parse_ok)

    async def result(
        self,
        task_id: str,
        *,
        block: int | None = None,
        any: bool = False,
        default: Any = None,
        owner: str | None = None,
    ) -> Any:
        """TASK.RESULT: the stored result, parsed from JSON (a stored ``null`` is ``None``).

        Raises :class:`NotReady` while the task is not terminal (or has no result). With
        ``block`` (ms, 0 = forever) waits for the task to become terminal first, and raises the
        built-in ``TimeoutError`` when that does not happen in time.

        ``any=True`` (``ANY``) returns a stored result whatever the status, and ``default``
        when the task has none; with ``block`` it waits until a result is stored (or the task
        is terminal, as without ``any``).
        """
        args = cmd.result_args(task_id, block, any, self._owner(owner))
        reply = await self._call(args, lambda r: r)
        if reply is None:
            if block is None:
                return default  # ANY: no result stored
            raise TimeoutError(f"task {task_id} did not finish within {block} ms")
        return cmd.parse_json(reply)

    async def complete(
        self,
        task_id: str,
        status: Literal["completed", "failed"],
        result: Any,
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """TASK.COMPLETE: the terminal status and the result together, or neither."""
        args = cmd.complete_args(task_id, status, result, message, self._owner(owner))
        return await self._call(args, cmd.parse_task)

    async def cancel(
        self, task_id: str, *, message: str | None = None, owner: str | None = None
    ) -> Task:
        """TASK.CANCEL: ``cancelled`` (terminal tasks: :class:`InvalidTransition`)."""
        return await self._call(
            cmd.cancel_args(task_id, message, self._owner(owner)), cmd.parse_task
        )

    async def list(
        self, *, cursor: str | None = None, limit: int | None = None, owner: str | None = None
    ) -> TaskPage:
        """TASK.LIST: one page, newest task first; ``page.next_cursor`` while more remain."""
        return await self._call(cmd.list_args(cursor, limit, self._owner(owner)), cmd.parse_page)

    async def iter_pages(
        self, *, limit: int | None = None, owner: str | None = None
    ) -> AsyncIterator[TaskPage]:
        """Every page of TASK.LIST, following the cursors."""
        cursor: str | None = None
        while True:
            page = await self.list(cursor=cursor, limit=limit, owner=owner)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def iter_tasks(
        self, *, limit: int | None = None, owner: str | None = None
    ) -> AsyncIterator[Task]:
        """Every task of the owner, newest first, ``limit`` per round trip."""
        async for page in self.iter_pages(limit=limit, owner=owner):
            for task in page.tasks:
                yield task

    async def delete(self, task_id: str, *, owner: str | None = None) -> bool:
        """TASK.DEL: True if the task existed."""
        return await self._call(cmd.delete_args(task_id, self._owner(owner)), cmd.parse_bool)

    async def wait(
        self,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        block: int | None = None,
        owner: str | None = None,
    ) -> Task | None:
        """TASK.WAIT: the task after its next change (with ``status``: as soon as its status
        differs from it, at once if it already does). ``block`` in ms, None or 0 = forever;
        None on timeout."""
        args = cmd.wait_args(task_id, status, block, self._owner(owner))
        return await self._call(args, cmd.parse_optional_task)

    async def cleanup(self, *, owner: str | None = None) -> int:
        """TASK.CLEANUP: evict expired tasks now; how many were evicted."""
        return await self._call(cmd.cleanup_args(self._owner(owner)), cmd.parse_int)

    async def config(self, *, owner: str | None = None) -> dict[str, Any]:
        """TASK.CONFIG: the server's effective store settings (on Redis: the limits this
        client passes to the functions)."""
        if self._functions is not None:
            return config_dict(self._functions.config)
        return await self._call(cmd.config_args(self._owner(owner)), cmd.parse_config)

    async def all_tasks(self, *, owner: str | None = None) -> builtins.list[Task]:
        """Every task of the owner (all pages), newest first."""
        return [task async for task in self.iter_tasks(owner=owner)]

    # -- the 2026-07-28 commands (docs/commands.md, 2026-07-28); on any connection generation ------

    async def ask(
        self,
        task_id: str,
        requests: Mapping[str, Mapping[str, Any]],
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """TASK.ASK: add input requests (key -> ``{"method": str, "params": {...}}``) and set
        ``input_required``, atomically (see :meth:`TaskClient.ask`)."""
        args = cmd.ask_args(task_id, requests, message, self._owner(owner))
        return await self._call(args, cmd.parse_task)

    async def answer(
        self,
        task_id: str,
        responses: Mapping[str, Mapping[str, Any]],
        *,
        owner: str | None = None,
    ) -> int:
        """TASK.ANSWER: answer outstanding input requests; how many answers were accepted
        (see :meth:`TaskClient.answer`)."""
        owner = self._owner(owner)
        args = cmd.answer_args(task_id, responses, owner)
        if args is None:  # nothing that could be accepted: still NOTFOUND for no such task
            await self._call(cmd.answers_args(task_id, None, owner), lambda r: r)
            return 0
        return await self._call(args, cmd.parse_int)

    async def answers(
        self, task_id: str, *, block: int | None = None, owner: str | None = None
    ) -> dict[str, dict[str, Any]] | None:
        """TASK.ANSWERS: every answer received so far; with ``block`` (ms, 0 = forever) first
        waits until no request is outstanding, the task is terminal or cancellation was
        requested, None on timeout (see :meth:`TaskClient.answers`)."""
        args = cmd.answers_args(task_id, block, self._owner(owner))
        return await self._call(args, cmd.parse_answers)

    async def fail(
        self,
        task_id: str,
        error: Mapping[str, Any],
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """TASK.FAIL: ``failed`` with a JSON-RPC error object, atomically."""
        args = cmd.fail_args(task_id, error, message, self._owner(owner))
        return await self._call(args, cmd.parse_task)

    async def request_cancel(
        self, task_id: str, *, message: str | None = None, owner: str | None = None
    ) -> Task:
        """TASK.CANCEL … REQUEST: a cooperative cancellation request; status unchanged."""
        args = cmd.request_cancel_args(task_id, message, self._owner(owner))
        return await self._call(args, cmd.parse_task)

    async def lease(self, task_id: str, worker: str, ms: int, *, owner: str | None = None) -> int:
        """TASK.LEASE: take or renew this worker's lease on a task (``ms`` 0 releases it);
        returns the ms granted (0: released, or the task is terminal). Renew well before it
        runs out: a lease that runs out fails the task (``worker lost``). Another worker's
        live lease: :class:`LeaseHeld`."""
        args = cmd.lease_args(task_id, worker, ms, self._owner(owner))
        return await self._call(args, cmd.parse_int)

    async def inspect(self, task_id: str, *, owner: str | None = None) -> TaskInspection:
        """TASK.INSPECT: the whole record as a :class:`TaskInspection`."""
        return await self._call(cmd.inspect_args(task_id, self._owner(owner)), cmd.parse_inspection)
