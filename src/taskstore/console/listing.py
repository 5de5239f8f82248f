"""Pages of one owner's tasks, newest first, filtered by status and method, for the console's
list (docs/console.md).

Built on TASK.LIST's own paging (``TaskStore.list``), so a page costs O(log n + what it
reads) whatever the owner holds, and tasks created after the first page never shift the later
ones. A console cursor is ``<store cursor>~<seq>``: the store's cursor (signed and bound to
the owner, so another owner's cursor is refused as TASK.LIST refuses it) of the store page
the list stopped in, and the creation sequence of the last task shown, so the next page skips
exactly what was already shown even if tasks were deleted in between.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskstore.store import InvalidArgument, TaskRecord, TaskStatus, TaskStore, parse_status

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SCAN_BUDGET", "make_filter", "page"]

#: Most records one request reads while looking for matches: a filter that matches nothing
#: among a million tasks answers a short page and a cursor to go on, not a long stall.
SCAN_BUDGET = 20_000


def make_filter(status: str | None, method: str | None) -> Callable[[TaskRecord], bool] | None:
    """The test a task must pass to be listed (None: every task); ``method`` matches any
    part of the request method."""
    wanted: TaskStatus | None = parse_status(status) if status else None
    if wanted is None and not method:
        return None
    if not method:
        return lambda record: record.status is wanted
    if wanted is None:
        return lambda record: method in record.request_method
    return lambda record: record.status is wanted and method in record.request_method


def _decode(cursor: str | None) -> tuple[str | None, int | None]:
    if not cursor:
        return None, None
    store_cursor, tilde, after = cursor.rpartition("~")
    if not tilde or (after and not after.isdigit()) or len(after) > 19:
        raise InvalidArgument("invalid cursor")
    return store_cursor or None, int(after) if after else None


def _encode(store_cursor: str | None, after: int | None) -> str:
    return f"{store_cursor or ''}~{'' if after is None else after}"


def page(
    store: TaskStore,
    owner: str,
    keep: Callable[[TaskRecord], bool] | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[TaskRecord], str | None]:
    """Up to ``limit`` tasks of ``owner`` that ``keep`` accepts, newest first, and the cursor
    of the next page (None: no more). ``InvalidArgument`` for a cursor that is not genuine."""
    store_cursor, after = _decode(cursor)
    max_limit = store.store_config.list_max_limit
    chunk = max_limit if keep is not None else min(max_limit, max(2 * limit, 100))
    out: list[TaskRecord] = []
    scanned = 0
    while True:
        records, following = store.list(owner, store_cursor, chunk)
        for i, record in enumerate(records):
            if after is not None and record.seq >= after:
                continue  # shown on an earlier page
            scanned += 1
            if keep is None or keep(record):
                out.append(record)
                if len(out) == limit:
                    more = i + 1 < len(records) or following is not None
                    return out, _encode(store_cursor, record.seq) if more else None
        if following is None:
            return out, None
        store_cursor, after = following, None
        if scanned >= SCAN_BUDGET:
            return out, _encode(store_cursor, None)
