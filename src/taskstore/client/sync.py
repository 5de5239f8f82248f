"""The synchronous client: :class:`TaskClient`."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypeVar, cast

from redis import ConnectionPool, Redis, RedisCluster, RedisError, ResponseError

from taskstore.client import _commands as cmd
from taskstore.client._commands import TTL
from taskstore.client._functions import (
    OwnerTag,
    SyncFunctionsBackend,
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
    check_version,
    install_hook,
    sync_hook,
)
from taskstore.client.errors import translate
from taskstore.client.task import McpVersion, Task, TaskInspection, TaskPage, TaskStatus
from taskstore.store.config import StoreConfig

__all__ = ["TaskClient"]

T = TypeVar("T")


class TaskClient:
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
        self._pin_lock = threading.Lock()
        self._pin_single = False
        if redis is not None:
            self._redis, self._owns = redis, False
        elif connection_pool is not None:
            self._redis, self._owns = Redis(connection_pool=connection_pool), True
        else:
            if self._version is not None:
                previous = redis_options.get("redis_connect_func")
                redis_options["redis_connect_func"] = sync_hook(self._version, previous)
            from_url = cast(Callable[..., Redis], Redis.from_url)
            self._redis, self._owns = from_url(url or cmd.default_url(), **redis_options), True
        if self._version is not None and (redis is not None or connection_pool is not None):
            # the caller's pool: its settings get the hook; the connections it opened before
            # are reopened (idle ones now, a single connection by TASK.VERSION at first use)
            stale = install_hook(self._redis, self._version, sync_hook, threaded=True)
            if stale:
                self._redis.connection_pool.disconnect(inuse_connections=False)
                single = self._redis.connection
                self._pin_single = single is not None and any(c is single for c in stale)
        self._execute: Callable[..., Any] = self._redis.execute_command
        self._functions: SyncFunctionsBackend | None = None
        self.owner = owner

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        owner: str | None = None,
        version: McpVersion | None = DEFAULT_VERSION,
        config: StoreConfig | None = None,
        **redis_options: Any,
    ) -> TaskClient:
        """A client for taskstore, or for Redis / Valkey with the taskstore Functions library
        (standalone or cluster), told apart on connect by ``INFO server``
        (``taskstore_version``); the methods, return types and exceptions are the same.

        On taskstore this is ``TaskClient(url, owner=owner, version=version, …)``. On Redis
        the owner is ``owner`` (``"local"`` when None; the Redis user's ACL must allow the
        keys ``ts:{<owner>}:*``), ``config`` the store limits the functions enforce (the
        :class:`~taskstore.store.config.StoreConfig` defaults when None), and ``version``
        the generation tasks are rendered in (None: 2026-07-28, taskstore's default).
        :class:`~taskstore.client.errors.LibraryNotLoaded` when the library is missing or
        another version, naming the command that loads it. See docs/production.md.
        """
        url = url or cmd.default_url()
        check_version(version)
        probe = Redis.from_url(url, **redis_options)
        server: Redis | RedisCluster = probe
        try:
            info = probe.info("server")
            if is_taskstore(info):
                probe.close()
                return cls(url, owner=owner, version=version, **redis_options)
            if is_cluster_info(info):
                probe.close()
                server = RedisCluster.from_url(url, **redis_options)
            try:
                if isinstance(server, RedisCluster):  # every primary must have it
                    replies = server.execute_command(  # type: ignore[no-untyped-call]
                        "FCALL", "ts_version", 0, target_nodes=RedisCluster.PRIMARIES
                    )
                    for reply in cast(dict[Any, Any], replies).values():
                        check_library(reply, url)
                else:
                    check_library(server.fcall("ts_version", 0), url)
            except ResponseError as e:
                missing = missing_library(e, url)
                if missing is None:
                    raise
                raise missing from None
        except BaseException as e:
            probe.close()
            if server is not probe:
                server.close()
            err = translate(e) if isinstance(e, RedisError) else None
            if err is None:
                raise
            raise err from None
        client = cls(redis=cast(Redis, server), owner=owner, version=None)
        client._owns = True
        client._version = version
        backend = SyncFunctionsBackend(server, generation(version), config_arg(config), owner)
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

    def _pin(self) -> None:
        """TASK.VERSION on the single connection of a ``Redis`` passed in, once."""
        with self._pin_lock:
            if not self._pin_single:
                return
            assert self._version is not None
            try:
                self._execute(*cmd.version_args(self._version))
            except ResponseError as e:
                if not accept_version_error(self._version, e):
                    raise
            self._pin_single = False

    def close(self) -> None:
        """Close the connections (not those of a ``Redis`` or a pool that was passed in)."""
        if self._owns:
            self._redis.close()

    def __enter__(self) -> TaskClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _owner(self, owner: str | None) -> str | None:
        chosen = self.owner if owner is None else owner
        if self._functions is not None and chosen is not None:
            return OwnerTag(chosen)  # the key prefix's owner, not an OWNER option
        return chosen

    def _call(self, args: cmd.Args, parse: Callable[[Any], T]) -> T:
        try:
            if self._pin_single:
                self._pin()
            reply = self._execute(*args)
        except RedisError as e:
            err = translate(e)
            if err is None:
                raise
            raise err from None
        return parse(reply)

    # -- commands ---------------------------------------------------------------------------

    def create(
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
        return self._call(args, cmd.parse_task)

    def get(self, task_id: str, *, owner: str | None = None) -> Task:
        """TASK.GET (expired tasks too, until evicted)."""
        return self._call(cmd.get_args(task_id, self._owner(owner)), cmd.parse_task)

    def update(
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
        return self._call(args, cmd.parse_task)

    def set_variables(
        self, task_id: str, variables: Mapping[str, Any], *, owner: str | None = None
    ) -> Task:
        """TASK.SETVARS: merge ``variables`` into the task's (a ``None`` value deletes a key)."""
        args = cmd.set_variables_args(task_id, variables, self._owner(owner))
        return self._call(args, cmd.parse_task)

    def set_result(self, task_id: str, result: Any, *, owner: str | None = None) -> None:
        """TASK.SETRESULT: store ``result`` (any JSON value); the status does not change."""
        self._call(cmd.set_result_args(task_id, result, self._owner(owner)), cmd.parse_ok)

    def result(
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
        reply = self._call(args, lambda r: r)
        if reply is None:
            if block is None:
                return default  # ANY: no result stored
            raise TimeoutError(f"task {task_id} did not finish within {block} ms")
        return cmd.parse_json(reply)

    def complete(
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
        return self._call(args, cmd.parse_task)

    def cancel(self, task_id: str, *, message: str | None = None, owner: str | None = None) -> Task:
        """TASK.CANCEL: ``cancelled`` (terminal tasks: :class:`InvalidTransition`)."""
        return self._call(cmd.cancel_args(task_id, message, self._owner(owner)), cmd.parse_task)

    def list(
        self, *, cursor: str | None = None, limit: int | None = None, owner: str | None = None
    ) -> TaskPage:
        """TASK.LIST: one page, newest task first; ``page.next_cursor`` while more remain."""
        return self._call(cmd.list_args(cursor, limit, self._owner(owner)), cmd.parse_page)

    def iter_pages(
        self, *, limit: int | None = None, owner: str | None = None
    ) -> Iterator[TaskPage]:
        """Every page of TASK.LIST, following the cursors."""
        cursor: str | None = None
        while True:
            page = self.list(cursor=cursor, limit=limit, owner=owner)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_tasks(self, *, limit: int | None = None, owner: str | None = None) -> Iterator[Task]:
        """Every task of the owner, newest first, ``limit`` per round trip."""
        for page in self.iter_pages(limit=limit, owner=owner):
            yield from page.tasks

    def delete(self, task_id: str, *, owner: str | None = None) -> bool:
        """TASK.DEL: True if the task existed."""
        return self._call(cmd.delete_args(task_id, self._owner(owner)), cmd.parse_bool)

    def wait(
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
        return self._call(args, cmd.parse_optional_task)

    def cleanup(self, *, owner: str | None = None) -> int:
        """TASK.CLEANUP: evict expired tasks now; how many were evicted."""
        return self._call(cmd.cleanup_args(self._owner(owner)), cmd.parse_int)

    def config(self, *, owner: str | None = None) -> dict[str, Any]:
        """TASK.CONFIG: the server's effective store settings (on Redis: the limits this
        client passes to the functions)."""
        if self._functions is not None:
            return config_dict(self._functions.config)
        return self._call(cmd.config_args(self._owner(owner)), cmd.parse_config)

    def all_tasks(self, *, owner: str | None = None) -> builtins.list[Task]:
        """Every task of the owner (all pages), newest first."""
        return builtins.list(self.iter_tasks(owner=owner))

    # -- the 2026-07-28 commands (docs/commands.md, 2026-07-28); on any connection generation ------

    def ask(
        self,
        task_id: str,
        requests: Mapping[str, Mapping[str, Any]],
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """TASK.ASK: add input requests (key -> ``{"method": str, "params": {...}}``) and set
        ``input_required``, atomically (from ``working`` or ``input_required``).

        A key is 1-256 printable ASCII characters, unique over the task's whole life: one
        issued before raises :class:`InputKeyExists` and nothing changes; ``MESSAGE`` and
        ``OWNER`` (any case) are ValueError. A terminal task: :class:`InvalidTransition`; a
        request without a string ``method`` and an object ``params``: :class:`InvalidArgument`;
        over ``max_input_bytes``: :class:`TooLarge`.
        """
        args = cmd.ask_args(task_id, requests, message, self._owner(owner))
        return self._call(args, cmd.parse_task)

    def answer(
        self,
        task_id: str,
        responses: Mapping[str, Mapping[str, Any]],
        *,
        owner: str | None = None,
    ) -> int:
        """TASK.ANSWER: answer outstanding input requests (key -> response object); returns
        how many answers were accepted.

        Answers for keys that are not outstanding (never asked, answered already) are
        ignored, as are all answers to a terminal or expired task (0); keys no request can
        have are left out before sending. When no request remains outstanding the task is
        ``working`` again. An unknown task: :class:`TaskNotFound` (an MCP server acks
        ``tasks/update`` anyway).
        """
        owner = self._owner(owner)
        args = cmd.answer_args(task_id, responses, owner)
        if args is None:  # nothing that could be accepted: still NOTFOUND for no such task
            self._call(cmd.answers_args(task_id, None, owner), lambda r: r)
            return 0
        return self._call(args, cmd.parse_int)

    def answers(
        self, task_id: str, *, block: int | None = None, owner: str | None = None
    ) -> dict[str, dict[str, Any]] | None:
        """TASK.ANSWERS: every answer received so far (key -> response), not consumed.

        With ``block`` (ms, 0 = forever) first waits until no request is outstanding, the
        task is terminal or cancellation was requested; None when that does not happen in
        time.
        """
        args = cmd.answers_args(task_id, block, self._owner(owner))
        return self._call(args, cmd.parse_answers)

    def fail(
        self,
        task_id: str,
        error: Mapping[str, Any],
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """TASK.FAIL: ``failed`` with a JSON-RPC error object (``code`` int, ``message`` str,
        ``data`` optional), atomically. First-generation TASK.RESULT then answers
        ``{"error": error}``."""
        args = cmd.fail_args(task_id, error, message, self._owner(owner))
        return self._call(args, cmd.parse_task)

    def request_cancel(
        self, task_id: str, *, message: str | None = None, owner: str | None = None
    ) -> Task:
        """TASK.CANCEL … REQUEST: record a cooperative cancellation request (2026-07-28
        ``tasks/cancel``); the status does not change. It wakes ``wait`` and ``answers``
        waiters; repeated, or on a terminal task, it changes nothing (no error)."""
        args = cmd.request_cancel_args(task_id, message, self._owner(owner))
        return self._call(args, cmd.parse_task)

    def lease(self, task_id: str, worker: str, ms: int, *, owner: str | None = None) -> int:
        """TASK.LEASE: take or renew this worker's lease on a task (``ms`` 0 releases it);
        returns the ms granted (0: released, or the task is terminal). Renew well before it
        runs out: a lease that runs out fails the task (``worker lost``). Another worker's
        live lease: :class:`LeaseHeld`."""
        return self._call(cmd.lease_args(task_id, worker, ms, self._owner(owner)), cmd.parse_int)

    def inspect(self, task_id: str, *, owner: str | None = None) -> TaskInspection:
        """TASK.INSPECT: the whole record (variables, requests, issued keys, answers, error,
        cancellation request, expiry) as a :class:`TaskInspection`."""
        return self._call(cmd.inspect_args(task_id, self._owner(owner)), cmd.parse_inspection)
