"""Helpers for the client and MCP adapter tests: real taskstore servers from tests/conftest.py,
an environment for child processes that imports this very source tree, and a way to know that
a client is parked in a blocking command without sleeping."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import redis

import taskstore

#: The directory that holds the `taskstore` package under test (children must import it too).
SRC = str(Path(taskstore.__file__).resolve().parent.parent)

USERS = [
    {"name": "alice", "password": "alice-pw"},
    {"name": "svc", "password": "svc-pw", "permissions": ["impersonate"]},
]


def child_env(**extra: str) -> dict[str, str]:
    """os.environ with this source tree first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def user_url(url: str, user: str, password: str) -> str:
    return url.replace("redis://", f"redis://{user}:{password}@", 1)


def blocked_clients(url: str) -> int:
    r = redis.Redis.from_url(url, decode_responses=True)
    try:
        return int(r.info("clients")["blocked_clients"])
    finally:
        r.close()


def until_blocked(url: str, n: int = 1, timeout: float = 30.0) -> None:
    """Return once exactly ``n`` clients are parked in blocking commands (liveness bound only)."""
    deadline = time.monotonic() + timeout
    while blocked_clients(url) != n:
        if time.monotonic() > deadline:
            raise AssertionError(f"blocked_clients never became {n}")
        time.sleep(0.005)


PYTHON = sys.executable
