"""One stored task, and its MCP wire form."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskstore.store.jsonutil import dumps_compact, json_string, json_string_ascii
from taskstore.store.status import TaskStatus
from taskstore.store.timefmt import format_ms

__all__ = ["TaskRecord", "list_json"]

_STATUS_PART = {status: f',"status":"{status.value}"' for status in TaskStatus}


class TaskRecord:
    """A task as the store holds it.

    Slots instead of a ``__dict__``: the record is most of the memory per task. ``expires_at_ms``
    is derived (``created_at_ms + ttl_ms``) rather than stored for the same reason. Records handed
    out by the store are its live objects: treat them as read-only; only the store mutates them,
    and it drops the cached wire JSON (``_json``) whenever it does.
    """

    __slots__ = (
        "_json",
        "created_at_ms",
        "last_updated_at_ms",
        "owner",
        "poll_interval_ms",
        "request_method",
        "result",
        "seq",
        "status",
        "status_message",
        "task_id",
        "ttl_ms",
        "variables",
    )

    task_id: str
    owner: str
    status: TaskStatus
    status_message: str | None
    created_at_ms: int
    last_updated_at_ms: int
    ttl_ms: int | None
    poll_interval_ms: int
    request_method: str
    variables: dict[str, Any] | None
    result: bytes | None
    seq: int
    _json: bytes | None

    def __init__(
        self,
        task_id: str,
        owner: str,
        request_method: str,
        created_at_ms: int,
        ttl_ms: int | None,
        poll_interval_ms: int,
        seq: int,
        *,
        status: TaskStatus = TaskStatus.WORKING,
        status_message: str | None = None,
        last_updated_at_ms: int | None = None,
        variables: dict[str, Any] | None = None,
        result: bytes | None = None,
    ) -> None:
        self.task_id = task_id
        self.owner = owner
        self.status = status
        self.status_message = status_message
        self.created_at_ms = created_at_ms
        # Sharing the int object with created_at_ms costs nothing until the first update.
        self.last_updated_at_ms = (
            created_at_ms if last_updated_at_ms is None else last_updated_at_ms
        )
        self.ttl_ms = ttl_ms
        self.poll_interval_ms = poll_interval_ms
        self.request_method = request_method
        self.variables = variables
        self.result = result
        self.seq = seq
        self._json = None

    @property
    def expires_at_ms(self) -> int | None:
        """When the task expires (``None``: never)."""
        ttl = self.ttl_ms
        return None if ttl is None else self.created_at_ms + ttl

    def is_expired(self, now_ms: int) -> bool:
        """Expired from ``createdAt + ttl`` on (inclusive): readable, but no longer mutable."""
        ttl = self.ttl_ms
        return ttl is not None and now_ms >= self.created_at_ms + ttl

    def __lt__(self, other: TaskRecord) -> bool:
        # Orders the per-shard expiry heap; only records with a ttl are ever compared.
        mine = self.created_at_ms + (self.ttl_ms or 0)
        theirs = other.created_at_ms + (other.ttl_ms or 0)
        if mine != theirs:
            return mine < theirs
        return self.seq < other.seq

    def wire_json(self) -> bytes:
        """Compact JSON of the MCP ``Task``; cached until the store next mutates the record."""
        cached = self._json
        if cached is None:
            variables = self.variables
            meta = dumps_compact(variables) if variables else None
            cached = self._json = self._encode(meta)
        return cached

    def _encode(self, meta: bytes | None) -> bytes:
        """Build the wire JSON around an already-encoded ``_meta`` object."""
        try:
            head = self._head(json_string).encode("utf-8")
        except UnicodeEncodeError:
            # A message holding lone surrogates: escape instead of failing the reply.
            head = self._head(json_string_ascii).encode("ascii")
        if meta is None:
            return head + b"}"
        return b"".join((head, b',"_meta":', meta, b"}"))

    def _head(self, quote: Any) -> str:
        ttl = self.ttl_ms
        message = self.status_message
        status_part = _STATUS_PART[self.status]
        if message is not None:
            status_part = f'{status_part},"statusMessage":{quote(message)}'
        created = format_ms(self.created_at_ms)
        updated = (
            created
            if self.last_updated_at_ms == self.created_at_ms
            else format_ms(self.last_updated_at_ms)
        )
        return (
            f'{{"taskId":{quote(self.task_id)}{status_part}'
            f',"createdAt":"{created}","lastUpdatedAt":"{updated}"'
            f',"ttl":{"null" if ttl is None else ttl}'
            f',"pollInterval":{self.poll_interval_ms}'
        )

    def __repr__(self) -> str:
        return (
            f"TaskRecord(task_id={self.task_id!r}, owner={self.owner!r}, "
            f"status={self.status.value}, seq={self.seq})"
        )


def list_json(records: Iterable[TaskRecord], next_cursor: str | None) -> bytes:
    """The MCP ``ListTasksResult``: ``{"tasks":[...],"nextCursor":"..."}``.

    ``nextCursor`` is present only when more tasks remain, as the MCP spec requires.
    """
    body = b",".join(record.wire_json() for record in records)
    if next_cursor is None:
        return b'{"tasks":[' + body + b"]}"
    # Cursors are URL-safe base64, so no escaping is ever needed; json_string keeps it honest.
    tail = json_string(next_cursor).encode("utf-8")
    return b"".join((b'{"tasks":[', body, b'],"nextCursor":', tail, b"}"))
