"""An MCP server (Python SDK 2.x) whose `greet` tool runs as an MCP task kept in taskstore.

TASKSTORE_URL=redis://127.0.0.1:6379 PORT=8000 python docs/examples/mcp2_tasks_server.py
"""

import os

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

from taskstore.mcp.tasks import TasksExtension

tasks = TasksExtension(url=os.environ.get("TASKSTORE_URL", "redis://127.0.0.1:6379"))


class Name(BaseModel):
    name: str


@tasks.tool()  # task-capable: a client that declares the extension gets a task
async def greet(ctx: Context) -> str:
    await ctx.report_progress(0, 1, "asking for a name")  # the task's statusMessage
    answer = await ctx.elicit("Who are you?", Name)  # in a task: TASK.ASK, then the answer
    if answer.action != "accept" or answer.data is None:
        return "hello stranger"
    return f"hello {answer.data.name}"


server = MCPServer("greeter", extensions=[tasks])

if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    print(f"greeter on http://127.0.0.1:{port}/mcp", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
