"""Pages of one owner's tasks, newest first, filtered by status and method, for the console's
list (docs/console.md).

Built on TASK.LIST's own paging (``TaskStore.list``), so a page costs O(log n + what it
reads) whatever the owner holds, and tasks created after the first page never shift the later
ones. A console cursor is ``<store cursor>~<seq>~<mac>``: the store's cursor of the store
page the list stopped in, the creation sequence of the last task shown (so the next page skips
exactly what was already shown even if tasks were deleted in between), and an HMAC binding
both to the owner, so another owner's cursor is refused as TASK.LIST refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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


def _mac(secret: bytes, owner: str, body: str) -> str:
    message = owner.encode("utf-8", "surrogatepass") + b"\x00" + body.encode()
    digest = hmac.digest(secret, message, hashlib.sha256)[:12]
    return base64.urlsafe_b64encode(digest).decode()


def _decode(secret: bytes, owner: str, cursor: str | None) -> tuple[str | None, int | None]:
    if not cursor:
        return None, None
    body, tilde, mac = cursor.rpartition("~")
    store_cursor, tilde2, after = body.rpartition("~")
    if (
        not tilde
        or not tilde2
        or (after and not after.isdigit())
        or len(after) > 19
        or not hmac.compare_digest(mac.encode(), _mac(secret, owner, body).encode())
    ):
        raise InvalidArgument("invalid cursor")
    return store_cursor or None, int(after) if after else None


def _encode(secret: bytes, owner: str, store_cursor: str | None, after: int | None) -> str:
    body = f"{store_cursor or ''}~{'' if after is None else after}"
    return f"{body}~{_mac(secret, owner, body)}"


def page(
    store: TaskStore,
    owner: str,
    keep: Callable[[TaskRecord], bool] | None,
    cursor: str | None,
    limit: int,
    secret: bytes,
) -> tuple[list[TaskRecord], str | None]:
    """Up to ``limit`` tasks of ``owner`` that ``keep`` accepts, newest first, and the cursor
    of the next page (None: no more), signed with ``secret``. ``InvalidArgument`` for a
    cursor that is not genuine or not this owner's."""
    store_cursor, after = _decode(secret, owner, cursor)
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
                    if not more:
                        return out, None
                    return out, _encode(secret, owner, store_cursor, record.seq)
        if following is None:
            return out, None
        store_cursor, after = following, None
        if scanned >= SCAN_BUDGET:
            return out, _encode(secret, owner, store_cursor, None)
