"""A demo MCP server (SDK 2.x) whose tools run as tasks kept in taskstore (docs/mcp.md).

    python -m taskstore.mcp.demo --port 8000 --taskstore redis://127.0.0.1:6379

Serves Streamable HTTP at ``http://127.0.0.1:<port>/mcp`` with three task-capable tools:

- ``count_to(n, delay_ms=100)``: counts to ``n``, one step every ``delay_ms``, with the status
  message ``counted <i> of <n>``; result text ``counted to <n>``.
- ``ask_name()``: asks for ``{"name": string}`` (an elicitation: in a task, an input request);
  result text ``hello <name>``.
- ``fail_with(code, message)``: raises that JSON-RPC error (a task ends ``failed`` with it).

``--lease-ms`` is the lease this process holds on the tasks it runs (TasksExtension's
``lease_ms``, default 10000): if the process dies, they end ``failed`` (``worker lost``) within
that plus one sweep tick of the taskstore server.

Prints one line when it listens (``--port 0`` picks a free port; the line names it) and runs
until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field

from taskstore.client import default_url
from taskstore.mcp.tasks import DEFAULT_LEASE_MS, MAX_LEASE_MS, MIN_LEASE_MS, TasksExtension

__all__ = ["NameForm", "build_server", "main"]


class NameForm(BaseModel):
    """What ``ask_name`` elicits."""

    name: str = Field(description="Your name")


def build_server(taskstore_url: str | None = None, **extension_options: object) -> MCPServer:
    """The demo server, its tasks kept in the taskstore at ``taskstore_url``."""
    tasks = TasksExtension(url=taskstore_url, **extension_options)  # type: ignore[arg-type]

    @tasks.tool(description="Count to n, one step every delay_ms milliseconds.")
    async def count_to(n: int, ctx: Context, delay_ms: int = 100) -> str:
        for i in range(1, n + 1):
            await asyncio.sleep(delay_ms / 1000)
            await ctx.report_progress(i, n, f"counted {i} of {n}")
        return f"counted to {n}"

    @tasks.tool(description="Ask for your name, then greet you.")
    async def ask_name(ctx: Context) -> str:
        answer = await ctx.elicit("What is your name?", NameForm)
        if answer.action != "accept":
            return f"no name ({answer.action})"
        return f"hello {answer.data.name}"

    @tasks.tool(description="Fail with the JSON-RPC error (code, message).")
    async def fail_with(code: int, message: str) -> str:
        raise MCPError(code=code, message=message)

    return MCPServer(
        "taskstore-demo",
        instructions="Tools that run as MCP tasks (io.modelcontextprotocol/tasks) in taskstore.",
        extensions=[tasks],
        log_level="WARNING",
    )


async def serve(host: str, port: int, taskstore_url: str, lease_ms: int = DEFAULT_LEASE_MS) -> None:
    import uvicorn

    server = build_server(taskstore_url, lease_ms=lease_ms)
    app = server.streamable_http_app(streamable_http_path="/mcp", host=host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"taskstore MCP demo on http://{shown}:{actual}/mcp (tasks in {_redact(taskstore_url)})",
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[sock])


def _redact(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if user else f"{scheme}://***@{hostpart}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m taskstore.mcp.demo",
        description="A demo MCP server (Streamable HTTP at /mcp) whose tools run as tasks in "
        "taskstore (io.modelcontextprotocol/tasks, MCP 2026-07-28).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: a free one)")
    parser.add_argument(
        "--taskstore",
        default=None,
        help=f"taskstore URL (default: $TASKSTORE_URL, else {default_url()})",
    )
    parser.add_argument(
        "--lease-ms",
        type=int,
        default=DEFAULT_LEASE_MS,
        help="lease on each running task, renewed every third of it: a dead process's tasks "
        f"end failed within this plus one taskstore sweep tick (default {DEFAULT_LEASE_MS})",
    )
    args = parser.parse_args(argv)
    if not MIN_LEASE_MS <= args.lease_ms <= MAX_LEASE_MS:
        parser.error(f"--lease-ms must be between {MIN_LEASE_MS} and {MAX_LEASE_MS}")
    url = args.taskstore or os.environ.get("TASKSTORE_URL") or default_url()
    try:
        asyncio.run(serve(args.host, args.port, url, args.lease_ms))
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(f"taskstore MCP demo: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
