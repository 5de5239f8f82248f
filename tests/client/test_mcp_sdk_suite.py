"""The MCP Python SDK's own task tests, run against ``TaskstoreTaskStore``.

The SDK's contract for a task store is what its ``InMemoryTaskStore`` does, and its own test
suite is the judge. This test takes ``tests/experimental/tasks`` from the SDK's source
distribution on PyPI (``mcp==1.30.0``, the version the ``test`` extra pins; downloaded once
with ``pip download`` and kept, checked against its sha256, in the cache directory below), and
runs it with pytest in a subprocess, under ``-W error``, with the plugin
``sdk_suite_plugin.py``: a taskstore server in that process, and ``InMemoryTaskStore``
replaced everywhere by a ``TaskstoreTaskStore`` on it (a fresh owner per store).

Only tests that read private attributes of the in-memory store are deselected
(``DESELECTED``, each with its reason; docs/mcp.md lists them too). Everything else must pass,
and the stores, which the SDK's code and tests never close, must leave no connection open.

Cache: ``$TASKSTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/taskstore``, else
``~/.cache/taskstore``; the suite is in ``mcp-sdk-1.30.0/`` there. Offline, put the sdist
``mcp-1.30.0.tar.gz`` in that directory.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("mcp.shared.experimental.tasks.store")

from .conftest import PYTHON, child_env
from .sdk_suite_plugin import SUMMARY_PREFIX

SDK_VERSION = "1.30.0"
SDIST = f"mcp-{SDK_VERSION}.tar.gz"
SDIST_SHA256 = "445414625fce5c295faa505bb11bacece661ab6f4028d57c935db57820b7a3e4"
SUITE = "tests/experimental/tasks"
#: the suite has 258 tests that run (93 more are skipped by the SDK itself, "TODO")
MIN_PASSED = 253

_PRIVATE_EXPIRY = (
    "reads InMemoryTaskStore._tasks, the in-memory store's private dict of StoredTask "
    "records, for their private expires_at"
)
_PRIVATE_EVENTS = (
    "polls InMemoryTaskStore._update_events, the in-memory store's private dict of wait "
    "events, to know that the handler is waiting"
)
#: The SDK tests not run, and why: each reads private attributes of the in-memory store.
DESELECTED = {
    "tests/experimental/tasks/server/test_store.py::test_task_expiration_cleanup": (
        _PRIVATE_EXPIRY + ", and rewrites it to make a task expire"
    ),
    "tests/experimental/tasks/server/test_store.py::test_task_with_null_ttl_never_expires": (
        _PRIVATE_EXPIRY
    ),
    "tests/experimental/tasks/server/test_store.py::test_terminal_task_ttl_reset": (
        _PRIVATE_EXPIRY + " (taskstore's ttl counts from creation: docs/mcp.md, difference 5)"
    ),
    "tests/experimental/tasks/server/test_task_result_handler.py::"
    "test_handle_waits_for_task_completion": _PRIVATE_EVENTS,
    "tests/experimental/tasks/server/test_task_result_handler.py::"
    "test_wait_for_task_update_handles_queue_exception": _PRIVATE_EVENTS,
}

HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    base = os.environ.get("TASKSTORE_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "taskstore"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_sdist(cache: Path) -> Path:
    """The SDK's source distribution, downloaded with pip once and then kept."""
    sdist = cache / SDIST
    if sdist.is_file() and _sha256(sdist) == SDIST_SHA256:
        return sdist
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [PYTHON, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["--disable-pip-version-check", "-q", "-d", tmp, f"mcp=={SDK_VERSION}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        got = Path(tmp) / SDIST
        if proc.returncode != 0 or not got.is_file():
            pytest.fail(
                f"could not download {SDIST} (offline? put it in {cache}):\n{proc.stderr}",
                pytrace=False,
            )
        digest = _sha256(got)
        assert digest == SDIST_SHA256, f"{SDIST} has sha256 {digest}, expected {SDIST_SHA256}"
        os.replace(got, sdist)
    return sdist


def _wanted(name: str) -> bool:
    """The suite, and the root conftest.py it needs (the anyio_backend fixture)."""
    prefix = f"mcp-{SDK_VERSION}/"
    if not name.startswith(prefix):
        return False
    rel = name[len(prefix) :]
    return rel in ("tests/__init__.py", "tests/conftest.py") or rel.startswith(SUITE + "/")


def extract_suite(cache: Path) -> Path:
    """The SDK's task tests, extracted from the sdist into ``cache`` (once)."""
    root = cache / f"mcp-sdk-{SDK_VERSION}"
    if (root / SUITE).is_dir() and (root / "pytest.ini").is_file():
        return root
    sdist = fetch_sdist(cache)
    staging = Path(tempfile.mkdtemp(dir=cache))
    try:
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if _wanted(m.name)]
            tar.extractall(staging, members=members, filter="data")
        tree = staging / f"mcp-{SDK_VERSION}"
        # our own (empty) configuration: not the SDK's pyproject (xdist, coverage, …)
        (tree / "pytest.ini").write_text("[pytest]\n")
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tree, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def parse_summary(output: str) -> tuple[str, dict[str, int]]:
    """pytest's last line ("253 passed, 93 skipped, 5 deselected in 1.30s") and its counts."""
    pattern = re.compile(r"^=*\s*((?:\d+ \w+(?:, )?)+) in [\d.]+s")
    for line in reversed(output.splitlines()):
        match = pattern.match(line.strip())
        if match:
            counts: dict[str, int] = {}
            for part in match.group(1).split(", "):
                n, word = part.split(" ", 1)
                counts[{"error": "errors", "warning": "warnings"}.get(word, word)] = int(n)
            return line.strip("= "), counts
    raise AssertionError(f"no pytest summary line in:\n{output[-3000:]}")


def test_parse_summary() -> None:
    line, counts = parse_summary("...\n===== 1 failed, 253 passed, 2 errors in 1.30s =====\n")
    assert line == "1 failed, 253 passed, 2 errors in 1.30s"
    assert counts == {"failed": 1, "passed": 253, "errors": 2}
    assert parse_summary("253 passed, 5 deselected in 2s")[1]["deselected"] == 5


def test_the_sdk_task_suite_passes_on_taskstore() -> None:
    installed = importlib.metadata.version("mcp")
    assert installed == SDK_VERSION, (
        f"mcp {installed} is installed; the suite is the one of {SDK_VERSION}, which the "
        "test extra pins (pip install -e '.[test]')"
    )
    root = extract_suite(cache_dir())
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [PYTHON, "-m", "pytest", "-c", "pytest.ini", "--rootdir", ".", SUITE]
    cmd += ["-p", "sdk_suite_plugin", "-p", "no:cacheprovider", "-W", "error", "-q"]
    cmd += ["-o", "timeout=60", "-o", "addopts="]
    for node in DESELECTED:
        cmd += ["--deselect", node]
    proc = subprocess.run(
        cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = proc.stdout + proc.stderr
    line, counts = parse_summary(proc.stdout)
    print(f"MCP SDK {SDK_VERSION} {SUITE} on TaskstoreTaskStore: {line}")
    tail = output[-6000:]
    assert counts.get("failed", 0) == 0 and counts.get("errors", 0) == 0, tail
    assert counts.get("passed", 0) >= MIN_PASSED, tail
    assert counts.get("deselected", 0) == len(DESELECTED), tail  # every id still exists
    assert f"{SUMMARY_PREFIX} 0\n" in proc.stdout, tail  # no connection left open
    assert "ResourceWarning" not in output and "Exception ignored" not in output, tail
    assert proc.returncode == 0, tail
