"""What the store tells a persistence log, and a record's state as plain values.

The store stays pure: it calls a :class:`Journal` with the *effect* of every change (the
record's whole state after it, or its removal), never with the command that caused it, so a
log replays without consulting the clock or a random source (docs/persistence.md). Writing
those effects somewhere is the server's business (``taskstore.server.aof``).

A record's state is a tuple of plain values (str, int, bytes, None, dict, list, bool, float):
anything a serializer of Python built-ins can write and read back exactly.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from taskstore.store.record import Interaction, TaskRecord
from taskstore.store.status import TaskStatus

__all__ = ["Journal", "StateError", "record_from_state", "record_state"]


class Journal(Protocol):
    """Receives every change the store commits, synchronously, before the caller's reply."""

    def changed(self, record: TaskRecord) -> None:
        """A record was created or changed (status, message, variables, result, input,
        cancellation request, worker lease): its whole state is now as given."""

    def removed(self, record: TaskRecord) -> None:
        """A record was deleted or evicted."""

    def cleared(self) -> None:
        """Every record was dropped (FLUSHALL)."""


class StateError(ValueError):
    """A state tuple that no record could have produced."""


_STATUSES = {status.value: status for status in TaskStatus}
#: status -> its plain str (marshal takes no str subclass; a lookup costs a fifth of
#: the enum's ``value`` property, and this runs for every change that is logged)
_VALUES = {status: status.value for status in TaskStatus}


def record_state(record: TaskRecord) -> tuple[Any, ...]:
    """Everything a record holds, as plain values (the inverse of :func:`record_from_state`).

    Layout: owner, id, seq, status, message, created, updated, ttl, poll interval, method,
    variables, result, interaction (None, or requests, issued keys, answers, error,
    cancellation request time, input bytes, lease holder, lease end).
    """
    interaction = record.interaction
    extra: tuple[Any, ...] | None = None
    if interaction is not None:
        extra = (
            interaction.requests,
            sorted(interaction.issued),
            interaction.answers,
            interaction.error,
            interaction.cancel_requested_at_ms,
            interaction.input_bytes,
            interaction.lease_holder,
            interaction.lease_expires_at_ms,
        )
    return (
        record.owner,
        record.task_id,
        record.seq,
        _VALUES[record.status],
        record.status_message,
        record.created_at_ms,
        record.last_updated_at_ms,
        record.ttl_ms,
        record.poll_interval_ms,
        record.request_method,
        record.variables,
        record.result,
        extra,
    )


def record_from_state(state: Any) -> TaskRecord:
    """Rebuild a record from :func:`record_state`'s tuple; ``StateError`` when the values
    could not have come from a record (a log that passed its checksum but was written by
    something else)."""
    if type(state) is not tuple or len(state) != 13:
        raise StateError("not a task state")
    (
        owner,
        task_id,
        seq,
        status,
        message,
        created,
        updated,
        ttl,
        poll,
        method,
        variables,
        result,
        extra,
    ) = state
    # One expression: this runs once per task when a million are loaded.
    if not (
        type(owner) is str
        and type(task_id) is str
        and type(method) is str
        and type(seq) is int
        and type(created) is int
        and type(updated) is int
        and (ttl is None or type(ttl) is int)
        and type(poll) is int
        and status in _STATUSES
        and (message is None or type(message) is str)
        and (variables is None or type(variables) is dict)
        and (result is None or type(result) is bytes)
        and (extra is None or (type(extra) is tuple and len(extra) == 8))
    ):
        raise StateError("a field has the wrong type")
    record = TaskRecord(
        task_id,
        owner,
        sys.intern(method),
        created,
        ttl,
        poll,
        seq,
        status=_STATUSES[status],
        status_message=message,
        last_updated_at_ms=updated,
        variables=variables,
        result=result,
    )
    if extra is not None:
        requests, issued, answers, error, cancel_at, input_bytes, holder, lease_until = extra
        if not (
            type(requests) is dict
            and type(answers) is dict
            and type(issued) is list
            and type(input_bytes) is int
            and (error is None or type(error) is bytes)
            and (cancel_at is None or type(cancel_at) is int)
            and (lease_until is None or type(lease_until) is int)
            and (holder is None or type(holder) is str)
        ):
            raise StateError("an input or lease field has the wrong type")
        interaction = Interaction()
        interaction.requests = requests
        interaction.issued = set(issued)
        interaction.answers = answers
        interaction.error = error
        interaction.cancel_requested_at_ms = cancel_at
        interaction.input_bytes = input_bytes
        interaction.lease_holder = holder
        interaction.lease_expires_at_ms = lease_until
        record.interaction = interaction
    return record
