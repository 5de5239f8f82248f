"""``mypy --strict`` on the SDK 2.x modules (``taskstore.mcp.tasks``, ``taskstore.mcp.demo``),
which only type-check against the SDK 2.x installed here; tests/test_mypy.py checks the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sdk2_modules_are_mypy_strict_clean(tmp_path: Path) -> None:
    mcp = ROOT / "src" / "taskstore" / "mcp"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--show-error-codes",
            f"--cache-dir={tmp_path / 'mypy'}",
            str(mcp / "tasks.py"),
            str(mcp / "demo.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Success: no issues found in 2 source files"), proc.stdout
