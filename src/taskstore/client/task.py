"""The task as the client sees it: one dataclass for both MCP task generations.

taskstore renders a task in the generation its connection selected (docs/commands.md): the MCP
2025-11-25 ``Task`` (``ttl``, ``pollInterval``, ``_meta`` with the variables) or the 2026-07-28
``DetailedTask`` (``ttlMs``, ``pollIntervalMs``, no ``_meta``, plus ``inputRequests`` /
``result`` / ``error`` for its status). :meth:`Task.from_wire` reads either shape; the
dataclass keeps which one it came in (``mcp_version``) so :meth:`Task.to_wire` gives it back
unchanged.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast, get_args

__all__ = [
    "MCP_2025_11_25",
    "MCP_2026_07_28",
    "MCP_VERSIONS",
    "TERMINAL_STATUSES",
    "McpVersion",
    "Task",
    "TaskInspection",
    "TaskPage",
    "TaskStatus",
    "format_timestamp",
    "parse_timestamp",
]

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]
STATUSES: Final[frozenset[str]] = frozenset(get_args(TaskStatus))
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"completed", "failed", "cancelled"})

#: The MCP revisions whose task shape taskstore renders (``TASK.VERSION``; docs/commands.md).
McpVersion = Literal["2025-11-25", "2026-07-28"]
#: First generation: the core-protocol tasks of MCP 2025-11-25 (the MCP Python SDK 1.x).
MCP_2025_11_25: Final = "2025-11-25"
#: Second generation: the ``io.modelcontextprotocol/tasks`` extension of MCP 2026-07-28.
MCP_2026_07_28: Final = "2026-07-28"
MCP_VERSIONS: Final[tuple[McpVersion, ...]] = get_args(McpVersion)


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


def _mapping(data: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    if isinstance(data, str | bytes):
        return cast(Mapping[str, Any], json.loads(data))
    return data


@dataclass(frozen=True, slots=True)
class Task:
    """One task, parsed from the server's wire JSON in either MCP generation.

    Both generations:

    - ``ttl``: the retention in milliseconds counted from ``created_at`` (``None``:
      unlimited); the wire ``ttl`` (2025-11-25) or ``ttlMs`` (2026-07-28), also readable as
      :attr:`ttl_ms`.
    - ``poll_interval``: milliseconds, the wire ``pollInterval`` / ``pollIntervalMs``, also
      :attr:`poll_interval_ms`.

    First generation (``mcp_version == "2025-11-25"``) only:

    - ``meta``: the task's variables (the wire ``_meta``), ``None`` when it has none.

    Second generation (``mcp_version == "2026-07-28"``, the extension's ``DetailedTask``)
    only; all ``None`` in the first generation and in TASK.LIST items, which are plain Tasks:

    - ``input_requests``: the outstanding input requests (key -> ``{"method", "params"}``)
      while ``input_required``.
    - ``result``: the result of the original request when ``completed`` (``has_result``
      tells a stored JSON ``null`` from an absent ``result``).
    - ``error``: the JSON-RPC error object (``code``, ``message``, ``data``?) when ``failed``.

    A second-generation task carries no variables (``meta`` is ``None``): read them with
    ``inspect()``. The first generation reads a result with ``result()`` (TASK.RESULT).
    """

    task_id: str
    status: TaskStatus
    created_at: datetime
    last_updated_at: datetime
    ttl: int | None
    poll_interval: int | None = None
    status_message: str | None = None
    meta: dict[str, Any] | None = field(default=None, hash=False)
    input_requests: dict[str, dict[str, Any]] | None = field(default=None, hash=False)
    result: Any = field(default=None, hash=False)
    error: dict[str, Any] | None = field(default=None, hash=False)
    has_result: bool = False
    mcp_version: McpVersion = MCP_2025_11_25

    @property
    def is_terminal(self) -> bool:
        """Whether the status is completed, failed or cancelled (it will never change)."""
        return self.status in TERMINAL_STATUSES

    @property
    def variables(self) -> dict[str, Any]:
        """The task's variables (``meta``), an empty dict when it has none (and always in the
        second generation, whose tasks do not carry them: see ``inspect()``)."""
        return dict(self.meta or {})

    @property
    def ttl_ms(self) -> int | None:
        """``ttl`` under its 2026-07-28 name (milliseconds in both generations)."""
        return self.ttl

    @property
    def poll_interval_ms(self) -> int | None:
        """``poll_interval`` under its 2026-07-28 name (milliseconds in both generations)."""
        return self.poll_interval

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | str | bytes) -> Task:
        """Parse the MCP JSON of a task (a mapping, or its JSON text), in either generation:
        an object with ``ttlMs`` is a 2026-07-28 (Detailed)Task, else a 2025-11-25 Task."""
        data = _mapping(data)
        status = data["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown task status {status!r}")
        common: dict[str, Any] = {
            "task_id": str(data["taskId"]),
            "status": cast(TaskStatus, status),
            "created_at": parse_timestamp(data["createdAt"]),
            "last_updated_at": parse_timestamp(data["lastUpdatedAt"]),
            "status_message": data.get("statusMessage"),
        }
        if "ttlMs" in data:
            requests = data.get("inputRequests")
            error = data.get("error")
            return cls(
                ttl=data["ttlMs"],
                poll_interval=data.get("pollIntervalMs"),
                input_requests=None
                if requests is None
                else {str(k): dict(v) for k, v in requests.items()},
                result=data.get("result"),
                error=None if error is None else dict(error),
                has_result="result" in data,
                mcp_version=MCP_2026_07_28,
                **common,
            )
        meta = data.get("_meta")
        return cls(
            ttl=data.get("ttl"),
            poll_interval=data.get("pollInterval"),
            meta=dict(meta) if meta is not None else None,
            **common,
        )

    def to_wire(self) -> dict[str, Any]:
        """The MCP JSON object of the task (camelCase) in its own generation, with the
        server's field order and formats: ``json.dumps(task.to_wire(), separators=(",",
        ":"))`` gives back the bytes the server sent."""
        wire: dict[str, Any] = {"taskId": self.task_id, "status": self.status}
        if self.status_message is not None:
            wire["statusMessage"] = self.status_message
        wire["createdAt"] = format_timestamp(self.created_at)
        wire["lastUpdatedAt"] = format_timestamp(self.last_updated_at)
        if self.mcp_version == MCP_2026_07_28:
            wire["ttlMs"] = self.ttl
            if self.poll_interval is not None:
                wire["pollIntervalMs"] = self.poll_interval
            if self.input_requests is not None:
                wire["inputRequests"] = copy.deepcopy(self.input_requests)
            if self.has_result:
                wire["result"] = copy.deepcopy(self.result)
            if self.error is not None:
                wire["error"] = copy.deepcopy(self.error)
            return wire
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
    """One page of TASK.LIST: the MCP ``ListTasksResult``. Newest task first.

    In the 2026-07-28 generation (which has no ``tasks/list``) the envelope is the same and the
    items are plain Tasks: no ``input_requests``, ``result`` or ``error``.
    """

    tasks: list[Task]
    next_cursor: str | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | str | bytes) -> TaskPage:
        data = _mapping(data)
        return cls(
            tasks=[Task.from_wire(t) for t in data["tasks"]],
            next_cursor=data.get("nextCursor"),
        )

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"tasks": [t.to_wire() for t in self.tasks]}
        if self.next_cursor is not None:
            wire["nextCursor"] = self.next_cursor
        return wire


@dataclass(frozen=True, slots=True)
class TaskInspection:
    """The whole record of a task, as TASK.INSPECT shows it (for the process doing the work).

    ``task`` is in the connection's generation. ``input_requests`` are the outstanding ones
    (key -> ``{"method", "params"}``), ``issued_keys`` every key ever asked (sorted; a key is
    never asked twice), ``answers`` every answer received (key -> response object, in arrival
    order, kept until the task is evicted), ``error`` the JSON-RPC error of a TASK.FAIL (else
    ``None``), ``cancel_requested_at`` when a cooperative cancellation was requested (else
    ``None``), ``expires_at`` ``created_at + ttl`` (``None``: unlimited).
    """

    task: Task
    owner: str
    method: str
    variables: dict[str, Any] = field(hash=False)
    input_requests: dict[str, dict[str, Any]] = field(hash=False)
    issued_keys: tuple[str, ...]
    answers: dict[str, dict[str, Any]] = field(hash=False)
    error: dict[str, Any] | None = field(hash=False)
    cancel_requested_at: datetime | None
    expires_at: datetime | None

    @property
    def cancel_requested(self) -> bool:
        """Whether a cooperative cancellation was requested (``request_cancel``)."""
        return self.cancel_requested_at is not None
