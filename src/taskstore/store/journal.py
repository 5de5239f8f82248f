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
        record.status.value,
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


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise StateError(what)


def _optional_int(value: Any) -> bool:
    return value is None or (type(value) is int)


def record_from_state(state: Any) -> TaskRecord:
    """Rebuild a record from :func:`record_state`'s tuple; ``StateError`` when the values
    could not have come from a record (a log that passed its checksum but was written by
    something else)."""
    _check(type(state) is tuple and len(state) == 13, "not a task state")
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
    _check(type(owner) is str and type(task_id) is str and type(method) is str, "bad names")
    _check(type(seq) is int and type(created) is int and type(updated) is int, "bad times")
    _check(_optional_int(ttl) and type(poll) is int, "bad ttl or poll interval")
    _check(status in _STATUSES, "bad status")
    _check(message is None or type(message) is str, "bad status message")
    _check(variables is None or type(variables) is dict, "bad variables")
    _check(result is None or type(result) is bytes, "bad result")
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
        _check(type(extra) is tuple and len(extra) == 8, "bad interaction")
        requests, issued, answers, error, cancel_at, input_bytes, holder, lease_until = extra
        _check(type(requests) is dict and type(answers) is dict, "bad input requests")
        _check(type(issued) is list and type(input_bytes) is int, "bad input bookkeeping")
        _check(error is None or type(error) is bytes, "bad error")
        _check(_optional_int(cancel_at) and _optional_int(lease_until), "bad times")
        _check(holder is None or type(holder) is str, "bad lease holder")
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
