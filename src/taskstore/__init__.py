"""taskstore: a Redis-protocol server that stores MCP (2025-11-25) tasks."""

from typing import Any

__version__ = "0.2.0"

__all__ = ["Server", "ServerThread", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `taskstore.protocol` and `taskstore.store` load on their own.
    if name in ("Server", "ServerThread"):
        import importlib

        return getattr(importlib.import_module("taskstore.server.app"), name)
    raise AttributeError(f"module 'taskstore' has no attribute {name!r}")
