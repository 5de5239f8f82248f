"""The per-owner creation-order index against a plain sorted list, across many chunks."""

from __future__ import annotations

import random

import pytest

from taskstore.store.index import SeqIndex
from taskstore.store.record import TaskRecord


def _record(seq: int) -> TaskRecord:
    return TaskRecord(f"t{seq}", "o", "m", 0, None, 1, seq)


def _expected(alive: list[TaskRecord], before: int | None) -> list[int]:
    return [r.seq for r in reversed(alive) if before is None or r.seq < before]


def test_index_matches_sorted_list_under_random_removals() -> None:
    rng = random.Random(3)
    index = SeqIndex()
    alive: list[TaskRecord] = []
    seq = 0
    for round_ in range(12):
        for _ in range(rng.randint(300, 1500)):
            seq += rng.randint(1, 3)
            record = _record(seq)
            index.append(record)
            alive.append(record)
        # Remove runs and scattered records, so chunks empty out, shrink and merge.
        for _ in range(rng.randint(100, 900)):
            if not alive:
                break
            if rng.random() < 0.3:
                start = rng.randrange(len(alive))
                victims = alive[start : start + rng.randint(1, 80)]
            else:
                victims = [rng.choice(alive)]
            for victim in victims:
                index.remove(victim)
                alive.remove(victim)
        assert len(index) == len(alive)
        probes = [None, 0, 1, seq + 1, *(rng.randint(0, seq + 2) for _ in range(20))]
        probes += [rng.choice(alive).seq for _ in range(20) if alive]  # a cursor's own task
        for before in probes:
            got = [r.seq for r in index.newest_first(before)]
            assert got == _expected(alive, before), (round_, before)


def test_remove_checks_identity() -> None:
    index = SeqIndex()
    first = _record(1)
    index.append(first)
    with pytest.raises(KeyError):
        index.remove(_record(1))  # same sequence, different record
    with pytest.raises(KeyError):
        index.remove(_record(2))
    index.remove(first)
    with pytest.raises(KeyError):
        index.remove(first)
    assert list(index.newest_first()) == []


def test_append_requires_increasing_sequence() -> None:
    index = SeqIndex()
    index.append(_record(5))
    with pytest.raises(ValueError):
        index.append(_record(5))
    with pytest.raises(ValueError):
        index.append(_record(4))
