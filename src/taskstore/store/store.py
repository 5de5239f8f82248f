"""The sharded in-memory task store: the seed's ``TaskStore`` operations, owner-scoped.

Pure and synchronous: no I/O, no asyncio, time only from the injected clock. Not thread-safe;
the server calls it from its event loop only.

Layout: ``shards`` shards; an owner's tasks all live in the shard picked by a stable hash
(CRC-32) of the owner. A shard maps owner -> that owner's tasks by id (so a lookup always starts
from the caller's owner and another owner's task is indistinguishable from a missing one), an
ordered index per owner for TASK.LIST, and an expiry wheel for the active sweep: records in
one list per second of expiry, the seconds in a heap of plain ints (so the sweep never calls a
Python comparison; a heap of records cost ~17 ``__lt__`` calls per eviction), with lazy
deletion. Due tasks come out second by second; within one second in any order (the exact
deadline is enforced on every access, not by the sweep). Records are keyed by owner, then id
(two dict levels) rather than by one
``"<owner>:<task_id>"`` string: the same structural isolation, without a key string of some 90
bytes per task.

Decisions where the seed, the MCP spec and Redis leave room (docs/architecture.md):

* Store time never goes backwards: the clock is clamped to its highest value seen, so creation
  order by ``(createdAt, seq)`` is the same as by ``seq`` alone and a wall clock stepping back
  cannot reorder TASK.LIST pages or make ``lastUpdatedAt`` precede ``createdAt``.
* Argument checks (status names, TTL, ids, message length, LIMIT) come before the task lookup;
  then not found, expired, transition; payload checks (result size, JSON) come last, so a large
  payload is not parsed for a task that does not exist.
* Task ids are 1-256 characters in 0x21-0x7e: no space (ids travel in inline commands and in
  space-separated error replies) and no control characters. A malformed id given to any
  operation is ``ERR invalid task id``; such a task cannot exist.
* Variables, results and the status message may still be set on a terminal task that has not
  expired (the seed's set_variables/set_result only reject expired tasks; a message change is
  not a transition, and the MCP SDKs' stores allow it). This lets a server mark a task completed
  and attach its result afterwards. The status itself never leaves a terminal state.
* ``cleanup_expired`` evicts every expired task now, ignoring ``expired_retention_ms``, as the
  seed's cleanup removes expired tasks: it is the explicit "drop them" request, while retention
  is the grace period of passive expiry (lazy access and ``sweep``).
* ``delete`` works on expired tasks too: removing is what expiry would do anyway.
* Status messages and request methods are held to ``max_string_length`` like variable strings.
"""

from __future__ import annotations

import builtins
import heapq
import os
import sys
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from taskstore.store.config import MAX_SAFE_INT, SecurityConfig, StoreConfig, config_items
from taskstore.store.cursor import CursorCodec
from taskstore.store.errors import (
    InvalidArgument,
    InvalidTransition,
    LeaseHeld,
    LimitExceeded,
    NotReady,
    TaskExists,
    TaskExpired,
    TaskNotFound,
    TooLarge,
)
from taskstore.store.index import SeqIndex
from taskstore.store.journal import Journal
from taskstore.store.jsonutil import (
    check_variable_values,
    dumps_compact,
    parse_object,
    parse_result,
    parse_variables,
    utf8_len,
)
from taskstore.store.record import Interaction, TaskRecord, json_object
from taskstore.store.status import TaskStatus, can_transition
from taskstore.store.timefmt import wall_clock_ms

__all__ = ["Clock", "Listener", "TaskStore"]

Clock = Callable[[], int]
Listener = Callable[[str, str, TaskRecord], None]

_DEFAULT_STORE_CONFIG = StoreConfig()
_DEFAULT_SECURITY_CONFIG = SecurityConfig()

# A shard's wheel is rebuilt once deleted entries outnumber live ones (and exceed this floor),
# which keeps lazy deletion O(1) amortised without letting dead entries pile up for a whole ttl.
_WHEEL_COMPACT_FLOOR = 64
_SHARD_CACHE_MAX = 65_536
_MAX_ID_LEN = 256

_COMPLETIONS = (TaskStatus.COMPLETED, TaskStatus.FAILED)
#: Longest lease one TASK.LEASE grants (a worker renews well before it runs out).
MAX_LEASE_MS = 86_400_000


#: hex digit -> the RFC 4122 variant digit (10xx) keeping its two low random bits
_VARIANT = {f"{n:x}": f"{8 | (n & 3):x}" for n in range(16)}
#: random hex digits read from the OS CSPRNG at once, 32 per id
_ID_POOL_HEX = 2048
#: every store's id pool, emptied in a forked child so parent and child never share ids
_STORES: weakref.WeakSet[TaskStore] = weakref.WeakSet()


def _forget_id_pools() -> None:
    for store in list(_STORES):
        store._id_hex = ""
        store._id_pos = 0


os.register_at_fork(after_in_child=_forget_id_pools)


def _seq_key(record: TaskRecord) -> int:
    return record.seq


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_task_id(task_id: str) -> None:
    """Reject ids that could not have been created (and would be unsafe to echo)."""
    if not (0 < len(task_id) <= _MAX_ID_LEN and task_id.isascii() and task_id.isprintable()) or (
        " " in task_id
    ):
        raise InvalidArgument(
            "invalid task id: must be 1-256 printable ASCII characters (0x21-0x7e)"
        )


def check_input_key(key: str, what: str = "input request key") -> None:
    """Input request keys (and worker names) follow the task id rule: 1-256 printable ASCII,
    no space."""
    if not (0 < len(key) <= _MAX_ID_LEN and key.isascii() and key.isprintable()) or " " in key:
        raise InvalidArgument(
            f"invalid {what}: must be 1-256 printable ASCII characters (0x21-0x7e)"
        )


def answers_json(interaction: Interaction | None) -> bytes:
    """The answers received, as one JSON object in the order they came."""
    return json_object(interaction.answers) if interaction is not None else b"{}"


class _Owner:
    """One owner's tasks within its shard."""

    __slots__ = ("index", "name", "next_expiry", "tasks")

    def __init__(self, name: str) -> None:
        self.name = name
        self.tasks: dict[str, TaskRecord] = {}
        self.index = SeqIndex()
        # Lower bound on the earliest expiry among the owner's tasks (None: none expire). Kept
        # exact on insert, left stale-low on removal, recomputed by the owner scan; lets the
        # at-limit check skip the scan while nothing of this owner can be due.
        self.next_expiry: int | None = None


class _Shard:
    __slots__ = ("dead", "owners", "seconds", "size", "wheel")

    def __init__(self) -> None:
        self.owners: dict[str, _Owner] = {}
        # expiry second -> the records expiring in it (creation order, dead ones included)
        self.wheel: dict[int, deque[TaskRecord]] = {}
        self.seconds: list[int] = []  # heap of the wheel's keys
        self.size = 0  # entries in the wheel
        self.dead = 0  # wheel entries whose record has been removed

    def add(self, record: TaskRecord, expires_at: int) -> None:
        second = expires_at // 1000
        bucket = self.wheel.get(second)
        if bucket is None:
            self.wheel[second] = deque((record,))
            heapq.heappush(self.seconds, second)
        else:
            bucket.append(record)
        self.size += 1


class TaskStore:
    """Owner-scoped task operations with the semantics of docs/commands.md."""

    def __init__(
        self,
        store_config: StoreConfig = _DEFAULT_STORE_CONFIG,
        security_config: SecurityConfig = _DEFAULT_SECURITY_CONFIG,
        clock: Clock | None = None,
    ) -> None:
        self._cfg = store_config
        self._sec = security_config
        self._clock: Clock = clock if clock is not None else wall_clock_ms
        self._last_now = -(2**62)
        self._shards = [_Shard() for _ in range(store_config.shards)]
        self._mask = store_config.shards - 1
        self._shard_cache: dict[str, _Shard] = {}
        self._cursors = CursorCodec()
        self._listeners: list[Listener] = []
        self._seq = 0
        self._total = 0
        self._by_status: dict[TaskStatus, int] = dict.fromkeys(TaskStatus, 0)
        self._created_total = 0
        self._evicted_total = 0
        self._sweep_next = 0
        # worker leases (TASK.LEASE): a heap of (expires_at, sequence, record), stale entries
        # skipped when popped
        self._leases: list[tuple[int, int, TaskRecord]] = []
        self._lease_seq = 0
        self._journal: Journal | None = None
        # random hex for task ids: read 1 KiB at a time (one getrandom call per 64 ids)
        self._id_hex = ""
        self._id_pos = 0
        _STORES.add(self)

    # ------------------------------------------------------------------ configuration

    @property
    def store_config(self) -> StoreConfig:
        return self._cfg

    @property
    def security_config(self) -> SecurityConfig:
        return self._sec

    def reconfigure(
        self,
        store_config: StoreConfig | None = None,
        security_config: SecurityConfig | None = None,
    ) -> None:
        """Apply new settings at runtime (CONFIG SET); limits apply to later operations only.

        ``shards`` cannot change: every owner's tasks would have to move.
        """
        if store_config is not None:
            if store_config.shards != self._cfg.shards:
                raise ValueError("shards cannot be changed at runtime")
            self._cfg = store_config
        if security_config is not None:
            self._sec = security_config

    def config_items(self) -> list[tuple[str, str | int | bool]]:
        """The effective settings, for TASK.CONFIG."""
        return config_items(self._cfg, self._sec)

    def add_listener(self, listener: Listener, *, first: bool = False) -> None:
        """Call ``listener(event, owner, record)`` after every successful change.

        Events: created, updated, variables, result, completed, cancelled, deleted, evicted,
        and for 2026-07-28 tasks asked, answered, failed (TASK.FAIL, or a lease that ran out),
        cancel_requested.
        Listeners run synchronously after the change is committed, in the order they were
        added (``first``: before the others), and must not raise: an exception propagates to
        the caller of the operation that triggered it.
        """
        # A new list each time: a listener may add or remove one while the store is
        # calling them (the server stops listening when its last waiter is woken).
        if first:
            self._listeners = [listener, *self._listeners]
        else:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Listener) -> None:
        listeners = list(self._listeners)
        listeners.remove(listener)
        self._listeners = listeners

    def set_journal(self, journal: Journal | None) -> None:
        """Tell ``journal`` the effect of every change from now on (persistence); it runs
        before listeners and must not raise."""
        self._journal = journal

    def now_ms(self) -> int:
        """Store time: the clock, clamped so it never goes backwards."""
        now = self._clock()
        if now < self._last_now:
            return self._last_now
        self._last_now = now
        return now

    # ------------------------------------------------------------------ internals

    def _shard(self, owner: str) -> _Shard:
        shard = self._shard_cache.get(owner)
        if shard is None:
            # A stable hash (not Python's per-process str hash) keeps the layout reproducible.
            shard = self._shards[zlib.crc32(owner.encode("utf-8", "surrogatepass")) & self._mask]
            if len(self._shard_cache) >= _SHARD_CACHE_MAX:
                self._shard_cache.clear()
            self._shard_cache[owner] = shard
        return shard

    def _notify(self, event: str, record: TaskRecord) -> None:
        for listener in self._listeners:
            listener(event, record.owner, record)

    def _commit(self, record: TaskRecord, now: int, event: str) -> None:
        """A change is done: stamp ``lastUpdatedAt``, drop the cached JSON, tell listeners."""
        record.last_updated_at_ms = now
        record.changed()
        if self._journal is not None:
            self._journal.changed(record)
        if self._listeners:
            self._notify(event, record)

    def _new_task_id(self) -> str:
        """A random UUID v4 string from the OS CSPRNG: what ``str(uuid.uuid4())`` gives
        (122 random bits), cheaper. The pool is this store's own (stores are single-threaded)
        and is emptied in a forked child."""
        pos = self._id_pos
        hexes = self._id_hex
        if pos >= len(hexes):
            hexes = self._id_hex = os.urandom(_ID_POOL_HEX // 2).hex()
            pos = 0
        self._id_pos = pos + 32
        h = hexes[pos : pos + 32]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

    def _is_due(self, record: TaskRecord, now: int, retention: int) -> bool:
        ttl = record.ttl_ms
        return ttl is not None and now >= record.created_at_ms + ttl + retention

    def _find(self, owner: str, task_id: str, now: int) -> tuple[_Shard, _Owner, TaskRecord]:
        """Look a task up for its owner, lazily evicting it if its retention has run out."""
        check_task_id(task_id)
        shard = self._shard(owner)
        entry = shard.owners.get(owner)
        record = entry.tasks.get(task_id) if entry is not None else None
        if record is None or entry is None:
            raise TaskNotFound(task_id)
        if self._is_due(record, now, self._cfg.expired_retention_ms):
            self._evict(shard, entry, record, popped=False)
            raise TaskNotFound(task_id)
        return shard, entry, record

    def _find_mutable(self, owner: str, task_id: str, now: int) -> TaskRecord:
        record = self._find(owner, task_id, now)[2]
        if record.is_expired(now):
            raise TaskExpired(task_id)
        return record

    def _remove(self, shard: _Shard, entry: _Owner, record: TaskRecord, *, popped: bool) -> None:
        """Drop a record from every structure; ``popped``: already taken out of the wheel."""
        del entry.tasks[record.task_id]
        entry.index.remove(record)
        if not entry.tasks:
            del shard.owners[entry.name]
        self._total -= 1
        self._by_status[record.status] -= 1
        if self._journal is not None:
            self._journal.removed(record)
        if record.ttl_ms is not None and not popped:
            shard.dead += 1
            if shard.dead > _WHEEL_COMPACT_FLOOR and shard.dead * 2 > shard.size:
                self._compact_wheel(shard)

    def _compact_wheel(self, shard: _Shard) -> None:
        wheel: dict[int, deque[TaskRecord]] = {}
        size = 0
        for second, bucket in shard.wheel.items():
            live = deque(r for r in bucket if self._alive(shard, r))
            if live:
                wheel[second] = live
                size += len(live)
        shard.wheel = wheel
        shard.seconds = sorted(wheel)  # a sorted list is a valid heap
        shard.size = size
        shard.dead = 0

    @staticmethod
    def _alive(shard: _Shard, record: TaskRecord) -> bool:
        entry = shard.owners.get(record.owner)
        return entry is not None and entry.tasks.get(record.task_id) is record

    def _evict(self, shard: _Shard, entry: _Owner, record: TaskRecord, *, popped: bool) -> None:
        self._remove(shard, entry, record, popped=popped)
        self._evicted_total += 1
        if self._listeners:
            self._notify("evicted", record)

    def _evict_owner_due(self, shard: _Shard, entry: _Owner, now: int, retention: int) -> int:
        """Evict an owner's tasks due at ``now``; O(1) unless one of them can be due."""
        earliest = entry.next_expiry
        if earliest is None or now < earliest + retention:
            return 0
        due: list[TaskRecord] = []
        next_expiry: int | None = None
        for record in entry.tasks.values():
            ttl = record.ttl_ms
            if ttl is None:
                continue
            expires = record.created_at_ms + ttl
            if now >= expires + retention:
                due.append(record)
            elif next_expiry is None or expires < next_expiry:
                next_expiry = expires
        entry.next_expiry = next_expiry
        for record in due:
            self._evict(shard, entry, record, popped=False)
        return len(due)

    def _drain(self, shard: _Shard, now: int, retention: int, budget: int | None) -> int:
        """Evict due tasks of one shard, earliest second first, at most ``budget`` of them.

        Listeners run inside; they must not change the store.
        """
        evicted = 0
        # Dead and not-yet-due entries cost a pop each; bound them too so one call stays short.
        work = None if budget is None else budget * 8 + 64
        seconds = shard.seconds
        wheel = shard.wheel
        while seconds and (budget is None or evicted < budget):
            second = seconds[0]
            if second * 1000 + retention > now:
                break  # nothing in this second (or any later one) is due yet
            bucket = wheel[second]
            # The removal steps of _evict, inlined: this loop runs once per evicted task and
            # a million tasks may expire together. Oldest first: within one second, creation
            # order is expiry order for tasks of equal ttl.
            owners = shard.owners
            by_status = self._by_status
            listeners = self._listeners
            journal = self._journal
            waiting = False
            keep: builtins.list[TaskRecord] = []  # full passes: not-due records, in order
            while bucket and (budget is None or evicted < budget):
                record = bucket.popleft()
                shard.size -= 1
                entry = owners.get(record.owner)
                if entry is None or entry.tasks.get(record.task_id) is not record:
                    shard.dead -= 1  # deleted or evicted earlier
                elif now >= record.created_at_ms + record.ttl_ms + retention:  # type: ignore[operator]
                    del entry.tasks[record.task_id]
                    entry.index.remove(record)
                    if not entry.tasks:
                        del owners[entry.name]
                    self._total -= 1
                    by_status[record.status] -= 1
                    self._evicted_total += 1
                    evicted += 1
                    if journal is not None:
                        journal.removed(record)
                    for listener in listeners:
                        listener("evicted", record.owner, record)
                    continue
                elif budget is None:
                    keep.append(record)  # a full pass (cleanup) looks at every record
                    shard.size += 1
                    continue
                else:
                    # Not due yet (later in this second): put it back and stop here; a task
                    # of shorter ttl behind it waits at most this second, and reads never
                    # return it meanwhile (the deadline is checked on every access).
                    bucket.appendleft(record)
                    shard.size += 1
                    waiting = True
                    break
                if work is not None:
                    work -= 1
                    if work <= 0:
                        break
            if keep:
                bucket.extendleft(reversed(keep))
                break  # the rest of this second is not due, nor is any later second
            if not bucket:
                heapq.heappop(seconds)
                del wheel[second]
                continue
            if waiting or budget is None or evicted >= budget or (work is not None and work <= 0):
                break
        return evicted

    def _check_message(self, message: str) -> None:
        limit = self._cfg.max_string_length
        size = utf8_len(message)
        if size > limit:
            raise TooLarge(f"status message is {size} bytes (max {limit})")

    def _set_status(self, record: TaskRecord, status: TaskStatus) -> None:
        counts = self._by_status
        counts[record.status] -= 1
        counts[status] += 1
        record.status = status

    # ------------------------------------------------------------------ operations

    def create(
        self,
        owner: str,
        request_method: str,
        ttl_ms: int | None = None,
        *,
        unlimited: bool = False,
        poll_interval_ms: int | None = None,
        task_id: str | None = None,
    ) -> TaskRecord:
        """Create a ``working`` task. A TTL over ``max_ttl_ms`` is rejected, never clamped.

        ``unlimited`` (TTL NONE) is only possible when ``max_ttl_ms`` is 0. When the owner is at
        ``max_tasks_per_owner``, its tasks past retention are evicted first; every other record
        it holds counts, terminal and expired ones included. A duplicate id is reported before
        the limit.
        """
        cfg = self._cfg
        if (
            ttl_ms is None
            and poll_interval_ms is None
            and not unlimited
            and 0 < len(request_method) * 4 <= cfg.max_string_length  # UTF-8: <= 4 bytes each
        ):
            # the common call (defaults, no id): nothing to check
            ttl: int | None = cfg.default_ttl_ms
            poll = cfg.default_poll_interval_ms
        else:
            ttl, poll = self._create_settings(request_method, ttl_ms, unlimited, poll_interval_ms)
        if task_id is not None:
            check_task_id(task_id)

        now = self.now_ms()
        shard = self._shard(owner)
        entry = shard.owners.get(owner)
        if entry is not None:
            retention = cfg.expired_retention_ms
            if task_id is not None:
                existing = entry.tasks.get(task_id)
                if existing is not None:
                    if not self._is_due(existing, now, retention):
                        raise TaskExists(task_id)
                    self._evict(shard, entry, existing, popped=False)
            limit = cfg.max_tasks_per_owner
            if limit and len(entry.tasks) >= limit:
                self._evict_owner_due(shard, entry, now, retention)
                if len(entry.tasks) >= limit:
                    raise LimitExceeded(len(entry.tasks), limit)
            entry = shard.owners.get(owner)  # evictions may have emptied and dropped it
        if entry is None:
            entry = shard.owners[owner] = _Owner(owner)
        if task_id is None:
            task_id = self._new_task_id()
            while task_id in entry.tasks:  # never in practice; cheap to be certain
                task_id = self._new_task_id()

        self._seq += 1
        record = TaskRecord(
            task_id,
            entry.name,  # one shared string per owner
            sys.intern(request_method),
            now,
            ttl,
            poll,
            self._seq,
        )
        entry.tasks[task_id] = record
        entry.index.append(record)
        if ttl is not None:
            expires = now + ttl
            shard.add(record, expires)
            if entry.next_expiry is None or expires < entry.next_expiry:
                entry.next_expiry = expires
        self._total += 1
        self._by_status[TaskStatus.WORKING] += 1
        self._created_total += 1
        if self._journal is not None:
            self._journal.changed(record)
        if self._listeners:
            self._notify("created", record)
        return record

    def _create_settings(
        self,
        request_method: str,
        ttl_ms: int | None,
        unlimited: bool,
        poll_interval_ms: int | None,
    ) -> tuple[int | None, int]:
        """TASK.CREATE's method, TTL and poll interval checked: (ttl, poll interval)."""
        cfg = self._cfg
        if not request_method:
            raise InvalidArgument("request method must not be empty")
        method_size = utf8_len(request_method)
        if method_size > cfg.max_string_length:
            raise TooLarge(f"request method is {method_size} bytes (max {cfg.max_string_length})")
        ttl: int | None
        if unlimited:
            if ttl_ms is not None:
                raise InvalidArgument("TTL and unlimited retention are mutually exclusive")
            if cfg.max_ttl_ms != 0:
                raise InvalidArgument(
                    f"unlimited TTL (TTL NONE) needs max_ttl_ms 0; max_ttl_ms is {cfg.max_ttl_ms}"
                )
            ttl = None
        elif ttl_ms is None:
            ttl = cfg.default_ttl_ms
        else:
            if not _is_int(ttl_ms) or ttl_ms < 1:
                raise InvalidArgument("TTL must be a whole number >= 1 or NONE")
            maximum = cfg.max_ttl_ms or MAX_SAFE_INT
            if ttl_ms > maximum:
                raise InvalidArgument(f"TTL {ttl_ms}ms exceeds maximum allowed {maximum}ms")
            ttl = ttl_ms
        if poll_interval_ms is None:
            poll = cfg.default_poll_interval_ms
        elif not _is_int(poll_interval_ms) or not 1 <= poll_interval_ms <= MAX_SAFE_INT:
            raise InvalidArgument("POLLINTERVAL must be a whole number >= 1")
        else:
            poll = poll_interval_ms
        return ttl, poll

    def get(self, owner: str, task_id: str) -> TaskRecord:
        """The task, expired ones included until they are evicted."""
        # The hot path of TASK.GET: a live record is returned after two dict lookups; misses,
        # bad ids and tasks past retention take the checked path below.
        entry = self._shard(owner).owners.get(owner)
        if entry is not None:
            record = entry.tasks.get(task_id)
            if record is not None:
                ttl = record.ttl_ms
                if ttl is None or (
                    self.now_ms() < record.created_at_ms + ttl + self._cfg.expired_retention_ms
                ):
                    return record
        return self._find(owner, task_id, self.now_ms())[2]

    def update_status(
        self,
        owner: str,
        task_id: str,
        status: TaskStatus | None,
        message: str | None,
        *,
        set_message: bool,
    ) -> TaskRecord:
        """Change the status and/or the status message.

        With a status, the message becomes ``message`` if ``set_message`` else is cleared (the
        seed replaces it on every status update); a terminal task refuses every status, its own
        included. Without one, only the message changes, on any task that has not expired
        (terminal ones too: a message change is not a transition).
        """
        if status is None and not set_message:
            raise InvalidArgument("nothing to update: give a status or MESSAGE")
        if set_message and message is not None:
            self._check_message(message)
        now = self.now_ms()
        record = self._find_mutable(owner, task_id, now)
        if status is not None:
            current = record.status
            if not can_transition(current, status):
                raise InvalidTransition(task_id, current.value, status.value)
            self._set_status(record, status)
        record.status_message = message if set_message else None
        self._commit(record, now, "updated")
        return record

    def set_variables(self, owner: str, task_id: str, variables_json: bytes | str) -> TaskRecord:
        """Merge a JSON object into the task's variables; a ``null`` value deletes that key.

        Size, depth and string limits apply to the merged result; on any violation nothing
        changes. Allowed on terminal tasks that have not expired, as in the seed.
        """
        cfg = self._cfg
        now = self.now_ms()
        record = self._find_mutable(owner, task_id, now)
        update = parse_variables(variables_json, cfg.max_variable_depth)
        check_variable_values(update, cfg.max_variable_depth, cfg.max_string_length)
        merged = dict(record.variables) if record.variables else {}
        for key, value in update.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        encoded = dumps_compact(merged)
        if len(encoded) > cfg.max_variable_size_bytes:
            raise TooLarge(
                f"variables are {len(encoded)} bytes (max {cfg.max_variable_size_bytes})"
            )
        record.variables = merged or None
        record.last_updated_at_ms = now
        # The size check already encoded the variables; reuse it for the wire form.
        record.changed()
        record._json = record._encode(encoded if merged else None)
        if self._journal is not None:
            self._journal.changed(record)
        if self._listeners:
            self._notify("variables", record)
        return record

    def set_result(self, owner: str, task_id: str, result_json: bytes | str) -> None:
        """Store the result JSON text as given; the status is unchanged.

        Allowed on terminal tasks that have not expired, as in the seed, so a result may be
        attached after the status update that completed the task.
        """
        now = self.now_ms()
        record = self._find_mutable(owner, task_id, now)
        record.result = parse_result(result_json, self._cfg.max_result_bytes)
        self._commit(record, now, "result")

    def get_result(self, owner: str, task_id: str) -> bytes:
        """The stored result text; ``NotReady`` unless the task is terminal and has one."""
        record = self._find(owner, task_id, self.now_ms())[2]
        result = record.result_json()
        if result is None or not record.status.is_terminal:
            raise NotReady(task_id, record.status.value)
        return result

    def stored_result(self, owner: str, task_id: str) -> bytes | None:
        """The stored result text whatever the status (TASK.RESULT … ANY); None when the task
        has none. Expired tasks too, until they are evicted."""
        return self._find(owner, task_id, self.now_ms())[2].result_json()

    def complete_with_result(
        self,
        owner: str,
        task_id: str,
        status: TaskStatus,
        result_json: bytes | str,
        message: str | None,
    ) -> TaskRecord:
        """Move to ``completed`` or ``failed`` and store the result, both or neither."""
        if status not in _COMPLETIONS:
            raise InvalidArgument("status must be completed or failed")
        if message is not None:
            self._check_message(message)
        now = self.now_ms()
        record = self._find_mutable(owner, task_id, now)
        if not can_transition(record.status, status):
            raise InvalidTransition(task_id, record.status.value, status.value)
        result = parse_result(result_json, self._cfg.max_result_bytes)
        # Every check has passed: from here on nothing can fail.
        self._set_status(record, status)
        record.result = result
        record.status_message = message
        self._commit(record, now, "completed")
        return record

    def cancel(self, owner: str, task_id: str, message: str | None) -> TaskRecord:
        """Move to ``cancelled``; a terminal task is an invalid transition (MCP: -32602)."""
        if message is not None:
            self._check_message(message)
        now = self.now_ms()
        record = self._find_mutable(owner, task_id, now)
        if not can_transition(record.status, TaskStatus.CANCELLED):
            raise InvalidTransition(task_id, record.status.value, TaskStatus.CANCELLED.value)
        self._set_status(record, TaskStatus.CANCELLED)
        record.status_message = message
        self._commit(record, now, "cancelled")
        return record

    # ------------------------------------------------------------ 2026-07-28 (docs/commands.md)

    @staticmethod
    def _interaction(record: TaskRecord) -> Interaction:
        interaction = record.interaction
        if interaction is None:
            interaction = record.interaction = Interaction()
        return interaction

    def _check_input_size(self, size: int) -> None:
        limit = self._cfg.max_input_bytes
        if size > limit:
            raise TooLarge(f"input requests and answers are {size} bytes (max {limit})")

    def ask(
        self,
        owner: str,
        task_id: str,
        requests: list[tuple[str, bytes | str]],
        message: str | None,
    ) -> TaskRecord:
        """Add input requests and set ``input_required`` (from ``working`` or
        ``input_required``), all or nothing.

        A request is a JSON object with a string ``method`` and an object ``params``. A key is
        unique over the task's whole life: one used before is ``EXISTS``. ``message`` replaces
        the status message; without it the message is cleared when the status changes (as
        every status update does) and kept when the task already waits for input.
        """
        if not requests:
            raise InvalidArgument("TASK.ASK needs at least one key and request")
        for key, _ in requests:
            check_input_key(key)
        if message is not None:
            self._check_message(message)
        now = self.now_ms()
        record = self._find_mutable(owner, task_id, now)
        status = record.status
        if status.is_terminal:
            raise InvalidTransition(task_id, status.value, TaskStatus.INPUT_REQUIRED.value)
        interaction = record.interaction
        issued = interaction.issued if interaction is not None else set()
        seen: set[str] = set()
        for key, _ in requests:
            if key in issued or key in seen:
                raise TaskExists(key, "input request key already used")
            seen.add(key)
        encoded: list[tuple[str, bytes]] = []
        size = interaction.input_bytes if interaction is not None else 0
        for key, raw in requests:
            request = parse_object(raw, f"request {key!r}", self._cfg.max_input_bytes)
            if not isinstance(request.get("method"), str) or not isinstance(
                request.get("params"), dict
            ):
                raise InvalidArgument(
                    f"request {key!r} must be a JSON object with a string method and an "
                    "object params"
                )
            data = dumps_compact(request)
            size += len(key) + len(data)
            encoded.append((key, data))
        self._check_input_size(size)
        # Every check has passed: from here on nothing can fail.
        interaction = self._interaction(record)
        for key, data in encoded:
            interaction.requests[key] = data
            interaction.issued.add(key)
        interaction.input_bytes = size
        if status is not TaskStatus.INPUT_REQUIRED:
            self._set_status(record, TaskStatus.INPUT_REQUIRED)
            record.status_message = message
        elif message is not None:
            record.status_message = message
        self._commit(record, now, "asked")
        return record

    def answer(self, owner: str, task_id: str, answers: list[tuple[str, bytes | str]]) -> int:
        """Accept answers to outstanding input requests; returns how many were accepted.

        Answers for keys that are not outstanding (never asked, already answered, malformed)
        are ignored, as the 2026-07-28 ``tasks/update`` requires; so are all answers to a
        terminal or expired task (0). Each response must be a JSON object, or nothing changes.
        When no request remains outstanding, an ``input_required`` task returns to ``working``
        in the same step (the status message is cleared, as with every status change).
        """
        if not answers:
            raise InvalidArgument("TASK.ANSWER needs at least one key and response")
        # Keys are not checked: one that could never have been asked is simply not outstanding.
        limit = self._cfg.max_input_bytes
        parsed = [
            (key, dumps_compact(parse_object(raw, f"response {key!r}", limit)))
            for key, raw in answers
        ]
        now = self.now_ms()
        record = self._find(owner, task_id, now)[2]
        interaction = record.interaction
        if record.is_expired(now) or record.status.is_terminal or interaction is None:
            return 0
        accepted: dict[str, bytes] = {}
        for key, data in parsed:
            if key in interaction.requests and key not in accepted:
                accepted[key] = data
        if not accepted:
            return 0
        size = interaction.input_bytes
        for key, data in accepted.items():
            size += len(data) - len(interaction.requests[key])
        self._check_input_size(size)
        for key, data in accepted.items():
            del interaction.requests[key]
            interaction.answers[key] = data
        interaction.input_bytes = size
        if not interaction.requests and record.status is TaskStatus.INPUT_REQUIRED:
            self._set_status(record, TaskStatus.WORKING)
            record.status_message = None
        self._commit(record, now, "answered")
        return len(accepted)

    def answers(self, owner: str, task_id: str) -> bytes:
        """Every answer received so far, as one JSON object (key -> response); not consumed."""
        return answers_json(self._find(owner, task_id, self.now_ms())[2].interaction)

    def fail(
        self, owner: str, task_id: str, error_json: bytes | str, message: str | None
    ) -> TaskRecord:
        """Move to ``failed`` with a JSON-RPC error object (``code`` integer, ``message``
        string, ``data`` optional), both or neither."""
        if message is not None:
            self._check_message(message)
        now = self.now_ms()
        record = self._find_mutable(owner, task_id, now)
        if not can_transition(record.status, TaskStatus.FAILED):
            raise InvalidTransition(task_id, record.status.value, TaskStatus.FAILED.value)
        error = parse_object(error_json, "error", self._cfg.max_result_bytes)
        if not _is_int(error.get("code")) or not isinstance(error.get("message"), str):
            raise InvalidArgument(
                "error must be a JSON-RPC error object: an integer code and a string message"
            )
        data = dumps_compact(error)
        # Every check has passed: from here on nothing can fail.
        self._interaction(record).error = data
        self._set_status(record, TaskStatus.FAILED)
        record.status_message = message
        self._commit(record, now, "failed")
        return record

    def request_cancel(self, owner: str, task_id: str, message: str | None) -> TaskRecord:
        """Record a cooperative cancellation request (2026-07-28 ``tasks/cancel``); the status
        does not change. A second request, or one for a terminal task, changes nothing."""
        if message is not None:
            self._check_message(message)
        now = self.now_ms()
        record = self._find_mutable(owner, task_id, now)
        interaction = record.interaction
        if record.status.is_terminal or (
            interaction is not None and interaction.cancel_requested_at_ms is not None
        ):
            return record
        self._interaction(record).cancel_requested_at_ms = now
        if message is not None:
            record.status_message = message
        self._commit(record, now, "cancel_requested")
        return record

    def lease(self, owner: str, task_id: str, holder: str, ms: int) -> int:
        """Take or renew a worker's lease on a task; ``ms`` 0 releases it. Returns the ms
        granted (0: released, or the task is terminal and needs no worker).

        A lease that runs out before its holder renews it fails the task (a worker that died
        must not leave it ``working`` for ever): status ``failed`` with the JSON-RPC error
        ``{"code":-32603,"message":"worker lost: lease expired"}``, at the next sweep tick.
        Another holder's live lease is ``LEASED``. Taking or renewing changes nothing a
        client sees: no ``lastUpdatedAt``, no notification.
        """
        check_input_key(holder, "worker")
        if not 0 <= ms <= MAX_LEASE_MS:
            raise InvalidArgument(f"lease must be between 0 and {MAX_LEASE_MS} ms")
        now = self.now_ms()
        record = self._find_mutable(owner, task_id, now)
        interaction = record.interaction
        if record.status.is_terminal:
            if interaction is not None and interaction.lease_holder is not None:
                interaction.lease_holder = interaction.lease_expires_at_ms = None
                if self._journal is not None:
                    self._journal.changed(record)
            return 0
        if interaction is not None:
            held_until = interaction.lease_expires_at_ms
            if (
                interaction.lease_holder not in (None, holder)
                and held_until is not None
                and held_until > now
            ):
                raise LeaseHeld(task_id, held_until - now)
        interaction = self._interaction(record)
        if ms == 0:
            if interaction.lease_holder is not None:
                interaction.lease_holder = interaction.lease_expires_at_ms = None
                if self._journal is not None:
                    self._journal.changed(record)
            return 0
        interaction.lease_holder = holder
        interaction.lease_expires_at_ms = until = now + ms
        self._lease_seq += 1
        heapq.heappush(self._leases, (until, self._lease_seq, record))
        if self._journal is not None:
            self._journal.changed(record)
        return ms

    def _expire_leases(self, now: int, budget: int) -> None:
        """Fail the tasks whose worker lease ran out (stale heap entries are skipped)."""
        leases = self._leases
        while leases and leases[0][0] <= now and budget > 0:
            until, _, record = heapq.heappop(leases)
            interaction = record.interaction
            if (
                interaction is None
                or interaction.lease_expires_at_ms != until
                or record.status.is_terminal
                or record.is_expired(now)
                or self._shard(record.owner).owners.get(record.owner) is None
                or self._shard(record.owner).owners[record.owner].tasks.get(record.task_id)
                is not record
            ):
                continue  # renewed, released, finished, expired or removed since
            budget -= 1
            holder = interaction.lease_holder
            interaction.lease_holder = interaction.lease_expires_at_ms = None
            interaction.error = dumps_compact(
                {
                    "code": -32603,
                    "message": "worker lost: lease expired",
                    "data": {"worker": holder},
                }
            )
            self._set_status(record, TaskStatus.FAILED)
            record.status_message = "worker lost"
            self._commit(record, now, "failed")

    def delete(self, owner: str, task_id: str) -> bool:
        """Remove a task (expired or not); False when the owner has no such task."""
        try:
            shard, entry, record = self._find(owner, task_id, self.now_ms())
        except TaskNotFound:
            return False
        self._remove(shard, entry, record, popped=False)
        if self._listeners:
            self._notify("deleted", record)
        return True

    def cleanup_expired(self, owner: str | None) -> int:
        """Evict every expired task now (one owner's, or all when ``owner`` is None).

        Unlike passive expiry this does not wait for ``expired_retention_ms``. With
        ``owner=None`` the work is proportional to the number of expired tasks, unbounded:
        the background sweep is the bounded path.
        """
        now = self.now_ms()
        if owner is not None:
            shard = self._shard(owner)
            entry = shard.owners.get(owner)
            if entry is None:
                return 0
            return self._evict_owner_due(shard, entry, now, 0)
        return sum(self._drain(shard, now, 0, None) for shard in self._shards)

    def sweep(self, max_evictions: int) -> int:
        """Evict at most ``max_evictions`` tasks past retention, visiting shards round-robin.

        Cheap when nothing is due: one heap peek per shard.
        """
        if max_evictions <= 0:
            return 0
        now = self.now_ms()
        leases = self._leases
        if leases and leases[0][0] <= now:
            self._expire_leases(now, max_evictions)
        retention = self._cfg.expired_retention_ms
        shards = self._shards
        start = self._sweep_next
        evicted = 0
        for step in range(len(shards)):
            position = (start + step) & self._mask
            evicted += self._drain(shards[position], now, retention, max_evictions - evicted)
            if evicted >= max_evictions:
                # Next sweep starts with the following shard, so one busy shard cannot starve
                # the others.
                self._sweep_next = (position + 1) & self._mask
                break
        return evicted

    # ------------------------------------------------------------------ persistence

    def restore(self, records: Iterable[TaskRecord]) -> tuple[int, int]:
        """Load records (a persistence log's final states) into an empty store; returns
        (loaded, dropped). Records past retention at this moment are dropped, as the sweep
        would have evicted them had the server kept running; the rest keep their ids,
        timestamps and creation sequence, so TASK.LIST order is what it was. Nothing is
        journaled or notified.
        """
        if self._total:
            raise ValueError("restore needs an empty store")
        now = self.now_ms()
        retention = self._cfg.expired_retention_ms
        by_owner: dict[str, builtins.list[TaskRecord]] = {}
        dropped = 0
        for record in records:
            if self._is_due(record, now, retention):
                dropped += 1
                continue
            group = by_owner.get(record.owner)
            if group is None:
                by_owner[record.owner] = [record]
            else:
                group.append(record)
        by_status = self._by_status
        top = self._seq
        loaded = 0
        for owner, group in by_owner.items():
            seqs = [record.seq for record in group]
            if seqs != sorted(seqs):
                group.sort(key=_seq_key)  # a rewrite's snapshot, then its tail
            shard = self._shard(owner)
            entry = shard.owners.get(owner)
            if entry is None:
                entry = shard.owners[owner] = _Owner(owner)
            tasks = entry.tasks
            append = entry.index.append
            for record in group:
                record.owner = entry.name  # one shared string per owner
                tasks[record.task_id] = record
                append(record)
                ttl = record.ttl_ms
                if ttl is not None:
                    expires = record.created_at_ms + ttl
                    shard.add(record, expires)
                    if entry.next_expiry is None or expires < entry.next_expiry:
                        entry.next_expiry = expires
                by_status[record.status] += 1
                interaction = record.interaction
                if interaction is not None and interaction.lease_expires_at_ms is not None:
                    self._lease_seq += 1
                    heapq.heappush(
                        self._leases,
                        (interaction.lease_expires_at_ms, self._lease_seq, record),
                    )
            if group[-1].seq > top:
                top = group[-1].seq
            loaded += len(group)
        self._seq = top
        self._total = loaded
        return loaded, dropped

    def live_records(self) -> Iterator[TaskRecord]:
        """Every record not past retention, one owner after another (an owner's in creation
        order), for a log rewrite that runs in slices between other work.

        The store may change between two items: an owner's records are taken when the walk
        reaches it, so a record removed later may still be yielded and one created later
        may be missed; the caller logs the changes made meanwhile after the snapshot.
        """
        retention = self._cfg.expired_retention_ms
        for shard in builtins.list(self._shards):
            for name in builtins.list(shard.owners):
                entry = shard.owners.get(name)
                if entry is None:
                    continue
                now = self.now_ms()
                for record in builtins.list(entry.tasks.values()):
                    if not self._is_due(record, now, retention):
                        yield record

    def count(self, owner: str | None) -> int:
        """DBSIZE: an owner's tasks (exact), or every record held (may include tasks past
        retention that the sweep has not reclaimed yet, like Redis's DBSIZE with expired keys).
        """
        if owner is None:
            return self._total
        shard = self._shard(owner)
        entry = shard.owners.get(owner)
        if entry is None:
            return 0
        self._evict_owner_due(shard, entry, self.now_ms(), self._cfg.expired_retention_ms)
        return len(entry.tasks)

    def flush(self) -> None:
        """Drop every task (FLUSHALL). No events are sent; lifetime totals are kept."""
        self._shards = [_Shard() for _ in range(self._cfg.shards)]
        self._shard_cache.clear()
        self._leases.clear()
        self._total = 0
        self._by_status = dict.fromkeys(TaskStatus, 0)
        if self._journal is not None:
            self._journal.cleared()

    def stats(self) -> dict[str, int]:
        """Counters for INFO's tasks section.

        ``tasks`` and the per-status counts cover every record held; ``expired`` counts held
        records past their ttl (exact, cost proportional to that number), which may include
        tasks past retention the sweep has not reclaimed yet.
        """
        now = self.now_ms()
        expired = 0
        owners = 0
        for shard in self._shards:
            owners += len(shard.owners)
            for second, bucket in shard.wheel.items():
                if second * 1000 > now:
                    continue  # every record of this second expires after now
                for record in bucket:
                    if record.is_expired(now) and self._alive(shard, record):
                        expired += 1
        counts = self._by_status
        return {
            "tasks": self._total,
            "working": counts[TaskStatus.WORKING],
            "input_required": counts[TaskStatus.INPUT_REQUIRED],
            "completed": counts[TaskStatus.COMPLETED],
            "failed": counts[TaskStatus.FAILED],
            "cancelled": counts[TaskStatus.CANCELLED],
            "owners": owners,
            "expired": expired,
            "evicted_total": self._evicted_total,
            "created_total": self._created_total,
        }

    # Defined last: inside the class body the name ``list`` means this method from here on.
    def list(
        self, owner: str, cursor: str | None = None, limit: int | None = None
    ) -> tuple[builtins.list[TaskRecord], str | None]:
        """A page of the owner's tasks, newest first, and the cursor of the next page.

        The cursor is a position (the creation sequence of the last task returned), so pages
        stay consistent while tasks are created or deleted: tasks created after the first page
        never appear in later ones. Cost O(log n + limit), plus any tasks past retention met
        on the way, which are evicted.
        """
        cfg = self._cfg
        if limit is None:
            limit = cfg.list_default_limit
        elif not _is_int(limit) or not 1 <= limit <= cfg.list_max_limit:
            raise InvalidArgument(f"LIMIT must be between 1 and {cfg.list_max_limit}")
        before = None if cursor is None else self._cursors.decode(owner, cursor)
        shard = self._shard(owner)
        entry = shard.owners.get(owner)
        if entry is None:
            return [], None
        now = self.now_ms()
        retention = cfg.expired_retention_ms
        page: builtins.list[TaskRecord] = []
        due: builtins.list[TaskRecord] = []
        more = False
        for record in entry.index.newest_first(before):
            if self._is_due(record, now, retention):
                due.append(record)
            elif len(page) < limit:
                page.append(record)
            else:
                more = True
                break
        for record in due:
            self._evict(shard, entry, record, popped=False)
        next_cursor = self._cursors.encode(owner, page[-1].seq) if more else None
        return page, next_cursor
