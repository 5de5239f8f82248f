"""Fixtures for the pure store tests: a controllable clock and store factories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from store_helpers import FakeClock

from taskstore.store import SecurityConfig, StoreConfig, TaskStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(clock: FakeClock) -> Callable[..., TaskStore]:
    def factory(**settings: Any) -> TaskStore:
        return TaskStore(StoreConfig(**settings), SecurityConfig(), clock=clock)

    return factory


@pytest.fixture
def store(make_store: Callable[..., TaskStore]) -> TaskStore:
    return make_store()
