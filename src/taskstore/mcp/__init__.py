"""taskstore for MCP servers written with the official MCP Python SDK.

Two SDK majors, two modules; each imports only its own SDK line, and this package imports
neither until a name of it is used:

- :mod:`taskstore.mcp.sdk1` — first-generation tasks (MCP 2025-11-25) for ``mcp>=1.23,<2``
  (extra ``taskstore[mcp1]``): :class:`TaskstoreTaskStore`, a drop-in for the SDK's
  ``InMemoryTaskStore``. Its names stay importable from here, as before the split::

      from taskstore.mcp import TaskstoreTaskStore

- :mod:`taskstore.mcp.tasks` — second-generation tasks (MCP 2026-07-28, the
  ``io.modelcontextprotocol/tasks`` extension) for ``mcp>=2.3,<3`` (extra ``taskstore[mcp]``):
  ``TasksExtension`` for ``MCPServer(extensions=[…])``. Import it from its module.

The two SDK majors cannot share one environment.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskstore.mcp.sdk1 import (
        DEFAULT_PAGE_SIZE,
        DEFAULT_POLL_INTERVAL_MS,
        RESULT_TYPE_KEY,
        TaskstoreTaskStore,
        decode_result,
        encode_result,
    )

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_POLL_INTERVAL_MS",
    "RESULT_TYPE_KEY",
    "TaskstoreTaskStore",
    "decode_result",
    "encode_result",
]

#: The submodules, imported on first use only (each needs its own SDK major).
_SUBMODULES = frozenset({"sdk1", "tasks", "demo", "_sdk"})


def __getattr__(name: str) -> Any:
    """The first-generation adapter's names (``taskstore.mcp.TaskstoreTaskStore``, and its
    module-level internals), imported from :mod:`taskstore.mcp.sdk1` on first use."""
    if name.startswith("__") or name in _SUBMODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module("taskstore.mcp.sdk1")
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
