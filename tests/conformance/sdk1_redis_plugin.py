"""pytest plugin (``-p sdk1_redis_plugin``): the MCP Python SDK 1.x's own task tests against
:class:`taskstore.mcp.TaskstoreTaskStore` on **Redis with the taskstore Functions library**
(test_mcp_sdk1_redis.py runs it; tests/client/sdk_suite_plugin.py is its taskstore twin).

Before anything is collected it starts a ``redis-server`` on a free loopback port (stopped at
the end of the session), loads the library, and replaces the SDK's ``InMemoryTaskStore`` by
:class:`RedisSuiteTaskStore`: a plain TaskstoreTaskStore made with the Redis URL (its per-loop
clients come from ``AsyncTaskClient.from_url``, which tells Redis from taskstore), with
``max_ttl_ms 0`` so that ``TaskMetadata(ttl=None)`` gets unlimited retention as in the SDK.
Each store is a fresh owner. At the end it reports the connections the stores left open.
"""

from __future__ import annotations

import gc
import importlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from conformance.backends import binary, free_port, start_server, stop
from taskstore.functions import load
from taskstore.mcp import TaskstoreTaskStore
from taskstore.store.config import StoreConfig

SUMMARY_PREFIX = "taskstore-sdk1-redis: connections left open:"
OWNERS_PREFIX = "taskstore-sdk1-redis: owners with tasks in Redis:"
CONFIG = StoreConfig(max_ttl_ms=0)
_STORE_MAKERS = ("mcp.server.experimental.task_support", "mcp.server.lowlevel.experimental")
_proc: subprocess.Popen[bytes] | None = None
_workdir: Path | None = None
_url = ""


class RedisSuiteTaskStore(TaskstoreTaskStore):
    """``InMemoryTaskStore(page_size=10)`` as the SDK's tests make it: the store as users
    make it, given the Redis URL (its clients come from ``AsyncTaskClient.from_url``)."""

    def __init__(self, page_size: int = 10) -> None:
        super().__init__(_url, owner=f"sdk-{uuid.uuid4().hex}", page_size=page_size, config=CONFIG)


def _patch_in_memory_store() -> list[str]:
    for name in _STORE_MAKERS:
        importlib.import_module(name)
    from mcp.shared.experimental.tasks import in_memory_task_store

    original = in_memory_task_store.InMemoryTaskStore
    patched = []
    for name, module in list(sys.modules.items()):
        if (name == "mcp" or name.startswith("mcp.")) and (
            getattr(module, "InMemoryTaskStore", None) is original
        ):
            module.InMemoryTaskStore = RedisSuiteTaskStore  # type: ignore[attr-defined]
            patched.append(name)
    return sorted(patched)


def pytest_configure(config: pytest.Config) -> None:
    global _proc, _url, _workdir
    port = free_port()
    _workdir = Path(tempfile.mkdtemp(prefix="sdk1-redis-"))
    _proc = start_server(binary("redis-server"), _workdir, port)
    _url = f"redis://127.0.0.1:{port}"
    load(_url)
    patched = _patch_in_memory_store()
    assert {"mcp.shared.experimental.tasks.in_memory_task_store", *_STORE_MAKERS} <= set(patched)


def _open_connections() -> int:
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


def _owners_on_redis() -> int:
    """How many store owners left their mark in Redis (each store is one owner)."""
    admin = redis.Redis.from_url(_url)
    try:
        return sum(1 for _ in admin.scan_iter("ts:{sdk-*}:meta", count=1000))
    finally:
        admin.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: Any) -> None:
    gc.collect()
    left = _open_connections()
    sys.stdout.write(f"\n{OWNERS_PREFIX} {_owners_on_redis()}\n")
    sys.stdout.write(f"\n{SUMMARY_PREFIX} {left}\n")
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    if _proc is not None:
        stop(_proc)
    if _workdir is not None:
        shutil.rmtree(_workdir, ignore_errors=True)
