"""The MCP task status state machine."""

from __future__ import annotations

from enum import StrEnum

from taskstore.store.errors import InvalidArgument

__all__ = ["TaskStatus", "can_transition", "parse_status"]


class TaskStatus(StrEnum):
    """MCP 2025-11-25 task statuses; the values are the exact wire names."""

    WORKING = "working"
    INPUT_REQUIRED = "input_required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Terminal tasks never change status again (MCP: MUST NOT transition)."""
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

# Self-transitions are deliberately absent: the seed rejects them, so does the store.
_ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.WORKING: frozenset(
        {
            TaskStatus.INPUT_REQUIRED,
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.INPUT_REQUIRED: frozenset(
        {TaskStatus.WORKING, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}

_BY_NAME: dict[str, TaskStatus] = {s.value: s for s in TaskStatus}


def can_transition(current: TaskStatus, new: TaskStatus) -> bool:
    """Whether the MCP state machine allows ``current -> new``."""
    return new in _ALLOWED[current]


def parse_status(text: str) -> TaskStatus:
    """Map a wire name to a status; case-sensitive like the MCP schema's string literals."""
    status = _BY_NAME.get(text)
    if status is None:
        shown = text if _echoable(text) else "<unprintable>"
        raise InvalidArgument(
            f"invalid status '{shown}': expected working, input_required, completed, "
            "failed or cancelled"
        )
    return status


def _echoable(text: str) -> bool:
    # Error replies are one line; never echo control characters or very long input.
    return len(text) <= 64 and text.isascii() and text.isprintable()
