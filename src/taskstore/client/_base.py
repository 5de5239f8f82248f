"""What :class:`TaskClient` and :class:`AsyncTaskClient` share: everything but the I/O.

Each method is written once, as a generator of steps (:mod:`taskstore.client._steps`); the
sync client performs them blocking, the asyncio client awaits them, so the two cannot drift
apart in what they send, how they read the reply, or which errors they raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Literal, TypeVar

from redis import RedisError, ResponseError

from taskstore.client import _commands as cmd
from taskstore.client._commands import TTL
from taskstore.client._functions import (
    FunctionsBackend,
    OwnerTag,
    check_library,
    config_arg,
    config_dict,
    generation,
    is_cluster_info,
    is_taskstore,
    missing_library,
)
from taskstore.client._steps import (
    Blocking,
    Step,
    Steps,
    io_classmethod,
    io_method,
    translated,
)
from taskstore.client._version import (
    DEFAULT_VERSION,
    ConnectFunc,
    accept_version_error,
    check_version,
    install_hook,
)
from taskstore.client.errors import translate
from taskstore.client.task import McpVersion, Task, TaskInspection, TaskPage, TaskStatus
from taskstore.store.config import StoreConfig

__all__ = ["ClientBase"]

T = TypeVar("T")
#: The redis-py client and connection pool classes (``redis`` or ``redis.asyncio``).
R = TypeVar("R")
Pool = TypeVar("Pool")


def _from_url(
    cls: type[ClientBase[Any, Any]],
    /,
    url: str | None = None,
    *,
    owner: str | None = None,
    version: McpVersion | None = DEFAULT_VERSION,
    config: StoreConfig | None = None,
    **redis_options: Any,
) -> Steps[Any]:
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
    probe = cls._redis_type.from_url(url, **redis_options)
    server = probe
    try:
        info = yield lambda: probe.info("server")
        if is_taskstore(info):
            yield cls._close(probe)
            return cls(url, owner=owner, version=version, **redis_options)
        if is_cluster_info(info):
            yield cls._close(probe)
            server = cls._cluster_type.from_url(url, **redis_options)
        try:
            if isinstance(server, cls._cluster_type):  # every primary must have it
                replies = yield lambda: server.execute_command(
                    "FCALL", "ts_version", 0, target_nodes=cls._cluster_type.PRIMARIES
                )
                for reply in replies.values():
                    check_library(reply, url)
            else:
                check_library((yield lambda: server.fcall("ts_version", 0)), url)
        except ResponseError as e:
            missing = missing_library(e, url)
            if missing is None:
                raise
            raise missing from None
    except BaseException as e:
        yield cls._close(probe)
        if server is not probe:
            yield cls._close(server)
        err = translate(e) if isinstance(e, RedisError) else None
        if err is None:
            raise
        raise err from None
    client = cls(redis=server, owner=owner, version=None)
    client._owns = True
    client._version = version
    backend = cls._backend_type(server, generation(version), config_arg(config), owner)
    client._functions = backend
    client._execute = backend.execute
    return client


class ClientBase(Generic[R, Pool]):
    """The TASK commands over a redis-py client; a subclass says how to do I/O (by deriving
    from :class:`Blocking` or :class:`Awaiting`) and with which redis-py classes."""

    _redis_type: ClassVar[Any]
    _cluster_type: ClassVar[Any]
    _backend_type: ClassVar[type[FunctionsBackend]]
    _close: Callable[[Any], Step]

    def __init__(
        self,
        url: str | None = None,
        *,
        connection_pool: Pool | None = None,
        redis: R | None = None,
        owner: str | None = None,
        version: McpVersion | None = DEFAULT_VERSION,
        **redis_options: Any,
    ) -> None:
        given = sum(x is not None for x in (url, connection_pool, redis))
        if given > 1:
            raise TypeError("pass at most one of url, connection_pool and redis")
        self._version = check_version(version)
        self._recycle = self._pin_single = False
        self._redis: R
        if redis is not None:
            self._redis, self._owns = redis, False
        elif connection_pool is not None:
            self._redis, self._owns = self._redis_type(connection_pool=connection_pool), True
        else:
            if self._version is not None:
                previous = redis_options.get("redis_connect_func")
                redis_options["redis_connect_func"] = self._hook(self._version, previous)
            self._redis = self._redis_type.from_url(url or cmd.default_url(), **redis_options)
            self._owns = True
        if self._version is not None and (redis is not None or connection_pool is not None):
            # the caller's pool: its settings get the hook; the connections it opened before
            # are reopened (see _reopen), a single connection by TASK.VERSION at first use
            threaded = isinstance(self, Blocking)
            stale = install_hook(self._redis, self._version, self._hook, threaded=threaded)
            if stale:
                single = getattr(self._redis, "connection", None)
                self._pin_single = single is not None and any(c is single for c in stale)
                self._reopen()
        self._execute: Callable[..., Any] = self._redis.execute_command  # type: ignore[attr-defined]
        self._functions: FunctionsBackend | None = None
        self.owner = owner

    @staticmethod
    def _hook(version: McpVersion, previous: ConnectFunc | None) -> ConnectFunc:
        """The ``redis_connect_func`` that selects ``version`` (``_version.sync_hook``)."""
        raise NotImplementedError

    def _reopen(self) -> None:
        """Have the idle connections opened before the version hook reopened."""
        raise NotImplementedError

    def _adopt(self) -> Steps[None]:
        """Before the first command, when ``_recycle`` or ``_pin_single`` says so."""
        raise NotImplementedError

    from_url = io_classmethod(_from_url)

    @property
    def redis(self) -> R:
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

    def _owner(self, owner: str | None) -> str | None:
        chosen = self.owner if owner is None else owner
        if self._functions is not None and chosen is not None:
            return OwnerTag(chosen)  # the key prefix's owner, not an OWNER option
        return chosen

    def _select_version(self) -> Steps[None]:
        """TASK.VERSION on the connection the next command takes."""
        version = self._version
        assert version is not None
        try:
            yield lambda: self._execute(*cmd.version_args(version))
        except ResponseError as e:
            if not accept_version_error(version, e):
                raise

    def _send(self, args: cmd.Args) -> Steps[Any]:
        if self._recycle or self._pin_single:
            yield from self._adopt()
        return (yield lambda: self._execute(*args))

    def _call(self, args: cmd.Args, parse: Callable[[Any], T]) -> Steps[T]:
        return parse((yield from translated(self._send(args))))

    # -- commands ---------------------------------------------------------------------------

    @io_method
    def create(
        self,
        method: str = "tools/call",
        *,
        ttl: TTL = None,
        poll_interval: int | None = None,
        task_id: str | None = None,
        owner: str | None = None,
    ) -> Steps[Task]:
        """TASK.CREATE: a new ``working`` task for request ``method``.

        ``ttl`` in ms (server default when None; ``"none"``/:data:`UNLIMITED` for unlimited,
        only with ``max_ttl_ms 0``), ``poll_interval`` in ms, ``task_id`` to choose the id.
        """
        args = cmd.create_args(method, ttl, poll_interval, task_id, self._owner(owner))
        return (yield from self._call(args, cmd.parse_task))

    @io_method
    def get(self, task_id: str, *, owner: str | None = None) -> Steps[Task]:
        """TASK.GET (expired tasks too, until evicted)."""
        return (yield from self._call(cmd.get_args(task_id, self._owner(owner)), cmd.parse_task))

    @io_method
    def update(
        self,
        task_id: str,
        status: TaskStatus | None = None,
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Steps[Task]:
        """TASK.UPDATE: a new status (its message becomes ``message``, or none), or only a new
        message (terminal tasks too: a message change is not a transition)."""
        args = cmd.update_args(task_id, status, message, self._owner(owner))
        return (yield from self._call(args, cmd.parse_task))

    @io_method
    def set_variables(
        self, task_id: str, variables: Mapping[str, Any], *, owner: str | None = None
    ) -> Steps[Task]:
        """TASK.SETVARS: merge ``variables`` into the task's (a ``None`` value deletes a key)."""
        args = cmd.set_variables_args(task_id, variables, self._owner(owner))
        return (yield from self._call(args, cmd.parse_task))

    @io_method
    def set_result(self, task_id: str, result: Any, *, owner: str | None = None) -> Steps[None]:
        """TASK.SETRESULT: store ``result`` (any JSON value); the status does not change."""
        yield from self._call(
            cmd.set_result_args(task_id, result, self._owner(owner)), cmd.parse_ok
        )

    @io_method
    def result(
        self,
        task_id: str,
        *,
        block: int | None = None,
        any: bool = False,
        default: Any = None,
        owner: str | None = None,
    ) -> Steps[Any]:
        """TASK.RESULT: the stored result, parsed from JSON (a stored ``null`` is ``None``).

        Raises :class:`NotReady` while the task is not terminal (or has no result). With
        ``block`` (ms, 0 = forever) waits for the task to become terminal first, and raises the
        built-in ``TimeoutError`` when that does not happen in time.

        ``any=True`` (``ANY``) returns a stored result whatever the status, and ``default``
        when the task has none; with ``block`` it waits until a result is stored (or the task
        is terminal, as without ``any``).
        """
        args = cmd.result_args(task_id, block, any, self._owner(owner))
        reply = yield from self._call(args, lambda r: r)
        if reply is None:
            if block is None:
                return default  # ANY: no result stored
            raise TimeoutError(f"task {task_id} did not finish within {block} ms")
        return cmd.parse_json(reply)

    @io_method
    def complete(
        self,
        task_id: str,
        status: Literal["completed", "failed"],
        result: Any,
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Steps[Task]:
        """TASK.COMPLETE: the terminal status and the result together, or neither."""
        args = cmd.complete_args(task_id, status, result, message, self._owner(owner))
        return (yield from self._call(args, cmd.parse_task))

    @io_method
    def cancel(
        self, task_id: str, *, message: str | None = None, owner: str | None = None
    ) -> Steps[Task]:
        """TASK.CANCEL: ``cancelled`` (terminal tasks: :class:`InvalidTransition`)."""
        return (
            yield from self._call(
                cmd.cancel_args(task_id, message, self._owner(owner)), cmd.parse_task
            )
        )

    @io_method
    def list(
        self, *, cursor: str | None = None, limit: int | None = None, owner: str | None = None
    ) -> Steps[TaskPage]:
        """TASK.LIST: one page, newest task first; ``page.next_cursor`` while more remain."""
        return (
            yield from self._call(cmd.list_args(cursor, limit, self._owner(owner)), cmd.parse_page)
        )

    @io_method
    def delete(self, task_id: str, *, owner: str | None = None) -> Steps[bool]:
        """TASK.DEL: True if the task existed."""
        return (yield from self._call(cmd.delete_args(task_id, self._owner(owner)), cmd.parse_bool))

    @io_method
    def wait(
        self,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        block: int | None = None,
        owner: str | None = None,
    ) -> Steps[Task | None]:
        """TASK.WAIT: the task after its next change (with ``status``: as soon as its status
        differs from it, at once if it already does). ``block`` in ms, None or 0 = forever;
        None on timeout."""
        args = cmd.wait_args(task_id, status, block, self._owner(owner))
        return (yield from self._call(args, cmd.parse_optional_task))

    @io_method
    def cleanup(self, *, owner: str | None = None) -> Steps[int]:
        """TASK.CLEANUP: evict expired tasks now; how many were evicted."""
        return (yield from self._call(cmd.cleanup_args(self._owner(owner)), cmd.parse_int))

    @io_method
    def config(self, *, owner: str | None = None) -> Steps[dict[str, Any]]:
        """TASK.CONFIG: the server's effective store settings (on Redis: the limits this
        client passes to the functions)."""
        if self._functions is not None:
            return config_dict(self._functions.config)
        return (yield from self._call(cmd.config_args(self._owner(owner)), cmd.parse_config))

    # -- the 2026-07-28 commands (docs/commands.md, 2026-07-28); on any connection generation ------

    @io_method
    def ask(
        self,
        task_id: str,
        requests: Mapping[str, Mapping[str, Any]],
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Steps[Task]:
        """TASK.ASK: add input requests (key -> ``{"method": str, "params": {...}}``) and set
        ``input_required``, atomically (from ``working`` or ``input_required``).

        A key is 1-256 printable ASCII characters, unique over the task's whole life: one
        issued before raises :class:`InputKeyExists` and nothing changes; ``MESSAGE`` and
        ``OWNER`` (any case) are ValueError. A terminal task: :class:`InvalidTransition`; a
        request without a string ``method`` and an object ``params``: :class:`InvalidArgument`;
        over ``max_input_bytes``: :class:`TooLarge`.
        """
        args = cmd.ask_args(task_id, requests, message, self._owner(owner))
        return (yield from self._call(args, cmd.parse_task))

    @io_method
    def answer(
        self,
        task_id: str,
        responses: Mapping[str, Mapping[str, Any]],
        *,
        owner: str | None = None,
    ) -> Steps[int]:
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
            yield from self._call(cmd.answers_args(task_id, None, owner), lambda r: r)
            return 0
        return (yield from self._call(args, cmd.parse_int))

    @io_method
    def answers(
        self, task_id: str, *, block: int | None = None, owner: str | None = None
    ) -> Steps[dict[str, dict[str, Any]] | None]:
        """TASK.ANSWERS: every answer received so far (key -> response), not consumed.

        With ``block`` (ms, 0 = forever) first waits until no request is outstanding, the
        task is terminal or cancellation was requested; None when that does not happen in
        time.
        """
        args = cmd.answers_args(task_id, block, self._owner(owner))
        return (yield from self._call(args, cmd.parse_answers))

    @io_method
    def fail(
        self,
        task_id: str,
        error: Mapping[str, Any],
        *,
        message: str | None = None,
        owner: str | None = None,
    ) -> Steps[Task]:
        """TASK.FAIL: ``failed`` with a JSON-RPC error object (``code`` int, ``message`` str,
        ``data`` optional), atomically. First-generation TASK.RESULT then answers
        ``{"error": error}``."""
        args = cmd.fail_args(task_id, error, message, self._owner(owner))
        return (yield from self._call(args, cmd.parse_task))

    @io_method
    def request_cancel(
        self, task_id: str, *, message: str | None = None, owner: str | None = None
    ) -> Steps[Task]:
        """TASK.CANCEL … REQUEST: record a cooperative cancellation request (2026-07-28
        ``tasks/cancel``); the status does not change. It wakes ``wait`` and ``answers``
        waiters; repeated, or on a terminal task, it changes nothing (no error)."""
        args = cmd.request_cancel_args(task_id, message, self._owner(owner))
        return (yield from self._call(args, cmd.parse_task))

    @io_method
    def lease(self, task_id: str, worker: str, ms: int, *, owner: str | None = None) -> Steps[int]:
        """TASK.LEASE: take or renew this worker's lease on a task (``ms`` 0 releases it);
        returns the ms granted (0: released, or the task is terminal). Renew well before it
        runs out: a lease that runs out fails the task (``worker lost``). Another worker's
        live lease: :class:`LeaseHeld`."""
        return (
            yield from self._call(
                cmd.lease_args(task_id, worker, ms, self._owner(owner)), cmd.parse_int
            )
        )

    @io_method
    def inspect(self, task_id: str, *, owner: str | None = None) -> Steps[TaskInspection]:
        """TASK.INSPECT: the whole record (variables, requests, issued keys, answers, error,
        cancellation request, expiry) as a :class:`TaskInspection`."""
        return (
            yield from self._call(
                cmd.inspect_args(task_id, self._owner(owner)), cmd.parse_inspection
            )
        )
