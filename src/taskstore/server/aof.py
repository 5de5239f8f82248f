"""The append-only file: every change the store commits, as its effect, in a checksummed log
that is written before the reply that acknowledges it (docs/persistence.md).

File layout: the 16-byte header ``TASKSTORE-AOF 1\\n``, then entries. An entry is a 12-byte
frame (payload length, CRC-32 of the payload, the length's bitwise complement; little-endian
32-bit) and a payload: a tuple of plain values in Python's ``marshal`` format, version 4
(``(1, state)`` a record's whole state after a change, ``(2, owner, id)`` a removal,
``(3,)`` FLUSHALL). The length is stored twice so that a damaged one is detected, and "the
file ends inside an entry" (a torn write, cut when ``aof_load_truncated yes``) is never
confused with damage in the middle (refused, with the byte offset).

Durability: entries collect in a buffer while commands run; once per loop turn ``release()``
hands them to the kernel (``write()``), and with ``appendfsync always`` fsyncs, before the
replies of every client served in that turn are written (group commit). ``everysec`` fsyncs
from a background thread once a second, ``no`` leaves it to the kernel. So ``kill -9`` loses
no acknowledged write in any mode.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import marshal
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskstore.server.config import ConfigError
from taskstore.store import TaskRecord, TaskStore
from taskstore.store.journal import StateError, record_from_state, record_state

log = logging.getLogger("taskstore")

HEADER = b"TASKSTORE-AOF 1\n"
_FRAME = struct.Struct("<III")
_pack_frame = _FRAME.pack
FRAME_SIZE = _FRAME.size
MARSHAL_VERSION = 4

SET, REMOVE, CLEAR = 1, 2, 3
#: Longest the event loop is held by one slice of a rewrite.
REWRITE_SLICE_S = 0.005
#: Temp files of an interrupted rewrite start with this (removed at start-up).
TEMP_PREFIX = "temp-rewriteaof-"

_crc32 = zlib.crc32
_dumps = marshal.dumps


class AofError(ConfigError):
    """The file cannot be loaded: the server refuses to start (one line, exit status 2)."""


def frame_header(payload: bytes) -> bytes:
    """The frame before an entry's ``payload``: its size, its CRC-32, the size inverted."""
    n = len(payload)
    return _pack_frame(n, _crc32(payload), n ^ 0xFFFFFFFF)


def frame(payload: bytes) -> bytes:
    """One entry: the frame, then ``payload``."""
    return frame_header(payload) + payload


def encode_set(record: TaskRecord) -> bytes:
    return frame(_dumps((SET, record_state(record)), MARSHAL_VERSION))


@dataclass
class LoadReport:
    tasks: int  # loaded into the store
    dropped: int  # past retention at load: evicted on the spot
    entries: int
    seconds: float
    truncated_at: int | None  # byte offset a torn tail was cut at


def read_entries(view: memoryview, path: str) -> Iterator[tuple[int, Any]]:
    """(offset, entry) for every whole entry; raises :class:`TornTail` at a torn end and
    :class:`AofError` at damage."""
    n = len(view)
    pos = len(HEADER)
    unpack = _FRAME.unpack_from
    loads = marshal.loads
    while pos < n:
        if n - pos < FRAME_SIZE:
            raise TornTail(pos)
        length, crc, check = unpack(view, pos)
        if length ^ check != 0xFFFFFFFF:
            raise AofError(_damaged(path, pos, "damaged entry length"))
        end = pos + FRAME_SIZE + length
        if end > n:
            raise TornTail(pos)
        payload = view[pos + FRAME_SIZE : end]
        if _crc32(payload) != crc:
            raise AofError(_damaged(path, pos, "entry checksum mismatch"))
        try:
            entry = loads(payload)
        except (ValueError, EOFError, TypeError):
            raise AofError(_damaged(path, pos, "unreadable entry")) from None
        yield pos, entry
        pos = end


class TornTail(Exception):
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def _damaged(path: str, offset: int, why: str) -> str:
    return (
        f"append only file {path} is damaged at byte offset {offset} ({why}); "
        "refusing to start (the file is left untouched: move it away or restore a backup)"
    )


Replayed = dict[str, dict[str, TaskRecord]]


def replay(view: memoryview, path: str) -> tuple[Replayed, int, int | None]:
    """The final record of every task the log describes, by owner and id; (records, entries,
    torn offset).

    Records are built as their entries are read, so no intermediate state is kept per task (a
    million state tuples and (owner, id) keys cost ~200 MB that the allocator keeps after
    they are freed); an entry that is overwritten later costs its record, rewrites keep that
    rare.
    """
    owners: Replayed = {}
    entries = 0
    torn: int | None = None
    try:
        for pos, entry in read_entries(view, path):
            entries += 1
            kind = entry[0] if type(entry) is tuple and entry else None
            if kind == SET and len(entry) == 2:
                try:
                    record = record_from_state(entry[1])
                except StateError as e:
                    raise AofError(_damaged(path, pos, f"not a task state: {e}")) from None
                tasks = owners.get(record.owner)
                if tasks is None:
                    tasks = owners[record.owner] = {}
                tasks[record.task_id] = record
            elif kind == REMOVE and len(entry) == 3:
                tasks = owners.get(entry[1])
                if tasks is not None:
                    tasks.pop(entry[2], None)
            elif kind == CLEAR and len(entry) == 1:
                owners.clear()
            else:
                raise AofError(_damaged(path, pos, "unknown entry"))
    except TornTail as t:
        torn = t.offset
    return owners, entries, torn


class AppendOnlyFile:
    """The server's journal (``taskstore.store.journal.Journal``) backed by one file."""

    def __init__(
        self,
        directory: str,
        filename: str,
        fsync: str,
        *,
        load_truncated: bool = True,
        rewrite_percentage: int = 100,
        rewrite_min_size: int = 64 * 1024 * 1024,
    ) -> None:
        self.dir = Path(directory)
        self.path = self.dir / filename
        self.fsync = fsync
        self.load_truncated = load_truncated
        self.rewrite_percentage = rewrite_percentage
        self.rewrite_min_size = rewrite_min_size
        self.buffer = bytearray()  # entries not handed to the kernel yet
        self.appended = 0  # entries ever appended: tells a connection whether it added any
        #: connection -> (replies, [appended]) waiting for the next group commit (release)
        self.held: dict[Any, tuple[list[bytes], list[bool]]] = {}
        self.tail: bytearray | None = None  # entries since a running rewrite began
        self.fd = -1
        self.size = 0  # bytes in the file (written)
        self.base_size = 0  # size after the last load or rewrite
        self.write_error: str | None = None  # strerror of the last failed write
        self.rewriting = False
        self.rewrites = 0
        self.last_rewrite_status = "ok"
        self.last_rewrite_seconds = -1
        self.rewrite_started = 0.0
        self._dirty = False  # written since the last fsync (everysec)
        self._lock = threading.Lock()  # the fd, between the loop and the fsync thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rewrite_task: asyncio.Task[None] | None = None
        #: told the error text when writing starts failing, None when it works again
        self.on_write_status: Callable[[str | None], None] | None = None

    # -- Journal ----------------------------------------------------------

    def changed(self, record: TaskRecord) -> None:
        self._append(_dumps((SET, record_state(record)), MARSHAL_VERSION))

    def removed(self, record: TaskRecord) -> None:
        self._append(_dumps((REMOVE, record.owner, record.task_id), MARSHAL_VERSION))

    def cleared(self) -> None:
        self._append(_dumps((CLEAR,), MARSHAL_VERSION))

    def _append(self, payload: bytes) -> None:
        """One entry (:func:`frame`), its header and payload added to the buffer (and a
        running rewrite's tail) one after the other: no copy of the two joined, on the path
        of every change."""
        head = frame_header(payload)
        buffer = self.buffer
        buffer += head
        buffer += payload
        self.appended += 1
        tail = self.tail
        if tail is not None:
            tail += head
            tail += payload

    # -- start-up -----------------------------------------------------------

    def open(self, store: TaskStore) -> LoadReport:
        """Load the file into an empty store (creating it when missing), then open it for
        appending. Raises :class:`AofError` for a file it must not start from."""
        started = time.perf_counter()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._remove_temp_files()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise AofError(f"cannot open append only file {self.path}: {e.strerror}") from None
        # Millions of objects are allocated and all survive: the cyclic collector would walk
        # them again and again (it doubled the load time at 1,000,000 tasks).
        collecting = gc.isenabled()
        gc.disable()
        try:
            report = self._load(fd, store)
        except BaseException:
            os.close(fd)
            raise
        finally:
            if collecting:
                gc.enable()
        report.seconds = time.perf_counter() - started
        self.fd = fd
        self.size = self.base_size = os.fstat(fd).st_size
        # started in every mode: CONFIG SET appendfsync may switch to everysec later
        self._thread = threading.Thread(
            target=self._fsync_every_second, name="taskstore-aof-fsync", daemon=True
        )
        self._thread.start()
        return report

    def _remove_temp_files(self) -> None:
        for leftover in self.dir.glob(TEMP_PREFIX + "*.aof"):
            log.warning("removing %s, left by an interrupted rewrite", leftover)
            leftover.unlink(missing_ok=True)

    def _load(self, fd: int, store: TaskStore) -> LoadReport:
        path = str(self.path)
        size = os.fstat(fd).st_size
        if size < len(HEADER):
            if HEADER.startswith(os.pread(fd, size, 0)):
                # new, or a crash while it was being created: start it over
                os.ftruncate(fd, 0)
                os.write(fd, HEADER)
                self._sync_dir_and(fd)
                return LoadReport(0, 0, 0, 0.0, None)
            raise AofError(f"{path} is not a taskstore append only file (bad header)")
        # One read (freed right after): entries are parsed from slices of it without copies.
        data = _read_all(fd, size)
        if data[: len(HEADER)] != HEADER:
            raise AofError(f"{path} is not a taskstore append only file (bad header)")
        owners, entries, torn = replay(memoryview(data), path)
        del data
        if torn is not None:
            if not self.load_truncated:
                raise AofError(
                    f"append only file {path} ends in a torn entry at byte offset {torn}; "
                    "refusing to start (aof_load_truncated no)"
                )
            log.warning(
                "append only file %s ends in a torn entry at byte offset %d (%d bytes): "
                "cut off, as aof_load_truncated is yes",
                path,
                torn,
                size - torn,
            )
            os.ftruncate(fd, torn)
            os.fsync(fd)
        loaded, dropped = store.restore(
            record for tasks in owners.values() for record in tasks.values()
        )
        return LoadReport(loaded, dropped, entries, 0.0, torn)

    def _sync_dir_and(self, fd: int) -> None:
        os.fsync(fd)
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    # -- writing ------------------------------------------------------------

    def commit(self) -> bool:
        """Hand the buffered entries to the kernel (and fsync with ``always``) before the
        replies that acknowledge them go out. False when that failed: nothing that depends
        on these entries may be acknowledged."""
        if not self._write():
            return False
        if self.fsync == "always":
            try:
                os.fsync(self.fd)
            except OSError as e:
                self._failed(e)
                return False
        return True

    def write_pending(self) -> bool:
        """True when nothing is left unwritten: writes what is buffered (no fsync) before a
        pub/sub message leaves (a notification is not an acknowledgement, but ``kill -9``
        cannot lose what it tells of), unless writing is failing already."""
        return not self.buffer or (self.write_error is None and self._write())

    # -- group commit: one write (and fsync) for every client served in one loop turn --------

    def hold(self, conn: Any, out: list[bytes], appended: bool) -> None:
        """Keep a client's replies until the next :meth:`release` (scheduled here), which
        writes once for all of them, and with ``appendfsync always`` fsyncs: Redis's group
        commit (replies leave in ``beforeSleep``, after the AOF write). ``appended``: the
        commands behind these replies added entries."""
        held = self.held
        if not held:
            asyncio.get_running_loop().call_soon(self.release)
        entry = held.get(conn)
        if entry is None:
            held[conn] = (out, [appended])
        else:
            entry[0].extend(out)
            entry[1][0] = entry[1][0] or appended

    def release(self) -> None:
        held, self.held = self.held, {}
        ok = self.commit() if self.buffer else self.write_error is None
        for conn, (out, appended) in held.items():
            conn.send_held(out, ok or not appended[0])

    def _write(self) -> bool:
        buffer = self.buffer
        fd = self.fd
        try:
            while buffer:
                n = os.write(fd, buffer)
                del buffer[:n]
                self.size += n
        except OSError as e:
            self._failed(e)
            return False
        self._dirty = True
        if self.write_error is not None:
            self._solved()
        return True

    def _failed(self, e: OSError) -> None:
        text = e.strerror or errno.errorcode.get(e.errno or 0, str(e))
        if self.write_error is None:
            log.error("error writing to the append only file %s: %s", self.path, text)
            self.write_error = text
            if self.on_write_status is not None:
                self.on_write_status(text)

    def _solved(self) -> None:
        log.warning("AOF write error looks solved, taskstore can write again.")
        self.write_error = None
        if self.on_write_status is not None:
            self.on_write_status(None)

    def retry(self) -> None:
        """Called each sweep tick: write what a failed write left behind."""
        if self.buffer and self.write_error is not None:
            self.commit()

    def _fsync_every_second(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self._dirty and self.fd >= 0 and self.fsync == "everysec":
                    self._dirty = False
                    try:
                        os.fsync(self.fd)
                    except OSError as e:
                        log.error("fsync of %s failed: %s", self.path, e.strerror)

    def close(self) -> None:
        """Write what is buffered, fsync (unless ``appendfsync no``), close."""
        if self._rewrite_task is not None:
            self._rewrite_task.cancel()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self.fd < 0:
                return
            self._write()
            if self.fsync != "no":
                try:
                    os.fsync(self.fd)
                except OSError as e:
                    log.error("fsync of %s failed: %s", self.path, e.strerror)
            os.close(self.fd)
            self.fd = -1

    # -- rewrite ------------------------------------------------------------

    def should_rewrite(self) -> bool:
        """Redis's automatic rewrite rule: grown ``auto_aof_rewrite_percentage`` over the
        size after the last rewrite, and at least ``auto_aof_rewrite_min_size``."""
        pct = self.rewrite_percentage
        if not pct or self.rewriting or self.size < self.rewrite_min_size:
            return False
        base = self.base_size or 1
        return (self.size - base) * 100 >= base * pct

    def start_rewrite(self, store: TaskStore) -> bool:
        """Begin a rewrite in the background; False when one is running already."""
        if self.rewriting:
            return False
        self.rewriting = True
        self._rewrite_task = asyncio.get_running_loop().create_task(self._rewrite(store))
        return True

    async def _rewrite(self, store: TaskStore) -> None:
        """Snapshot of the live records plus every change made meanwhile, replacing the file
        atomically: temp file, fsync, rename, fsync of the directory."""
        self.rewrite_started = time.monotonic()
        temp = self.dir / f"{TEMP_PREFIX}{os.getpid()}.aof"
        fd = -1
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
            self.tail = bytearray()
            out = bytearray(HEADER)
            records = store.live_records()
            done = False
            perf = time.perf_counter
            while not done:
                deadline = perf() + REWRITE_SLICE_S
                for count, record in enumerate(records, 1):
                    out += encode_set(record)
                    if count & 127 == 0 and perf() > deadline:
                        break
                else:
                    done = True
                _write_all(fd, out)
                out.clear()
                await asyncio.sleep(0)
            # the changes made meanwhile, in slices while they keep coming
            while len(self.tail) > 1 << 20:
                chunk, self.tail = self.tail, bytearray()
                _write_all(fd, chunk)
                await asyncio.sleep(0)
            # most of the data reaches the disk off the loop, the last bit synchronously
            await asyncio.get_running_loop().run_in_executor(None, os.fsync, fd)
            _write_all(fd, self.tail)
            os.fsync(fd)
            os.replace(temp, self.path)
            self._fsync_dir()
            with self._lock:
                old, self.fd = self.fd, fd
                fd = -1
            # The old file is unlinked already: closing its last descriptor frees all its
            # blocks, tens of ms for a large file. Off the loop, as Redis does it.
            threading.Thread(target=os.close, args=(old,), name="taskstore-aof-close").start()
            # what was still buffered for the old file is in the new one already
            self.buffer.clear()
            if self.write_error is not None:
                self._solved()
            self.size = self.base_size = os.fstat(self.fd).st_size
            self.rewrites += 1
            self.last_rewrite_status = "ok"
            log.info(
                "Background AOF rewrite finished successfully (%d bytes, %.3f seconds)",
                self.size,
                time.monotonic() - self.rewrite_started,
            )
        except asyncio.CancelledError:
            temp.unlink(missing_ok=True)
            raise
        except OSError as e:
            self.last_rewrite_status = "err"
            log.error("Background AOF rewrite failed: %s", e.strerror)
            temp.unlink(missing_ok=True)
        finally:
            if fd >= 0:
                os.close(fd)
            self.tail = None
            self.rewriting = False
            self._rewrite_task = None
            self.last_rewrite_seconds = int(time.monotonic() - self.rewrite_started)

    # -- INFO -----------------------------------------------------------------

    def info(self) -> list[tuple[str, Any]]:
        current = int(time.monotonic() - self.rewrite_started) if self.rewriting else -1
        return [
            ("aof_rewrite_in_progress", int(self.rewriting)),
            ("aof_rewrite_scheduled", 0),
            ("aof_last_rewrite_time_sec", self.last_rewrite_seconds),
            ("aof_current_rewrite_time_sec", current),
            ("aof_last_bgrewrite_status", self.last_rewrite_status),
            ("aof_rewrites", self.rewrites),
            ("aof_last_write_status", "ok" if self.write_error is None else "err"),
            ("aof_current_size", self.size),
            ("aof_base_size", self.base_size),
            ("aof_pending_rewrite", 0),
            ("aof_buffer_length", len(self.buffer)),
        ]


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(size - offset, 1 << 30), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
