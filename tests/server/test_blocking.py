"""Blocking waits over the wire (design.md §5): TASK.RESULT <id> BLOCK <ms> and
TASK.WAIT <id> [STATUS <s>] [BLOCK <ms>], CLIENT UNBLOCK, and what a blocked client does to
the commands it pipelined after the blocking one.

Every outcome of a waiter is checked byte for byte on a raw socket, in RESP2 and RESP3:
terminal (completed, failed, cancelled), timeout, eviction, TASK.DEL, FLUSHALL, disconnect and
CLIENT UNBLOCK; then 1,000 clients blocked on 1,000 tasks woken in random order, 100 clients
on one task, and two OS processes (one blocked, one completing) with the wake-up latency
measured and printed. No test sleeps and polls to see whether a waiter woke: waiters read
their socket, and the harness polls ``INFO clients`` only to know when a waiter is parked.

Timing is printed, never asserted, except generous liveness bounds ("woken within 2 s").
``TASKSTORE_LONG=1`` runs larger counts (5,000 waiters, 200 two-process round trips).
"""

from __future__ import annotations

import json
import os
import random
import selectors
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
import redis
import redis.asyncio as aredis
from redis._parsers import (
    _AsyncHiredisParser,
    _AsyncRESP2Parser,
    _AsyncRESP3Parser,
    _HiredisParser,
    _RESP2Parser,
    _RESP3Parser,
)

from rawclient import RawClient, bulk, decode, error, pack

LONG = os.environ.get("TASKSTORE_LONG", "") not in ("", "0")


NULL = {2: b"$-1\r\n", 3: b"_\r\n"}


def new_task(w: RawClient, *extra: object) -> tuple[str, bytes]:
    """Create a task; its id and the exact reply frame."""
    frame = w.call_frame("TASK.CREATE", "tools/call", *extra)
    assert frame.startswith(b"$"), frame
    return json.loads(decode(frame))["taskId"], frame


def info_int(w: RawClient, section: str, field: str) -> int:
    text = decode(w.call_frame("INFO", section)).decode()
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"{field} not in INFO {section}: {text!r}")


def blocked_clients(w: RawClient) -> int:
    return info_int(w, "clients", "blocked_clients")


def wait_blocked(w: RawClient, n: int, timeout: float = 10.0) -> float:
    """Poll INFO (harness only) until exactly ``n`` clients are blocked; seconds it took."""
    start = time.perf_counter()
    deadline = start + timeout
    while True:
        got = blocked_clients(w)
        if got == n:
            return time.perf_counter() - start
        assert time.perf_counter() < deadline, f"blocked_clients is {got}, expected {n}"
        time.sleep(0.001)


def client_ids(w: RawClient) -> set[int]:
    text = decode(w.call_frame("CLIENT", "LIST")).decode()
    return {int(line.split()[0][3:]) for line in text.splitlines() if line}


# -- the outcomes of one waiter ------------------------------------------------------------

VARIANTS: dict[str, Callable[[str, int], tuple[object, ...]]] = {
    "result": lambda tid, ms: ("TASK.RESULT", tid, "BLOCK", ms),
    "wait": lambda tid, ms: ("TASK.WAIT", tid, "BLOCK", ms),
    "wait-status": lambda tid, ms: ("TASK.WAIT", tid, "STATUS", "working", "BLOCK", ms),
}

RESULT = '{"content":[{"type":"text","text":"done"}],"isError":false}'
FAILED = '{"content":[{"type":"text","text":"boom"}],"isError":true}'

# (action on the control connection, expected waiter frame per variant); ``ctx`` holds the
# task id, the waiter's client id and the protocol.


def _outcome_completed(c: RawClient, ctx: dict) -> dict[str, bytes]:
    frame = c.call_frame("TASK.COMPLETE", ctx["tid"], "completed", RESULT)
    return {"result": bulk(RESULT), "wait": frame, "wait-status": frame}


def _outcome_failed(c: RawClient, ctx: dict) -> dict[str, bytes]:
    frame = c.call_frame("TASK.COMPLETE", ctx["tid"], "failed", FAILED, "MESSAGE", "tool failed")
    return {"result": bulk(FAILED), "wait": frame, "wait-status": frame}


def _outcome_cancelled(c: RawClient, ctx: dict) -> dict[str, bytes]:
    frame = c.call_frame("TASK.CANCEL", ctx["tid"])
    notready = error(f"NOTREADY task {ctx['tid']} is cancelled; no result yet")
    return {"result": notready, "wait": frame, "wait-status": frame}


def _gone(ctx: dict) -> dict[str, bytes]:
    e = error(f"NOTFOUND task not found: {ctx['tid']}")
    return dict.fromkeys(VARIANTS, e)


def _outcome_deleted(c: RawClient, ctx: dict) -> dict[str, bytes]:
    assert c.call_frame("TASK.DEL", ctx["tid"]) == b":1\r\n"
    return _gone(ctx)


def _outcome_flushall(c: RawClient, ctx: dict) -> dict[str, bytes]:
    assert c.call_frame("FLUSHALL") == b"+OK\r\n"
    return _gone(ctx)


def _outcome_evicted(c: RawClient, ctx: dict) -> dict[str, bytes]:
    return _gone(ctx)  # nothing to do: the TTL runs out and the sweep evicts the task


def _outcome_timeout(c: RawClient, ctx: dict) -> dict[str, bytes]:
    return dict.fromkeys(VARIANTS, NULL[ctx["protocol"]])


def _unblock(*mode: str) -> Callable[[RawClient, dict], dict[str, bytes]]:
    def action(c: RawClient, ctx: dict) -> dict[str, bytes]:
        assert c.call_frame("CLIENT", "UNBLOCK", ctx["cid"], *mode) == b":1\r\n"
        # the same client is not blocked any more (its reply may still be on its way)
        assert c.call_frame("CLIENT", "UNBLOCK", ctx["cid"], *mode) == b":0\r\n"
        if mode == ("ERROR",):
            reply = error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        else:
            reply = NULL[ctx["protocol"]]
        return dict.fromkeys(VARIANTS, reply)

    return action


OUTCOMES: dict[str, Callable[[RawClient, dict], dict[str, bytes]]] = {
    "completed": _outcome_completed,
    "failed": _outcome_failed,
    "cancelled": _outcome_cancelled,
    "timeout": _outcome_timeout,
    "evicted": _outcome_evicted,
    "deleted": _outcome_deleted,
    "flushall": _outcome_flushall,
    "unblock": _unblock(),
    "unblock-timeout": _unblock("TIMEOUT"),
    "unblock-error": _unblock("ERROR"),
}
TIMEOUT_MS = 300
TTL_MS = 1000


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_waiter_outcome(
    make_server, raw_clients, outcome: str, variant: str, protocol: int
) -> None:
    srv = make_server(expired_retention_ms=0, hz=50)
    c = raw_clients(srv.port)
    w = raw_clients(srv.port, protocol)
    ttl = ("TTL", TTL_MS) if outcome == "evicted" else ()
    tid, _ = new_task(c, *ttl)
    created = time.perf_counter()
    cid = decode(w.call_frame("CLIENT", "ID"))
    block_ms = TIMEOUT_MS if outcome == "timeout" else 0
    sent = time.perf_counter()
    w.send(VARIANTS[variant](tid, block_ms))
    wait_blocked(c, 1)
    if outcome == "evicted":
        assert time.perf_counter() - created < TTL_MS / 1000, "blocked only after the TTL"
    assert w.nothing_pending()
    expected = OUTCOMES[outcome](c, {"tid": tid, "cid": cid, "protocol": protocol})
    acted = time.perf_counter()
    got = w.frame()
    woke = time.perf_counter()
    assert got == expected[variant]
    print(
        f"\n{outcome}/{variant}/RESP{protocol}: reply {(woke - acted) * 1000:.2f} ms after the "
        f"action returned, {(woke - sent) * 1000:.1f} ms after the blocking command was sent"
    )
    if outcome == "timeout":
        # a null reply after about the timeout (the timer cannot fire before it)
        assert TIMEOUT_MS / 1000 * 0.9 <= woke - sent < TIMEOUT_MS / 1000 + 5
    elif outcome == "evicted":
        assert woke - created >= TTL_MS / 1000 * 0.9
        assert woke - created < TTL_MS / 1000 + 5
    else:
        assert woke - acted < 2.0  # liveness only
    assert blocked_clients(c) == 0
    w.assert_idle()
    # the task itself is untouched by the wait
    if outcome in ("timeout", "unblock", "unblock-timeout", "unblock-error"):
        assert json.loads(decode(c.call_frame("TASK.GET", tid)))["status"] == "working"
    if outcome in ("evicted", "deleted", "flushall"):
        assert c.call_frame("TASK.GET", tid) == error(f"NOTFOUND task not found: {tid}")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_disconnect_while_blocked(server, raw_clients, variant: str) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    other, _ = new_task(c)
    w = raw_clients(server.port)
    wid = decode(w.call_frame("CLIENT", "ID"))
    # a write pipelined behind the blocking command must never run: the client left first
    w.send(VARIANTS[variant](tid, 0), ("TASK.COMPLETE", other, "completed", "{}"))
    wait_blocked(c, 1)
    w.close()
    wait_blocked(c, 0)
    deadline = time.monotonic() + 5
    while wid in client_ids(c):
        assert time.monotonic() < deadline
        time.sleep(0.001)
    # later changes to the task are fine, and nothing is left behind
    assert c.call_frame("TASK.UPDATE", tid, "input_required").startswith(b"$")
    completed = json.loads(decode(c.call_frame("TASK.COMPLETE", tid, "completed", RESULT)))
    assert completed["status"] == "completed"
    assert c.call_frame("TASK.RESULT", tid, "BLOCK", 0) == bulk(RESULT)
    assert json.loads(decode(c.call_frame("TASK.GET", other)))["status"] == "working"
    assert blocked_clients(c) == 0
    assert c.call_frame("TASK.DEL", tid) == b":1\r\n"
    assert c.call_frame("PING") == b"+PONG\r\n"


def test_client_kill_of_a_blocked_client(server, raw_clients) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    w = raw_clients(server.port)
    wid = decode(w.call_frame("CLIENT", "ID"))
    w.send(("TASK.RESULT", tid, "BLOCK", 0))
    wait_blocked(c, 1)
    assert c.call_frame("CLIENT", "KILL", "ID", wid) == b":1\r\n"
    with pytest.raises(ConnectionError):
        w.frame()
    assert blocked_clients(c) == 0
    assert c.call_frame("TASK.COMPLETE", tid, "completed", "{}").startswith(b"$")


def test_client_unblock_arguments_and_non_blocked_clients(make_server, raw_clients) -> None:
    srv = make_server(users=[{"name": "u", "password": "p"}])
    c = raw_clients(srv.port)
    idle = raw_clients(srv.port)
    idle_id = decode(idle.call_frame("CLIENT", "ID"))
    assert c.call_frame("CLIENT", "UNBLOCK", idle_id) == b":0\r\n"  # connected, not blocked
    assert c.call_frame("CLIENT", "UNBLOCK", idle_id, "ERROR") == b":0\r\n"
    assert c.call_frame("CLIENT", "UNBLOCK", 999999) == b":0\r\n"  # no such client
    assert c.call_frame("CLIENT", "UNBLOCK", "abc") == error(
        "ERR value is not an integer or out of range"
    )
    assert c.call_frame("CLIENT", "UNBLOCK", idle_id, "LATER") == error(
        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
    )
    assert c.call_frame("CLIENT", "UNBLOCK", idle_id, "timeout") == b":0\r\n"  # case-insensitive
    idle.assert_idle()
    # a configured user without the admin permission may not unblock anyone
    tid, _ = new_task(c)
    w = raw_clients(srv.port)
    wid = decode(w.call_frame("CLIENT", "ID"))
    w.send(("TASK.WAIT", tid))
    wait_blocked(c, 1)
    u = raw_clients(srv.port)
    assert u.call_frame("AUTH", "u", "p") == b"+OK\r\n"
    reply = u.call_frame("CLIENT", "UNBLOCK", wid)
    assert reply.startswith(b"-NOPERM User u has no permissions to run the "), reply
    assert blocked_clients(c) == 1
    assert c.call_frame("CLIENT", "UNBLOCK", wid, "error") == b":1\r\n"
    assert w.frame() == error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    w.assert_idle()


# -- immediate replies, argument errors ------------------------------------------------------


def test_no_wait_when_the_answer_is_known(server, raw_clients) -> None:
    c = raw_clients(server.port)
    done, _ = new_task(c)
    c.call_frame("TASK.COMPLETE", done, "completed", RESULT)
    failed, _ = new_task(c)
    c.call_frame("TASK.COMPLETE", failed, "failed", FAILED)
    cancelled, _ = new_task(c)
    cancelled_frame = c.call_frame("TASK.CANCEL", cancelled)
    working, working_frame = new_task(c)
    waiting, _ = new_task(c)
    waiting_frame = c.call_frame("TASK.UPDATE", waiting, "input_required")
    for protocol in (2, 3):
        w = RawClient(server.port, protocol=protocol)
        try:
            assert w.call_frame("TASK.RESULT", done, "BLOCK", 0) == bulk(RESULT)
            assert w.call_frame("TASK.RESULT", failed, "BLOCK", 100) == bulk(FAILED)
            assert w.call_frame("TASK.RESULT", cancelled, "BLOCK", 0) == error(
                f"NOTREADY task {cancelled} is cancelled; no result yet"
            )
            assert w.call_frame("TASK.RESULT", "nope", "BLOCK", 0) == error(
                "NOTFOUND task not found: nope"
            )
            assert w.call_frame("TASK.WAIT", "nope") == error("NOTFOUND task not found: nope")
            assert w.call_frame("TASK.WAIT", "nope", "STATUS", "working", "BLOCK", 0) == error(
                "NOTFOUND task not found: nope"
            )
            # STATUS s returns at once when the status already differs
            assert w.call_frame("TASK.WAIT", working, "STATUS", "input_required") == working_frame
            assert (
                w.call_frame("TASK.WAIT", waiting, "STATUS", "working", "BLOCK", 0) == waiting_frame
            )
            assert w.call_frame("TASK.WAIT", cancelled, "status", "working") == cancelled_frame
            # without BLOCK, TASK.RESULT does not wait
            assert w.call_frame("TASK.RESULT", working) == error(
                f"NOTREADY task {working} is working; no result yet"
            )
            assert blocked_clients(c) == 0
        finally:
            w.close()


def test_blocking_argument_errors(server, raw_clients) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    for cmd in ("TASK.RESULT", "TASK.WAIT"):
        assert c.call_frame(cmd, tid, "BLOCK", -1) == error("ERR timeout is negative")
        assert c.call_frame(cmd, tid, "BLOCK", "soon") == error(
            "ERR timeout is not an integer or out of range"
        )
        assert c.call_frame(cmd, tid, "BLOCK") == error("ERR syntax error")
        assert c.call_frame(cmd, tid, "NOPE", 1) == error("ERR syntax error")
    assert c.call_frame("TASK.RESULT", tid, "STATUS", "working") == error("ERR syntax error")
    assert c.call_frame("TASK.WAIT", tid, "STATUS", "done", "BLOCK", 0) == error(
        "ERR invalid status 'done': expected working, input_required, completed, failed or "
        "cancelled"
    )
    assert blocked_clients(c) == 0
    c.assert_idle()


@pytest.mark.parametrize("cmd", ["TASK.RESULT", "TASK.WAIT"])
def test_huge_block_timeout_is_refused(server, raw_clients, cmd: str) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    w = raw_clients(server.port)
    reply = w.call_frame(cmd, tid, "BLOCK", "1" + "0" * 400)
    assert reply.startswith(b"-ERR timeout is"), reply
    assert blocked_clients(c) == 0
    w.send(("PING",))
    assert w.frame() == b"+PONG\r\n"
    c.call_frame("TASK.COMPLETE", tid, "completed", "{}")
    w.assert_idle()


def test_protocol_error_after_a_blocking_command_waits_its_turn(server, raw_clients) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    w = raw_clients(server.port)
    w.sock.sendall(pack("TASK.RESULT", tid, "BLOCK", 0) + pack("PING") + b"*1\r\n$-5\r\n")
    wait_blocked(c, 1)
    assert w.nothing_pending()  # neither the PONG nor the protocol error yet
    c.call_frame("TASK.COMPLETE", tid, "completed", RESULT)
    assert w.frame() == bulk(RESULT)
    assert w.frame() == b"+PONG\r\n"
    assert w.frame() == error("ERR Protocol error: invalid bulk length")
    with pytest.raises(ConnectionError):
        w.frame()
    assert blocked_clients(c) == 0


def test_expiry_does_not_wake_but_cleanup_eviction_does(server, raw_clients) -> None:
    """With the default retention an expired task stays readable (and waited on) until it
    is evicted; TASK.CLEANUP evicts it now and its waiters get NOTFOUND."""
    c = raw_clients(server.port)
    tid, _ = new_task(c, "TTL", 200)
    ws = [raw_clients(server.port, 2 + i % 2) for i in range(3)]
    for w, variant in zip(ws, VARIANTS, strict=True):
        w.send(VARIANTS[variant](tid, 0))
    wait_blocked(c, 3)
    time.sleep(0.3)  # let the TTL run out (the harness waits for the clock, not for a waiter)
    assert c.call_frame("TASK.UPDATE", tid, "input_required") == error(
        f"EXPIRED task expired: {tid}"
    )
    assert blocked_clients(c) == 3
    assert all(w.nothing_pending() for w in ws)
    assert c.call_frame("TASK.CLEANUP") == b":1\r\n"
    for w in ws:
        assert w.frame() == error(f"NOTFOUND task not found: {tid}")
        w.assert_idle()
    assert blocked_clients(c) == 0


# -- what wakes whom -------------------------------------------------------------------------


def _change(c: RawClient, tid: str, kind: str) -> bytes:
    """Apply one kind of change; the task's JSON right after it."""
    if kind == "status":
        return c.call_frame("TASK.UPDATE", tid, "input_required")
    if kind == "message":
        return c.call_frame("TASK.UPDATE", tid, "MESSAGE", "50% done")
    if kind == "variables":
        return c.call_frame("TASK.SETVARS", tid, '{"progress":0.5}')
    if kind == "result":
        assert c.call_frame("TASK.SETRESULT", tid, '{"partial":true}') == b"+OK\r\n"
        return c.call_frame("TASK.GET", tid)
    if kind == "complete":
        return c.call_frame("TASK.COMPLETE", tid, "completed", "{}")
    if kind == "cancel":
        return c.call_frame("TASK.CANCEL", tid, "MESSAGE", "stop")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["status", "message", "variables", "result", "complete", "cancel"])
def test_wait_without_status_wakes_on_any_change(server, raw_clients, kind: str) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    w = raw_clients(server.port)
    w.send(("TASK.WAIT", tid))  # no BLOCK: forever
    wait_blocked(c, 1)
    frame = _change(c, tid, kind)
    assert frame.startswith(b"$")
    assert w.frame() == frame  # the task JSON right after that change
    assert blocked_clients(c) == 0
    w.assert_idle()


def test_non_waking_changes_keep_waiters_blocked(server, raw_clients) -> None:
    """TASK.RESULT BLOCK waits for a terminal status and TASK.WAIT STATUS s for another
    status; message, variable and result changes (and no-op failures) do not wake them.
    Each waiter's first frame is the one the right change produced, so an early wake-up
    would show as a wrong first frame."""
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    result_w = raw_clients(server.port, 3)
    working_w = raw_clients(server.port)
    input_w = raw_clients(server.port)
    result_w.send(("TASK.RESULT", tid, "BLOCK", 0))
    working_w.send(("TASK.WAIT", tid, "STATUS", "working", "BLOCK", 0))
    wait_blocked(c, 2)
    for kind in ("message", "variables", "result"):
        _change(c, tid, kind)
    # failed mutations change nothing and wake nobody
    assert c.call_frame("TASK.UPDATE", tid, "working").startswith(b"-INVALIDTRANSITION")
    assert c.call_frame("TASK.SETVARS", tid, "[1]").startswith(b"-ERR")
    assert blocked_clients(c) == 2
    assert result_w.nothing_pending() and working_w.nothing_pending()
    to_input = c.call_frame("TASK.UPDATE", tid, "input_required", "MESSAGE", "which file?")
    assert working_w.frame() == to_input
    wait_blocked(c, 1)
    # a waiter for "leave input_required" wakes when it goes back to working
    input_w.send(("TASK.WAIT", tid, "STATUS", "input_required"))
    wait_blocked(c, 2)
    c.call_frame("TASK.UPDATE", tid, "MESSAGE", "still waiting")
    back = c.call_frame("TASK.UPDATE", tid, "working")
    assert input_w.frame() == back
    wait_blocked(c, 1)
    assert result_w.nothing_pending()
    c.call_frame("TASK.COMPLETE", tid, "completed", RESULT)
    assert result_w.frame() == bulk(RESULT)
    assert blocked_clients(c) == 0
    for w in (result_w, working_w, input_w):
        w.assert_idle()


def test_result_block_returns_a_result_stored_before_cancel(server, raw_clients) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    w = raw_clients(server.port)
    w.send(("TASK.RESULT", tid, "BLOCK", 0))
    wait_blocked(c, 1)
    assert c.call_frame("TASK.SETRESULT", tid, '{"partial":[1,2]}') == b"+OK\r\n"
    assert blocked_clients(c) == 1  # a result alone does not end the wait
    c.call_frame("TASK.CANCEL", tid)
    assert w.frame() == bulk('{"partial":[1,2]}')
    w.assert_idle()


# -- pipelining, MULTI, other clients ------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_commands_pipelined_after_a_blocking_one_wait_their_turn(
    server, raw_clients, protocol: int
) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    other, _ = new_task(c)
    w = raw_clients(server.port, protocol)
    w.send(
        ("TASK.RESULT", tid, "BLOCK", 0),
        ("PING",),
        ("ECHO", "after"),
        ("TASK.COMPLETE", other, "completed", '{"n":2}'),
        ("TASK.GET", tid),
    )
    wait_blocked(c, 1)
    # nothing after the blocking command ran: no reply, and the write did not happen
    assert w.nothing_pending()
    assert json.loads(decode(c.call_frame("TASK.GET", other)))["status"] == "working"
    # more commands sent while blocked queue up behind it too
    w.send(("ECHO", "later"), ("TASK.RESULT", other))
    assert c.call_frame("PING") == b"+PONG\r\n"
    assert w.nothing_pending()
    done = c.call_frame("TASK.COMPLETE", tid, "completed", RESULT)
    assert w.frame() == bulk(RESULT)
    assert w.frame() == b"+PONG\r\n"
    assert w.frame() == bulk("after")
    assert json.loads(decode(w.frame()))["status"] == "completed"  # the pipelined write ran
    assert w.frame() == done  # TASK.GET: the state right after the completion
    assert w.frame() == bulk("later")
    assert w.frame() == bulk('{"n":2}')
    w.assert_idle()


def test_two_blocking_commands_pipelined(server, raw_clients) -> None:
    c = raw_clients(server.port)
    a, _ = new_task(c)
    b, _ = new_task(c)
    w = raw_clients(server.port)
    # the second waits behind the first, so completing b first wakes nobody...
    w.send(("TASK.RESULT", a, "BLOCK", 0), ("TASK.RESULT", b, "BLOCK", 0), ("PING",))
    wait_blocked(c, 1)
    c.call_frame("TASK.COMPLETE", b, "completed", '"b"')
    assert blocked_clients(c) == 1
    assert w.nothing_pending()
    # ...and once a completes, both replies come, b's at once since it is already terminal
    c.call_frame("TASK.COMPLETE", a, "completed", '"a"')
    assert [w.frame(), w.frame(), w.frame()] == [bulk('"a"'), bulk('"b"'), b"+PONG\r\n"]
    assert blocked_clients(c) == 0
    # the other order: the second command really blocks after the first is answered
    x, _ = new_task(c)
    y, _ = new_task(c)
    w.send(("TASK.WAIT", x, "STATUS", "working"), ("TASK.RESULT", y, "BLOCK", 0), ("PING",))
    wait_blocked(c, 1)
    x_frame = c.call_frame("TASK.UPDATE", x, "input_required")
    assert w.frame() == x_frame
    wait_blocked(c, 1)  # now blocked on y
    assert w.nothing_pending()
    c.call_frame("TASK.COMPLETE", y, "failed", '"y"')
    assert [w.frame(), w.frame()] == [bulk('"y"'), b"+PONG\r\n"]
    w.assert_idle()


@pytest.mark.parametrize("protocol", [2, 3])
def test_blocking_commands_inside_multi_do_not_wait(server, raw_clients, protocol: int) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    done, _ = new_task(c)
    c.call_frame("TASK.COMPLETE", done, "completed", RESULT)
    w = raw_clients(server.port, protocol)
    w.send(
        ("MULTI",),
        ("TASK.RESULT", tid, "BLOCK", 0),
        ("TASK.WAIT", tid),
        ("TASK.WAIT", tid, "STATUS", "working", "BLOCK", 0),
        ("TASK.RESULT", done, "BLOCK", 0),
        ("PING",),
        ("EXEC",),
    )
    assert [w.frame() for _ in range(6)] == [b"+OK\r\n"] + [b"+QUEUED\r\n"] * 5
    null = NULL[protocol]
    assert w.frame() == b"*5\r\n" + null * 3 + bulk(RESULT) + b"+PONG\r\n"
    assert blocked_clients(c) == 0
    w.assert_idle()
    # redis-py's pipeline() wraps commands in MULTI/EXEC the same way
    r = redis.Redis(port=server.port, protocol=protocol)
    with r.pipeline() as p:
        p.execute_command("TASK.RESULT", tid, "BLOCK", 0)
        p.execute_command("TASK.WAIT", tid, "BLOCK", 0)
        p.ping()
        assert p.execute() == [None, None, True]
    r.close()


def test_other_clients_are_served_while_one_is_blocked(server, raw_clients) -> None:
    c = raw_clients(server.port)
    tid, _ = new_task(c)
    w = raw_clients(server.port)
    w.send(("TASK.RESULT", tid, "BLOCK", 0))
    wait_blocked(c, 1)
    others = [raw_clients(server.port) for _ in range(5)]
    start = time.perf_counter()
    for i in range(200):
        o = others[i % len(others)]
        o.send(
            ("PING",),
            ("TASK.GET", tid),
            ("TASK.CREATE", "tools/call", "ID", f"t{i}"),
            ("TASK.LIST", "LIMIT", 2),
            ("TASK.DEL", f"t{i}"),
        )
        assert o.frame() == b"+PONG\r\n"
        assert json.loads(decode(o.frame()))["status"] == "working"
        assert o.frame().startswith(b"$")
        assert json.loads(decode(o.frame()))["tasks"][0]["taskId"] == f"t{i}"
        assert o.frame() == b":1\r\n"
    elapsed = time.perf_counter() - start
    print(f"\n1000 commands from 5 other clients in {elapsed * 1000:.1f} ms while one is blocked")
    assert elapsed < 30  # liveness
    # even another waiter on the same task, and a non-blocking read of it
    w2 = raw_clients(server.port)
    w2.send(("TASK.WAIT", tid, "STATUS", "working", "BLOCK", 0))
    wait_blocked(c, 2)
    assert others[0].call_frame("TASK.RESULT", tid) == error(
        f"NOTREADY task {tid} is working; no result yet"
    )
    frame = c.call_frame("TASK.COMPLETE", tid, "completed", RESULT)
    assert w.frame() == bulk(RESULT)
    assert w2.frame() == frame
    assert blocked_clients(c) == 0
    w.assert_idle()
    w2.assert_idle()


# -- owners ------------------------------------------------------------------------------------

USERS = [
    {"name": "a", "password": "x"},
    {"name": "b", "password": "y"},
    {"name": "svc", "password": "z", "permissions": ["impersonate"]},
]


def test_waiters_are_isolated_by_owner(make_server, raw_clients) -> None:
    srv = make_server(users=USERS)
    c = raw_clients(srv.port)  # anonymous: owner "local"

    def login(user: str, password: str) -> RawClient:
        w = raw_clients(srv.port)
        assert w.call_frame("AUTH", user, password) == b"+OK\r\n"
        return w

    a, b = login("a", "x"), login("b", "y")
    for who in (a, b, c):
        assert who.call_frame("TASK.CREATE", "tools/call", "ID", "same").startswith(b"$")
    a_result = login("a", "x")
    a_wait = login("a", "x")
    b_wait = login("b", "y")
    svc_wait = login("svc", "z")  # acting for a
    a_result.send(("TASK.RESULT", "same", "BLOCK", 0))
    a_wait.send(("TASK.WAIT", "same"))
    b_wait.send(("TASK.RESULT", "same", "BLOCK", 0))
    svc_wait.send(("TASK.WAIT", "same", "STATUS", "working", "OWNER", "a"))
    wait_blocked(c, 4)
    # every kind of change of the other owners' "same" tasks: nobody of a's is woken
    c.call_frame("TASK.SETVARS", "same", '{"x":1}')
    c.call_frame("TASK.COMPLETE", "same", "completed", '"local"')
    assert c.call_frame("TASK.DEL", "same") == b":1\r\n"
    b.call_frame("TASK.UPDATE", "same", "input_required", "MESSAGE", "b's")
    assert blocked_clients(c) == 4
    b_done = b.call_frame("TASK.COMPLETE", "same", "completed", '"b"')
    assert b_wait.frame() == bulk('"b"')
    assert blocked_clients(c) == 3
    for w in (a_result, a_wait, svc_wait):
        assert w.nothing_pending()
    assert json.loads(decode(b_done))["status"] == "completed"
    # a's own change wakes a's waiters, with a's data
    a_done = a.call_frame("TASK.COMPLETE", "same", "completed", '"a"')
    assert a_result.frame() == bulk('"a"')
    assert a_wait.frame() == a_done
    assert svc_wait.frame() == a_done
    assert blocked_clients(c) == 0
    # a task id that exists only for another owner is not found, at once
    assert c.call_frame("TASK.RESULT", "same", "BLOCK", 0) == error("NOTFOUND task not found: same")
    assert b.call_frame("TASK.DEL", "same") == b":1\r\n"
    assert b.call_frame("TASK.WAIT", "same") == error("NOTFOUND task not found: same")
    for w in (a_result, a_wait, b_wait, svc_wait):
        w.assert_idle()
    # deleting another owner's same-id task does not wake (or answer) a waiter
    assert b.call_frame("TASK.CREATE", "tools/call", "ID", "again").startswith(b"$")
    assert a.call_frame("TASK.CREATE", "tools/call", "ID", "again").startswith(b"$")
    a_wait.send(("TASK.RESULT", "again", "BLOCK", 0))
    wait_blocked(c, 1)
    assert b.call_frame("TASK.DEL", "again") == b":1\r\n"
    assert blocked_clients(c) == 1
    assert a.call_frame("TASK.DEL", "again") == b":1\r\n"
    assert a_wait.frame() == error("NOTFOUND task not found: again")
    a_wait.assert_idle()


# -- redis-py ----------------------------------------------------------------------------------

SYNC_PARSERS = {"hiredis": _HiredisParser, 2: _RESP2Parser, 3: _RESP3Parser}
ASYNC_PARSERS = {"hiredis": _AsyncHiredisParser, 2: _AsyncRESP2Parser, 3: _AsyncRESP3Parser}
MATRIX = [(p, parser) for p in (2, 3) for parser in ("hiredis", "python")]


def _parser(table: dict, protocol: int, parser: str) -> type:
    return table["hiredis"] if parser == "hiredis" else table[protocol]


@pytest.mark.parametrize(("protocol", "parser"), MATRIX)
def test_redis_py_sync_waiters(server, protocol: int, parser: str) -> None:
    pool = redis.ConnectionPool(
        host="127.0.0.1",
        port=server.port,
        protocol=protocol,
        parser_class=_parser(SYNC_PARSERS, protocol, parser),
    )
    r = redis.Redis(connection_pool=pool)
    ctl = RawClient(server.port)
    try:
        tid = json.loads(r.execute_command("TASK.CREATE", "tools/call"))["taskId"]
        got: dict[str, object] = {}

        def wait(name: str, *args: object) -> None:
            try:
                got[name] = r.execute_command(*args)
            except redis.ResponseError as e:
                got[name] = e

        threads = [
            threading.Thread(target=wait, args=("result", "TASK.RESULT", tid, "BLOCK", 0)),
            threading.Thread(target=wait, args=("wait", "TASK.WAIT", tid, "STATUS", "working")),
        ]
        for t in threads:
            t.start()
        wait_blocked(ctl, 2)
        frame = ctl.call_frame("TASK.COMPLETE", tid, "completed", RESULT)
        for t in threads:
            t.join(10)
            assert not t.is_alive()
        assert got == {"result": RESULT.encode(), "wait": decode(frame)}
        # a timeout is None, in both protocols
        other = json.loads(r.execute_command("TASK.CREATE", "tools/call"))["taskId"]
        assert r.execute_command("TASK.RESULT", other, "BLOCK", 50) is None
        assert r.execute_command("TASK.WAIT", other, "BLOCK", 50) is None
        # an error ending the wait surfaces as the usual exception
        t = threading.Thread(target=wait, args=("gone", "TASK.WAIT", other, "BLOCK", 0))
        t.start()
        wait_blocked(ctl, 1)
        assert ctl.call_frame("TASK.DEL", other) == b":1\r\n"
        t.join(10)
        assert isinstance(got["gone"], redis.ResponseError)
        assert str(got["gone"]) == f"NOTFOUND task not found: {other}"
        assert blocked_clients(ctl) == 0
    finally:
        ctl.close()
        r.close()


@pytest.mark.parametrize(("protocol", "parser"), MATRIX)
def test_redis_py_asyncio_waiters(server, protocol: int, parser: str) -> None:
    n = 50
    import asyncio

    async def main() -> None:
        pool = aredis.ConnectionPool(
            host="127.0.0.1",
            port=server.port,
            protocol=protocol,
            parser_class=_parser(ASYNC_PARSERS, protocol, parser),
        )
        r = aredis.Redis(connection_pool=pool)
        ids = [
            json.loads(await r.execute_command("TASK.CREATE", "tools/call"))["taskId"]
            for _ in range(n)
        ]
        waits = [
            asyncio.ensure_future(r.execute_command("TASK.RESULT", tid, "BLOCK", 0)) for tid in ids
        ]
        ctl = aredis.Redis(port=server.port, protocol=2)
        deadline = time.monotonic() + 10
        while (await ctl.info("clients"))["blocked_clients"] != n:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.001)
        start = time.perf_counter()
        for i in random.Random(7).sample(range(n), n):
            await ctl.execute_command("TASK.COMPLETE", ids[i], "completed", json.dumps({"i": i}))
        got = await asyncio.wait_for(asyncio.gather(*waits), 10)
        print(f"\n{n} asyncio waiters woken in {(time.perf_counter() - start) * 1000:.1f} ms")
        assert got == [json.dumps({"i": i}).encode() for i in range(n)]
        assert (await ctl.info("clients"))["blocked_clients"] == 0
        await ctl.aclose()
        await r.aclose()

    asyncio.run(main())


# -- many waiters --------------------------------------------------------------------------------


def _collect(expected: dict[RawClient, bytes], timeout: float = 30.0) -> float:
    """Read on every socket until each has len(expected) bytes; the time the last arrived.
    Sockets get exactly what they expect, no more, or the test fails."""
    sel = selectors.DefaultSelector()
    for w in expected:
        w.sock.setblocking(False)
        sel.register(w.sock, selectors.EVENT_READ, w)
    remaining = {w for w, e in expected.items() if len(w.buf) < len(e)}
    deadline = time.perf_counter() + timeout
    last = time.perf_counter()
    try:
        while remaining:
            left = deadline - time.perf_counter()
            assert left > 0, f"{len(remaining)} waiters were not woken"
            for key, _ in sel.select(left):
                w = key.data
                chunk = w.sock.recv(1 << 16)
                assert chunk, "a waiter's connection was closed"
                w.buf += chunk
                if len(w.buf) >= len(expected[w]):
                    remaining.discard(w)
                    last = time.perf_counter()
    finally:
        sel.close()
        for w in expected:
            w.sock.settimeout(w.timeout)
    for w, e in expected.items():
        assert w.buf == e
        w.buf = b""
    return last


@pytest.fixture
def big_server(open_files, spawn_server):
    open_files(6000 if LONG else 1500)
    n = 5000 if LONG else 1000
    return spawn_server("--max-tasks-per-owner", "0", "--maxclients", str(n + 100)), n


def _create_many(c: RawClient, n: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 500):
        c.send(*[("TASK.CREATE", "tools/call") for _ in range(start, min(n, start + 500))])
        ids += [json.loads(decode(c.frame()))["taskId"] for _ in range(start, min(n, start + 500))]
    return ids


def test_thousand_waiters_on_thousand_tasks(big_server) -> None:
    proc, n = big_server
    c = RawClient(proc.port)
    waiters: list[RawClient] = []
    try:
        ids = _create_many(c, n)
        for tid in ids:
            w = RawClient(proc.port)
            w.send(("TASK.RESULT", tid, "BLOCK", 0))
            waiters.append(w)
        parked = wait_blocked(c, n, timeout=60)
        print(f"\n{n} clients blocked (INFO saw all of them {parked * 1000:.0f} ms after the last)")
        order = random.Random(2026).sample(range(n), n)
        results = {i: json.dumps({"task": i, "by": "completer"}) for i in range(n)}
        halves = (order[: n // 2], order[n // 2 :])
        still = n
        for half in halves:
            start = time.perf_counter()
            for k in range(0, len(half), 250):
                batch = half[k : k + 250]
                c.send(*[("TASK.COMPLETE", ids[i], "completed", results[i]) for i in batch])
                for _ in batch:
                    assert c.frame().startswith(b"$")
            last = _collect({waiters[i]: bulk(results[i]) for i in half}, timeout=60)
            took = last - start
            still -= len(half)
            print(
                f"{len(half)} waiters woken in random order: last reply {took * 1000:.1f} ms "
                f"after the first TASK.COMPLETE was sent"
            )
            assert took < 60  # liveness
            assert blocked_clients(c) == still
            # the waiters of tasks not completed yet received nothing
            pending = halves[1] if still else []
            assert all(waiters[i].nothing_pending() for i in pending)
        assert blocked_clients(c) == 0
        # exactly once: no second reply came before the PONG
        for w in waiters:
            w.send(("PING",))
        _collect(dict.fromkeys(waiters, b"+PONG\r\n"), timeout=60)
    finally:
        for w in waiters:
            w.close()
        c.close()


def test_hundred_waiters_on_one_task(open_files, spawn_server) -> None:
    open_files(6000 if LONG else 1500)
    n = 1000 if LONG else 100
    proc = spawn_server()
    c = RawClient(proc.port)
    waiters: list[tuple[str, RawClient]] = []
    try:
        tid, _ = new_task(c)
        for i in range(n):
            variant = list(VARIANTS)[i % 3]
            w = RawClient(proc.port, protocol=3 if i % 2 else 2)
            w.send(VARIANTS[variant](tid, 0))
            waiters.append((variant, w))
        wait_blocked(c, n)
        # changes that wake only the TASK.WAIT without STATUS waiters
        vars_frame = c.call_frame("TASK.SETVARS", tid, '{"step":1}')
        plain = {w: vars_frame for v, w in waiters if v == "wait"}
        _collect(plain)
        assert blocked_clients(c) == n - len(plain)
        for _, w in waiters:
            if w not in plain:
                assert w.nothing_pending()
        for w in plain:
            w.send(("TASK.WAIT", tid))
        wait_blocked(c, n)
        start = time.perf_counter()
        done = c.call_frame("TASK.COMPLETE", tid, "completed", RESULT)
        expected = {w: (bulk(RESULT) if v == "result" else done) for v, w in waiters}
        last = _collect(expected)
        print(f"\n{n} clients on one task woken in {(last - start) * 1000:.1f} ms")
        assert last - start < 10  # liveness
        assert blocked_clients(c) == 0
        for _, w in waiters:
            w.send(("PING",))
        _collect({w: b"+PONG\r\n" for _, w in waiters})
    finally:
        for _, w in waiters:
            w.close()
        c.close()


# -- two OS processes ------------------------------------------------------------------------

WAITER = r"""
import sys, time, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
r.ping()
print("ready", flush=True)
for line in sys.stdin:
    tid = line.strip()
    value = r.execute_command("TASK.RESULT", tid, "BLOCK", 0)  # one blocking call, no polling
    now = time.time_ns()
    print(now, value.decode(), flush=True)
"""

COMPLETER = r"""
import json, sys, time, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
r.ping()
print("ready", flush=True)
for line in sys.stdin:
    tid, n = line.split()
    result = json.dumps({"content": [{"type": "text", "text": "run " + n}]})
    now = time.time_ns()
    r.execute_command("TASK.COMPLETE", tid, "completed", result)
    print(now, result, flush=True)
"""


class Child:
    """A Python child process driven line by line over its stdin/stdout."""

    def __init__(self, script: str, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self.buf = b""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    def line(self, timeout: float = 10.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            with selectors.DefaultSelector() as sel:
                sel.register(self.proc.stdout, selectors.EVENT_READ)
                if left <= 0 or not sel.select(left):
                    raise AssertionError(f"no line from child within {timeout} s")
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                err = self.proc.stderr.read() if self.proc.stderr else b""
                raise AssertionError(f"child exited: {err.decode(errors='replace')}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


def test_two_processes_block_and_complete(spawn_server) -> None:
    reps = 200 if LONG else 20
    server = spawn_server()
    c = RawClient(server.port)
    waiter = Child(WAITER, server.port)
    completer = Child(COMPLETER, server.port)
    try:
        assert waiter.line(30) == "ready"
        assert completer.line(30) == "ready"
        latencies: list[float] = []
        for i in range(reps):
            tid, _ = new_task(c)
            waiter.send(tid)
            wait_blocked(c, 1)  # the waiter is parked in TASK.RESULT … BLOCK 0
            completer.send(f"{tid} {i}")
            sent_ns, result = completer.line().split(" ", 1)
            woke_ns, value = waiter.line().split(" ", 1)
            assert value == result
            assert c.call_frame("TASK.RESULT", tid) == bulk(result)
            assert c.call_frame("TASK.DEL", tid) == b":1\r\n"  # stay under max_tasks_per_owner
            latency = (int(woke_ns) - int(sent_ns)) / 1e6
            latencies.append(latency)
            assert 0 < latency < 2000  # liveness: woken within 2 s
            assert blocked_clients(c) == 0
        latencies.sort()
        print(
            f"\ntwo processes, {reps} round trips: TASK.COMPLETE sent -> TASK.RESULT BLOCK 0 "
            f"returned: p50 {statistics.median(latencies):.3f} ms, "
            f"p90 {latencies[int(len(latencies) * 0.9) - 1]:.3f} ms, max {latencies[-1]:.3f} ms"
        )
    finally:
        waiter.stop()
        completer.stop()
        c.close()
