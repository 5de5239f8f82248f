"""The pub/sub hub: channels, patterns, and the ``tasks:<owner>`` notification channels.

Every change of a task is published as its JSON on ``tasks:<owner>``. Only that owner (and
identities that may impersonate) may subscribe to it; pattern subscribers receive a task
notification only if they could have subscribed to its channel, so a pattern like ``*`` never
leaks another owner's tasks. Clients cannot PUBLISH to ``tasks:*``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from taskstore.protocol import Push, encode
from taskstore.server.glob import glob_match

if TYPE_CHECKING:
    from taskstore.server.connection import Connection
    from taskstore.store import TaskRecord

log = logging.getLogger("taskstore")

TASK_CHANNEL_PREFIX = b"tasks:"


def may_read_task_channel(conn: Connection, channel: bytes) -> bool:
    """Whether ``conn`` may receive messages of this ``tasks:<owner>`` channel."""
    account = conn.account
    if account is not None and account.can_impersonate:
        return True
    try:
        owner = conn.task_owner()
    except Exception:
        return False
    return channel == TASK_CHANNEL_PREFIX + owner.encode("utf-8", "surrogateescape")


class Hub:
    """Who is subscribed to what, for one server."""

    def __init__(self, output_limit: int) -> None:
        self.channels: dict[bytes, set[Connection]] = {}
        self.patterns: dict[bytes, set[Connection]] = {}
        self.output_limit = output_limit  # bytes of unsent messages before a client is cut
        #: with an append-only file: writes pending entries before a message leaves
        self.commit: Callable[[], bool] | None = None
        #: told True at the first subscription and False when none is left, so the server
        #: listens to the store's changes only while a message could go out
        self.on_active: Callable[[bool], None] | None = None
        self.active = False

    def _check_active(self) -> None:
        active = bool(self.channels or self.patterns)
        if active is not self.active:
            self.active = active
            if self.on_active is not None:
                self.on_active(active)

    # -- subscriptions ------------------------------------------------------

    def subscribe(self, conn: Connection, channel: bytes) -> None:
        self._add(self.channels, conn.channels, conn, channel)

    def unsubscribe(self, conn: Connection, channel: bytes) -> None:
        self._remove(self.channels, conn.channels, conn, channel)

    def psubscribe(self, conn: Connection, pattern: bytes) -> None:
        self._add(self.patterns, conn.patterns, conn, pattern)

    def punsubscribe(self, conn: Connection, pattern: bytes) -> None:
        self._remove(self.patterns, conn.patterns, conn, pattern)

    def _add(
        self, table: dict[bytes, set[Connection]], own: set[bytes], conn: Connection, name: bytes
    ) -> None:
        """``name`` (a channel or a pattern) into the hub's table and the client's own set."""
        if name not in own:
            own.add(name)
            table.setdefault(name, set()).add(conn)
            self._check_active()

    def _remove(
        self, table: dict[bytes, set[Connection]], own: set[bytes], conn: Connection, name: bytes
    ) -> None:
        if name in own:
            own.discard(name)
            subs = table.get(name)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del table[name]
                    self._check_active()

    @property
    def clients(self) -> int:
        """Clients with at least one subscription (INFO pubsub_clients)."""
        subscribed = set()
        for subs in (*self.channels.values(), *self.patterns.values()):
            subscribed.update(subs)
        return len(subscribed)

    def drop(self, conn: Connection) -> None:
        """A client went away: forget all its subscriptions."""
        for channel in list(conn.channels):
            self.unsubscribe(conn, channel)
        for pattern in list(conn.patterns):
            self.punsubscribe(conn, pattern)

    # -- delivery -------------------------------------------------------------

    def publish(
        self,
        channel: bytes,
        message: bytes,
        *,
        task_channel: bool = False,
        record: TaskRecord | None = None,
    ) -> int:
        """Deliver to channel and pattern subscribers; returns how many received it.

        Each frame is encoded once per protocol version (and, for a task, per MCP generation:
        ``record`` renders 2026-07-28 subscribers' copy), not once per subscriber.
        """
        receivers = 0
        subs = self.channels.get(channel)
        if subs:
            frames = _Frames([b"message", channel], message, record)
            for conn in list(subs):
                # rights are checked again on delivery: AUTH or CONFIG SET may have taken
                # them away
                if task_channel and not may_read_task_channel(conn, channel):
                    continue
                self._send(conn, frames.get(conn))
                receivers += 1
        if self.patterns:
            for pattern, psubs in list(self.patterns.items()):
                if not glob_match(pattern, channel):
                    continue
                frames = _Frames([b"pmessage", pattern, channel], message, record)
                for conn in list(psubs):
                    if task_channel and not may_read_task_channel(conn, channel):
                        continue
                    self._send(conn, frames.get(conn))
                    receivers += 1
        return receivers

    def publish_task(self, event: str, owner: str, record: TaskRecord) -> None:
        """Store listener: every change of a task goes out on ``tasks:<owner>``, in each
        subscriber's MCP generation."""
        if not self.channels and not self.patterns:
            return
        channel = TASK_CHANNEL_PREFIX + owner.encode("utf-8", "surrogateescape")
        self.publish(channel, record.wire_json(), task_channel=True, record=record)

    def _send(self, conn: Connection, data: bytes) -> None:
        if conn.closing:
            return
        if conn.out is not None:
            # the subscriber is running commands right now (it may have published this
            # itself): keep the message in order with the replies it is building
            conn.out.append(data)
            return
        transport = conn.transport
        if transport is None:
            return
        if self.commit is not None and not self.commit():
            return  # the change is not in the append-only file: nobody may see it
        transport.write(data)
        if transport.get_write_buffer_size() > self.output_limit:
            log.warning(
                "client %s closed for overcoming of output buffer limits (pubsub, %d bytes unsent)",
                conn.describe(),
                transport.get_write_buffer_size(),
            )
            conn.closing = True
            transport.abort()  # a subscriber that does not read loses its backlog


class _Frames:
    """One message's wire bytes, encoded on first use for each protocol version and, for a
    task, each MCP generation."""

    __slots__ = ("encoded", "head", "message", "record")

    def __init__(self, head: list[bytes], message: bytes, record: TaskRecord | None) -> None:
        self.head = head
        self.message = message
        self.record = record
        self.encoded: dict[tuple[bool, bool], bytes] = {}

    def get(self, conn: Connection) -> bytes:
        key = (conn.resp3, conn.v2 and self.record is not None)
        data = self.encoded.get(key)
        if data is None:
            record = self.record
            body = record.wire_json_v2() if key[1] and record is not None else self.message
            data = self.encoded[key] = encode(Push([*self.head, body]), key[0])
        return data
