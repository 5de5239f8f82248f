"""The console's live feed: server-sent events fed by the store's change notifications, the
same ones ``tasks:<owner>`` carries (docs/console.md).

Costs nothing while nobody watches: the server registers :meth:`Feed.on_change` with the
store only while at least one stream is open (``on_active``, as the pub/sub hub does), and the
stats ticker runs only then too. While streams are open, a change of a watched owner's task
costs a dict update; changes are coalesced and sent as one event per owner, soon after a
quiet spell and at most every :data:`BUSY_FLUSH_S` under load (a task changed 100 times in
that window is sent once, with the status transitions it went through), so a page watching
1,000 changes a second costs the server about one write a second, not 1,000; the stats sample
due meanwhile goes in the same write.

Plain asyncio, no aiohttp: a :class:`Stream` is a byte queue the HTTP handler drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskstore.console.views import STATUSES, removed, summary_json
from taskstore.server.commands.server import rss_bytes
from taskstore.store import InvalidArgument, TaskRecord, TaskStatus

if TYPE_CHECKING:
    from taskstore.console.identity import Identity
    from taskstore.server.app import Server

__all__ = ["BUSY_FLUSH_S", "FLUSH_S", "STATS_S", "STREAM_BACKLOG_BYTES", "Feed", "Stream", "sse"]

#: A change after a quiet spell goes out this soon; while changes keep coming, one event at
#: most every :data:`BUSY_FLUSH_S`, so a change is on the page within that (well inside the
#: second the page promises). Each flush costs the server about 0.6 ms whatever it carries
#: (the event loop, the write, the socket; ~0.2 ms of it the summaries): at 1,000 changes a
#: second, flushing every 250 ms added ~21 % to the server's CPU, every 500 ms ~13 %
#: (bench/console.py); the cost is the number of flushes, not their size.
FLUSH_S = 0.1
BUSY_FLUSH_S = 0.8
#: One server-stats sample this often while a stream is open.
STATS_S = 1.0
#: A page that does not read its stream is cut off once this much waits for it; the
#: browser's EventSource reconnects and the page starts over from a fresh list.
STREAM_BACKLOG_BYTES = 8 * 1024 * 1024

_REMOVALS = frozenset({"deleted", "evicted"})


def sse(event: str, data: Any) -> bytes:
    """One server-sent event; the JSON is ASCII, on one line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Stream:
    """One open event stream (one page): the frames waiting for it."""

    __slots__ = ("chunks", "closed", "identity", "owner", "size", "wake")

    def __init__(self, identity: Identity, owner: str) -> None:
        self.identity = identity
        self.owner = owner
        self.chunks: list[bytes] = []
        self.size = 0
        self.closed = False
        self.wake = asyncio.Event()

    def push(self, data: bytes) -> None:
        if self.closed:
            return
        self.chunks.append(data)
        self.size += len(data)
        if self.size > STREAM_BACKLOG_BYTES:
            self.close()
            return
        self.wake.set()

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        self.wake.clear()
        return data

    def close(self) -> None:
        self.closed = True
        self.chunks.clear()
        self.wake.set()


class _Pending:
    """A task changed since the last flush: its record (None: removed) and the statuses it
    went through."""

    __slots__ = ("record", "transitions")

    def __init__(self) -> None:
        self.record: TaskRecord | None = None
        self.transitions: list[tuple[str, int]] = []


class _Watch:
    """One owner watched by at least one stream: its streams, the status of each of its tasks
    (for the counts per status) and what changed since the last flush."""

    __slots__ = ("counts", "owner", "pending", "ready", "status", "streams")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.streams: set[Stream] = set()
        self.status: dict[str, TaskStatus] = {}
        self.counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self.pending: dict[str, _Pending] = {}
        self.ready = False  # the first count of the owner's tasks is done


class Feed:
    """Every open stream, grouped by the owner it watches."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.watches: dict[str, _Watch] = {}
        #: told True when the first stream opens and False when the last one closes, so the
        #: server listens to the store only while a page could be told
        self.on_active: Callable[[bool], None] | None = None
        self.active = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushed_at = -BUSY_FLUSH_S  # loop time of the last flush
        self._tasks: set[asyncio.Task[None]] = set()
        self._ops_at = (time.monotonic(), server.commands_processed)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu_at = (time.monotonic(), ru.ru_utime + ru.ru_stime)
        self._last_sample: dict[str, Any] | None = None
        self._stats_due = False  # a sample waits for the flush that is on its way

    @property
    def streams(self) -> int:
        return sum(len(watch.streams) for watch in self.watches.values())

    # -- streams ------------------------------------------------------------------------

    def open(self, identity: Identity, owner: str) -> Stream:
        """A new stream on ``owner``'s tasks; it starts with a hello, the counts (once they
        are known) and a stats sample."""
        stream = Stream(identity, owner)
        watch = self.watches.get(owner)
        if watch is None:
            watch = self.watches[owner] = _Watch(owner)
            self._check_active()  # listening before the count starts: nothing is missed
            self._spawn(self._count(watch))
        watch.streams.add(stream)
        self._check_active()
        stream.push(sse("hello", {"owner": owner, "serverTime": self.server.store.now_ms()}))
        if watch.ready:
            stream.push(sse("counts", {"counts": watch.counts}))
        sample = self._last_sample or self._sample()
        stream.push(sse("stats", self._stats_for(stream, watch, sample)))
        return stream

    def close(self, stream: Stream) -> None:
        stream.close()
        watch = self.watches.get(stream.owner)
        if watch is None:
            return
        watch.streams.discard(stream)
        if not watch.streams:
            del self.watches[stream.owner]
            self._check_active()

    def close_all(self) -> None:
        """End every stream (the console stops)."""
        for watch in list(self.watches.values()):
            for stream in list(watch.streams):
                self.close(stream)

    def _check_active(self) -> None:
        active = bool(self.watches)
        if active is self.active:
            return
        self.active = active
        if self.on_active is not None:
            self.on_active(active)
        if active:
            self._spawn(self._tick())
        else:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            for task in list(self._tasks):
                task.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Let cancelled background tasks finish (the console stops)."""
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the store listener ----------------------------------------------------------------

    def on_change(self, event: str, owner: str, record: TaskRecord) -> None:
        """Store listener, registered only while a stream is open: note the change, send it
        at the next flush."""
        watch = self.watches.get(owner)
        if watch is None:
            return
        task_id = record.task_id
        pending = watch.pending.get(task_id)
        if pending is None:
            pending = watch.pending[task_id] = _Pending()
        old = watch.status.get(task_id)
        if event in _REMOVALS:
            pending.record = None
            if old is not None:
                del watch.status[task_id]
                watch.counts[old.value] -= 1
        else:
            pending.record = record
            status = record.status
            if old is not status:
                watch.status[task_id] = status
                watch.counts[status.value] += 1
                if old is not None:
                    watch.counts[old.value] -= 1
                pending.transitions.append((status.value, record.last_updated_at_ms))
        if self._flush_handle is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """The next flush: FLUSH_S from now, but not sooner than BUSY_FLUSH_S after the last."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        delay = max(FLUSH_S, self._flushed_at + BUSY_FLUSH_S - now)
        self._flush_handle = loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        aof = self.server.aof
        if aof is not None and not aof.write_pending():
            # not in the append-only file yet: nobody may see it (as pub/sub); try again
            self._flush_handle = asyncio.get_running_loop().call_later(FLUSH_S, self._flush)
            return
        self._flushed_at = asyncio.get_running_loop().time()
        server = self.server
        for watch in list(self.watches.values()):
            if not watch.pending:
                continue
            items: list[str] = []
            for task_id, pending in watch.pending.items():
                record = pending.record
                if record is None:
                    items.append(json.dumps(removed(task_id)))
                else:
                    items.append(summary_json(record, pending.transitions))
            watch.pending = {}
            counts = json.dumps(watch.counts if watch.ready else None, separators=(",", ":"))
            data = f'{{"tasks":[{",".join(items)}],"counts":{counts}}}'
            frame = f"event: tasks\ndata: {data}\n\n".encode()
            for stream in list(watch.streams):
                if stream.identity.still_valid(server):
                    stream.push(frame)
                else:
                    stream.close()
                if stream.closed:
                    self.close(stream)
        if self._stats_due:
            self._send_stats()

    async def _count(self, watch: _Watch) -> None:
        """Count the owner's tasks per status, a TASK.LIST page at a time with the loop
        free in between; the listener is already keeping up with changes meanwhile."""
        store = self.server.store
        cursor: str | None = None
        while self.watches.get(watch.owner) is watch:
            try:
                records, cursor = store.list(watch.owner, cursor, store.store_config.list_max_limit)
            except InvalidArgument:
                records, cursor = [], None  # list_max_limit changed under us: start again
            for record in records:
                task_id = record.task_id
                if task_id not in watch.status:
                    watch.status[task_id] = record.status
                    watch.counts[record.status.value] += 1
            if cursor is None:
                break
            await asyncio.sleep(0)
        else:
            return
        watch.ready = True
        frame = sse("counts", {"counts": watch.counts})
        for stream in list(watch.streams):
            stream.push(frame)

    # -- server stats ----------------------------------------------------------------------

    def _sample(self) -> dict[str, Any]:
        """INFO's figures: clients, commands per second, memory, the process's CPU."""
        server = self.server
        now = time.monotonic()
        then, ops_then = self._ops_at
        ops = server.commands_processed
        ru = resource.getrusage(resource.RUSAGE_SELF)
        cpu = ru.ru_utime + ru.ru_stime
        cpu_then_t, cpu_then = self._cpu_at
        elapsed = max(now - then, 1e-6)
        self._ops_at = (now, ops)
        self._cpu_at = (now, cpu)
        return {
            "t": int(time.time() * 1000),
            "clients": len(server.clients),
            "opsPerSec": round(max(ops - ops_then, 0) / elapsed, 1),
            "cpuPercent": round(100 * (cpu - cpu_then) / max(now - cpu_then_t, 1e-6), 1),
            "memory": rss_bytes(),
            "streams": self.streams,
        }

    def _stats_for(self, stream: Stream, watch: _Watch, sample: dict[str, Any]) -> dict[str, Any]:
        """Admins see every owner's tasks per status (INFO's tasks section); others only
        their own owner's, as INFO shows a non-admin only its own count."""
        out = dict(sample)
        if stream.identity.admin:
            stats = self.server.store.stats()
            out["tasks"] = {status: stats[status] for status in STATUSES}
            out["scope"] = "server"
        else:
            out["tasks"] = dict(watch.counts)
            out["scope"] = "owner"
        return out

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(STATS_S)
            if self._flush_handle is not None:
                # changes go out within BUSY_FLUSH_S: the sample goes with them, one write
                # (and one wake-up of the page) instead of two
                self._stats_due = True
                continue
            self._send_stats()

    def _send_stats(self) -> None:
        """A stats sample to every stream (and a recount where FLUSHALL dropped tasks)."""
        self._stats_due = False
        sample = self._last_sample = self._sample()
        server = self.server
        admin_frame: bytes | None = None
        for watch in list(self.watches.values()):
            self._check_drift(watch)
            owner_frame: bytes | None = None
            for stream in list(watch.streams):
                if not stream.identity.still_valid(server):
                    self.close(stream)
                    continue
                if stream.identity.admin:
                    if admin_frame is None:
                        admin_frame = sse("stats", self._stats_for(stream, watch, sample))
                    stream.push(admin_frame)
                else:
                    if owner_frame is None:
                        owner_frame = sse("stats", self._stats_for(stream, watch, sample))
                    stream.push(owner_frame)
                if stream.closed:
                    self.close(stream)

    def _check_drift(self, watch: _Watch) -> None:
        """FLUSHALL drops tasks without a change event: when the owner's count no longer
        matches, count again and tell the pages to reload their list."""
        if not watch.ready or watch.pending:
            return
        if self.server.store.count(watch.owner) == len(watch.status):
            return
        watch.ready = False
        watch.status.clear()
        watch.counts = dict.fromkeys(STATUSES, 0)
        frame = sse("reset", {})
        for stream in list(watch.streams):
            stream.push(frame)
        self._spawn(self._count(watch))
