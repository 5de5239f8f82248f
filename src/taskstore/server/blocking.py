"""Blocking waits (TASK.RESULT … BLOCK, TASK.WAIT, TASK.ANSWERS … BLOCK): clients parked on a
task until it changes.

A waiter is keyed by (owner, task id). While any client waits, the store calls
``Waiters.on_change`` synchronously after every change (``on_active`` tells the server when to
start and stop listening); the reply is computed there, from the state right after that change, and
handed to the waiting connection on the next loop iteration (never inside another client's
command, so a woken client's queued commands cannot run in the middle of someone else's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskstore.protocol import ErrorReply
from taskstore.store import TaskError, TaskNotFound, TaskRecord, TaskStatus, answers_json

if TYPE_CHECKING:
    from taskstore.server.connection import Connection
    from taskstore.store import TaskStore

_GONE = frozenset({"deleted", "evicted"})


#: The waiter kind of ``TASK.RESULT … BLOCK … ANY``; plain ``BLOCK`` is ``"result"``.
RESULT_ANY = "result-any"
#: The waiter kind of ``TASK.ANSWERS … BLOCK``.
ANSWERS = "answers"


def answers_reply(record: TaskRecord) -> Any:
    """What TASK.ANSWERS BLOCK answers for this state, or None to keep waiting: every answer
    once no request is outstanding, the task is terminal, or cancellation was requested."""
    interaction = record.interaction
    if (
        record.status.is_terminal
        or interaction is None
        or not interaction.requests
        or interaction.cancel_requested_at_ms is not None
    ):
        return answers_json(interaction)
    return None


def result_reply(record: TaskRecord, store: TaskStore, any_status: bool = False) -> Any:
    """What TASK.RESULT BLOCK answers for this state, or None to keep waiting.

    A terminal task with a result answers it. Cancelled without one answers NOTREADY (no
    result is coming). Completed or failed without one keeps waiting: the store lets a result
    be attached after the status (TASK.UPDATE <id> completed, then TASK.SETRESULT). With
    ``any_status`` (the ANY option) a stored result answers whatever the status.
    """
    result = record.result_json()
    if any_status and result is not None:
        return result
    status = record.status
    if not status.is_terminal:
        return None
    if result is None and status is not TaskStatus.CANCELLED:
        return None
    try:
        return store.get_result(record.owner, record.task_id)
    except TaskError as e:  # cancelled without a result: NOTREADY
        return ErrorReply(str(e))


class Waiter:
    """One blocked client: what it waits for, and how to answer it."""

    __slots__ = ("conn", "key", "kind", "status", "timer")

    def __init__(
        self, conn: Connection, owner: str, task_id: str, kind: str, status: TaskStatus | None
    ) -> None:
        self.conn = conn
        self.key = (owner, task_id)
        # "result" (TASK.RESULT BLOCK), RESULT_ANY (… BLOCK … ANY), "wait" (TASK.WAIT) or
        # ANSWERS (TASK.ANSWERS BLOCK)
        self.kind = kind
        self.status = status  # TASK.WAIT STATUS <s>: wake once the status differs
        self.timer: asyncio.TimerHandle | None = None

    def reply_for(self, event: str, record: TaskRecord, store: TaskStore) -> Any:
        """The reply if this change ends the wait, else None (keep waiting)."""
        task_id = self.key[1]
        if event in _GONE:
            return ErrorReply(str(TaskNotFound(task_id)))
        if self.kind == "result":
            return result_reply(record, store)
        if self.kind == RESULT_ANY:
            return result_reply(record, store, True)
        if self.kind == ANSWERS:
            return answers_reply(record)
        if self.status is not None and record.status == self.status:
            return None
        return record.wire_json_v2() if self.conn.v2 else record.wire_json()


class Waiters:
    """Every blocked client of one server."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self.by_task: dict[tuple[str, str], set[Waiter]] = {}
        self.count = 0
        #: told True when the first client blocks and False when the last one is gone, so
        #: the server listens to the store's changes only while someone waits for one
        self.on_active: Callable[[bool], None] | None = None

    def add(self, waiter: Waiter, timeout_ms: int) -> None:
        self.by_task.setdefault(waiter.key, set()).add(waiter)
        self.count += 1
        if self.count == 1 and self.on_active is not None:
            self.on_active(True)
        if timeout_ms:
            loop = asyncio.get_running_loop()
            waiter.timer = loop.call_later(timeout_ms / 1000, self.wake, waiter, None)

    def remove(self, waiter: Waiter) -> bool:
        """Forget a waiter (woken, timed out, disconnected); False if it was already gone."""
        waiters = self.by_task.get(waiter.key)
        if waiters is None or waiter not in waiters:
            return False
        waiters.discard(waiter)
        if not waiters:
            del self.by_task[waiter.key]
        self.count -= 1
        if waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
        if not self.count and self.on_active is not None:
            self.on_active(False)
        return True

    def wake(self, waiter: Waiter, reply: Any) -> bool:
        """Answer a waiter with ``reply`` (None: timed out) and let its connection go on."""
        if not self.remove(waiter):
            return False
        conn = waiter.conn
        asyncio.get_running_loop().call_soon(conn.resume, reply)
        return True

    def on_change(self, event: str, owner: str, record: TaskRecord) -> None:
        """Store listener: wake the waiters this change satisfies."""
        waiters = self.by_task.get((owner, record.task_id))
        if not waiters:
            return
        for waiter in list(waiters):
            reply = waiter.reply_for(event, record, self.store)
            if reply is not None:
                self.wake(waiter, reply)

    def wake_all_gone(self) -> None:
        """FLUSHALL: every task is gone, so every waiter gets NOTFOUND."""
        for waiters in list(self.by_task.values()):
            for waiter in list(waiters):
                self.wake(waiter, ErrorReply(str(TaskNotFound(waiter.key[1]))))
