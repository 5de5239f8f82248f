"""The official TypeScript requester of MCP tasks against taskstore's demo server (issue 13,
"Real clients").

``@modelcontextprotocol/ext-tasks`` (its ``client`` entry: ``createTaskSessionFromClient``) with
``@modelcontextprotocol/client`` 2.x, both pinned in tests/compat's lockfile, runs
tests/compat/node/ext_tasks_scenario.mjs against ``python -m taskstore.mcp.demo`` (MCP SDK 2.x,
from ``.venv-mcp2``) over Streamable HTTP with 2026-07-28 framing; the demo keeps its tasks in
a taskstore in this process. The scenario calls each demo tool through the task session,
settles the executions, answers ``ask_name``'s elicitation through the session's input handler,
cancels a long ``count_to``, and prints one JSON line of outcomes, checked here and against
what taskstore itself holds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskstore.client import TaskClient
from taskstore.server.app import ServerThread

from .conftest import child_env

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "tests" / "compat"
SCENARIO = COMPAT / "node" / "ext_tasks_scenario.mjs"
PACKAGES = {"@modelcontextprotocol/ext-tasks": "0.2.2", "@modelcontextprotocol/client": "2.4.0"}
MCP2_PYTHON_ENV = "TASKSTORE_MCP2_PYTHON"
#: the code and message fail_with is asked to fail with
FAIL_CODE, FAIL_MESSAGE = -32042, "demo failure"


def mcp2_python() -> Path:
    python = Path(os.environ.get(MCP2_PYTHON_ENV) or ROOT / ".venv-mcp2" / "bin" / "python")
    if not python.exists():
        pytest.fail(
            f"no MCP SDK 2.x environment at {python} (the demo server needs it): run "
            "scripts/test.sh, which creates .venv-mcp2, or python -m venv .venv-mcp2 && "
            ".venv-mcp2/bin/pip install -e '.[mcp,test-mcp2]'"
        )
    return python


def node() -> str:
    found = shutil.which("node")
    installed = all(
        (COMPAT / "node_modules" / name / "package.json").is_file() for name in PACKAGES
    )
    if found is None or not installed:
        pytest.fail(
            "the ext-tasks scenario needs Node.js and tests/compat's npm packages "
            "(scripts/test.sh installs them: npm ci --prefix tests/compat)"
        )
    return found


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture(scope="module")
def taskstore_url() -> Iterator[str]:
    # a short poll interval: the requester polls tasks/get at the task's pollIntervalMs
    with ServerThread(port=0, default_poll_interval_ms=100) as srv:
        yield f"redis://127.0.0.1:{srv.port}"


@pytest.fixture(scope="module")
def demo(taskstore_url: str) -> Iterator[str]:
    """``python -m taskstore.mcp.demo --port 0`` from .venv-mcp2; its one line names its URL."""
    python = mcp2_python()
    proc = subprocess.Popen(
        [str(python), "-m", "taskstore.mcp.demo", "--port", "0", "--taskstore", taskstore_url],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/mcp)", line)
        if match is None:
            proc.kill()
            err = proc.communicate(timeout=10)[1]
            pytest.fail(f"the demo server did not start: {line!r} {err[-3000:]}")
        yield match.group(1)
    finally:
        stop(proc)
    assert proc.returncode is not None


def run_scenario(url: str) -> dict[str, Any]:
    proc = subprocess.run(
        [node(), str(SCENARIO), url],
        cwd=SCENARIO.parent,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and "error" not in report, (
        f"exit {proc.returncode}\n{proc.stderr[-3000:]}\n{proc.stdout[-6000:]}"
    )
    return report


def test_ext_tasks_requester_against_the_demo(demo: str, taskstore_url: str) -> None:
    report = run_scenario(demo)

    # the pinned packages, 2026-07-28, the extension advertised and understood by the session
    pinned = json.loads((COMPAT / "package.json").read_text())["dependencies"]
    assert {name: pinned[name] for name in PACKAGES} == PACKAGES
    assert {name: report["versions"][name] for name in PACKAGES} == PACKAGES
    assert report["protocol"] == {"era": "modern", "version": "2026-07-28", "tasksExtension": {}}
    assert report["capabilities"]["execution"] is True
    assert report["capabilities"]["cancellation"] is True
    assert report["capabilities"]["inputResponses"] is True

    outcomes = report["outcomes"]
    for key in ("count_to", "ask_name", "fail_with", "cancel"):
        assert outcomes[key]["kind"] == "task", outcomes[key]
        assert outcomes[key]["taskId"], outcomes[key]

    assert outcomes["count_to"]["status"] == "completed"
    assert outcomes["count_to"]["isError"] is False
    assert outcomes["count_to"]["text"] == "counted to 3"
    assert report["events"]["count_to"][-1] == "completed"

    # the elicitation came to the session's input handler as a task input request, answered
    # through tasks/update
    assert outcomes["ask_name"]["status"] == "completed"
    assert outcomes["ask_name"]["text"] == "hello Ada"
    [asked] = report["inputRequests"]
    assert asked["kind"] == "elicitation"
    assert asked["message"] == "What is your name?"
    assert asked["requestedSchema"]["properties"]["name"]["type"] == "string"
    assert asked["scope"] == "task" and asked["delivery"] == "task-update"
    assert asked["taskId"] == outcomes["ask_name"]["taskId"]
    assert asked["inputId"]
    assert "input_required" in report["events"]["ask_name"]
    assert "tasks/update" in report["rawMethods"]

    assert outcomes["fail_with"]["status"] == "failed"
    assert outcomes["fail_with"]["code"] == FAIL_CODE
    assert outcomes["fail_with"]["message"] == FAIL_MESSAGE

    # cancelled by the requester while counting; the server's task ends cancelled too (ext-tasks
    # itself settles on the tasks/cancel ack)
    assert outcomes["cancel"]["status"] == "cancelled"
    assert outcomes["cancel"]["cancelCall"] == "ok"
    assert outcomes["cancel"]["serverStatus"] == "cancelled"
    assert "tasks/cancel" in report["rawMethods"]

    # every CreateTaskResult / tasks/get / tasks/update / tasks/cancel result on the wire passed
    # the package's own schemas
    assert report["validation"]["invalid"] == []
    assert report["validation"]["checked"] >= 8, report["validation"]

    # and taskstore holds the same ends
    with TaskClient(taskstore_url, version="2026-07-28") as tasks:
        stored = {key: tasks.get(outcomes[key]["taskId"]) for key in outcomes}
    assert stored["count_to"].status == "completed"
    assert stored["ask_name"].status == "completed"
    assert stored["fail_with"].status == "failed"
    assert stored["fail_with"].error == {"code": FAIL_CODE, "message": FAIL_MESSAGE}
    assert stored["cancel"].status == "cancelled"
