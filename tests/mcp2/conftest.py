"""tests/mcp2: the SDK 2.x integration (``taskstore.mcp.tasks``, the demo server).

The MCP Python SDK 1.x and 2.x cannot share one environment. These tests run in the second
one, ``.venv-mcp2`` (scripts/test.sh makes it; tests/client/test_mcp2_env.py runs them from the
main suite): wherever the installed ``mcp`` is not 2.x, nothing here is collected.
"""

from __future__ import annotations

import importlib.metadata


def _sdk_major() -> int | None:
    try:
        return int(importlib.metadata.version("mcp").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


SDK_MAJOR = _sdk_major()

collect_ignore_glob: list[str] = [] if SDK_MAJOR == 2 else ["test_*.py"]
