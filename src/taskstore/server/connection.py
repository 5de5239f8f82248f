"""One client connection: frames requests, runs them in order, writes the replies of one
read with one write, and applies flow control and the per-client limits."""

from __future__ import annotations

import asyncio
import logging
import time
from time import monotonic
from typing import TYPE_CHECKING, Any, cast

from taskstore.protocol import (
    QUEUED,
    ErrorReply,
    QueryBufferLimit,
    Raw,
    ReaderLimits,
    RequestReader,
    encode_into,
    error_bytes,
)
from taskstore.server.blocking import Waiter
from taskstore.server.clientstate import NOAUTH, ClientState
from taskstore.server.commands import BLOCKED, LOOKUP, Command, CommandError
from taskstore.server.flow import RUN_BUDGET_S, FlowControl
from taskstore.store import TaskError

if TYPE_CHECKING:
    from taskstore.server.app import Server

log = logging.getLogger("taskstore")

# Commands that run at once inside MULTI instead of being queued.
_MULTI_IMMEDIATE = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
_SUBSCRIBED_ALLOWED = frozenset(
    {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit", "reset"}
)


class Connection(ClientState, asyncio.Protocol):
    """One client: frames its requests, runs them in order, writes their replies; its
    session (identity, protocol, MULTI, subscriptions) is the ``ClientState`` it extends."""

    __slots__ = (
        "addr",
        "aof_mark",
        "close_timer",
        "closing",
        "created",
        "flow",
        "id",
        "laddr",
        "last_cmd",
        "last_interaction",
        "out",
        "pending",
        "reader",
        "server",
        "store",
        "transport",
    )

    def __init__(self, server: Server) -> None:
        self.server = server
        self.store = server.store  # what TASK commands reach (commands/tasks.py, TaskContext)
        self.transport: asyncio.Transport | None = None
        self.id = 0
        self.closing = False
        # the deadline of a server-side close (close_after_reply), cancelled once the
        # client hangs up so that nothing holds the closed transport
        self.close_timer: asyncio.TimerHandle | None = None
        #: when to stop reading this client (server/flow.py); set once connected
        self.flow: FlowControl | None = None
        # commands read but not run yet because one before them blocked, and the
        # protocol error (if any) that ended their read
        self.pending: tuple[list[list[bytes]], Exception | None] | None = None
        # the replies being built while this connection runs commands (pub/sub messages
        # for it are added there, in order), None otherwise
        self.out: list[bytes] | None = None
        self.aof_mark = 0  # the append-only file's entry count when run() began
        self.addr = ""
        self.laddr = ""
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_cmd = "NULL"
        cfg = server.config
        self.reader = RequestReader(
            ReaderLimits(cfg.proto_max_bulk_len, cfg.client_query_buffer_limit)
        )
        self.start_session()
        self.reader.unauthenticated = not self.authenticated

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        transport = self.transport = cast(asyncio.Transport, transport)
        server = self.server
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.addr = _format_addr(peer)
        self.laddr = _format_addr(sock)
        if len(server.clients) >= server.config.maxclients:
            server.stats["rejected_connections"] += 1
            transport.write(b"-ERR max number of clients reached\r\n")
            self.closing = True
            self.close_after_reply(transport)
            return
        self.id = server.register(self)
        self.flow = FlowControl(transport, self)
        high = server.config.client_output_high_water
        transport.set_write_buffer_limits(high=high, low=high // 4)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.flow = None  # it refers back to this connection: no cycle is left behind
        self.forget()
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        transport, self.transport = self.transport, None
        if transport is not None:
            _release(transport)

    def forget(self) -> None:
        """Leave nothing behind in the server: waits, subscriptions, the client list."""
        if self.blocked is not None:
            self.server.waiters.remove(self.blocked)
            self.blocked = None
        if self.channels or self.patterns:
            self.server.hub.drop(self)
        if self.id:
            self.server.unregister(self)

    def pause_writing(self) -> None:
        if self.flow is not None:
            self.flow.pause_writing()

    def resume_writing(self) -> None:
        if self.flow is not None:
            self.flow.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.reader.feed(data)
        except QueryBufferLimit as e:
            log.warning("client %s: %s", self.describe(), e)
            self.close()
            return
        # one clock read for the idle time and the start of this client's turn
        start = self.last_interaction = monotonic()
        if self.blocked is None:  # a blocked client's requests wait in the reader
            self.run([], start)
            flow = self.flow
            if flow is not None:
                flow.account(start)

    def resume(self, reply: Any) -> None:
        """A blocking command finished (woken or timed out): answer it and carry on."""
        self.blocked = None
        if self.closing:
            return
        out: list[bytes] = []
        encode_into(reply, out, self.resp3)
        self.run(out)

    def run(self, out: list[bytes], started: float = 0.0) -> None:
        """Run commands (held back ones first, then what the reader has) until there are no
        more, one blocks, or the connection is closing; write every reply with one write.
        ``started``: when this turn began (``time.monotonic``), if the caller knows."""
        reader = self.reader
        server = self.server
        lookup = LOOKUP.get
        self.out = out
        aof = server.aof
        if aof is not None:
            self.aof_mark = aof.appended  # flush() commits what these commands append
        if not started:
            started = monotonic()
        while not self.closing:
            if self.pending is not None:
                cmds, err = self.pending
                self.pending = None
                held = True  # then read on from the buffer
            else:
                held = False
                # Before authentication the reader yields one command at a time, because the
                # limits of the next one depend on whether this one authenticated.
                more = reader.unauthenticated
                cmds, err = reader.parse()
                server.commands_processed += len(cmds)
            for i, args in enumerate(cmds):
                # The hot path, kept flat on purpose: a known command with the right number
                # of arguments, from an authenticated client outside MULTI, needing no admin
                # right. Everything else goes through dispatch_slow.
                name = args[0]
                cmd = lookup(name) or lookup(name.lower())
                if (
                    cmd is not None
                    and cmd.min_args <= len(args) <= cmd.max_args
                    and self.multi is None
                    and self.authenticated
                    and not cmd.admin
                    and not self.restricted
                    and (server.writes_refused is None or not cmd.write)
                ):
                    self.last_cmd = cmd.name
                    try:
                        reply = cmd.handler(self, args)
                    except (CommandError, TaskError) as e:
                        reply = self.error_reply(e)
                    except Exception:
                        reply = self.internal_error(cmd)
                else:
                    reply = self.dispatch_slow(cmd, args)
                # the two commonest replies inline: a bulk string (task JSON) and a constant
                kind = reply.__class__
                if kind is bytes:
                    out.append(b"$%d\r\n%b\r\n" % (len(reply), reply))
                elif kind is Raw:
                    out.append(reply)
                elif reply is BLOCKED:
                    # the handler parked this client: the rest waits until it is woken
                    self.pending = (cmds[i + 1 :], err)
                    self.flush(out)
                    return
                else:
                    encode_into(reply, out, self.resp3)
                if self.closing:
                    break
                if i & 63 == 63 and monotonic() - started > RUN_BUDGET_S:
                    # A long pipeline: send what is done and let other clients run before
                    # the rest (a thousand TASK.CREATEs would otherwise hold the loop ~25 ms).
                    self.pending = (cmds[i + 1 :], err)
                    self.flush(out)
                    asyncio.get_running_loop().call_soon(self.carry_on)
                    return
            if err is not None and not self.closing:
                server.stats["protocol_errors"] += 1
                log.debug("client %s: protocol error: %s", self.describe(), err)
                out.append(error_bytes(str(err)))
                self.closing = True
            if not held and (not more or not cmds or not reader.buffered):
                break
        self.flush(out)

    def carry_on(self) -> None:
        """Run commands held back when a long pipeline yielded the loop."""
        if self.blocked is None and not self.closing and self.pending is not None:
            self.run([])

    def flush(self, out: list[bytes]) -> None:
        self.out = None
        transport = self.transport
        if transport is None:
            return
        aof = self.server.aof
        if aof is not None and (aof.buffer or aof.held):
            # Group commit, as Redis's beforeSleep: one write (and with appendfsync always one
            # fsync) for every client served in this loop turn; the replies leave after it
            # (send_held), and not at all for changes that could not be written.
            aof.hold(self, out, aof.appended != self.aof_mark)
            return
        self.send(transport, out)

    def send(self, transport: asyncio.Transport, out: list[bytes]) -> None:
        """Write the replies, then close if a command ended the connection."""
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self.closing:
            self.close_after_reply(transport)

    def send_held(self, out: list[bytes], ok: bool) -> None:
        """Replies held for the append-only file's write (and fsync)."""
        transport = self.transport
        if transport is None:
            return
        if ok:
            self.send(transport, out)
        else:
            self.abort_unwritten(transport)

    def abort_unwritten(self, transport: asyncio.Transport) -> None:
        """Changes these replies acknowledge are not in the append-only file: no reply may
        claim them. The client sees the connection drop; later writes get MISCONF."""
        self.closing = True
        self.forget()
        transport.abort()

    def close_after_reply(self, transport: asyncio.Transport) -> None:
        """End the connection so that the last reply (QUIT's OK, a protocol error) arrives.

        Closing a socket that still has unread bytes from the client sends a reset, and a
        reset can make the client's kernel drop the reply it has not read yet. So: send FIN
        after the replies, keep reading (and dropping) what the client still sends, and close
        for good when it hangs up or after a second.
        """
        if transport.is_closing():
            return
        # gone for everyone else at once, as in Redis: no messages, no waits, not listed
        self.forget()
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()
        self.close_timer = asyncio.get_running_loop().call_later(1.0, transport.close)

    def block(self, owner: str, task_id: str, kind: str, status: Any, timeout_ms: int) -> Any:
        """Park this client until the task changes (see blocking.py); returns BLOCKED."""
        waiter = Waiter(self, owner, task_id, kind, status)
        self.blocked = waiter
        self.server.waiters.add(waiter, timeout_ms)
        return BLOCKED

    # -- commands ---------------------------------------------------------

    def dispatch_slow(self, cmd: Command | None, args: list[bytes]) -> Any:
        """Everything but the hot path: errors before execution, MULTI queueing, admin."""
        if cmd is None:
            self.multi_dirty = self.multi is not None
            return ErrorReply(_unknown_command(args))
        if not cmd.min_args <= len(args) <= cmd.max_args:
            self.multi_dirty = self.multi is not None
            return ErrorReply(f"ERR wrong number of arguments for '{cmd.name}' command")
        if not self.authenticated and not cmd.noauth:
            self.multi_dirty = self.multi is not None
            return ErrorReply(NOAUTH)
        if self.restricted and cmd.name not in _SUBSCRIBED_ALLOWED:
            return ErrorReply(
                f"ERR Can't execute '{cmd.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                "PING / QUIT / RESET are allowed in this context"
            )
        if self.multi is not None and cmd.name not in _MULTI_IMMEDIATE:
            if cmd.no_multi:
                self.multi_dirty = True
                return ErrorReply("ERR Command not allowed inside a transaction")
            if cmd.admin and not self.is_admin:
                self.multi_dirty = True
                try:
                    self.require_admin(cmd.name)
                except CommandError as e:
                    return ErrorReply(str(e))
            self.multi.append((cmd, args))
            return QUEUED
        return self.call(cmd, args)

    def call(self, cmd: Command, args: list[bytes]) -> Any:
        """Run a known, arity-checked command; errors become error replies."""
        self.last_cmd = cmd.name
        refused = self.server.writes_refused
        if refused is not None and cmd.write:
            return self.error_reply(CommandError(refused))
        try:
            if cmd.admin and not self.is_admin:
                self.require_admin(cmd.name)
            return cmd.handler(self, args)
        except (CommandError, TaskError) as e:
            return self.error_reply(e)
        except Exception:
            return self.internal_error(cmd)

    def error_reply(self, e: Exception) -> ErrorReply:
        self.server.stats["total_error_replies"] += 1
        return ErrorReply(str(e))

    def internal_error(self, cmd: Command) -> ErrorReply:
        log.exception("command %s failed", cmd.name)
        self.server.stats["total_error_replies"] += 1
        return ErrorReply(f"ERR internal error running '{cmd.name}'")

    # -- helpers ----------------------------------------------------------

    def close(self) -> None:
        """Close after the replies already written have been sent."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def describe(self) -> str:
        return f"id={self.id} addr={self.addr} name={self.name}"

    def info_line(self) -> str:
        """One CLIENT LIST / CLIENT INFO line, in Redis's field order."""
        now = time.monotonic()
        flags = (
            ("x" if self.multi is not None else "")
            + ("b" if self.blocked is not None else "")
            + ("P" if self.channels or self.patterns else "")
            + ("e" if self.no_evict else "")
        )
        transport = self.transport
        omem = transport.get_write_buffer_size() if transport is not None else 0
        qbuf = self.reader.buffered
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 name={self.name} "
            f"age={int(now - self.created)} idle={int(now - self.last_interaction)} "
            f"flags={flags or 'N'} db={self.db} sub={len(self.channels)} "
            f"psub={len(self.patterns)} ssub=0 "
            f"multi={len(self.multi) if self.multi is not None else -1} "
            f"qbuf={qbuf} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 "
            f"omem={omem} tot-mem={qbuf + omem} events=r cmd={self.last_cmd} "
            f"user={self.user} redir=-1 resp={3 if self.resp3 else 2} "
            f"lib-name={self.lib_name} lib-ver={self.lib_ver}"
        )


def _release(transport: asyncio.BaseTransport) -> None:
    """Break the reference cycle of a closed asyncio selector transport.

    CPython's ``_SelectorSocketTransport`` keeps a bound method of itself (``_read_ready_cb``),
    so a closed transport is freed only by the cyclic collector, and never once the CLI's
    ``gc.freeze()`` has moved it out of the collector's reach (docs/memory.md). The reader is
    already removed when ``connection_lost`` runs, so the callback is never used again.
    uvloop's transports hold no such cycle (no ``__dict__``).
    """
    state = getattr(transport, "__dict__", None)
    if state is not None and "_read_ready_cb" in state:
        state["_read_ready_cb"] = None


def _format_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr or "")


def _unknown_command(args: list[bytes]) -> str:
    """Redis's exact wording (clients match on it to fall back)."""
    text = ""
    for a in args[1:]:
        if len(text) >= 128:
            break
        text += "'%s' " % a.decode("utf-8", "replace")[: 128 - len(text)]
    return "ERR unknown command '%s', with args beginning with: %s" % (
        args[0].decode("utf-8", "replace")[:128],
        text,
    )
