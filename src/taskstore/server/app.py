"""The server object: listening sockets, the client registry, the task store and its
background expiry sweep. Used by the CLI and directly, in-process:

    async with taskstore.Server(port=0) as srv:
        redis.asyncio.from_url(srv.url)
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import secrets
import threading
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from taskstore.server.blocking import Waiters
from taskstore.server.config import LOG_LEVELS, STORE_SETTINGS, ConfigError, ServerConfig
from taskstore.server.connection import Connection
from taskstore.server.hub import Hub
from taskstore.store import TaskStore

if TYPE_CHECKING:
    from taskstore.console.web import Console
    from taskstore.server.aof import AppendOnlyFile, LoadReport

log = logging.getLogger("taskstore")

#: Most due tasks evicted per sweep step (~0.15 ms); the sweep yields to the loop between
#: steps.
SWEEP_BATCH = 100
#: Longest a sweep tick keeps the event loop busy before clients get a turn: during the
#: expiry of 1,000,000 tasks at once a client waits about this long (PING probe p50 2.1 ms
#: with 2 ms slices, 0.3 ms with 0.5 ms; all evicted in 1.2-1.3 s either way: the loop turn in
#: between costs ~20 us).
SWEEP_BUDGET_S = 0.0005


class Server:
    """A taskstore server. Not started until ``start()`` / ``async with``."""

    def __init__(self, config: ServerConfig | None = None, **settings: Any) -> None:
        if config is None:
            config = ServerConfig.build(**settings)
        elif settings:
            for name, value in settings.items():
                config.set(name, value)
            config.validate()
        self.config = config
        self.store = TaskStore(config.store_config(), config.security_config())
        # The store calls these only while someone blocks or subscribes: a change nobody
        # waits for costs no listener calls (~0.7 us per write otherwise).
        self.waiters = Waiters(self.store)
        self.waiters.on_active = self._waiters_active
        self.hub = Hub(config.pubsub_output_limit)
        self.hub.on_active = self._subscribers_active
        self.security = config.security_config()
        self.clients: dict[int, Connection] = {}
        self.stats: Counter[str] = Counter()
        self.commands_processed = 0  # a plain int: bumped once per read on the hot path
        self.run_id = secrets.token_hex(20)
        self.started_at = time.time()
        self._ids = itertools.count(1)
        self._servers: list[asyncio.AbstractServer] = []
        self._background: list[asyncio.Task[None]] = []
        self._stopped: asyncio.Event | None = None
        self._stop_task: asyncio.Task[None] | None = None
        #: Set by the CLI, which owns its process: see _freeze_gc. Never for in-process use,
        #: where the garbage collector belongs to the host program.
        self.manage_gc = False
        self._port = 0
        #: the append-only file (appendonly yes), open from start() to stop()
        self.aof: AppendOnlyFile | None = None
        self.load_report: LoadReport | None = None
        #: the error write commands get while the append-only file cannot be written
        self.writes_refused: str | None = None
        #: commands per second over the last sweep intervals, as Redis's instantaneous_ops_per_sec
        #: (16 samples, one per tick of hz): (monotonic, commands_processed) at the last tick
        self._ops_rates: deque[float] = deque(maxlen=16)
        self._ops_mark = (time.monotonic(), 0)
        #: the browser console (console_port), serving from start() to stop(); aiohttp and
        #: taskstore.console are imported only when it is on (docs/console.md)
        self.console: Console | None = None
        self._console_tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        cfg = self.config
        cfg.check_protected_mode()
        if cfg.appendonly and self.aof is None:
            self._load_aof()
        if self.manage_gc:
            self._freeze_gc()  # startup's objects (~40,000): a 7 ms collection, not under load
        port = cfg.port
        try:
            for host in cfg.bind.split():
                srv = await loop.create_server(
                    lambda: Connection(self),
                    host=host.lstrip("-"),
                    port=port,
                    reuse_address=True,
                    backlog=511,
                )
                self._servers.append(srv)
                if port == 0:  # later addresses share the port the first one got
                    port = srv.sockets[0].getsockname()[1]
        except OSError as e:
            await self._close_listeners()
            self._close_aof()
            if e.errno in (98, 48):  # EADDRINUSE on Linux / macOS
                raise ConfigError(f"port {cfg.port} is already in use ({cfg.bind})") from None
            raise ConfigError(f"cannot listen on {cfg.bind}:{cfg.port}: {e.strerror}") from None
        self._port = port
        if cfg.console_port:
            try:
                console = self._open_console(cfg.console_port)
                await console.serve()
            except BaseException:
                await self._close_listeners()
                await self._stop_console()
                self._close_aof()
                raise
        self.started_at = time.time()
        self._background.append(loop.create_task(self._sweep_loop()))
        self._background.append(loop.create_task(self._idle_loop()))

    async def stop(self) -> None:
        """Stop accepting, let written replies go out, close every client."""
        await self._close_listeners()
        await self._stop_console()
        for task in self._background:
            task.cancel()
        for task in self._background:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._background.clear()
        for conn in list(self.clients.values()):
            conn.close()
        # transports flush their buffers before closing; give them a moment
        deadline = time.monotonic() + 1.0
        while self.clients and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        for conn in list(self.clients.values()):
            if conn.transport is not None:
                conn.transport.abort()
        self._close_aof()
        if self._stopped is not None:
            self._stopped.set()

    def _load_aof(self) -> None:
        """Load the append-only file before accepting anyone, then journal every change."""
        cfg = self.config
        from taskstore.server.aof import AppendOnlyFile  # only when it is on: start-up time

        aof = AppendOnlyFile(
            cfg.dir,
            cfg.appendfilename,
            cfg.appendfsync,
            load_truncated=cfg.aof_load_truncated,
            rewrite_percentage=cfg.auto_aof_rewrite_percentage,
            rewrite_min_size=cfg.auto_aof_rewrite_min_size,
        )
        report = self.load_report = aof.open(self.store)
        aof.on_write_status = self._aof_write_status
        self.aof = aof
        self.hub.commit = aof.write_pending
        self.store.set_journal(aof)
        log.info(
            "DB loaded from append only file: %d tasks in %.3f seconds%s",
            report.tasks,
            report.seconds,
            f" ({report.dropped} past retention evicted)" if report.dropped else "",
        )

    def _aof_write_status(self, error: str | None) -> None:
        self.writes_refused = (
            None if error is None else f"MISCONF Errors writing to the AOF file: {error}"
        )

    def _close_aof(self) -> None:
        aof, self.aof = self.aof, None
        if aof is not None:
            self.store.set_journal(None)
            self.hub.commit = None
            aof.close()

    async def _close_listeners(self) -> None:
        for srv in self._servers:
            srv.close()
        self._servers.clear()

    def request_shutdown(self) -> None:
        """Ask the server to stop (SHUTDOWN, signals); returns at once."""
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self.stop())

    async def wait_stopped(self) -> None:
        assert self._stopped is not None, "server not started"
        await self._stopped.wait()
        if self._stop_task is not None:
            await self._stop_task  # let a requested stop finish before the loop may close

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        return str(self.config.bind).split()[0].lstrip("-")

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"redis://{host}:{self._port}"

    @property
    def uptime(self) -> float:
        return time.time() - self.started_at

    def _waiters_active(self, active: bool) -> None:
        if active:
            self.store.add_listener(self.waiters.on_change, first=True)  # wakes, then messages
        else:
            self.store.remove_listener(self.waiters.on_change)

    def _subscribers_active(self, active: bool) -> None:
        if active:
            self.store.add_listener(self.hub.publish_task)
        else:
            self.store.remove_listener(self.hub.publish_task)

    # -- the browser console (docs/console.md) ----------------------------------------------

    def _open_console(self, port: int) -> Console:
        """Bind the console's port (``ConfigError`` if it cannot be had) and make it this
        server's console; its feed listens to the store only while a page is open."""
        from taskstore.console import open_console  # only when it is on: start-up time

        console = open_console(self, port)
        feed = console.feed

        def active(on: bool) -> None:
            if on:
                self.store.add_listener(feed.on_change)
            else:
                self.store.remove_listener(feed.on_change)

        feed.on_active = active
        self.console = console
        return console

    async def _stop_console(self) -> None:
        console, self.console = self.console, None
        if console is not None:
            await console.stop()
        while self._console_tasks:
            await asyncio.gather(*self._console_tasks, return_exceptions=True)

    def _run_console_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._console_tasks.add(task)
        task.add_done_callback(self._console_tasks.discard)

    def _console_port_changed(self) -> None:
        """CONFIG SET console_port: start, move or stop the console now. The new port is
        bound before the old one is let go, so a port that cannot be had leaves the console
        as it was and CONFIG SET answers the error."""
        cfg = self.config
        port = cfg.console_port
        old = self.console
        if (old.port if old is not None else 0) == port or self._stopped is None:
            return
        if port:
            try:
                console = self._open_console(port)
            except ConfigError as e:
                from taskstore.server.commands import CommandError

                cfg.values["console_port"] = old.port if old is not None else 0
                self.console = old
                raise CommandError(
                    f"ERR CONFIG SET failed (possibly related to argument 'console_port') - {e}"
                ) from None
            self._run_console_task(console.serve())
            log.info("console listening on %s", console.url)
        else:
            self.console = None
            log.info("console stopped")
        if old is not None:
            self._run_console_task(old.stop())

    # -- clients ----------------------------------------------------------

    def register(self, conn: Connection) -> int:
        cid = next(self._ids)
        self.clients[cid] = conn
        self.stats["total_connections_received"] += 1
        return cid

    def unregister(self, conn: Connection) -> None:
        self.clients.pop(conn.id, None)

    def apply_settings(self, changed: dict[str, Any]) -> None:
        """React to CONFIG SET of runtime settings (already validated together)."""
        cfg = self.config
        if "requirepass" in changed or "allow_anonymous" in changed:
            self.security = cfg.security_config()
            self.store.reconfigure(security_config=self.security)
        if changed.keys() & STORE_SETTINGS:
            self.store.reconfigure(store_config=cfg.store_config())
        if "pubsub_output_limit" in changed:
            self.hub.output_limit = cfg.pubsub_output_limit
        if "loglevel" in changed:
            log.setLevel(LOG_LEVELS[cfg.loglevel])
        aof = self.aof
        if aof is not None:
            aof.fsync = cfg.appendfsync  # the everysec thread only acts in that mode
            aof.load_truncated = cfg.aof_load_truncated
            aof.rewrite_percentage = cfg.auto_aof_rewrite_percentage
            aof.rewrite_min_size = cfg.auto_aof_rewrite_min_size
        if "console_port" in changed:
            self._console_port_changed()  # last: it may refuse, the others are applied

    # -- background work --------------------------------------------------

    def _track_ops(self) -> None:
        now, count = time.monotonic(), self.commands_processed
        then, before = self._ops_mark
        if now > then:
            self._ops_rates.append((count - before) / (now - then))
        self._ops_mark = (now, count)

    def reset_ops_rate(self) -> None:
        """CONFIG RESETSTAT: the count starts again from 0."""
        self._ops_rates.clear()
        self._ops_mark = (time.monotonic(), 0)

    @property
    def instantaneous_ops_per_sec(self) -> int:
        """INFO's figure: the mean of the last 16 per-tick rates (Redis's way)."""
        rates = self._ops_rates
        return round(sum(rates) / len(rates)) if rates else 0

    async def _sweep_loop(self) -> None:
        """Active expiry: evict due tasks in small steps so clients are never stalled."""
        store = self.store
        while True:
            await asyncio.sleep(1 / self.config.hz)
            self._track_ops()
            if self.manage_gc:
                self._freeze_gc()
            aof = self.aof
            if aof is not None:
                aof.retry()
                if aof.should_rewrite():
                    log.info("Starting automatic rewriting of AOF on %d bytes", aof.size)
                    aof.start_rewrite(store)
            deadline = time.perf_counter() + SWEEP_BUDGET_S
            while True:
                evicted = store.sweep(SWEEP_BATCH)
                if evicted < SWEEP_BATCH:
                    break
                if time.perf_counter() >= deadline:
                    await asyncio.sleep(0)  # let clients run, then carry on
                    deadline = time.perf_counter() + SWEEP_BUDGET_S

    @staticmethod
    def _freeze_gc() -> None:
        """Collect what was allocated since the last tick, then freeze what survived.

        With a million tasks, each full (generation 2) collection walks every record: pauses
        of 100-300 ms measured here, which stall every client. Frozen objects are never
        visited again, so the collector's work stays proportional to what was allocated
        since the last tick (docs/memory.md has the numbers). The collection first reclaims
        cycles that became garbage since then; what it cannot do is reclaim a cycle that was
        frozen alive and dies later. So nothing long-lived in the server may die as a cycle:
        connections release their transports at close (connection.py ``_release``), and
        tests/server/test_memory.py checks every way a connection ends, with the cyclic
        collector off, for garbage it would have had to collect.
        """
        gc.collect()
        gc.freeze()

    async def _idle_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            timeout = self.config.timeout
            if not timeout:
                continue
            limit = time.monotonic() - timeout
            for conn in list(self.clients.values()):
                if conn.last_interaction < limit:
                    log.info("closing idle client %s", conn.describe())
                    conn.close()


class ServerThread:
    """Run a server on its own event loop in a background thread, for synchronous code.

    with taskstore.ServerThread(port=0) as srv:
        redis.Redis.from_url(srv.url).ping()
    """

    def __init__(self, config: ServerConfig | None = None, **settings: Any) -> None:
        self.server = Server(config, **settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> ServerThread:
        self._thread = threading.Thread(target=self._run, name="taskstore", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def main() -> None:
            try:
                await self.server.start()
            except BaseException as e:
                self._error = e
                return
            finally:
                self._ready.set()
            await self.server.wait_stopped()

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop the server and wait for its thread; safe to call in any state."""
        loop, thread = self._loop, self._thread
        if thread is None:
            return
        # after a failed start the thread is on its way out and nothing is left to stop: a
        # shutdown scheduled now could land on a loop that closes before running it
        if loop is not None and thread.is_alive() and self._error is None:
            try:
                loop.call_soon_threadsafe(self.server.request_shutdown)
            except RuntimeError:
                pass  # the loop already closed (start failed, or SHUTDOWN from a client)
        thread.join(timeout=10)

    def __enter__(self) -> Server:
        self.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url
