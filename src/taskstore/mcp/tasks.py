"""MCP tasks, second generation (``io.modelcontextprotocol/tasks``, MCP 2026-07-28), kept in
taskstore, for servers written with the official MCP Python SDK 2.x (``mcp>=2.3,<3``, the
``taskstore[mcp]`` extra)::

    from mcp.server.mcpserver import Context, MCPServer
    from taskstore.mcp.tasks import TasksExtension

    tasks = TasksExtension(url="redis://127.0.0.1:6379")

    @tasks.tool()                      # a task-capable tool, contributed to the server
    async def count_to(n: int, ctx: Context) -> str:
        ...

    server = MCPServer("demo", extensions=[tasks])

A ``tools/call`` of a task-capable tool whose request declares the extension (per-request
client capabilities, 2026-07-28) gets a ``CreateTaskResult`` (``resultType: "task"``) once the
task exists in taskstore (TASK.CREATE); the tool then runs in the background of this process
and ends the task with TASK.COMPLETE (its ``CallToolResult``, ``isError`` results included) or
TASK.FAIL (a JSON-RPC error it raised). ``tasks/get`` is TASK.GET, ``tasks/update`` TASK.ANSWER
and ``tasks/cancel`` TASK.CANCEL … REQUEST; every other request, and every request that does not
declare the extension, is served by the SDK as before.

Inside a task, a tool's server-to-client requests (``ctx.elicit(...)``, sampling, roots) become
input requests of the task (TASK.ASK): the task goes ``input_required``, the client answers
with ``tasks/update``, and the tool's ``await`` returns the answer (TASK.ANSWERS … BLOCK).
``ctx.report_progress(..., message=...)`` sets the task's status message. A cancellation
request (``tasks/cancel``, from any replica) cancels the tool's asyncio task and ends the task
``cancelled``.

The process running a task holds a lease on it (TASK.LEASE, ``lease_ms``, renewed every third of
it): if that process dies, taskstore ends the task ``failed`` (``worker lost: lease expired``)
within ``lease_ms`` plus one sweep tick of the taskstore server. docs/mcp.md ("MCP SDK 2.x: the
tasks extension") has the details.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import secrets
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

from taskstore.mcp._sdk import needs_sdk

with needs_sdk(
    "taskstore.mcp.tasks needs the MCP Python SDK 2.x (mcp>=2.3,<3): "
    "pip install 'taskstore[mcp]' (for the SDK 1.x use taskstore.mcp.TaskstoreTaskStore)"
):
    from mcp.server.connection import Connection
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from mcp.server.extension import Extension, MethodBinding, ToolBinding
    from mcp.server.request_state import authenticated_principal
    from mcp.server.session import ServerSession
    from mcp.shared.exceptions import MCPError
    from mcp.shared.transport_context import TransportContext
    from mcp_types import (
        INTERNAL_ERROR,
        INVALID_PARAMS,
        CallToolRequestParams,
        ErrorData,
        RequestParams,
    )
    from mcp_types import methods as mcp_methods
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from taskstore.client import (
    MCP_2026_07_28,
    AsyncTaskClient,
    InvalidTransition,
    LeaseHeld,
    TaskError,
    TaskExpired,
    TaskNotFound,
    TooLarge,
)

__all__ = [
    "EXTENSION_ID",
    "CancelTaskParams",
    "GetTaskParams",
    "TasksExtension",
    "UpdateTaskParams",
    "new_worker_id",
    "principal_owner",
]

logger = logging.getLogger(__name__)

#: The extension's identifier (SEP-2663), advertised under ``capabilities.extensions``.
EXTENSION_ID: Final = "io.modelcontextprotocol/tasks"
#: How long one blocking TASK.WAIT / TASK.ANSWERS of a worker lasts before it looks again (ms).
DEFAULT_WAIT_CHUNK_MS: Final = 2_000
#: A running task's lease (ms): a dead process's task ends ``failed`` within this plus one
#: sweep tick of the taskstore server (``1000/hz`` ms, 100 ms by default).
DEFAULT_LEASE_MS: Final = 10_000
#: TASK.LEASE's bounds: at least this much (renewed every third of it), at most a day.
MIN_LEASE_MS: Final = 30
MAX_LEASE_MS: Final = 86_400_000

_F = TypeVar("_F", bound=Callable[..., Any])
OwnerOf = Callable[[ServerRequestContext[Any, Any]], str | None]


# -- request params of the extension's methods ------------------------------------------------


class _Params(RequestParams):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class GetTaskParams(_Params):
    """``tasks/get`` params: ``{taskId}`` (a missing or non-string id: invalid params)."""

    task_id: str = Field(alias="taskId", strict=True)


class CancelTaskParams(GetTaskParams):
    """``tasks/cancel`` params: ``{taskId}``."""


class UpdateTaskParams(GetTaskParams):
    """``tasks/update`` params: ``{taskId, inputResponses}``, each response a JSON object."""

    input_responses: dict[str, dict[str, Any]] = Field(alias="inputResponses")


def new_worker_id() -> str:
    """A fresh worker id: ``<hostname>-<pid>-<8 hex>`` (printable ASCII, no spaces)."""
    host = "".join(c if 0x21 <= ord(c) <= 0x7E else "_" for c in socket.gethostname())[:200]
    return f"{host or 'host'}-{os.getpid()}-{secrets.token_hex(4)}"


# -- owners -----------------------------------------------------------------------------------


def principal_owner(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """The default owner of a request's tasks: the request's authenticated principal (the
    SDK's ``authenticated_principal``: OAuth client, issuer, subject) as ``mcp-<sha256 hex>``,
    or ``None`` without authentication (the taskstore connection's own owner: ``local`` for an
    anonymous connection). A non-None owner is sent as ``OWNER``: the taskstore user needs the
    ``impersonate`` permission."""
    principal = authenticated_principal(ctx)
    if principal is None:
        return None
    return "mcp-" + hashlib.sha256(principal.encode()).hexdigest()[:40]


def _error_object(exc: BaseException) -> dict[str, Any]:
    """The JSON-RPC error object of an exception a tool raised (as the SDK would answer)."""
    if isinstance(exc, MCPError):
        error = exc.error
    elif isinstance(exc, ValidationError):
        error = ErrorData(code=INVALID_PARAMS, message="Invalid request parameters", data="")
    else:
        error = ErrorData(code=INTERNAL_ERROR, message="Internal server error")
    return error.model_dump(by_alias=True, mode="json", exclude_none=True)


def _as_mcp_error(err: TaskError) -> MCPError:
    code = err.mcp_code if err.mcp_code is not None else INTERNAL_ERROR
    return MCPError(code=code, message=err.detail)


# -- the extension ----------------------------------------------------------------------------


class TasksExtension(Extension):
    """The ``io.modelcontextprotocol/tasks`` extension for ``MCPServer(extensions=[…])``,
    backed by a taskstore server.

    ``url``: the taskstore (``redis://[user:pw@]host:port``; None: ``$TASKSTORE_URL``, else
    ``redis://127.0.0.1:6379``), or a Redis / Valkey with the taskstore Functions library
    (told apart on connect: :meth:`AsyncTaskClient.from_url`); ``client_options`` go to
    ``from_url`` (redis-py options, and ``config=``, the limits the library applies on Redis).
    Its connections render the 2026-07-28 generation.

    Task-capable tools: those registered with :meth:`tool` (contributed to the server by the
    extension) and the names in ``task_tools`` (tools registered the usual way).

    ``owner``: whose tasks a request sees. A string (every request), a callable
    ``ctx -> str | None`` (per request), or None (default: :func:`principal_owner`). None as
    an owner means the taskstore connection's own.

    ``ttl`` / ``poll_interval``: of new tasks, in ms (None: the taskstore's defaults).
    ``wait_chunk_ms``: the longest single blocking wait of a worker (the most a cancellation
    request can go unseen if it lands between two of the worker's reads).

    ``lease_ms``: the lease (TASK.LEASE) this process holds on each task it runs, taken before
    the ``CreateTaskResult`` is sent, renewed every ``lease_ms / 3`` while the tool runs and
    released when the worker has ended the task. If the process dies (or cannot reach
    taskstore for that long), the task ends ``failed`` with ``{"code": -32603, "message":
    "worker lost: lease expired", "data": {"worker": <worker_id>}}`` within ``lease_ms`` plus
    one sweep tick of the taskstore server (100 ms by default). Between 30 and 86400000.
    ``worker_id``: the lease holder's name (default: :func:`new_worker_id`, unique per extension).
    """

    identifier = EXTENSION_ID

    def __init__(
        self,
        url: str | None = None,
        *,
        owner: str | OwnerOf | None = None,
        task_tools: Iterable[str] = (),
        ttl: int | None = None,
        poll_interval: int | None = None,
        wait_chunk_ms: int = DEFAULT_WAIT_CHUNK_MS,
        lease_ms: int = DEFAULT_LEASE_MS,
        worker_id: str | None = None,
        **client_options: Any,
    ) -> None:
        if isinstance(task_tools, str):
            raise TypeError("task_tools is a collection of tool names, not one string")
        if isinstance(lease_ms, bool) or not isinstance(lease_ms, int):
            raise TypeError("lease_ms is a whole number of milliseconds")
        if not MIN_LEASE_MS <= lease_ms <= MAX_LEASE_MS:
            raise ValueError(f"lease_ms must be between {MIN_LEASE_MS} and {MAX_LEASE_MS}")
        self.lease_ms = lease_ms
        self.worker_id = worker_id if worker_id is not None else new_worker_id()
        self.url = url
        self.ttl = ttl
        self.poll_interval = poll_interval
        self.wait_chunk_ms = wait_chunk_ms
        self._owner = owner
        self._task_tools: set[str] = set(task_tools)
        self._bindings: list[ToolBinding] = []
        self._client_options = client_options
        self._clients: dict[asyncio.AbstractEventLoop, AsyncTaskClient] = {}
        self._workers: set[asyncio.Task[None]] = set()

    # -- declaring task-capable tools ---------------------------------------------------------

    def tool(self, name: str | None = None, **tool_options: Any) -> Callable[[_F], _F]:
        """Decorator: a task-capable tool, contributed to the server by the extension (so
        decorate before ``MCPServer(extensions=[…])`` is built). ``name`` and
        ``tool_options`` (title, description, annotations, meta, structured_output …) are
        ``MCPServer.add_tool``'s."""

        options = dict(tool_options)
        meta = options.pop("meta", None)

        def register(fn: _F) -> _F:
            tool_name = name or fn.__name__
            self._bindings.append(
                ToolBinding(fn=fn, meta=meta, kwargs={"name": tool_name, **options})
            )
            self._task_tools.add(tool_name)
            return fn

        return register

    @property
    def task_tools(self) -> frozenset[str]:
        """The names of the task-capable tools."""
        return frozenset(self._task_tools)

    def is_task_tool(self, name: str) -> bool:
        return name in self._task_tools

    # -- Extension ----------------------------------------------------------------------------

    def tools(self) -> Sequence[ToolBinding]:
        return tuple(self._bindings)

    def methods(self) -> Sequence[MethodBinding]:
        modern = frozenset(MODERN_PROTOCOL_VERSIONS)
        return (
            MethodBinding("tasks/get", GetTaskParams, self._tasks_get, modern),
            MethodBinding("tasks/update", UpdateTaskParams, self._tasks_update, modern),
            MethodBinding("tasks/cancel", CancelTaskParams, self._tasks_cancel, modern),
        )

    async def intercept_tool_call(
        self,
        params: CallToolRequestParams,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> HandlerResult:
        if not self.wants_task(params, ctx):
            return await call_next(ctx)
        owner = self.owner_of(ctx)
        client = await self.client()
        try:
            task = await client.create(
                "tools/call", ttl=self.ttl, poll_interval=self.poll_interval, owner=owner
            )
        except TaskError as e:
            raise _as_mcp_error(e) from None
        try:
            # held before anyone learns of the task: a process that dies from here on leaves
            # a task that ends failed (worker lost), never one working for ever
            await client.lease(task.task_id, self.worker_id, self.lease_ms, owner=owner)
        except TaskError as e:
            with contextlib.suppress(TaskError):
                await client.fail(task.task_id, _error_object(_as_mcp_error(e)), owner=owner)
            raise _as_mcp_error(e) from None
        # the task exists (a tasks/get for it resolves): run the tool, then answer
        worker = _Worker(self, client, task.task_id, owner, ctx, call_next)
        running = asyncio.get_running_loop().create_task(
            worker.run(), name=f"taskstore-mcp-task-{task.task_id}"
        )
        self._workers.add(running)
        running.add_done_callback(self._workers.discard)
        return {"resultType": "task", **task.to_wire()}

    # -- helpers ------------------------------------------------------------------------------

    def wants_task(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any]
    ) -> bool:
        """Whether this ``tools/call`` becomes a task: a task-capable tool, a 2026-07-28
        request, and the extension declared in this request's client capabilities."""
        if not self.is_task_tool(params.name):
            return False
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return False
        capabilities = ctx.session.client_capabilities
        declared = capabilities.extensions if capabilities is not None else None
        return bool(declared) and EXTENSION_ID in declared  # type: ignore[operator]

    def owner_of(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        """The taskstore owner of this request's tasks (see ``owner=``)."""
        if self._owner is None:
            return principal_owner(ctx)
        if isinstance(self._owner, str):
            return self._owner
        return self._owner(ctx)

    async def client(self) -> AsyncTaskClient:
        """The client of the running event loop, made on first use with
        :meth:`AsyncTaskClient.from_url`: the URL may name a taskstore or a Redis / Valkey
        with the taskstore Functions library (docs/production.md)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for old in [old for old in self._clients if old.is_closed()]:
                del self._clients[old]
            client = await AsyncTaskClient.from_url(
                self.url, version=MCP_2026_07_28, **self._client_options
            )
            made = self._clients.setdefault(loop, client)
            if made is not client:  # another request made one meanwhile: use that
                await client.aclose()
                client = made
        return client

    @property
    def running(self) -> int:
        """How many tasks this process is running now."""
        return len(self._workers)

    async def aclose(self) -> None:
        """Stop this process's workers (their tasks stay as they are in taskstore) and close
        the taskstore connections of the running loop."""
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(BaseException):
                await worker
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    # -- tasks/get, tasks/update, tasks/cancel ------------------------------------------------

    async def _tasks_get(
        self, ctx: ServerRequestContext[Any, Any], params: GetTaskParams
    ) -> dict[str, Any]:
        try:
            task = await (await self.client()).get(params.task_id, owner=self.owner_of(ctx))
        except TaskError as e:
            raise _as_mcp_error(e) from None
        return {**task.to_wire(), "resultType": "complete"}

    async def _tasks_update(
        self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams
    ) -> dict[str, Any]:
        try:
            await (await self.client()).answer(
                params.task_id, params.input_responses, owner=self.owner_of(ctx)
            )
        except (TaskNotFound, TaskExpired):
            pass  # the spec: the ack also for unknown ids
        except TaskError as e:
            raise _as_mcp_error(e) from None
        return {}

    async def _tasks_cancel(
        self, ctx: ServerRequestContext[Any, Any], params: CancelTaskParams
    ) -> dict[str, Any]:
        try:
            await (await self.client()).request_cancel(params.task_id, owner=self.owner_of(ctx))
        except (TaskNotFound, TaskExpired):
            pass  # the spec: the ack also for unknown ids
        except TaskError as e:
            raise _as_mcp_error(e) from None
        return {}


# -- running a tool as a task -----------------------------------------------------------------


class _TaskChannel:
    """The back-channel of a tool running as a task (an SDK ``DispatchContext``): requests
    become the task's input requests, progress messages its status message, notifications
    are dropped (the tools/call request was answered long ago)."""

    def __init__(self, worker: _Worker, request_id: Any) -> None:
        self._worker = worker
        self.request_id = request_id
        self.transport = TransportContext(kind="taskstore-task", can_send_request=True)
        self.message_metadata = None
        self.cancel_requested = anyio.Event()

    @property
    def can_send_request(self) -> bool:
        return True

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        return await self._worker.ask(method, params)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        logger.debug("task %s: dropped %s (no stream to carry it)", self._worker.task_id, method)

    async def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        if message is not None:
            await self._worker.set_message(message)


async def _stop(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it is done, cancelling again while it runs: on Python
    3.11 ``asyncio.wait_for`` (which redis-py awaits around socket writes) can swallow a
    cancellation that lands as its inner future completes, so one ``cancel()`` may not stop a
    task that is talking to taskstore."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.005)


class _Worker:
    """Runs one tool call as task ``task_id`` and ends the task."""

    def __init__(
        self,
        ext: TasksExtension,
        client: AsyncTaskClient,
        task_id: str,
        owner: str | None,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> None:
        self.ext = ext
        self.client = client
        self.task_id = task_id
        self.owner = owner
        self.call_next = call_next
        self.ctx = self._task_context(ctx)
        #: set once the tool is done or is to stop: the worker's loops end
        self.stopping = False
        #: set when another worker holds the task's lease: this one leaves the task alone
        self.lease_lost = False

    def _task_context(self, ctx: ServerRequestContext[Any, Any]) -> ServerRequestContext[Any, Any]:
        """The request context the tool sees: the request's, with a session whose requests,
        progress and notifications go through :class:`_TaskChannel`."""
        channel = _TaskChannel(self, ctx.request_id)
        session = ctx.session
        client_params = session.client_params
        connection = Connection.from_envelope(
            ctx.protocol_version,
            client_params.client_info if client_params is not None else None,
            session.client_capabilities,
            outbound=channel,
        )
        task_session = ServerSession(channel, connection, request_meta=ctx.meta)
        return dataclasses.replace(
            ctx, session=task_session, close_sse_stream=None, close_standalone_sse_stream=None
        )

    async def run(self) -> None:
        tool = asyncio.create_task(self._call_tool())
        watcher = asyncio.create_task(self._watch_cancellation())
        renewer = asyncio.create_task(self._renew_lease())
        try:
            done, _ = await asyncio.wait(
                {tool, watcher, renewer}, return_when=asyncio.FIRST_COMPLETED
            )
            self.stopping = True
            if tool not in done:  # cancellation requested, ended elsewhere, or lease lost
                await _stop(tool)
            # end the task first: the watcher's TASK.WAIT wakes on that change and returns by
            # itself (stopping it before would cost a cancelled redis-py read)
            await self._finish(tool)
            await _stop(watcher)
            await _stop(renewer)
            await self._release_lease()
        except asyncio.CancelledError:
            # this process stops: the lease is kept (it runs out and the task ends failed,
            # worker lost: nobody runs it any more)
            self.stopping = True
            tool.cancel()
            watcher.cancel()
            renewer.cancel()
            raise
        except Exception:
            renewer.cancel()
            logger.exception("task %s: the worker failed", self.task_id)

    async def _call_tool(self) -> HandlerResult:
        return await self.call_next(self.ctx)

    async def _finish(self, tool: asyncio.Task[HandlerResult]) -> None:
        """End the task with what the tool did: a result, an error, or cancellation."""
        if self.lease_lost:
            return
        try:
            if not tool.done() or tool.cancelled():
                await self.client.cancel(self.task_id, owner=self.owner)
            elif (exc := tool.exception()) is not None:
                if not isinstance(exc, MCPError | ValidationError):
                    logger.error("task %s: the tool raised", self.task_id, exc_info=exc)
                await self.client.fail(self.task_id, _error_object(exc), owner=self.owner)
            else:
                await self._complete(tool.result())
        except (InvalidTransition, TaskExpired, TaskNotFound) as e:
            # ended (or gone) meanwhile: the first terminal status stays
            logger.debug("task %s: not ended by this worker: %s", self.task_id, e)

    async def _complete(self, result: HandlerResult) -> None:
        if isinstance(result, BaseModel):
            if getattr(result, "result_type", None) == "input_required":
                error = {
                    "code": INTERNAL_ERROR,
                    "message": "the tool asked for input with an input_required result, "
                    "which a task cannot carry: use ctx.elicit(...) inside tasks",
                }
                await self.client.fail(self.task_id, error, owner=self.owner)
                return
            wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        else:
            wire = dict(result or {})
        try:
            wire = mcp_methods.serialize_server_result(
                "tools/call", self.ctx.protocol_version, wire
            )
        except (KeyError, ValueError, ValidationError):
            logger.debug("task %s: result kept as the tool returned it", self.task_id)
        try:
            await self.client.complete(self.task_id, "completed", wire, owner=self.owner)
        except TooLarge as e:
            error = {"code": INTERNAL_ERROR, "message": f"the tool's result is too large: {e}"}
            await self.client.fail(self.task_id, error, owner=self.owner)

    async def _renew_lease(self) -> None:
        """Renew the lease every third of it while the tool runs; return when the lease is
        gone for good (the task ended or another worker holds it): the tool stops."""
        ext = self.ext
        interval = ext.lease_ms / 3000
        while not self.stopping:
            await asyncio.sleep(interval)
            if self.stopping:
                return
            try:
                granted = await self.client.lease(
                    self.task_id, ext.worker_id, ext.lease_ms, owner=self.owner
                )
            except LeaseHeld as e:
                # ours ran out and another worker took the task: stop, leave the task to it
                logger.warning("task %s: lease lost: %s", self.task_id, e)
                self.lease_lost = True
                return
            except (TaskNotFound, TaskExpired):
                return
            except Exception as e:  # taskstore unreachable: try again (sooner)
                logger.warning("task %s: lease not renewed: %s", self.task_id, e)
                interval = min(interval, 0.1)
                continue
            if granted == 0:  # terminal: ended elsewhere (e.g. worker lost after a stall)
                return
            interval = ext.lease_ms / 3000

    async def _release_lease(self) -> None:
        if self.lease_lost:
            return
        try:
            await self.client.lease(self.task_id, self.ext.worker_id, 0, owner=self.owner)
        except (LeaseHeld, TaskNotFound, TaskExpired) as e:
            logger.debug("task %s: lease not released: %s", self.task_id, e)

    async def _watch_cancellation(self) -> None:
        """Return once cancellation was requested or the task ended (or vanished) elsewhere."""
        chunk = self.ext.wait_chunk_ms
        while not self.stopping:
            try:
                record = await self.client.inspect(self.task_id, owner=self.owner)
            except (TaskNotFound, TaskExpired):
                return
            if record.cancel_requested or record.task.is_terminal:
                return
            with contextlib.suppress(TaskNotFound, TaskExpired):
                await self.client.wait(self.task_id, block=chunk, owner=self.owner)

    # -- the task channel ---------------------------------------------------------------------

    async def ask(self, method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """A server-to-client request of the tool: an input request of the task, answered
        through ``tasks/update``; returns the client's answer."""
        key = f"{method.rsplit('/', 1)[-1]}-{uuid.uuid4().hex[:16]}"
        request = {"method": method, "params": dict(params or {})}
        await self.client.ask(self.task_id, {key: request}, owner=self.owner)
        chunk = self.ext.wait_chunk_ms
        while True:
            answers = await self.client.answers(self.task_id, block=chunk, owner=self.owner)
            if answers is not None and key in answers:
                return answers[key]
            if answers is not None or self.stopping:
                # back early without the answer: cancelled or ended; the watcher stops the tool
                await asyncio.sleep(chunk / 1000)

    async def set_message(self, message: str) -> None:
        try:
            await self.client.update(self.task_id, message=message, owner=self.owner)
        except TaskError as e:
            logger.debug("task %s: status message not set: %s", self.task_id, e)
