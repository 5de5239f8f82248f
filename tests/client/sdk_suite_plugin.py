"""pytest plugin (``-p sdk_suite_plugin``) that runs the MCP Python SDK's own task tests
against :class:`taskstore.mcp.TaskstoreTaskStore` instead of the SDK's ``InMemoryTaskStore``.

Loaded by ``test_mcp_sdk_suite.py`` in a pytest subprocess whose root is the SDK's extracted
test suite. Before anything is collected it

* starts a taskstore server in this process (``ServerThread``, a free loopback port, with
  ``max_ttl_ms 0`` so that ``TaskMetadata(ttl=None)`` gets unlimited retention as in the SDK,
  and a user allowed to impersonate);
* replaces ``InMemoryTaskStore`` by :class:`SuiteTaskStore` wherever the ``mcp`` package
  defines or imports it, so the SDK's own code (``enable_tasks()`` without a store) and every
  test module (imported later, from the patched module) make taskstore-backed stores. Each
  store is a fresh taskstore owner, so tests never see each other's tasks.

At the end of the session it reports how many connections the stores left open (the
``SUMMARY_PREFIX`` line), which the calling test requires to be 0.
"""

from __future__ import annotations

import gc
import importlib
import sys
import time
import uuid
from typing import Any

import pytest
import redis

from taskstore.mcp import TaskstoreTaskStore
from taskstore.server.app import ServerThread

SUMMARY_PREFIX = "taskstore-sdk-suite: connections left open:"

_USER, _PASSWORD = "sdk-suite", "sdk-suite-pw"
#: The SDK modules that make an ``InMemoryTaskStore()`` when ``enable_tasks()`` gets no store.
_STORE_MAKERS = ("mcp.server.experimental.task_support", "mcp.server.lowlevel.experimental")
_runner: ServerThread | None = None
_url = ""


class SuiteTaskStore(TaskstoreTaskStore):
    """``InMemoryTaskStore(page_size=10)`` as the SDK's tests make it, on taskstore."""

    def __init__(self, page_size: int = 10) -> None:
        super().__init__(_url, owner=f"sdk-{uuid.uuid4().hex}", page_size=page_size)


def _patch_in_memory_store() -> list[str]:
    """Point every ``InMemoryTaskStore`` name of the mcp package at :class:`SuiteTaskStore`;
    the names of the modules patched."""
    for name in _STORE_MAKERS:
        importlib.import_module(name)
    from mcp.shared.experimental.tasks import in_memory_task_store

    original = in_memory_task_store.InMemoryTaskStore
    patched = []
    for name, module in list(sys.modules.items()):
        if (name == "mcp" or name.startswith("mcp.")) and (
            getattr(module, "InMemoryTaskStore", None) is original
        ):
            module.InMemoryTaskStore = SuiteTaskStore  # type: ignore[attr-defined]
            patched.append(name)
    return sorted(patched)


def pytest_configure(config: pytest.Config) -> None:
    global _runner, _url
    _runner = ServerThread(
        port=0,
        max_ttl_ms=0,
        users=[{"name": _USER, "password": _PASSWORD, "permissions": ["impersonate"]}],
    )
    _runner.start()
    _url = _runner.url.replace("redis://", f"redis://{_USER}:{_PASSWORD}@", 1)
    patched = _patch_in_memory_store()
    assert {"mcp.shared.experimental.tasks.in_memory_task_store", *_STORE_MAKERS} <= set(patched), (
        patched
    )


def _open_connections() -> int:
    """Connections to the server other than this check's own, once they have settled."""
    assert _runner is not None
    admin = redis.Redis.from_url(_url, single_connection_client=True)
    try:
        deadline = time.monotonic() + 5
        while True:
            n = int(admin.info("clients")["connected_clients"]) - 1
            if n == 0 or time.monotonic() > deadline:
                return n
            time.sleep(0.01)
    finally:
        admin.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: Any) -> None:
    gc.collect()  # stores still referenced by cycles are finalized now
    left = _open_connections()
    sys.stdout.write(f"\n{SUMMARY_PREFIX} {left}\n")
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    if _runner is not None:
        _runner.stop()
