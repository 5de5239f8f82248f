"""Shared helpers for the store tests (imported by name: pytest puts this directory on sys.path)."""

from __future__ import annotations

# 2026-11-26T13:24:57.123Z
T0 = 1_795_699_497_123


class FakeClock:
    """Epoch milliseconds that only move when a test says so."""

    def __init__(self, start: int = T0) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms
