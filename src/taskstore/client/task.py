"""The task as the client sees it: the MCP 2025-11-25 ``Task`` as a dataclass."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast, get_args

__all__ = [
    "TERMINAL_STATUSES",
    "Task",
    "TaskPage",
    "TaskStatus",
    "format_timestamp",
    "parse_timestamp",
]

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]
STATUSES: Final[frozenset[str]] = frozenset(get_args(TaskStatus))
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"completed", "failed", "cancelled"})


def parse_timestamp(text: str) -> datetime:
    """``2026-11-26T13:24:57.123Z`` (RFC 3339, as the server writes it) to an aware datetime."""
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """The server's format: UTC, milliseconds, ``Z``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Task:
    """One task, parsed from the server's wire JSON.

    ``ttl`` is the retention in milliseconds counted from ``created_at`` (``None``: unlimited);
    ``meta`` is the task's variables (the wire ``_meta``), ``None`` when it has none.
    """

    task_id: str
    status: TaskStatus
    created_at: datetime
    last_updated_at: datetime
    ttl: int | None
    poll_interval: int | None = None
    status_message: str | None = None
    meta: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def is_terminal(self) -> bool:
        """Whether the status is completed, failed or cancelled (it will never change)."""
        return self.status in TERMINAL_STATUSES

    @property
    def variables(self) -> dict[str, Any]:
        """The task's variables (``meta``), an empty dict when it has none."""
        return dict(self.meta or {})

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | str | bytes) -> Task:
        """Parse the MCP JSON of a task (a mapping, or its JSON text)."""
        if isinstance(data, str | bytes):
            data = cast(Mapping[str, Any], json.loads(data))
        status = data["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown task status {status!r}")
        meta = data.get("_meta")
        return cls(
            task_id=str(data["taskId"]),
            status=cast(TaskStatus, status),
            created_at=parse_timestamp(data["createdAt"]),
            last_updated_at=parse_timestamp(data["lastUpdatedAt"]),
            ttl=data.get("ttl"),
            poll_interval=data.get("pollInterval"),
            status_message=data.get("statusMessage"),
            meta=dict(meta) if meta is not None else None,
        )

    def to_wire(self) -> dict[str, Any]:
        """The MCP ``Task`` JSON object (camelCase), with the server's field order and
        formats: ``json.dumps(task.to_wire(), separators=(",", ":"))`` gives back the bytes
        the server sent."""
        wire: dict[str, Any] = {"taskId": self.task_id, "status": self.status}
        if self.status_message is not None:
            wire["statusMessage"] = self.status_message
        wire["createdAt"] = format_timestamp(self.created_at)
        wire["lastUpdatedAt"] = format_timestamp(self.last_updated_at)
        wire["ttl"] = self.ttl
        if self.poll_interval is not None:
            wire["pollInterval"] = self.poll_interval
        if self.meta is not None:
            wire["_meta"] = dict(self.meta)
        return wire

    def to_json(self) -> str:
        """:meth:`to_wire` as compact JSON text."""
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of TASK.LIST: the MCP ``ListTasksResult``. Newest task first."""

    tasks: list[Task]
    next_cursor: str | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | str | bytes) -> TaskPage:
        if isinstance(data, str | bytes):
            data = cast(Mapping[str, Any], json.loads(data))
        return cls(
            tasks=[Task.from_wire(t) for t in data["tasks"]],
            next_cursor=data.get("nextCursor"),
        )

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"tasks": [t.to_wire() for t in self.tasks]}
        if self.next_cursor is not None:
            wire["nextCursor"] = self.next_cursor
        return wire
