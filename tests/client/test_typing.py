"""The client and the MCP adapter are typed for their users: ``py.typed`` is shipped, the
modules pass ``mypy --strict``, and a program using them is checked with their real types
(a wrong status literal or a misused return value is a type error)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SRC

USER_PROGRAM = """
from __future__ import annotations

import asyncio

from mcp.types import Result, Task as McpTask, TaskMetadata

from taskstore.client import AsyncTaskClient, Task, TaskClient, TaskError, TaskPage
from taskstore.mcp import TaskstoreTaskStore


def sync_use(c: TaskClient) -> str:
    task: Task = c.create("tools/call", ttl=1000, task_id="x")
    page: TaskPage = c.list(limit=5)
    waited: Task | None = c.wait(task.task_id, status="working", block=10)
    code: int | None = TaskError("ERR x").mcp_code
    ok: bool = c.delete(task.task_id)
    return f"{task.created_at.isoformat()} {page.next_cursor} {waited} {code} {ok}"


async def async_use(c: AsyncTaskClient, store: TaskstoreTaskStore) -> None:
    task: Task = await c.update("x", "completed", message="m")
    async for t in c.iter_tasks():
        print(t.to_wire()["taskId"], task.is_terminal)
    created: McpTask = await store.create_task(TaskMetadata(ttl=None), task_id="y")
    got: Result | None = await store.get_result(created.taskId)
    tasks, cursor = await store.list_tasks(None)
    print(got, len(tasks), cursor)


def misuse(c: TaskClient) -> None:
    c.update("x", "done")  # E: not a task status
    n: int = c.get("x")  # E: a Task, not an int


asyncio.run(async_use(AsyncTaskClient(), TaskstoreTaskStore()))
"""


def test_py_typed_is_shipped() -> None:
    assert (Path(SRC) / "taskstore" / "py.typed").is_file()


def test_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mcp")
    if not _has_mypy():
        pytest.fail("mypy is not installed (it is in the test extra)")
    program = tmp_path / "user_program.py"
    program.write_text(USER_PROGRAM)
    root = Path(SRC).parent
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--no-error-summary",
        "--show-error-codes",
        f"--cache-dir={root / '.mypy_cache'}",
        str(Path(SRC) / "taskstore" / "client"),
        # the first-generation adapter (the SDK 2.x modules need the other SDK major)
        str(Path(SRC) / "taskstore" / "mcp" / "__init__.py"),
        str(Path(SRC) / "taskstore" / "mcp" / "sdk1.py"),
        str(program),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=300)
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    # exactly the two marked misuses, both in the user's program: the modules are clean
    expected_lines = {
        i + 1
        for i, line in enumerate(USER_PROGRAM.splitlines())
        if line.endswith(("# E: not a task status", "# E: a Task, not an int"))
    }
    # (by file name: mypy's cache may report the path the same program had in an earlier run)
    got_lines = {
        int(line.split(":")[1]) for line in errors if Path(line.split(":")[0]).name == program.name
    }
    assert len(errors) == 2 and got_lines == expected_lines, proc.stdout + proc.stderr
    assert "arg-type" in errors[0] and "assignment" in errors[1], errors


def _has_mypy() -> bool:
    try:
        import mypy  # noqa: F401
    except ImportError:
        return False
    return True
