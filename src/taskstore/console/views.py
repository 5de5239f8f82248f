"""What the console's JSON API says about a task: a short summary for the list and the live
feed, and the whole record for the detail view (docs/console.md).

Pure functions of a record: no I/O, no aiohttp. Every value is data for the page to show as
text (the page never parses it as HTML). Payloads are sent as JSON text; one larger than
:data:`PAYLOAD_INLINE_BYTES` is cut to a preview, and the page offers the whole of it as a
download instead, so a 16 MiB result never reaches the page unasked.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from taskstore.store import TaskRecord, TaskStatus, json_object
from taskstore.store.jsonutil import dumps_compact

__all__ = [
    "LIST_TEXT_CHARS",
    "PAYLOAD_INLINE_BYTES",
    "PAYLOAD_NAMES",
    "detail",
    "payload_bytes",
    "removed",
    "summary",
]

#: Longest status message or method a list row carries (the detail view has all of it).
LIST_TEXT_CHARS = 240
#: Payloads up to this size travel whole in the detail view; larger ones as a preview.
PAYLOAD_INLINE_BYTES = 256 * 1024
#: How much of a larger payload the preview shows.
PAYLOAD_PREVIEW_BYTES = 4096

STATUSES = tuple(status.value for status in TaskStatus)


def _clip(text: str, limit: int = LIST_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "\u2026"


def summary(record: TaskRecord) -> dict[str, Any]:
    """A list row: what changes live, and nothing large."""
    interaction = record.interaction
    message = record.status_message
    return {
        "taskId": record.task_id,
        "seq": record.seq,
        "status": record.status.value,
        "statusMessage": None if message is None else _clip(message),
        "method": _clip(record.request_method),
        "createdAt": record.created_at_ms,
        "lastUpdatedAt": record.last_updated_at_ms,
        "ttlMs": record.ttl_ms,
        "expiresAt": record.expires_at_ms,
        "pollIntervalMs": record.poll_interval_ms,
        "pendingInputs": 0 if interaction is None else len(interaction.requests),
        "cancelRequested": interaction is not None
        and interaction.cancel_requested_at_ms is not None,
    }


def _null_or(value: int | None) -> str:
    return "null" if value is None else str(value)


def summary_json(record: TaskRecord, transitions: list[tuple[str, int]] | None = None) -> str:
    """:func:`summary` as JSON text, built directly (the live feed makes up to a thousand a
    second): ASCII, the same members, plus the ``transitions`` seen since the last event."""
    interaction = record.interaction
    message = record.status_message
    pending = 0 if interaction is None else len(interaction.requests)
    cancel = interaction is not None and interaction.cancel_requested_at_ms is not None
    text = (
        f'{{"taskId":{_quote(record.task_id)},"seq":{record.seq},'
        f'"status":"{record.status.value}",'
        f'"statusMessage":{"null" if message is None else _quote(_clip(message))},'
        f'"method":{_quote(_clip(record.request_method))},'
        f'"createdAt":{record.created_at_ms},"lastUpdatedAt":{record.last_updated_at_ms},'
        f'"ttlMs":{_null_or(record.ttl_ms)},"expiresAt":{_null_or(record.expires_at_ms)},'
        f'"pollIntervalMs":{record.poll_interval_ms},"pendingInputs":{pending},'
        f'"cancelRequested":{"true" if cancel else "false"}'
    )
    if transitions:
        steps = ",".join(f'["{status}",{at}]' for status, at in transitions)
        text += f',"transitions":[{steps}]'
    return text + "}"


def removed(task_id: str) -> dict[str, Any]:
    """A row that went away (TASK.DEL, eviction)."""
    return {"taskId": task_id, "removed": True}


def _payload(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    size = len(data)
    if size <= PAYLOAD_INLINE_BYTES:
        return {"bytes": size, "json": data.decode("utf-8", "replace")}
    preview = data[:PAYLOAD_PREVIEW_BYTES].decode("utf-8", "ignore")
    return {"bytes": size, "truncated": True, "preview": preview}


#: The payloads the download endpoint serves, by name.
PAYLOAD_NAMES = (
    "variables",
    "result",
    "error",
    "input-requests",
    "answers",
    "task-2025-11-25",
    "result-2025-11-25",
    "task-2026-07-28",
)


def payload_bytes(record: TaskRecord, name: str) -> bytes | None:
    """One payload of the record as JSON text (None: the record has none)."""
    interaction = record.interaction
    if name == "variables":
        return dumps_compact(record.variables) if record.variables else None
    if name == "result":
        return record.result
    if name == "error":
        return None if interaction is None else interaction.error
    if name == "input-requests":
        return None if interaction is None else _object(interaction.requests)
    if name == "answers":
        return None if interaction is None else _object(interaction.answers)
    if name == "task-2025-11-25":
        return record.wire_json()
    if name == "result-2025-11-25":
        return record.result_json()
    if name == "task-2026-07-28":
        return record.wire_json_v2()
    raise KeyError(name)


def _object(items: dict[str, bytes]) -> bytes:
    return json_object(items)


def detail(record: TaskRecord, now_ms: int) -> dict[str, Any]:
    """Everything the record holds, for the detail view."""
    interaction = record.interaction
    out = summary(record)
    out["statusMessage"] = record.status_message
    out["method"] = record.request_method
    out["owner"] = record.owner
    out["expired"] = record.is_expired(now_ms)
    out["serverTime"] = now_ms
    out["variables"] = _payload(payload_bytes(record, "variables"))
    out["result"] = _payload(record.result)
    out["error"] = _payload(None if interaction is None else interaction.error)
    requests: dict[str, Any] = {}
    answers: dict[str, Any] = {}
    if interaction is not None:
        requests = {key: _payload(data) for key, data in interaction.requests.items()}
        answers = {key: _payload(data) for key, data in interaction.answers.items()}
    out["inputRequests"] = requests
    out["answers"] = answers
    out["cancelRequestedAt"] = None if interaction is None else interaction.cancel_requested_at_ms
    out["leaseHolder"] = None if interaction is None else interaction.lease_holder
    out["leaseExpiresAt"] = None if interaction is None else interaction.lease_expires_at_ms
    out["renderings"] = {
        "2025-11-25": _payload(record.wire_json()),
        "2025-11-25 TASK.RESULT": _payload(record.result_json()),
        "2026-07-28": _payload(record.wire_json_v2()),
    }
    return out
