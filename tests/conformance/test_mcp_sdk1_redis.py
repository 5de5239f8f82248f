"""The MCP Python SDK 1.x's own task tests (``mcp==1.30.0``'s ``tests/experimental/tasks``)
against TaskstoreTaskStore on Redis + the Functions library, with the same deselections and
the same bar as tests/client/test_mcp_sdk_suite.py applies on taskstore."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from pathlib import Path

# the test extra pins the SDK 1.x: without it this is an error, not a skip
import mcp.shared.experimental.tasks.store  # noqa: F401

from client.test_mcp_sdk_suite import (
    DESELECTED,
    MIN_PASSED,
    SDK_VERSION,
    SUITE,
    cache_dir,
    extract_suite,
    parse_summary,
)
from conformance.backends import PYTHON, child_env
from conformance.sdk1_redis_plugin import OWNERS_PREFIX, SUMMARY_PREFIX

TESTS = str(Path(__file__).resolve().parent.parent)


def test_the_sdk_task_suite_passes_on_redis() -> None:
    assert importlib.metadata.version("mcp") == SDK_VERSION
    root = extract_suite(cache_dir())
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([TESTS, env["PYTHONPATH"]])
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [PYTHON, "-m", "pytest", "-c", "pytest.ini", "--rootdir", ".", SUITE]
    cmd += ["-p", "conformance.sdk1_redis_plugin", "-p", "no:cacheprovider", "-W", "error", "-q"]
    cmd += ["-o", "timeout=60", "-o", "addopts="]
    for node in DESELECTED:
        cmd += ["--deselect", node]
    proc = subprocess.run(
        cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = proc.stdout + proc.stderr
    line, counts = parse_summary(proc.stdout)
    print(f"MCP SDK {SDK_VERSION} {SUITE} on TaskstoreTaskStore over Redis: {line}")
    tail = output[-6000:]
    assert counts.get("failed", 0) == 0 and counts.get("errors", 0) == 0, tail
    assert counts.get("passed", 0) >= MIN_PASSED, tail
    assert counts.get("deselected", 0) == len(DESELECTED), tail
    assert f"{SUMMARY_PREFIX} 0\n" in proc.stdout, tail
    # the stores' tasks really went to Redis
    owners = [ln for ln in proc.stdout.splitlines() if ln.startswith(OWNERS_PREFIX)]
    assert owners and int(owners[0].rsplit(" ", 1)[1]) > 50, tail
    assert "ResourceWarning" not in output and "Exception ignored" not in output, tail
    assert proc.returncode == 0, tail
