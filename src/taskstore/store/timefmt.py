"""RFC 3339 UTC timestamps with milliseconds, cheap enough for the create/update hot path."""

from __future__ import annotations

import time

__all__ = ["format_ms", "wall_clock_ms"]

# Second -> "YYYY-MM-DDTHH:MM:SS". Tasks cluster in time, so most lookups hit; the cache is
# dropped wholesale when it grows, which keeps it bounded without LRU bookkeeping.
_SECONDS: dict[int, str] = {}
_SECONDS_MAX = 4096
# The last value formatted, as one tuple (so threads never see a half-updated pair): under
# load many tasks are created and updated within the same millisecond.
_last: tuple[int, str] = (-1, "")


def wall_clock_ms() -> int:
    """The default store clock: epoch milliseconds from the system clock."""
    return time.time_ns() // 1_000_000


def format_ms(epoch_ms: int) -> str:
    """``2026-11-26T13:24:57.123Z`` for an epoch-milliseconds value."""
    global _last
    last = _last
    if last[0] == epoch_ms:
        return last[1]
    seconds, millis = divmod(epoch_ms, 1000)
    prefix = _SECONDS.get(seconds)
    if prefix is None:
        t = time.gmtime(seconds)
        prefix = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
            f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        )
        if len(_SECONDS) >= _SECONDS_MAX:
            _SECONDS.clear()
        _SECONDS[seconds] = prefix
    text = f"{prefix}.{millis:03d}Z"
    _last = (epoch_ms, text)
    return text
