"""``mypy --strict`` over the whole package (pyproject.toml's ``[tool.mypy]``): every module but
the two that need the MCP SDK 2.x, which tests/mcp2/test_typing.py checks in .venv-mcp2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_is_mypy_strict_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--show-error-codes", f"--cache-dir={ROOT / '.mypy_cache'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Success: no issues found"), proc.stdout
    checked = int(proc.stdout.split(" in ")[1].split()[0])
    modules = [p for p in (ROOT / "src" / "taskstore").rglob("*.py")]
    assert checked == len(modules) - 2  # all but mcp/tasks.py and mcp/demo.py
