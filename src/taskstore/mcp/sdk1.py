"""taskstore as the task store of an MCP server written with the official Python SDK 1.x
(first-generation tasks, MCP 2025-11-25).

    from taskstore.mcp import TaskstoreTaskStore   # or: from taskstore.mcp.sdk1 import …

    server.experimental.enable_tasks(store=TaskstoreTaskStore())

:class:`TaskstoreTaskStore` implements ``mcp.shared.experimental.tasks.store.TaskStore`` (SDK
1.23 to 1.x, the ``taskstore[mcp1]`` extra) with the behaviour of the SDK's own
``InMemoryTaskStore`` wherever taskstore can give it; docs/mcp.md lists every place where the
two differ and how this adapter bridges it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Final, TypeVar

from taskstore.mcp._sdk import needs_sdk

with needs_sdk(
    "taskstore.mcp.TaskstoreTaskStore needs the MCP Python SDK 1.x with its experimental "
    "tasks API: pip install 'taskstore[mcp1]' (the SDK 2.x has taskstore.mcp.tasks instead)"
):
    from mcp.shared.experimental.tasks.store import TaskStore
    from mcp.types import Result, TaskMetadata, TaskStatus
    from mcp.types import Task as McpTask

from redis.asyncio import ConnectionPool as AsyncConnectionPool

from taskstore.client import (
    AsyncTaskClient,
    InvalidArgument,
    InvalidTransition,
    Task,
    TaskClient,
    TaskExists,
    TaskExpired,
    TaskNotFound,
    Unblocked,
    default_url,
)
from taskstore.client._commands import TTL, UNLIMITED
from taskstore.mcp import __all__ as __all__  # the names taskstore.mcp re-exports from here
from taskstore.store.config import StoreConfig

#: Page size of :meth:`TaskstoreTaskStore.list_tasks`, as the SDK's ``InMemoryTaskStore``.
DEFAULT_PAGE_SIZE: Final = 10
#: ``pollInterval`` of new tasks, as the SDK's ``create_task_state`` sets it.
DEFAULT_POLL_INTERVAL_MS: Final = 500
#: Longest single TASK.WAIT of :meth:`TaskstoreTaskStore.wait_for_update`; it waits again after.
DEFAULT_WAIT_CHUNK_MS: Final = 30_000
#: The ``_meta`` key of a stored result that names its Result class (removed when read back).
RESULT_TYPE_KEY: Final = "taskstore/result-type"
#: Marks a result whose own ``_meta`` was an empty object (rather than absent).
EMPTY_META_KEY: Final = "taskstore/empty-meta"
#: Largest ttl taskstore accepts when it has no maximum (``max_ttl_ms 0``).
MAX_SAFE_TTL_MS: Final = 2**53 - 1

T = TypeVar("T")
U = TypeVar("U")

_TERMINAL = frozenset({"completed", "failed", "cancelled"})
_NO_RESULT: Final = object()
_TTL_ERRORS = re.compile(r"ERR (TTL \d+ms exceeds maximum|unlimited TTL)")


# -- results ----------------------------------------------------------------------------------


def _class_name(cls: type[Result]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _result_class(name: str) -> type[Result] | None:
    """The already imported ``Result`` subclass called ``name`` (``module:qualname``).

    Only classes that exist in this process are considered: nothing is imported because of
    what a stored result says.
    """
    if name == _class_name(Result):
        return Result
    seen: set[type[Result]] = set()
    todo: list[type[Result]] = list(Result.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        if _class_name(cls) == name:
            return cls
        todo.extend(cls.__subclasses__())
    return None


def encode_result(result: Result) -> dict[str, Any]:
    """The JSON stored by TASK.SETRESULT: the result as the SDK sends it on the wire (by alias,
    ``None`` fields left out), with its class recorded under ``_meta["taskstore/result-type"]``
    so that :func:`decode_result` can give back the same class."""
    data: dict[str, Any] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    meta: dict[str, Any] = dict(data.get("_meta") or {})
    meta[RESULT_TYPE_KEY] = _class_name(type(result))
    if result.meta is not None and not result.meta:
        meta[EMPTY_META_KEY] = True
    data["_meta"] = meta
    return data


def decode_result(data: Any) -> Result:
    """The Result that :func:`encode_result` stored (any other JSON object: a plain ``Result``
    holding its fields; a class this process has not imported: a plain ``Result`` too)."""
    if not isinstance(data, dict):
        raise ValueError(f"stored task result is not a JSON object: {data!r}")
    data = dict(data)
    cls: type[Result] = Result
    meta = data.get("_meta")
    if isinstance(meta, dict) and RESULT_TYPE_KEY in meta:
        meta = dict(meta)
        name = meta.pop(RESULT_TYPE_KEY)
        empty = meta.pop(EMPTY_META_KEY, False)
        if meta or empty:
            data["_meta"] = meta
        else:
            del data["_meta"]
        cls = (_result_class(name) if isinstance(name, str) else None) or Result
    try:
        return cls.model_validate(data)
    except ValueError:
        if cls is Result:
            raise
        return Result.model_validate(data)


def to_mcp_task(task: Task) -> McpTask:
    """The SDK's ``Task`` for a taskstore task (its variables stay in ``_meta``)."""
    return McpTask.model_validate(task.to_wire())


# -- the store --------------------------------------------------------------------------------


class _LoopClient:
    """The connections of one store on one event loop, and the guard that closes them."""

    __slots__ = ("client", "guard")

    def __init__(self, client: AsyncTaskClient, guard: AsyncGenerator[None, None]) -> None:
        self.client = client
        self.guard = guard


async def _close_at_loop_end(client: AsyncTaskClient) -> AsyncGenerator[None, None]:
    """Closes ``client`` when it is closed itself.

    Started once on the loop that the client's connections belong to, it stays suspended at
    its ``yield``. asyncio's async-generator hooks then close it, in that loop, in three
    cases: ``loop.shutdown_asyncgens()`` at the end of ``asyncio.run`` / ``asyncio.Runner`` /
    ``anyio.run`` / ``uvloop.run`` (the store outlived its loop); the loop's finalizer when
    the generator is garbage-collected (the store was dropped); or the store's own
    :meth:`~TaskstoreTaskStore.close` / :meth:`~TaskstoreTaskStore.aclose`.

    Until then the client is also held in ``_open_clients``: a store that the garbage
    collector frees as part of a reference cycle would otherwise take its connections with it
    in the same collection, whose ``__del__`` warns of (and drops) open sockets before the
    guard's scheduled close could run.
    """
    _open_clients.add(client)
    try:
        yield
    finally:
        try:
            await _disconnect_now(client)
        finally:
            _open_clients.discard(client)


#: Clients whose guard has not closed them yet (see :func:`_close_at_loop_end`).
_open_clients: set[AsyncTaskClient] = set()


async def _disconnect_now(client: AsyncTaskClient) -> None:
    """Close every connection of ``client`` without ever suspending.

    redis-py's own ``aclose()`` disconnects through ``asyncio.gather``: child tasks that only
    start at a later loop iteration. At a loop's shutdown the runner cancels every task and
    closes the loop, and a child cancelled before it starts never closes its socket. Here each
    connection is closed in turn with ``disconnect(nowait=True)``, which does not suspend: the
    whole close happens in the step that starts it, so nothing can come in between (and a
    second close of the guard, by ``shutdown_asyncgens()``, finds it finished).
    """
    pool = getattr(client.redis, "connection_pool", None)  # a cluster client has none
    idle = getattr(pool, "_available_connections", None)
    used = getattr(pool, "_in_use_connections", None)
    if idle is None or used is None:  # pragma: no cover - a redis-py without these
        await client.aclose()
        return
    for conn in [*idle, *used]:
        await conn.disconnect(nowait=True)


class TaskstoreTaskStore(TaskStore):
    """An MCP SDK ``TaskStore`` whose tasks live in a taskstore server.

    ``TaskstoreTaskStore()`` connects to ``$TASKSTORE_URL``, else ``redis://127.0.0.1:6379``
    (redis-py URL syntax: ``redis://user:password@host:port``). ``owner=`` keeps the tasks of
    that owner (``OWNER <id>``: the URL's user needs the ``impersonate`` permission); without
    it they belong to the URL user's own owner (``local`` for the anonymous ``default`` user).
    ``page_size`` is the number of tasks per :meth:`list_tasks` page.

    Also: ``poll_interval_ms`` (default 500 as the SDK; ``None`` leaves it to the server's
    ``default_poll_interval_ms``), ``request_method`` recorded with each task (default
    ``tools/call``), ``client=`` to share an :class:`~taskstore.client.AsyncTaskClient` (then
    no ``url``), and ``wait_chunk_ms``, the longest single TASK.WAIT before waiting again.

    The URL may also name a Redis / Valkey (standalone or cluster) with the taskstore
    Functions library loaded: each loop's client comes from
    :meth:`~taskstore.client.AsyncTaskClient.from_url`, which tells them apart on connect;
    ``config=`` are then the limits the library applies (docs/production.md).

    Nothing connects before the first call. The store then keeps one connection pool per
    event loop that uses it, and closes each pool on its own loop: when that loop shuts down
    (``asyncio.run`` and friends), when the store is garbage-collected, or on :meth:`close`
    (synchronous; :meth:`cleanup` is the same, under the name the SDK's in-memory store uses)
    or ``await`` :meth:`aclose` (or ``async with``). So a store that is never closed, as the
    SDK leaves the stores it makes, leaks no socket. A closed store can be used again: it
    reconnects. A ``client=`` passed in is the caller's to close.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        owner: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        poll_interval_ms: int | None = DEFAULT_POLL_INTERVAL_MS,
        request_method: str = "tools/call",
        client: AsyncTaskClient | None = None,
        wait_chunk_ms: int = DEFAULT_WAIT_CHUNK_MS,
        config: StoreConfig | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if wait_chunk_ms < 1:
            raise ValueError("wait_chunk_ms must be at least 1")
        if client is not None and url is not None:
            raise TypeError("pass url or client, not both")
        #: The taskstore URL (None when a ``client`` was passed in).
        self.url = None if client is not None else url or default_url()
        self._shared = client
        self._loops: dict[asyncio.AbstractEventLoop, _LoopClient] = {}
        self.owner = owner
        self.page_size = page_size
        self.poll_interval_ms = poll_interval_ms
        self.request_method = request_method
        self.wait_chunk_ms = self._fit_chunk(wait_chunk_ms)
        self._max_ttl_ms: int | None = None
        self._local_waiters: dict[str, set[asyncio.Event]] = {}
        #: the limits the Functions library applies when the URL is Redis / Valkey (None:
        #: the defaults); a taskstore applies its own settings
        self.config = config

    def connection_kwargs(self) -> dict[str, Any]:
        """redis-py's connection settings of this store (host, port, socket_timeout, …)."""
        if self._shared is not None:
            return dict(self._shared.redis.connection_pool.connection_kwargs)
        assert self.url is not None
        return dict(AsyncConnectionPool.from_url(self.url).connection_kwargs)

    def socket_timeout(self) -> float | None:
        """The read timeout of the store's connections in seconds: the URL's
        ``socket_timeout``, else redis-py's default (5 s since redis-py 8, none before)."""
        if self._shared is not None:
            pool = self._shared.redis.connection_pool
        else:
            assert self.url is not None
            pool = AsyncConnectionPool.from_url(self.url)
        # a connection object that never connects: its settings with redis-py's defaults
        timeout: float | None = pool.connection_class(**pool.connection_kwargs).socket_timeout
        return timeout

    def _fit_chunk(self, chunk_ms: int) -> int:
        """Keep each TASK.WAIT at most half the connections' read timeout."""
        timeout = self.socket_timeout()
        if isinstance(timeout, int | float) and timeout > 0:
            chunk_ms = min(chunk_ms, max(1, int(timeout * 500)))
        return chunk_ms

    async def _client(self) -> AsyncTaskClient:
        """The client of the running event loop, made (and guarded) on first use."""
        if self._shared is not None:
            return self._shared
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is None:
            for old in [old for old in self._loops if old.is_closed()]:
                del self._loops[old]  # their guards ran at the loop's shutdown
            assert self.url is not None
            client = await AsyncTaskClient.from_url(self.url, config=self.config)
            if self._loops.get(loop) is not None:  # made meanwhile by another call: use it
                await client.aclose()
                return self._loops[loop].client
            guard = _close_at_loop_end(client)
            # the first step registers the guard with this loop's async-generator hooks and
            # stops at its yield (no await before it: nothing else runs in between)
            await anext(guard)
            entry = self._loops[loop] = _LoopClient(client, guard)
        return entry.client

    def close(self) -> None:
        """Close the store's connections (none of a ``client`` passed in), synchronously.

        Callable from anywhere: inside a coroutine, from another thread, after the loops are
        gone. Each pool is closed on its own loop, at that loop's next iteration (or was closed
        already when its loop shut down). The tasks stay in taskstore, and the store
        reconnects if it is used again.
        """
        entries, self._loops = self._loops, {}
        for loop, entry in entries.items():
            if not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(_close_guard, loop, entry.guard)
                except RuntimeError:  # closed meanwhile: its shutdown closed the guard
                    pass

    def cleanup(self) -> None:
        """:meth:`close`, under the name of the SDK's ``InMemoryTaskStore.cleanup()``.

        Unlike the in-memory store's, it deletes no task: taskstore's tasks outlive the
        store object, and other processes share them (``delete_task`` removes one).
        """
        self.close()

    async def aclose(self) -> None:
        """Close the connections (not those of a ``client`` passed in); those of the running
        loop before returning, those of other loops on their own loops."""
        loop = asyncio.get_running_loop()
        entries, self._loops = self._loops, {}
        mine = entries.pop(loop, None)
        for other, entry in entries.items():
            if not other.is_closed():
                try:
                    other.call_soon_threadsafe(_close_guard, other, entry.guard)
                except RuntimeError:
                    pass
        if mine is not None:
            await mine.guard.aclose()

    async def __aenter__(self) -> TaskstoreTaskStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def get_all_tasks(self) -> list[McpTask]:
        """Every task of the store's owner, newest first, as the SDK's
        ``InMemoryTaskStore.get_all_tasks()`` (a debugging helper, synchronous).

        It blocks the calling thread for a round trip per 1000 tasks on a connection of its
        own: for tests and debugging, not for a busy event loop. Needs a store made with a URL.
        """
        if self.url is None:
            raise TypeError("get_all_tasks() needs a store made with a URL, not a client")
        with TaskClient.from_url(self.url, config=self.config) as tasks:
            return [to_mcp_task(t) for t in tasks.all_tasks(owner=self.owner)]

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _bad_id(e: InvalidArgument) -> bool:
        """`ERR invalid task id …`: an id no task can have, so the SDK's "not found"."""
        return e.detail.startswith("invalid task id")

    @staticmethod
    def _not_found(task_id: str) -> ValueError:
        return ValueError(f"Task with ID {task_id} not found")

    async def _max_ttl(self, refresh: bool = False) -> int:
        if self._max_ttl_ms is None or refresh:
            config = await (await self._client()).config(owner=self.owner)
            self._max_ttl_ms = int(config["max_ttl_ms"])
        return self._max_ttl_ms

    async def _ttl(self, requested: int | None, refresh: bool = False) -> TTL:
        """taskstore's TTL for the SDK's ``metadata.ttl``: None (never expires) is unlimited
        where the server allows it and its default_ttl_ms otherwise; a ttl over the server's
        maximum is lowered to it, one under 1 ms raised to 1 (MCP lets the receiver choose the
        actual ttl, and the task reports it)."""
        maximum = await self._max_ttl(refresh)
        if requested is None:
            return UNLIMITED if maximum == 0 else None
        return max(1, min(requested, maximum or MAX_SAFE_TTL_MS))

    async def _known(self, call: Callable[[AsyncTaskClient], Awaitable[T]], unknown: U) -> T | U:
        """What ``call`` returns, or ``unknown`` when its task id names no task (none with
        that id, or an id no task can have)."""
        try:
            return await call(await self._client())
        except TaskNotFound:
            return unknown
        except InvalidArgument as e:
            if self._bad_id(e):
                return unknown
            raise

    async def _get(self, task_id: str) -> Task | None:
        return await self._known(lambda client: client.get(task_id, owner=self.owner), None)

    # -- TaskStore --------------------------------------------------------------------------

    async def create_task(self, metadata: TaskMetadata, task_id: str | None = None) -> McpTask:
        """A new ``working`` task; ``task_id`` is used exactly as given (a new UUID v4 from the
        server when None or empty). ValueError when this owner already has that id."""
        chosen = task_id or None
        for attempt in range(2):
            ttl = await self._ttl(metadata.ttl, refresh=attempt > 0)
            try:
                task = await (await self._client()).create(
                    self.request_method,
                    ttl=ttl,
                    poll_interval=self.poll_interval_ms,
                    task_id=chosen,
                    owner=self.owner,
                )
            except TaskExists:
                raise ValueError(f"Task with ID {chosen} already exists") from None
            except InvalidArgument as e:
                if self._bad_id(e):
                    raise ValueError(f"Invalid task ID {chosen!r}: {e.detail}") from e
                if attempt == 0 and _TTL_ERRORS.match(e.message):
                    continue  # the server's max_ttl_ms changed since it was read: read it again
                raise
            return to_mcp_task(task)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_task(self, task_id: str) -> McpTask | None:
        """The task, or None when this owner has no such task (expired tasks are returned
        until the server evicts them)."""
        task = await self._get(task_id)
        return None if task is None else to_mcp_task(task)

    async def update_task(
        self,
        task_id: str,
        status: TaskStatus | None = None,
        status_message: str | None = None,
    ) -> McpTask:
        """Change the status and/or the message, as the SDK's in-memory store does.

        ``status_message=None`` keeps the current message (also across a status change);
        ``status`` equal to the current one is no transition (only the message changes, or
        only ``lastUpdatedAt``), and the message of a terminal task can still change.
        ValueError for an unknown id, for leaving a terminal status, and for an expired task.
        """
        for _ in range(3):
            current = await self._get(task_id)
            if current is None:
                raise self._not_found(task_id)
            try:
                return to_mcp_task(await self._update(current, status, status_message))
            except TaskNotFound:
                raise self._not_found(task_id) from None
            except TaskExpired:
                raise ValueError(f"Task with ID {task_id} has expired") from None
            except InvalidTransition as e:
                # another process changed the status between our read and our write
                if e.from_status in _TERMINAL and status is not None and status != e.from_status:
                    raise ValueError(
                        f"Cannot transition from terminal status '{e.from_status}'"
                    ) from None
                # else read it again and apply the update to what it is now
        raise ValueError(f"Task with ID {task_id} keeps changing; update not applied")

    async def _update(self, current: Task, status: TaskStatus | None, message: str | None) -> Task:
        tid, owner = current.task_id, self.owner
        client = await self._client()
        if status is not None and status != current.status:
            if current.is_terminal:
                raise ValueError(f"Cannot transition from terminal status '{current.status}'")
            if message is None:
                message = current.status_message  # taskstore would drop it; the SDK keeps it
            return await client.update(tid, status, message=message, owner=owner)
        if message is not None:
            # MESSAGE alone: not a transition, so terminal tasks take it too
            return await client.update(tid, message=message, owner=owner)
        # nothing to change: the SDK still refreshes lastUpdatedAt; an empty merge of the
        # variables does exactly that (and works on terminal tasks too)
        return await client.set_variables(tid, {}, owner=owner)

    async def store_result(self, task_id: str, result: Result) -> None:
        """Store ``result`` (any status, terminal too); ValueError for an unknown or expired
        task."""
        try:
            client = await self._client()
            await client.set_result(task_id, encode_result(result), owner=self.owner)
        except TaskNotFound:
            raise self._not_found(task_id) from None
        except TaskExpired:
            raise ValueError(f"Task with ID {task_id} has expired") from None
        except InvalidArgument as e:
            if self._bad_id(e):
                raise self._not_found(task_id) from None
            raise

    async def get_result(self, task_id: str) -> Result | None:
        """The stored result as the class it was stored as, whatever the task's status
        (TASK.RESULT … ANY); None for an unknown task and while no result is stored."""
        data = await self._known(
            lambda client: client.result(task_id, any=True, default=_NO_RESULT, owner=self.owner),
            _NO_RESULT,
        )
        return None if data is _NO_RESULT else decode_result(data)

    async def list_tasks(self, cursor: str | None = None) -> tuple[list[McpTask], str | None]:
        """One page of ``page_size`` tasks, newest first, and the cursor of the next page (None
        on the last). ValueError for a cursor this store did not hand out."""
        try:
            client = await self._client()
            page = await client.list(cursor=cursor, limit=self.page_size, owner=self.owner)
        except InvalidArgument as e:
            if cursor is not None and e.detail == "invalid cursor":
                raise ValueError(f"Invalid cursor: {cursor}") from None
            raise
        return [to_mcp_task(t) for t in page.tasks], page.next_cursor

    async def delete_task(self, task_id: str) -> bool:
        """Delete the task and its result; False when there was none."""
        try:
            return await (await self._client()).delete(task_id, owner=self.owner)
        except InvalidArgument as e:
            if self._bad_id(e):
                return False
            raise

    async def wait_for_update(self, task_id: str) -> None:
        """Return once the task's status differs from what it is now: a change by any process
        (TASK.WAIT … STATUS), a :meth:`notify_update` in this process, or the task's deletion or
        eviction. At once for a terminal task, whose status never changes again. ValueError for
        an unknown task.

        (The SDK's tasks/result handler reads the task, then waits: a task that became terminal
        in between, in a round trip to taskstore, must not leave it waiting for ever.)
        """
        current = await self._get(task_id)
        if current is None:
            raise self._not_found(task_id)
        if current.is_terminal:
            return
        event = asyncio.Event()
        self._local_waiters.setdefault(task_id, set()).add(event)
        remote = asyncio.ensure_future(self._wait_status_change(task_id, current))
        local = asyncio.ensure_future(event.wait())
        try:
            done, _ = await asyncio.wait({remote, local}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (remote, local):
                if not fut.done():
                    fut.cancel()
                    fut.add_done_callback(_consume)
            waiters = self._local_waiters.get(task_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._local_waiters[task_id]
        if remote in done:
            remote.result()  # its errors (connection lost, …) are the caller's

    async def _wait_status_change(self, task_id: str, current: Task) -> None:
        while True:
            try:
                changed = await (await self._client()).wait(
                    task_id, status=current.status, block=self.wait_chunk_ms, owner=self.owner
                )
            except (TaskNotFound, Unblocked):
                return  # deleted, evicted or unblocked: wake the caller, who re-reads the task
            if changed is not None:
                return

    async def notify_update(self, task_id: str) -> None:
        """Wake the :meth:`wait_for_update` calls of this process for the task.

        Waiters in every process also wake by themselves on each status change, so nothing
        needs to call this.
        """
        for event in self._local_waiters.get(task_id, ()):
            event.set()


def _close_guard(loop: asyncio.AbstractEventLoop, guard: AsyncGenerator[None, None]) -> None:
    """On ``loop``: close a store's guard, which closes its connections."""
    task = loop.create_task(guard.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


#: Closing tasks of :func:`_close_guard`, kept alive until done (asyncio keeps only weak ones).
_closing: set[asyncio.Task[None]] = set()


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve a cancelled helper's outcome so asyncio does not log it as never retrieved."""
    if not fut.cancelled():
        fut.exception()
