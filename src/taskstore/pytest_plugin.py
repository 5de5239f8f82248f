"""pytest plugin (entry point ``pytest11``): a fresh in-process server per test.

def test_something(taskstore_server):
    r = redis.Redis.from_url(taskstore_server.url)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from taskstore.server.app import Server, ServerThread


@pytest.fixture
def taskstore_server() -> Iterator[Server]:
    """A taskstore server on a free loopback port, stopped after the test."""
    runner = ServerThread(port=0)
    with runner as server:
        yield server
