"""Per-owner creation-order index: newest-first pages in O(log n + limit)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from operator import attrgetter

from taskstore.store.record import TaskRecord

__all__ = ["SeqIndex"]

_seq_of = attrgetter("seq")

# Chunks bound the cost of a removal (a memmove of at most this many pointers) while keeping
# the per-record overhead at one list slot.
_CHUNK = 512
_MERGE_BELOW = _CHUNK // 4


class SeqIndex:
    """An owner's records sorted by their server-wide creation sequence.

    A list of sorted chunks plus the first sequence number of each chunk: locating a position
    is two bisections, walking from it is sequential. New records always carry the highest
    sequence number, so inserting is an append.
    """

    __slots__ = ("_chunks", "_firsts")

    def __init__(self) -> None:
        self._chunks: list[list[TaskRecord]] = []
        self._firsts: list[int] = []

    def append(self, record: TaskRecord) -> None:
        """Add a record newer than every record already indexed."""
        chunks = self._chunks
        if chunks and len(chunks[-1]) < _CHUNK:
            last = chunks[-1]
            if last[-1].seq >= record.seq:
                raise ValueError("records must be appended in sequence order")
            last.append(record)
        else:
            if chunks and chunks[-1][-1].seq >= record.seq:
                raise ValueError("records must be appended in sequence order")
            chunks.append([record])
            self._firsts.append(record.seq)

    def remove(self, record: TaskRecord) -> None:
        """Remove a record (identity); ``KeyError`` if it is not indexed."""
        firsts = self._firsts
        chunks = self._chunks
        ci = bisect_right(firsts, record.seq) - 1
        if ci < 0:
            raise KeyError(record.seq)
        chunk = chunks[ci]
        j = bisect_left(chunk, record.seq, key=_seq_of)
        if j >= len(chunk) or chunk[j] is not record:
            raise KeyError(record.seq)
        del chunk[j]
        if not chunk:
            del chunks[ci]
            del firsts[ci]
            return
        if j == 0:
            firsts[ci] = chunk[0].seq
        if len(chunk) < _MERGE_BELOW and ci > 0 and len(chunks[ci - 1]) + len(chunk) <= _CHUNK:
            # Keep many deletions from leaving a long tail of tiny chunks.
            chunks[ci - 1].extend(chunk)
            del chunks[ci]
            del firsts[ci]

    def newest_first(self, before: int | None = None) -> Iterator[TaskRecord]:
        """Records with ``seq < before`` (all when ``None``), newest first.

        The index must not change while the iterator is in use.
        """
        chunks = self._chunks
        if not chunks:
            return
        if before is None:
            ci = len(chunks) - 1
            j = len(chunks[ci])
        else:
            ci = bisect_left(self._firsts, before) - 1
            if ci < 0:
                return
            j = bisect_left(chunks[ci], before, key=_seq_of)
        while True:
            chunk = chunks[ci]
            for k in range(j - 1, -1, -1):
                yield chunk[k]
            ci -= 1
            if ci < 0:
                return
            j = len(chunks[ci])

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)
