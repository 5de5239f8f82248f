"""Domain errors whose text is the Redis error reply, so the server never reformats them.

``str(err)`` is the complete reply line without the leading ``-``: the first word is the code
clients branch on (``NOTFOUND``, ``EXPIRED``, ...). ``mcp_code`` is the JSON-RPC code an MCP server
should map the error to. Every message is a single line: anything echoed from a client (task ids,
status names) has been validated or sanitised before it reaches these constructors.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "InvalidArgument",
    "InvalidTransition",
    "LeaseHeld",
    "LimitExceeded",
    "NotReady",
    "TaskError",
    "TaskExists",
    "TaskExpired",
    "TaskNotFound",
    "TooLarge",
]


class TaskError(Exception):
    """Base of every store error; ``str()`` is the full reply text ``<CODE> <detail>``."""

    code: ClassVar[str] = "ERR"
    mcp_code: ClassVar[int] = -32602

    def __init__(self, detail: str) -> None:
        # Accept the detail with or without the code so both spellings read naturally.
        prefix = self.code + " "
        text = detail if detail.startswith(prefix) else prefix + detail
        super().__init__(text)

    @property
    def message(self) -> str:
        """The reply text, for callers that prefer an attribute to ``str()``."""
        return str(self.args[0])

    @property
    def detail(self) -> str:
        """The text after the code word (what an MCP error ``message`` would carry)."""
        return self.message[len(self.code) + 1 :]

    def __str__(self) -> str:
        return self.message


class TaskNotFound(TaskError):
    """No such task for this owner: another owner's task is indistinguishable from none."""

    code = "NOTFOUND"

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task not found: {task_id}")


class TaskExpired(TaskError):
    """Mutation of a task past its ttl (reads still succeed until it is evicted)."""

    code = "EXPIRED"

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task expired: {task_id}")


class InvalidTransition(TaskError):
    """A status change the MCP state machine forbids (terminal statuses never change)."""

    code = "INVALIDTRANSITION"

    def __init__(self, task_id: str, from_status: str, to_status: str) -> None:
        self.task_id = task_id
        super().__init__(f"invalid transition from {from_status} to {to_status} for task {task_id}")


class NotReady(TaskError):
    """A result read before the task is terminal, or when no result was stored."""

    code = "NOTREADY"

    def __init__(self, task_id: str, status: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id} is {status}; no result yet")


class TooLarge(TaskError):
    """A size, depth or length limit of the store configuration was exceeded."""

    code = "TOOLARGE"


class LimitExceeded(TaskError):
    """The owner already holds ``max_tasks_per_owner`` records (MCP: an internal error)."""

    code = "LIMIT"
    mcp_code = -32603

    def __init__(self, count: int, maximum: int) -> None:
        super().__init__(
            f"owner has {count} tasks (max {maximum}): cancel or wait for existing tasks to expire"
        )


class TaskExists(TaskError):
    """A caller-chosen id this owner already uses."""

    code = "EXISTS"

    def __init__(self, task_id: str, what: str = "task already exists") -> None:
        self.task_id = task_id
        super().__init__(f"{what}: {task_id}")


class LeaseHeld(TaskError):
    """TASK.LEASE of a task another worker holds a live lease on."""

    code = "LEASED"
    mcp_code = -32603

    def __init__(self, task_id: str, remaining_ms: int) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id} is leased by another worker for {remaining_ms} ms")


class InvalidArgument(TaskError):
    """Bad arguments: JSON, TTL, id, cursor, limit. Reply prefix is Redis's generic ``ERR``."""

    code = "ERR"
