"""What the adapters say when their MCP SDK major is not installed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def needs_sdk(hint: str) -> Iterator[None]:
    """Turn the ImportError of the SDK imports inside into one that says what to install."""
    try:
        yield
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(hint) from e
