"""One stored task, and its MCP wire form."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskstore.store.jsonutil import dumps_compact, json_string, json_string_ascii
from taskstore.store.status import TaskStatus
from taskstore.store.timefmt import format_ms

__all__ = ["Interaction", "TaskRecord", "json_object", "list_json", "list_json_v2"]

_STATUS_PART = {status: f',"status":"{status.value}"' for status in TaskStatus}
# module constants: an enum member read from its class costs an attribute lookup each time
_INPUT_REQUIRED = TaskStatus.INPUT_REQUIRED
_COMPLETED = TaskStatus.COMPLETED
_FAILED = TaskStatus.FAILED
#: The keys of the ttl and the poll interval in each MCP generation's JSON.
_V1_NAMES = ("ttl", "pollInterval")
_V2_NAMES = ("ttlMs", "pollIntervalMs")


class Interaction:
    """What a task exchanges with its client beyond its status (MCP 2026-07-28; docs/commands.md):
    input requests and their answers, the JSON-RPC error it failed with, a cancellation
    request. Held only by tasks that use one of them, so first-generation records stay small.

    JSON values are kept as compact JSON text (bytes), ready to splice into replies; the dicts
    keep insertion order, which is the order requests were asked and answered in.
    """

    __slots__ = (
        "answers",
        "cancel_requested_at_ms",
        "error",
        "input_bytes",
        "issued",
        "lease_expires_at_ms",
        "lease_holder",
        "requests",
    )

    def __init__(self) -> None:
        self.requests: dict[str, bytes] = {}  # outstanding: key -> {"method","params"} JSON
        self.issued: set[str] = set()  # every key ever asked in this task's life
        self.answers: dict[str, bytes] = {}  # key -> response JSON, kept until eviction
        self.error: bytes | None = None  # the JSON-RPC error object of TASK.FAIL
        self.cancel_requested_at_ms: int | None = None
        self.input_bytes = 0  # outstanding requests + answers, held to max_input_bytes
        self.lease_holder: str | None = None  # the worker running the task (TASK.LEASE)
        self.lease_expires_at_ms: int | None = None


def json_object(items: dict[str, bytes]) -> bytes:
    """``{"k":<json>,...}`` from keys and already-encoded values."""
    return b"{" + b",".join(json_string(k).encode() + b":" + v for k, v in items.items()) + b"}"


class TaskRecord:
    """A task as the store holds it.

    Slots instead of a ``__dict__``: the record is most of the memory per task. ``expires_at_ms``
    is derived (``created_at_ms + ttl_ms``) rather than stored for the same reason. Records handed
    out by the store are its live objects: treat them as read-only; only the store mutates them,
    and it drops the cached wire JSON (``_json``) whenever it does.
    """

    __slots__ = (
        "_json",
        "_json_v2",
        "created_at_ms",
        "interaction",
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
    interaction: Interaction | None
    _json: bytes | None
    _json_v2: bytes | None

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
        self.interaction: Interaction | None = None
        self._json = None
        self._json_v2 = None

    @property
    def expires_at_ms(self) -> int | None:
        """When the task expires (``None``: never)."""
        ttl = self.ttl_ms
        return None if ttl is None else self.created_at_ms + ttl

    def is_expired(self, now_ms: int) -> bool:
        """Expired from ``createdAt + ttl`` on (inclusive): readable, but no longer mutable."""
        ttl = self.ttl_ms
        return ttl is not None and now_ms >= self.created_at_ms + ttl

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

    def _head(self, quote: Any, names: tuple[str, str] = _V1_NAMES) -> str:
        """Every member up to and including the poll interval; ``names`` are the generation's
        keys for the ttl and the poll interval."""
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
            f',"{names[0]}":{"null" if ttl is None else ttl}'
            f',"{names[1]}":{self.poll_interval_ms}'
        )

    def changed(self) -> None:
        """Drop the cached wire forms; the store calls it after every mutation."""
        self._json = None
        self._json_v2 = None

    def result_json(self) -> bytes | None:
        """What first-generation TASK.RESULT answers: for a task failed by TASK.FAIL its
        JSON-RPC error as ``{"error": …}`` (as the 2026-07-28 rendering shows it, even if a
        result was stored before), else the stored result, else None."""
        interaction = self.interaction
        if interaction is not None and interaction.error is not None:
            return b'{"error":' + interaction.error + b"}"
        return self.result

    # -- the 2026-07-28 rendering (docs/commands.md, 2026-07-28) -----------------------------------

    def wire_json_v2(self) -> bytes:
        """The MCP 2026-07-28 ``DetailedTask``: the Task plus the payload of its status
        (``inputRequests``, ``result`` or ``error``); cached like :meth:`wire_json`."""
        cached = self._json_v2
        if cached is None:
            cached = self._json_v2 = self._encode_v2(True)
        return cached

    def task_json_v2(self) -> bytes:
        """The plain 2026-07-28 ``Task`` (TASK.LIST items): no payload fields."""
        return self._encode_v2(False)

    def _encode_v2(self, detailed: bool) -> bytes:
        try:
            head = self._head(json_string, _V2_NAMES).encode("utf-8")
        except UnicodeEncodeError:
            head = self._head(json_string_ascii, _V2_NAMES).encode("ascii")
        if not detailed:
            return head + b"}"
        status = self.status
        interaction = self.interaction
        if status is _INPUT_REQUIRED:
            requests = interaction.requests if interaction is not None else {}
            return head + b',"inputRequests":' + json_object(requests) + b"}"
        if status is _COMPLETED:
            return head + b',"result":' + (self.result or b"{}") + b"}"
        if status is _FAILED:
            error = interaction.error if interaction is not None else None
            if error is None:
                # failed the first-generation way (TASK.COMPLETE … failed): no error object
                message = self.status_message or "Task failed"
                error = dumps_compact({"code": -32603, "message": message})
            return head + b',"error":' + error + b"}"
        return head + b"}"

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


def list_json_v2(records: Iterable[TaskRecord], next_cursor: str | None) -> bytes:
    """TASK.LIST in the 2026-07-28 generation: plain Tasks, same envelope as :func:`list_json`.

    (2026-07-28 has no ``tasks/list``; the envelope is taskstore's own, kept identical.)
    """
    body = b",".join(record.task_json_v2() for record in records)
    if next_cursor is None:
        return b'{"tasks":[' + body + b"]}"
    tail = json_string(next_cursor).encode("utf-8")
    return b"".join((b'{"tasks":[', body, b'],"nextCursor":', tail, b"}"))
