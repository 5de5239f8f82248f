"""The MCP Python SDK 2.x integration (tests/mcp2) from the main suite.

The SDK's two majors cannot share one environment: this suite's has ``mcp`` 1.x (the
first-generation adapter and the SDK's own task tests), tests/mcp2 needs 2.x. scripts/test.sh
keeps a second virtual environment, ``.venv-mcp2`` (``$TASKSTORE_MCP2_PYTHON`` names another
interpreter), and this test runs tests/mcp2 there, then validates every CreateTaskResult and
tasks/get result those tests saw against the io.modelcontextprotocol/tasks schema (schema_v2:
the draft JSON Schema, or the official npm validators).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import schema_v2

ROOT = Path(__file__).resolve().parents[2]
PYTHON_ENV = "TASKSTORE_MCP2_PYTHON"
#: at least this many tests in tests/mcp2 (a lower count means some were not collected)
MIN_TESTS = 51  # 17 of test_extension.py run on taskstore and on Redis + the library


def mcp2_python() -> Path:
    python = Path(os.environ.get(PYTHON_ENV) or ROOT / ".venv-mcp2" / "bin" / "python")
    if not python.exists():
        pytest.fail(
            f"no SDK 2.x environment at {python}: run scripts/test.sh (it makes .venv-mcp2), or "
            "python -m venv .venv-mcp2 && .venv-mcp2/bin/pip install -e '.[mcp,test-mcp2]'"
        )
    return python


def test_mcp2_suite_passes_in_its_environment(tmp_path: Path) -> None:
    python = mcp2_python()
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mcp'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0 and version.stdout.startswith("2."), (
        f"{python} has no MCP SDK 2.x: {version.stdout}{version.stderr}"
    )
    payloads = tmp_path / "payloads.jsonl"
    env = {**os.environ, "TASKSTORE_MCP2_PAYLOADS": str(payloads)}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/mcp2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}
    assert proc.returncode == 0, out[-6000:]
    assert counts.get("failed", 0) == 0 and counts.get("errors", 0) == 0, summary
    assert counts.get("passed", 0) >= MIN_TESTS, summary

    # every task payload the SDK 2.x client saw is the extension's shape
    seen = {"CreateTaskResult": 0, "GetTaskResult": 0}
    for line in payloads.read_text().splitlines():
        item = json.loads(line)
        if item["kind"] == "CreateTaskResult":
            schema_v2.validate_create_task_result(item["payload"])
        else:
            schema_v2.validate_get_task_result(item["payload"])
        seen[item["kind"]] += 1
    assert seen["CreateTaskResult"] >= 5 and seen["GetTaskResult"] >= 10, seen
