"""TaskstoreTaskStore inside the MCP Python SDK: an SDK ``Server`` with
``server.experimental.enable_tasks(store=TaskstoreTaskStore(...))`` and an SDK client session,
through tasks/get, tasks/result, tasks/list and tasks/cancel; and across OS processes:
``wait_for_update`` in one process woken by ``update_task`` in another, and the SDK's own
tasks/result handler woken by a worker process that completes the task."""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

pytest.importorskip("mcp.shared.experimental.tasks.store")

import anyio
import mcp.types as types
from mcp.client.session import ClientSession
from mcp.server.experimental.task_context import ServerTaskContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import McpError
from mcp.shared.memory import create_connected_server_and_client_session

from taskstore.client import TaskClient
from taskstore.mcp import TaskstoreTaskStore

from .conftest import PYTHON, blocked_clients, child_env, until_blocked

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

Work = Callable[[ServerTaskContext, dict[str, Any]], Awaitable[types.CallToolResult]]


def make_server(store: TaskstoreTaskStore, work: Work) -> Server[Any, Any]:
    server: Server[Any, Any] = Server("taskstore-test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.experimental.enable_tasks(store=store)

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return [
            types.Tool(
                name="job",
                inputSchema={"type": "object"},
                execution=types.ToolExecution(taskSupport=types.TASK_REQUIRED),
            )
        ]

    @server.call_tool()
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CreateTaskResult:
        ctx = server.request_context

        async def run(task: ServerTaskContext) -> types.CallToolResult:
            return await work(task, arguments)

        return await ctx.experimental.run_task(run)

    return server


@asynccontextmanager
async def session_for(url: str, work: Work) -> AsyncIterator[ClientSession]:
    async with (
        TaskstoreTaskStore(url) as store,
        create_connected_server_and_client_session(make_server(store, work)) as session,
    ):
        yield session


async def until_terminal(session: ClientSession, task_id: str) -> types.GetTaskResult:
    while True:
        task = await session.experimental.get_task(task_id)
        if task.status in ("completed", "failed", "cancelled"):
            return task
        await anyio.sleep(0.01)


def test_task_augmented_tool_call(server: Any) -> None:
    async def work(task: ServerTaskContext, args: dict[str, Any]) -> types.CallToolResult:
        await task.update_status("halfway")
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=str(args["n"] * 2))],
            structuredContent={"double": args["n"] * 2},
        )

    async def main() -> None:
        async with session_for(server.url, work) as session:
            created = await session.experimental.call_tool_as_task("job", {"n": 21}, ttl=30_000)
            task_id = created.task.taskId
            assert created.task.status == "working" and created.task.ttl == 30_000
            assert created.task.pollInterval == 500
            done = await until_terminal(session, task_id)
            assert (done.status, done.statusMessage) == ("completed", "halfway")
            result = await session.experimental.get_task_result(task_id, types.CallToolResult)
            assert result.structuredContent == {"double": 42}
            assert result.content == [types.TextContent(type="text", text="42")]
            # the SDK adds the related-task _meta; the adapter's own marker is gone
            assert result.meta == {"io.modelcontextprotocol/related-task": {"taskId": task_id}}
            listed = await session.experimental.list_tasks()
            assert [t.taskId for t in listed.tasks] == [task_id]
            with pytest.raises(McpError) as e:
                await session.experimental.get_task("unknown")
            assert e.value.error.code == types.INVALID_PARAMS
            with pytest.raises(McpError) as e:
                await session.experimental.cancel_task(task_id)
            assert e.value.error.code == types.INVALID_PARAMS
        with TaskClient(server.url) as c:  # it is in taskstore
            stored = c.get(task_id)
            assert stored.status == "completed" and stored.ttl == 30_000

    asyncio.run(main())


def test_failing_work_and_cancel(server: Any) -> None:
    async def work(task: ServerTaskContext, args: dict[str, Any]) -> types.CallToolResult:
        if args.get("fail"):
            raise RuntimeError("no luck")
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def main() -> None:
        async with session_for(server.url, work) as session:
            failed = await session.experimental.call_tool_as_task("job", {"fail": True})
            done = await until_terminal(session, failed.task.taskId)
            assert (done.status, done.statusMessage) == ("failed", "no luck")
            payload = await session.experimental.get_task_result(
                failed.task.taskId, types.GetTaskPayloadResult
            )
            # no result was stored: only the related-task _meta
            related = {"io.modelcontextprotocol/related-task": {"taskId": failed.task.taskId}}
            assert payload.model_dump(by_alias=True, exclude_none=True) == {"_meta": related}

            running = await session.experimental.call_tool_as_task("job", {})
            cancelled = await session.experimental.cancel_task(running.task.taskId)
            assert cancelled.status == "cancelled"
            with pytest.raises(McpError) as e:
                await session.experimental.cancel_task(running.task.taskId)
            assert e.value.error.code == types.INVALID_PARAMS

    asyncio.run(main())


# -- across OS processes ------------------------------------------------------------------

WAITER = textwrap.dedent(
    """
    import asyncio, sys
    from taskstore.mcp import TaskstoreTaskStore

    async def main():
        async with TaskstoreTaskStore(sys.argv[1]) as store:
            await store.wait_for_update(sys.argv[2])
            task = await store.get_task(sys.argv[2])
            print("woken", task.status, task.statusMessage, flush=True)

    asyncio.run(main())
    """
)

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from mcp.types import CallToolResult, TextContent
    from taskstore.mcp import TaskstoreTaskStore

    async def main():
        async with TaskstoreTaskStore(sys.argv[1]) as store:
            result = CallToolResult(content=[TextContent(type="text", text="from the worker")])
            await store.store_result(sys.argv[2], result)
            await store.update_task(sys.argv[2], status="completed")

    asyncio.run(main())
    """
)


def test_wait_for_update_is_woken_from_another_process(server: Any) -> None:
    async def parent() -> None:
        async with TaskstoreTaskStore(server.url) as store:
            await store.create_task(types.TaskMetadata(ttl=60_000), task_id="xp")
            child = subprocess.Popen(
                [PYTHON, "-c", WAITER, server.url, "xp"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=child_env(),
            )
            try:
                await asyncio.to_thread(until_blocked, server.url)  # the child is waiting
                # a message alone is no status change: the child stays parked
                await store.update_task("xp", status_message="progress")
                assert blocked_clients(server.url) == 1 and child.poll() is None
                # the status change in this process wakes the other one
                await store.update_task("xp", status="input_required")
                out, err = await asyncio.to_thread(child.communicate, timeout=60)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.communicate()
            assert child.returncode == 0, err
            assert out.strip() == "woken input_required progress"

    asyncio.run(parent())


def test_sdk_tasks_result_is_woken_by_a_worker_process(server: Any) -> None:
    """The SDK's tasks/result handler (get_task, wait_for_update, get_task again) in this
    process, the work finished by another process through the same taskstore."""

    async def never(task: ServerTaskContext, args: dict[str, Any]) -> types.CallToolResult:
        raise AssertionError("not called")

    async def main() -> None:
        async with session_for(server.url, never) as session:
            # an id without a session scope: any session may read it (the SDK's rule)
            async with TaskstoreTaskStore(server.url) as store:
                await store.create_task(types.TaskMetadata(ttl=60_000), task_id="job-7")
            pending = asyncio.ensure_future(
                session.experimental.get_task_result("job-7", types.CallToolResult)
            )
            await asyncio.to_thread(until_blocked, server.url)  # the handler is waiting
            worker = await asyncio.to_thread(
                subprocess.run,
                [PYTHON, "-c", WORKER, server.url, "job-7"],
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=60,
            )
            assert worker.returncode == 0, worker.stderr
            result = await asyncio.wait_for(pending, 60)
            assert result.content == [types.TextContent(type="text", text="from the worker")]
            assert (await session.experimental.get_task("job-7")).status == "completed"

    asyncio.run(main())
