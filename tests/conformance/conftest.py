"""Fixtures of the conformance suite: ``backend`` runs a test once per backend (see
backends.py), every server started once per session and stopped at its end."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from conformance.backends import (
    BACKENDS,
    Backend,
    _cluster,
    _standalone,
    _taskstore,
    binary,
)


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Backend]]:
    """Every backend, started once per session (lazily: only those a test asks for)."""
    tmp = tmp_path_factory.mktemp("conformance")
    stack = contextlib.ExitStack()

    class Lazy(dict[str, Backend]):
        def __missing__(self, name: str) -> Backend:
            if name == "taskstore":
                backend = stack.enter_context(_taskstore())
            elif name == "redis":
                backend = stack.enter_context(_standalone("redis", binary("redis-server"), tmp))
            elif name == "valkey":
                backend = stack.enter_context(_standalone("valkey", binary("valkey-server"), tmp))
            elif name == "cluster":
                backend = stack.enter_context(_cluster(tmp))
            else:
                raise KeyError(name)
            self[name] = backend
            return backend

    lazy = Lazy()
    with stack:
        yield lazy


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, backends: dict[str, Backend]) -> Iterator[Backend]:
    b = backends[request.param]
    try:
        yield b
    finally:
        b.close_clients()
