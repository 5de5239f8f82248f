"""Typed Python clients for taskstore's TASK commands, on top of redis-py.

    from taskstore.client import TaskClient, TaskNotFound

    with TaskClient("redis://127.0.0.1:6379") as tasks:
        task = tasks.create("tools/call", ttl=60_000)
        tasks.complete(task.task_id, "completed", {"content": []})
        print(tasks.get(task.task_id).to_wire())

:class:`TaskClient` is synchronous, :class:`AsyncTaskClient` its asyncio twin; both have one
method per TASK command and raise one exception class per error code (see
:mod:`taskstore.client.errors`), each carrying ``mcp_code``.

Each client pins the MCP task generation of its connections (``version=``, default
``"2025-11-25"``; ``"2026-07-28"`` for the ``io.modelcontextprotocol/tasks`` extension's
DetailedTask with ``input_requests`` / ``result`` / ``error``); :class:`Task` parses both.
"""

try:
    import redis as _redis  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("taskstore.client needs redis-py: pip install 'redis>=5'") from e

from taskstore.client._commands import DEFAULT_URL, UNLIMITED, URL_ENV, default_url
from taskstore.client.aio import AsyncTaskClient
from taskstore.client.errors import (
    AuthenticationRequired,
    IdentityError,
    InputKeyExists,
    InternalError,
    InvalidArgument,
    InvalidTransition,
    LeaseHeld,
    LibraryNotLoaded,
    LimitExceeded,
    NotReady,
    PermissionDenied,
    TaskError,
    TaskExists,
    TaskExpired,
    TaskNotFound,
    TooLarge,
    Unblocked,
    WrongPassword,
)
from taskstore.client.sync import TaskClient
from taskstore.client.task import (
    MCP_2025_11_25,
    MCP_2026_07_28,
    MCP_VERSIONS,
    TERMINAL_STATUSES,
    McpVersion,
    Task,
    TaskInspection,
    TaskPage,
    TaskStatus,
)

__all__ = [
    "DEFAULT_URL",
    "MCP_2025_11_25",
    "MCP_2026_07_28",
    "MCP_VERSIONS",
    "TERMINAL_STATUSES",
    "UNLIMITED",
    "URL_ENV",
    "AsyncTaskClient",
    "AuthenticationRequired",
    "IdentityError",
    "InputKeyExists",
    "InternalError",
    "InvalidArgument",
    "InvalidTransition",
    "LeaseHeld",
    "LibraryNotLoaded",
    "LimitExceeded",
    "McpVersion",
    "NotReady",
    "PermissionDenied",
    "Task",
    "TaskClient",
    "TaskError",
    "TaskExists",
    "TaskExpired",
    "TaskInspection",
    "TaskNotFound",
    "TaskPage",
    "TaskStatus",
    "TooLarge",
    "Unblocked",
    "WrongPassword",
    "default_url",
]
