"""docs/mcp.md's complete example: the page shows docs/examples/mcp_tasks_example.py exactly,
and the file runs (an MCP client that starts the example's MCP server over stdio) against a
real taskstore server in its own process."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import PYTHON, child_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "mcp_tasks_example.py"
DOC = ROOT / "docs" / "mcp.md"


def test_doc_shows_the_example_verbatim() -> None:
    block = "```python\n" + EXAMPLE.read_text() + "```\n"
    assert block in DOC.read_text(), (
        "docs/mcp.md must contain docs/examples/mcp_tasks_example.py verbatim in a "
        "```python block: copy the file into the page again"
    )


def test_example_runs_against_a_real_server(spawn_server: Callable[..., Any]) -> None:
    pytest.importorskip("mcp.shared.experimental.tasks.store")
    srv = spawn_server()
    url = f"redis://127.0.0.1:{srv.port}"
    proc = subprocess.run(
        [PYTHON, str(EXAMPLE)],
        env=child_env(TASKSTORE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "created: working"
    assert all(line.startswith("tasks/get: ") for line in lines[1:-2])
    assert lines[-3] == "tasks/get: completed adding 3"
    assert lines[-2:] == ["tasks/result: 6", "taskstore: completed"]

    # the task is in that server: the id run_task gave it, its final state
    from taskstore.client import TaskClient

    with TaskClient(url) as tasks:
        [task] = tasks.all_tasks()
    assert task.status == "completed" and task.ttl == 60_000
    assert len(task.task_id) == 69 and task.task_id[32] == ":"
