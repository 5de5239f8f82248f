"""An MCP server that keeps its tasks in taskstore, and a client that runs its tool as a task.

Start taskstore (`taskstore-server`), then run this file: it is the client, and it starts
itself a second time (`... serve`) as the MCP server, over stdio. Both processes find taskstore
through TASKSTORE_URL (default redis://127.0.0.1:6379).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import anyio
import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.experimental.task_context import ServerTaskContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from taskstore.client import TaskClient
from taskstore.mcp import TaskstoreTaskStore

# mcp 1.x marks its experimental tasks API as deprecated (it is to leave the spec core)
warnings.filterwarnings("ignore", category=DeprecationWarning)

# -- the MCP server ---------------------------------------------------------------------------

server: Server[Any, Any] = Server("taskstore-example")
server.experimental.enable_tasks(store=TaskstoreTaskStore())  # the one line: tasks in taskstore


@server.list_tools()
async def list_tools() -> list[types.Tool]:
    return [
        types.Tool(
            name="slow_sum",
            description="Add numbers, slowly, as a task",
            inputSchema={
                "type": "object",
                "properties": {"numbers": {"type": "array", "items": {"type": "number"}}},
                "required": ["numbers"],
            },
            execution=types.ToolExecution(taskSupport=types.TASK_REQUIRED),
        )
    ]


@server.call_tool()
async def call_tool(name: str, arguments: dict[str, Any]) -> types.CreateTaskResult:
    ctx = server.request_context
    ctx.experimental.validate_task_mode(types.TASK_REQUIRED)

    async def work(task: ServerTaskContext) -> types.CallToolResult:
        total = 0.0
        for n in arguments["numbers"]:
            await task.update_status(f"adding {n}")
            await anyio.sleep(0.1)
            total += n
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"{total:g}")])

    return await ctx.experimental.run_task(work)


async def serve() -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


# -- the client -------------------------------------------------------------------------------


async def client() -> None:
    # the MCP server is this file again; pass the environment on (TASKSTORE_URL, PYTHONPATH)
    params = StdioServerParameters(
        command=sys.executable, args=[os.path.abspath(__file__), "serve"], env=dict(os.environ)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        created = await session.experimental.call_tool_as_task(
            "slow_sum", {"numbers": [1, 2, 3]}, ttl=60_000
        )
        task_id = created.task.taskId
        print(f"created: {created.task.status}")

        while True:  # poll tasks/get, as often as the task's pollInterval suggests
            task = await session.experimental.get_task(task_id)
            print(f"tasks/get: {task.status} {task.statusMessage or ''}".rstrip())
            if task.status in ("completed", "failed", "cancelled"):
                break
            await anyio.sleep((task.pollInterval or 500) / 1000)

        result = await session.experimental.get_task_result(task_id, types.CallToolResult)
        content = result.content[0]
        assert isinstance(content, types.TextContent)
        print(f"tasks/result: {content.text}")

    # the task is in taskstore, where any process (or redis-cli TASK.GET) can read it
    with TaskClient() as tasks:
        print(f"taskstore: {tasks.get(task_id).status}")


if __name__ == "__main__":
    anyio.run(serve if sys.argv[1:] == ["serve"] else client)
