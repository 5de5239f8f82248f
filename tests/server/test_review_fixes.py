"""Regression tests for behaviour found in review: rights re-checked on delivery, a result
attached after the status, identity errors inside MULTI, client flags."""

from __future__ import annotations

import json
import time

import hiredis

from rawclient import RawClient, pack

USERS = [
    {"name": "alice", "password": "a"},
    {"name": "ops", "password": "o", "permissions": ["admin"]},
]


def test_task_channel_rights_are_checked_on_delivery(make_server) -> None:
    srv = make_server(users=USERS)
    sub = RawClient(srv.port)
    assert sub.call("HELLO", "3", "AUTH", "alice", "a")[b"proto"] == 3
    sub.send(pack("SUBSCRIBE", "tasks:alice"))
    assert sub.reply() == [b"subscribe", b"tasks:alice", 1]
    with RawClient(srv.port) as alice:
        alice.call("AUTH", "alice", "a")
        alice.call("TASK.CREATE", "m", "ID", "one")
        assert sub.reply()[0] == b"message"
        assert sub.call("AUTH", "ops", "o") == b"OK"  # no longer alice
        alice.call("TASK.CREATE", "m", "ID", "two")
        assert sub.call("PING") == b"PONG"  # and no message before it
    sub.close()


def test_result_waiter_waits_for_a_result_attached_after_completion(server) -> None:
    waiter, other = RawClient(server.port), RawClient(server.port)
    other.call("TASK.CREATE", "m", "ID", "r1")
    waiter.send(pack("TASK.RESULT", "r1", "BLOCK", "0"))
    time.sleep(0.1)
    assert json.loads(other.call("TASK.UPDATE", "r1", "completed"))["status"] == "completed"
    time.sleep(0.1)
    assert other.call("TASK.SETRESULT", "r1", '{"ok":1}') == b"OK"
    assert waiter.reply() == b'{"ok":1}'
    # cancelled without a result: nothing is coming, NOTREADY at once
    other.call("TASK.CREATE", "m", "ID", "r2")
    waiter.send(pack("TASK.RESULT", "r2", "BLOCK", "0"))
    time.sleep(0.1)
    other.call("TASK.CANCEL", "r2")
    assert str(waiter.reply()) == "NOTREADY task r2 is cancelled; no result yet"
    # completed without a result, then BLOCK with a timeout: null when it passes
    other.call("TASK.CREATE", "m", "ID", "r3")
    other.call("TASK.UPDATE", "r3", "completed")
    assert waiter.call("TASK.RESULT", "r3", "BLOCK", "50") is None
    waiter.close()
    other.close()


def test_admin_refusal_inside_multi_matches_outside(make_server) -> None:
    srv = make_server(users=USERS, allow_anonymous="no")
    with RawClient(srv.port) as anon:
        assert str(anon.call("FLUSHALL")) == "NOAUTH Authentication required."
        assert anon.call("MULTI") == b"OK"
        assert str(anon.call("FLUSHALL")) == "NOAUTH Authentication required."
        assert str(anon.call("EXEC")).startswith("EXECABORT")
    with RawClient(srv.port) as alice:
        alice.call("AUTH", "alice", "a")
        alice.call("MULTI")
        refused = alice.call("FLUSHALL")
        assert isinstance(refused, hiredis.ReplyError)
        assert str(refused) == "NOPERM User alice has no permissions to run the 'flushall' command"
        alice.call("DISCARD")


def test_client_flags_and_types(server) -> None:
    with (
        RawClient(server.port) as sub,
        RawClient(server.port) as blocked,
        RawClient(server.port) as admin,
    ):
        sub.send(pack("SUBSCRIBE", "news"))
        sub.reply()
        blocked.call("TASK.CREATE", "m", "ID", "w")
        blocked.send(pack("TASK.WAIT", "w"))
        time.sleep(0.1)
        lines = admin.call("CLIENT", "LIST").decode().splitlines()
        flags = {
            line.split(" cmd=")[1].split()[0]: line.split(" flags=")[1].split()[0] for line in lines
        }
        assert "P" in flags["subscribe"]
        assert "b" in flags["task.wait"]
        pubsub = admin.call("CLIENT", "LIST", "TYPE", "pubsub").decode().splitlines()
        assert len(pubsub) == 1 and "cmd=subscribe" in pubsub[0]
        normal = admin.call("CLIENT", "LIST", "TYPE", "normal").decode()
        assert "cmd=subscribe" not in normal
        admin.call("TASK.DEL", "w")
        assert str(blocked.reply()).startswith("NOTFOUND")
