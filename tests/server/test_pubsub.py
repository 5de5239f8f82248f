"""Pub/sub (design.md §5): ordinary channels and patterns as in Redis, and the ``tasks:<owner>``
notification channels carrying the task JSON of every change.

- redis-py subscribers (sync and asyncio; RESP2 and RESP3; hiredis and pure-Python parsers)
  receive every change of a task, in order, as its exact JSON;
- owners are isolated: ``tasks:<other owner>`` is refused (``NOPERM``), pattern subscribers
  never see another owner's tasks, nobody may PUBLISH to ``tasks:*``;
- RESP2 subscribed mode and RESP3 push frames, compared byte for byte with a real
  redis-server for an ordinary session;
- a subscriber that never reads is disconnected at ``pubsub_output_limit`` and the publisher
  is unaffected.

The Node.js subscriber test is not here yet: it needs a committed package.json with its
dependencies (CI does not install npm packages into temporary directories).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Iterator

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
NOPERM_CHANNEL = "NOPERM No permissions to access a channel"
RESULT = '{"content":[{"type":"text","text":"done"}],"isError":false}'


def message(channel: str, payload: bytes | str, protocol: int = 2) -> bytes:
    head = b">3\r\n" if protocol == 3 else b"*3\r\n"
    return head + bulk("message") + bulk(channel) + bulk(payload)


def pmessage(pattern: str, channel: str, payload: bytes | str, protocol: int = 2) -> bytes:
    head = b">4\r\n" if protocol == 3 else b"*4\r\n"
    return head + bulk("pmessage") + bulk(pattern) + bulk(channel) + bulk(payload)


def sub_reply(kind: str, channel: str | None, count: int, protocol: int = 2) -> bytes:
    head = b">3\r\n" if protocol == 3 else b"*3\r\n"
    null = b"_\r\n" if protocol == 3 else b"$-1\r\n"
    name = null if channel is None else bulk(channel)
    return head + bulk(kind) + name + b":%d\r\n" % count


USERS = [
    {"name": "a", "password": "x"},
    {"name": "b", "password": "y"},
    {"name": "svc", "password": "z", "permissions": ["impersonate"]},
]

# -- the story of a few tasks: every kind of change, each with the JSON it must publish ------


def task_story(c: RawClient) -> Iterator[bytes]:
    """Change tasks through ``c`` (owner local); yield the JSON each change must publish, right
    after making it. Failed mutations in between must publish nothing."""

    def ok(*args: object) -> bytes:
        frame = c.call_frame(*args)
        assert frame.startswith(b"$"), frame
        return decode(frame)

    created = ok("TASK.CREATE", "tools/call", "POLLINTERVAL", 250)
    yield created
    t1 = json.loads(created)["taskId"]
    yield ok("TASK.UPDATE", t1, "input_required", "MESSAGE", "which file?")
    yield ok("TASK.UPDATE", t1, "MESSAGE", "still waiting for a file")
    yield ok("TASK.SETVARS", t1, '{"file":"a.txt","n":1}')
    # failures change nothing and publish nothing
    assert c.call_frame("TASK.UPDATE", t1, "input_required").startswith(b"-INVALIDTRANSITION")
    assert c.call_frame("TASK.SETVARS", t1, "not json").startswith(b"-ERR")
    assert c.call_frame("TASK.CANCEL", "no-such-task").startswith(b"-NOTFOUND")
    yield ok("TASK.SETVARS", t1, '{"n":null}')
    assert c.call_frame("TASK.SETRESULT", t1, '{"partial":true}') == b"+OK\r\n"
    yield ok("TASK.GET", t1)
    yield ok("TASK.UPDATE", t1, "working")
    yield ok("TASK.COMPLETE", t1, "completed", RESULT, "MESSAGE", "all done")
    assert c.call_frame("TASK.CANCEL", t1).startswith(b"-INVALIDTRANSITION")
    last = ok("TASK.GET", t1)
    assert c.call_frame("TASK.DEL", t1) == b":1\r\n"
    yield last  # deletion publishes the task as it was
    assert c.call_frame("TASK.DEL", t1) == b":0\r\n"
    created = ok("TASK.CREATE", "tools/call")
    yield created
    yield ok("TASK.COMPLETE", json.loads(created)["taskId"], "failed", '{"isError":true}')
    created = ok("TASK.CREATE", "tools/call", "ID", "chosen-id")
    yield created
    yield ok("TASK.CANCEL", "chosen-id", "MESSAGE", "user cancelled")
    created = ok("TASK.CREATE", "tools/call", "TTL", 300)
    yield created
    yield created  # eviction (ttl 300 ms, retention 0): published as the task last was


def story_server(make_server):
    return make_server(expired_retention_ms=0, hz=50)


# -- redis-py subscribers -----------------------------------------------------------------------

SYNC_PARSERS = {"hiredis": _HiredisParser, 2: _RESP2Parser, 3: _RESP3Parser}
ASYNC_PARSERS = {"hiredis": _AsyncHiredisParser, 2: _AsyncRESP2Parser, 3: _AsyncRESP3Parser}
MATRIX = [(p, parser) for p in (2, 3) for parser in ("hiredis", "python")]


def _parser(table: dict, protocol: int, parser: str) -> type:
    return table["hiredis"] if parser == "hiredis" else table[protocol]


def sync_client(port: int, protocol: int, parser: str, **kw: object) -> redis.Redis:
    pool = redis.ConnectionPool(
        host="127.0.0.1",
        port=port,
        protocol=protocol,
        parser_class=_parser(SYNC_PARSERS, protocol, parser),
        **kw,
    )
    return redis.Redis(connection_pool=pool)


def async_client(port: int, protocol: int, parser: str, **kw: object) -> aredis.Redis:
    pool = aredis.ConnectionPool(
        host="127.0.0.1",
        port=port,
        protocol=protocol,
        parser_class=_parser(ASYNC_PARSERS, protocol, parser),
        **kw,
    )
    return aredis.Redis(connection_pool=pool)


def next_message(p: redis.client.PubSub, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no message within the liveness bound"
        m = p.get_message(ignore_subscribe_messages=True, timeout=left)
        if m is not None:
            return m


async def anext_message(p: aredis.client.PubSub, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no message within the liveness bound"
        m = await p.get_message(ignore_subscribe_messages=True, timeout=left)
        if m is not None:
            return m


@pytest.mark.parametrize(("protocol", "parser"), MATRIX)
def test_redis_py_sync_subscriber_gets_every_change(make_server, protocol, parser) -> None:
    srv = story_server(make_server)
    r = sync_client(srv.port, protocol, parser)
    p = r.pubsub()
    p.subscribe("tasks:local", "sentinel")
    c = RawClient(srv.port)
    try:
        confirmations = [p.get_message(timeout=5) for _ in range(2)]
        assert [(m["type"], m["channel"], m["data"]) for m in confirmations] == [
            ("subscribe", b"tasks:local", 1),
            ("subscribe", b"sentinel", 2),
        ]
        assert decode(c.call_frame("PUBSUB", "NUMSUB", "tasks:local")) == [b"tasks:local", 1]
        n = 0
        start = time.perf_counter()
        for expected in task_story(c):
            m = next_message(p)
            assert m == {
                "type": "message",
                "pattern": None,
                "channel": b"tasks:local",
                "data": expected,
            }
            n += 1
        # nothing else was published in between: the next message is the sentinel
        assert decode(c.call_frame("PUBLISH", "sentinel", "end")) == 1
        assert next_message(p)["data"] == b"end"
        print(f"\n{n} notifications in order in {(time.perf_counter() - start) * 1000:.0f} ms")
        assert n == 15
    finally:
        c.close()
        p.close()
        r.close()


@pytest.mark.parametrize(("protocol", "parser"), MATRIX)
def test_redis_py_asyncio_subscriber_gets_every_change(make_server, protocol, parser) -> None:
    srv = story_server(make_server)

    async def main() -> None:
        r = async_client(srv.port, protocol, parser)
        p = r.pubsub()
        await p.subscribe("tasks:local")
        await p.psubscribe("sent*")
        c = RawClient(srv.port)
        try:
            confirmations = [await p.get_message(timeout=5) for _ in range(2)]
            assert [(m["type"], m["channel"], m["data"]) for m in confirmations] == [
                ("subscribe", b"tasks:local", 1),
                ("psubscribe", b"sent*", 2),
            ]
            received: list[bytes] = []
            for expected in task_story(c):
                m = await anext_message(p)
                assert m["type"] == "message" and m["channel"] == b"tasks:local"
                assert m["data"] == expected
                received.append(m["data"])
            assert decode(c.call_frame("PUBLISH", "sentinel", "end")) == 1
            m = await anext_message(p)
            assert m == {
                "type": "pmessage",
                "pattern": b"sent*",
                "channel": b"sentinel",
                "data": b"end",
            }
            assert len(received) == 15
        finally:
            c.close()
            await p.aclose()
            await r.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("protocol", [2, 3])
def test_notifications_on_the_wire(make_server, raw_clients, protocol: int) -> None:
    """Byte-exact frames: a channel subscriber and a pattern subscriber, same order."""
    srv = story_server(make_server)
    sub = raw_clients(srv.port, protocol)
    psub = raw_clients(srv.port, protocol)
    assert sub.call_frame("SUBSCRIBE", "tasks:local") == sub_reply(
        "subscribe", "tasks:local", 1, protocol
    )
    assert psub.call_frame("PSUBSCRIBE", "tasks:*") == sub_reply(
        "psubscribe", "tasks:*", 1, protocol
    )
    c = raw_clients(srv.port)
    for expected in task_story(c):
        assert sub.frame() == message("tasks:local", expected, protocol)
        assert psub.frame() == pmessage("tasks:*", "tasks:local", expected, protocol)
    # nothing else was sent: the next frame is the reply to a PING
    pong = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n" if protocol == 2 else b"+PONG\r\n"
    for w in (sub, psub):
        assert w.call_frame("PING") == pong
        assert w.buf == b""


# -- RESP2 subscribed mode, RESP3 push -------------------------------------------------------


def test_resp2_subscribed_mode_allows_only_pubsub_commands(server, raw_clients) -> None:
    sub = raw_clients(server.port)
    assert sub.call_frame("SUBSCRIBE", "tasks:local") == sub_reply("subscribe", "tasks:local", 1)
    for cmd, args in [("task.list", ()), ("task.create", ("tools/call",)), ("echo", ("x",))]:
        assert sub.call_frame(cmd.upper(), *args) == error(
            f"ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
            "RESET are allowed in this context"
        )
    # taskstore has no GET: an unknown command is reported as unknown first, as Redis does
    assert sub.call_frame("GET", "k") == error(
        "ERR unknown command 'GET', with args beginning with: 'k' "
    )
    assert sub.call_frame("PING") == b"*2\r\n" + bulk("pong") + bulk("")
    assert sub.call_frame("PING", "hi") == b"*2\r\n" + bulk("pong") + bulk("hi")
    # still subscribed, still receiving
    c = raw_clients(server.port)
    created = c.call_frame("TASK.CREATE", "tools/call")
    assert sub.frame() == message("tasks:local", decode(created))
    assert sub.call_frame("PSUBSCRIBE", "x*") == sub_reply("psubscribe", "x*", 2)
    assert sub.call_frame("UNSUBSCRIBE", "tasks:local") == sub_reply(
        "unsubscribe", "tasks:local", 1
    )
    assert sub.call_frame("TASK.LIST").startswith(b"-ERR Can't execute 'task.list'")  # pattern left
    assert sub.call_frame("PUNSUBSCRIBE", "x*") == sub_reply("punsubscribe", "x*", 0)
    assert sub.call_frame("TASK.LIST").startswith(b"$")  # out of subscribed mode
    assert sub.call_frame("PING") == b"+PONG\r\n"
    # redis-py, RESP2: the same refusal surfaces as an error
    r = redis.Redis(port=server.port, protocol=2)
    p = r.pubsub()
    p.subscribe("news")
    assert p.get_message(timeout=5)["type"] == "subscribe"
    p.execute_command("TASK.LIST")
    with pytest.raises(redis.ResponseError, match=r"Can't execute 'task\.list'"):
        p.get_message(timeout=5)
    p.close()
    r.close()


def test_resp3_subscriber_may_run_any_command(server, raw_clients) -> None:
    sub = raw_clients(server.port, 3)
    assert sub.call_frame("SUBSCRIBE", "tasks:local") == sub_reply("subscribe", "tasks:local", 1, 3)
    assert sub.call_frame("PING") == b"+PONG\r\n"
    assert sub.call_frame("ECHO", "x") == bulk("x")
    # a change made by the subscriber itself: the push comes first, then the reply
    sub.send(("TASK.CREATE", "tools/call"))
    push, reply = sub.frames(2)
    assert reply.startswith(b"$")
    assert push == message("tasks:local", decode(reply), 3)
    tid = json.loads(decode(reply))["taskId"]
    assert json.loads(decode(sub.call_frame("TASK.LIST")))["tasks"][0]["taskId"] == tid
    # changes by others arrive as push frames between replies
    c = raw_clients(server.port)
    update = c.call_frame("TASK.UPDATE", tid, "MESSAGE", "half way")
    assert sub.frame() == message("tasks:local", decode(update), 3)
    # a subscriber may even block; its notification and its reply both arrive
    sub.send(("TASK.RESULT", tid, "BLOCK", 0))
    deadline = time.monotonic() + 10
    while b"blocked_clients:1" not in decode(c.call_frame("INFO", "clients")):
        assert time.monotonic() < deadline
        time.sleep(0.001)
    done = c.call_frame("TASK.COMPLETE", tid, "completed", RESULT)
    assert sorted(sub.frames(2)) == sorted([message("tasks:local", decode(done), 3), bulk(RESULT)])
    assert sub.call_frame("PING") == b"+PONG\r\n"
    # redis-py RESP3: a subscribed connection runs ordinary commands too
    r = redis.Redis(port=server.port, protocol=3)
    p = r.pubsub()
    p.subscribe("tasks:local")
    assert p.get_message(timeout=5)["type"] == "subscribe"
    p.execute_command("TASK.GET", tid)
    m = p.get_message(timeout=5)  # redis-py hands a non-push reply back as a "pong" message
    assert json.loads(m["data"])["status"] == "completed"
    p.close()
    r.close()


# -- owners -------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscribing_to_another_owners_channel_is_refused(
    make_server, raw_clients, protocol
) -> None:
    srv = make_server(users=USERS)
    anon = raw_clients(srv.port, protocol)
    a = raw_clients(srv.port, protocol, auth=("a", "x"))
    for w, own, others in [
        (anon, "tasks:local", ["tasks:a", "tasks:b", "tasks:", "tasks:*"]),
        (a, "tasks:a", ["tasks:local", "tasks:b", "tasks:A", "tasks:a "]),
    ]:
        for other in others:
            assert w.call_frame("SUBSCRIBE", other) == error(NOPERM_CHANNEL)
        # all or nothing: an ordinary channel next to a refused one is not subscribed either
        assert w.call_frame("SUBSCRIBE", "news", others[0]) == error(NOPERM_CHANNEL)
        assert w.call_frame("SUBSCRIBE", own) == sub_reply("subscribe", own, 1, protocol)
        assert w.call_frame("SUBSCRIBE", others[0]) == error(NOPERM_CHANNEL)  # once subscribed too
    c = raw_clients(srv.port)
    assert decode(c.call_frame("PUBSUB", "NUMSUB", "news")) == [b"news", 0]
    # redis-py: NOPERM surfaces as NoPermissionError
    r = redis.Redis(port=srv.port, protocol=protocol, username="b", password="y")
    p = r.pubsub()
    p.subscribe("tasks:a")
    with pytest.raises(redis.exceptions.NoPermissionError, match="No permissions to access"):
        p.get_message(timeout=5)
    p.close()
    r.close()


def test_impersonator_may_subscribe_to_any_owner(make_server, raw_clients) -> None:
    srv = make_server(users=USERS)
    svc = raw_clients(srv.port, 2, auth=("svc", "z"))
    svc.send(("SUBSCRIBE", "tasks:a", "tasks:b"))
    assert svc.frames(2) == [
        sub_reply("subscribe", "tasks:a", 1),
        sub_reply("subscribe", "tasks:b", 2),
    ]
    a = raw_clients(srv.port, 2, auth=("a", "x"))
    b = raw_clients(srv.port, 2, auth=("b", "y"))
    ja = a.call_frame("TASK.CREATE", "tools/call")
    jb = b.call_frame("TASK.CREATE", "tools/call")
    assert svc.frame() == message("tasks:a", decode(ja))
    assert svc.frame() == message("tasks:b", decode(jb))
    # an impersonator acting for an owner publishes on that owner's channel
    acting = raw_clients(srv.port, 2, auth=("svc", "z"))
    jc = acting.call_frame("TASK.CREATE", "tools/call", "OWNER", "a")
    assert jc.startswith(b"$")
    assert svc.frame() == message("tasks:a", decode(jc))
    # and its own tasks go to tasks:svc, which it did not subscribe to
    assert acting.call_frame("TASK.CREATE", "tools/call").startswith(b"$")
    assert svc.call_frame("PING") == b"*2\r\n" + bulk("pong") + bulk("")


def test_pattern_subscribers_never_see_other_owners_tasks(make_server, raw_clients) -> None:
    srv = make_server(users=USERS)
    a_all = raw_clients(srv.port, 2, auth=("a", "x"))
    a_tasks = raw_clients(srv.port, 3, auth=("a", "x"))
    anon_all = raw_clients(srv.port, 2)
    svc_all = raw_clients(srv.port, 3, auth=("svc", "z"))
    assert a_all.call_frame("PSUBSCRIBE", "*") == sub_reply("psubscribe", "*", 1)
    assert a_tasks.call_frame("PSUBSCRIBE", "tasks:*") == sub_reply("psubscribe", "tasks:*", 1, 3)
    assert anon_all.call_frame("PSUBSCRIBE", "*") == sub_reply("psubscribe", "*", 1)
    assert svc_all.call_frame("PSUBSCRIBE", "*") == sub_reply("psubscribe", "*", 1, 3)
    a = raw_clients(srv.port, 2, auth=("a", "x"))
    b = raw_clients(srv.port, 2, auth=("b", "y"))
    local = raw_clients(srv.port)
    jb = decode(b.call_frame("TASK.CREATE", "tools/call", "ID", "t"))
    ja = decode(a.call_frame("TASK.CREATE", "tools/call", "ID", "t"))
    jl = decode(local.call_frame("TASK.CREATE", "tools/call", "ID", "t"))
    jb2 = decode(b.call_frame("TASK.COMPLETE", "t", "completed", '{"secret":"b"}'))
    ja2 = decode(a.call_frame("TASK.SETVARS", "t", '{"mine":true}'))
    # an ordinary message reaches every pattern subscriber whose pattern matches
    assert b.call_frame("PUBLISH", "news", "hello") == b":3\r\n"
    assert b.call_frame("PUBLISH", "tasks-feed", "x") == b":3\r\n"
    assert a_all.frames(4) == [
        pmessage("*", "tasks:a", ja),
        pmessage("*", "tasks:a", ja2),
        pmessage("*", "news", "hello"),
        pmessage("*", "tasks-feed", "x"),
    ]
    # tasks:* matched nothing but a's own tasks; the next frame is a PING's reply
    assert a_tasks.frames(2) == [
        pmessage("tasks:*", "tasks:a", ja, 3),
        pmessage("tasks:*", "tasks:a", ja2, 3),
    ]
    assert a_tasks.call_frame("PING") == b"+PONG\r\n"
    assert anon_all.frames(3) == [
        pmessage("*", "tasks:local", jl),
        pmessage("*", "news", "hello"),
        pmessage("*", "tasks-feed", "x"),
    ]
    assert svc_all.frames(6) == [
        pmessage("*", "tasks:b", jb, 3),
        pmessage("*", "tasks:a", ja, 3),
        pmessage("*", "tasks:local", jl, 3),
        pmessage("*", "tasks:b", jb2, 3),
        pmessage("*", "tasks:a", ja2, 3),
        pmessage("*", "news", "hello", 3),
    ]
    assert svc_all.frame() == pmessage("*", "tasks-feed", "x", 3)
    for w in (a_all, anon_all):
        assert w.call_frame("PING") == b"*2\r\n" + bulk("pong") + bulk("")
        assert w.buf == b""


def test_nobody_may_publish_to_task_channels(make_server, raw_clients) -> None:
    srv = make_server(users=USERS)
    sub = raw_clients(srv.port, 3)
    assert sub.call_frame("PSUBSCRIBE", "*") == sub_reply("psubscribe", "*", 1, 3)
    anon = raw_clients(srv.port)
    a = raw_clients(srv.port, 2, auth=("a", "x"))
    svc = raw_clients(srv.port, 2, auth=("svc", "z"))
    for w, channels in [
        (anon, ["tasks:local", "tasks:a", "tasks:", "tasks:anything"]),
        (a, ["tasks:a", "tasks:local"]),
        (svc, ["tasks:a", "tasks:svc"]),  # impersonators neither
    ]:
        for channel in channels:
            assert w.call_frame("PUBLISH", channel, '{"taskId":"forged"}') == error(NOPERM_CHANNEL)
    assert anon.call_frame("PUBLISH", "task:local", "fine") == b":1\r\n"  # not the prefix
    assert sub.frame() == pmessage("*", "task:local", "fine", 3)  # nothing forged before it


# -- PUBLISH counts, PUBSUB introspection, UNSUBSCRIBE ------------------------------------------


def test_publish_counts_and_pubsub_introspection(make_server, raw_clients) -> None:
    srv = make_server(users=USERS)
    s1 = raw_clients(srv.port)
    s2 = raw_clients(srv.port, 3)
    s1.send(("SUBSCRIBE", "news", "sport"), ("PSUBSCRIBE", "n*"))
    s1.frames(3)
    s2.send(("SUBSCRIBE", "news"), ("PSUBSCRIBE", "n*", "*s"))
    s2.frames(3)
    pub = raw_clients(srv.port)
    # every subscription counts: channel + each matching pattern, per client
    assert pub.call_frame("PUBLISH", "news", "1") == b":5\r\n"
    assert pub.call_frame("PUBLISH", "sport", "2") == b":1\r\n"
    assert pub.call_frame("PUBLISH", "nobody", "3") == b":2\r\n"
    assert pub.call_frame("PUBLISH", "zzz", "4") == b":0\r\n"
    assert decode(pub.call_frame("PUBSUB", "NUMSUB", "news", "sport", "zzz")) == [
        b"news",
        2,
        b"sport",
        1,
        b"zzz",
        0,
    ]
    assert decode(pub.call_frame("PUBSUB", "NUMSUB")) == []
    assert pub.call_frame("PUBSUB", "NUMPAT") == b":2\r\n"  # unique patterns
    assert sorted(decode(pub.call_frame("PUBSUB", "CHANNELS"))) == [b"news", b"sport"]
    assert decode(pub.call_frame("PUBSUB", "CHANNELS", "s*")) == [b"sport"]
    # task channels are listed and counted only for identities that may read them
    a = raw_clients(srv.port, 2, auth=("a", "x"))
    b = raw_clients(srv.port, 2, auth=("b", "y"))
    assert a.call_frame("SUBSCRIBE", "tasks:a") == sub_reply("subscribe", "tasks:a", 1)
    assert b.call_frame("SUBSCRIBE", "tasks:b") == sub_reply("subscribe", "tasks:b", 1)
    a2 = raw_clients(srv.port, 2, auth=("a", "x"))
    svc = raw_clients(srv.port, 2, auth=("svc", "z"))
    assert decode(a2.call_frame("PUBSUB", "CHANNELS", "tasks:*")) == [b"tasks:a"]
    assert decode(a2.call_frame("PUBSUB", "NUMSUB", "tasks:a", "tasks:b")) == [
        b"tasks:a",
        1,
        b"tasks:b",
        0,
    ]
    assert sorted(decode(svc.call_frame("PUBSUB", "CHANNELS", "tasks:*"))) == [
        b"tasks:a",
        b"tasks:b",
    ]
    assert decode(svc.call_frame("PUBSUB", "NUMSUB", "tasks:b")) == [b"tasks:b", 1]
    assert decode(pub.call_frame("PUBSUB", "CHANNELS", "tasks:*")) == []  # anonymous: owner local
    # a subscriber that leaves is forgotten
    s2.close()
    deadline = time.monotonic() + 5
    while decode(pub.call_frame("PUBSUB", "NUMSUB", "news")) != [b"news", 1]:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert pub.call_frame("PUBSUB", "NUMPAT") == b":1\r\n"
    assert pub.call_frame("PUBLISH", "news", "5") == b":2\r\n"


@pytest.mark.parametrize("protocol", [2, 3])
def test_unsubscribe_without_arguments(server, raw_clients, protocol: int) -> None:
    w = raw_clients(server.port, protocol)
    w.send(("SUBSCRIBE", "c", "a", "b"), ("PSUBSCRIBE", "p1*", "p2*"))
    w.frames(5)
    w.send(("UNSUBSCRIBE",))
    frames = w.frames(3)
    # one reply per channel, in any order (Redis uses its dict order), counts going down
    assert {decode(f)[1] for f in frames} == {b"a", b"b", b"c"}
    assert [decode(f)[2] for f in frames] == [4, 3, 2]
    head = b">3\r\n" if protocol == 3 else b"*3\r\n"
    assert all(f.startswith(head + bulk("unsubscribe")) for f in frames)
    assert w.call_frame("UNSUBSCRIBE") == sub_reply("unsubscribe", None, 2, protocol)
    w.send(("PUNSUBSCRIBE",))
    frames = w.frames(2)
    assert {decode(f)[1] for f in frames} == {b"p1*", b"p2*"}
    assert [decode(f)[2] for f in frames] == [1, 0]
    assert w.call_frame("PUNSUBSCRIBE") == sub_reply("punsubscribe", None, 0, protocol)
    assert w.call_frame("PING") == b"+PONG\r\n"  # subscribed mode is over
    c = raw_clients(server.port)
    assert decode(c.call_frame("PUBSUB", "NUMSUB", "a", "b", "c")) == [b"a", 0, b"b", 0, b"c", 0]
    assert c.call_frame("PUBSUB", "NUMPAT") == b":0\r\n"


# -- side by side with redis-server --------------------------------------------------------------


def _ordinary_session(port: int) -> list[tuple[str, bytes]]:
    """An ordinary pub/sub session on raw sockets; (step, exact bytes received)."""
    out: list[tuple[str, bytes]] = []
    sub, pub, fresh, r3 = (
        RawClient(port),
        RawClient(port),
        RawClient(port),
        RawClient(port, protocol=3),
    )

    def step(label: str, w: RawClient, *cmd: object, n: int = 1) -> None:
        w.send(cmd)
        out.append((label, b"".join(w.frames(n))))

    def recv(label: str, w: RawClient, n: int = 1) -> None:
        out.append((label, b"".join(w.frames(n))))

    try:
        step("SUBSCRIBE a b", sub, "SUBSCRIBE", "a", "b", n=2)
        step("SUBSCRIBE a (again)", sub, "SUBSCRIBE", "a")
        step("PUBLISH a", pub, "PUBLISH", "a", "hello")
        recv("message a", sub)
        step("PUBLISH c (nobody)", pub, "PUBLISH", "c", "nobody")
        step("PING subscribed", sub, "PING")
        step("PING msg subscribed", sub, "PING", "hi")
        step("PING 2 args subscribed", sub, "PING", "a", "b")
        step("ECHO subscribed", sub, "ECHO", "x")
        step("DBSIZE subscribed", sub, "DBSIZE")
        step("SUBSCRIBE no args", sub, "SUBSCRIBE")
        step("unknown subscribed", sub, "NOSUCHCMD", "x")
        step("PSUBSCRIBE h* a*", sub, "PSUBSCRIBE", "h*", "a*", n=2)
        step("PUBLISH hello", pub, "PUBLISH", "hello", "x")
        recv("pmessage", sub)
        step("PUBLISH a (channel+pattern)", pub, "PUBLISH", "a", "y")
        recv("message+pmessage", sub, 2)
        step("PUBSUB NUMSUB a b c", pub, "PUBSUB", "NUMSUB", "a", "b", "c")
        step("PUBSUB NUMSUB", pub, "PUBSUB", "NUMSUB")
        step("PUBSUB NUMPAT", pub, "PUBSUB", "NUMPAT")
        step("PUBSUB CHANNELS a", pub, "PUBSUB", "CHANNELS", "a")
        step("PUBSUB CHANNELS b*", pub, "PUBSUB", "CHANNELS", "b*")
        step("PUBSUB BOGUS", pub, "PUBSUB", "BOGUS")
        step("PUBSUB", pub, "PUBSUB")
        step("PUBLISH arity", pub, "PUBLISH", "a")
        step("UNSUBSCRIBE a", sub, "UNSUBSCRIBE", "a")
        step("UNSUBSCRIBE a (again)", sub, "UNSUBSCRIBE", "a")
        step("UNSUBSCRIBE (b left)", sub, "UNSUBSCRIBE")
        step("UNSUBSCRIBE (none left)", sub, "UNSUBSCRIBE")
        step("PUNSUBSCRIBE h*", sub, "PUNSUBSCRIBE", "h*")
        step("PUNSUBSCRIBE (a* left)", sub, "PUNSUBSCRIBE")
        step("PUNSUBSCRIBE (none left)", sub, "PUNSUBSCRIBE")
        step("PING after", sub, "PING")
        step("SUBSCRIBE a", sub, "SUBSCRIBE", "a")
        step("RESET subscribed", sub, "RESET")
        step("PING after RESET", sub, "PING")
        step("PUBSUB NUMSUB a after RESET", pub, "PUBSUB", "NUMSUB", "a")
        step("SUBSCRIBE a then QUIT", sub, "SUBSCRIBE", "a")
        step("QUIT subscribed", sub, "QUIT")
        step("UNSUBSCRIBE never subscribed", fresh, "UNSUBSCRIBE")
        step("PUNSUBSCRIBE never subscribed", fresh, "PUNSUBSCRIBE")
        step("PING never subscribed", fresh, "PING")
        step("UNSUBSCRIBE x y never subscribed", fresh, "UNSUBSCRIBE", "x", "y", n=2)
        step("RESP3 SUBSCRIBE a", r3, "SUBSCRIBE", "a")
        step("RESP3 PUBLISH to itself", r3, "PUBLISH", "a", "self", n=2)
        step("RESP3 PING subscribed", r3, "PING")
        step("RESP3 ECHO subscribed", r3, "ECHO", "x")
        step("PUBLISH to RESP3", pub, "PUBLISH", "a", "z")
        recv("RESP3 message", r3)
        step("RESP3 PSUBSCRIBE a*", r3, "PSUBSCRIBE", "a*")
        step("PUBLISH to RESP3 (both)", pub, "PUBLISH", "a", "w")
        recv("RESP3 message+pmessage", r3, 2)
        step("RESP3 UNSUBSCRIBE", r3, "UNSUBSCRIBE")
        step("RESP3 PUNSUBSCRIBE", r3, "PUNSUBSCRIBE")
        step("RESP3 UNSUBSCRIBE (none)", r3, "UNSUBSCRIBE")
        step("RESP3 PUBSUB NUMSUB a", r3, "PUBSUB", "NUMSUB", "a")
        step("RESP3 PUBSUB CHANNELS", r3, "PUBSUB", "CHANNELS")
    finally:
        for w in (sub, pub, fresh, r3):
            w.close()
    return out


def _differences(redis_port: int, taskstore_port: int, session) -> list[str]:
    ref = session(redis_port)
    got = session(taskstore_port)
    assert [label for label, _ in ref] == [label for label, _ in got]
    diffs = [
        f"{label}:\n    redis-server: {a!r}\n    taskstore:    {b!r}"
        for (label, a), (_, b) in zip(ref, got, strict=True)
        if a != b
    ]
    print(f"\n{len(ref)} steps compared with redis-server, {len(diffs)} differ")
    for d in diffs:
        print(d)
    return diffs


def test_ordinary_pubsub_session_matches_redis_byte_for_byte(server, redis_server) -> None:
    assert _differences(redis_server, server.port, _ordinary_session) == []


def _channels_arity_session(port: int) -> list[tuple[str, bytes]]:
    with RawClient(port) as w:
        return [("PUBSUB CHANNELS a b", w.call_frame("PUBSUB", "CHANNELS", "a", "b"))]


def test_pubsub_channels_arity_error_matches_redis(server, redis_server) -> None:
    assert _differences(redis_server, server.port, _channels_arity_session) == []


def _glob_session(port: int) -> list[tuple[str, bytes]]:
    out = []
    sub, pub = RawClient(port), RawClient(port)
    try:
        sub.send(("PSUBSCRIBE", "h[^e]llo", "x\\*y", "[!a]b", "q\\?"), ("SUBSCRIBE", "c1", "c2"))
        sub.frames(6)
        for ch in ["hallo", "hello", "h^llo", "x*y", "x\\zy", "!b", "ab", "bb", "q?", "q\\z"]:
            out.append((f"PUBLISH {ch}", pub.call_frame("PUBLISH", ch, "m")))
        out.append(("PUBSUB CHANNELS c[^2]", pub.call_frame("PUBSUB", "CHANNELS", "c[^2]")))
        out.append(("PUBSUB CHANNELS c\\1", pub.call_frame("PUBSUB", "CHANNELS", "c\\1")))
    finally:
        sub.close()
        pub.close()
    return out


def test_glob_patterns_match_like_redis(server, redis_server) -> None:
    assert _differences(redis_server, server.port, _glob_session) == []


def test_subscription_counters_in_client_list_and_info(server, raw_clients) -> None:
    sub = raw_clients(server.port)
    sub.send(("SUBSCRIBE", "a", "b"), ("PSUBSCRIBE", "p*"))
    sub.frames(3)
    c = raw_clients(server.port)
    line = [
        ln
        for ln in decode(c.call_frame("CLIENT", "LIST")).decode().splitlines()
        if "cmd=psub" in ln
    ]
    assert len(line) == 1
    fields = dict(f.split("=", 1) for f in line[0].split() if "=" in f)
    info = decode(c.call_frame("INFO")).decode()
    assert (fields["sub"], fields["psub"]) == ("2", "1")
    assert "pubsub_channels:2" in info and "pubsub_patterns:1" in info
    assert "pubsub_clients:1" in info


# -- a subscriber that does not read ------------------------------------------------------------


def _slow_subscriber(port: int, channel: str) -> tuple[socket.socket, int]:
    """A subscriber with a small receive buffer that will never read again; its client id."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # keep the kernel's share small
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(pack("CLIENT", "ID") + pack("SUBSCRIBE", channel))
    data = b""
    while data.count(b"\r\n") < 5:
        data += s.recv(4096)
    cid = int(data.split(b"\r\n", 1)[0][1:])
    assert data.endswith(sub_reply("subscribe", channel, 1))
    return s, cid


def _drain_until_closed(s: socket.socket, timeout: float = 10.0) -> int:
    """Read what the kernel still holds; the bytes read before EOF or reset."""
    total = 0
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return total
            total += len(chunk)
    except ConnectionResetError:
        return total


def test_slow_subscriber_is_disconnected_and_publisher_unaffected(
    make_server, raw_clients, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="taskstore")
    srv = make_server(pubsub_output_limit="1mb")
    slow, slow_id = _slow_subscriber(srv.port, "firehose")
    fast = raw_clients(srv.port)  # a subscriber that does read, on the same channel
    assert fast.call_frame("SUBSCRIBE", "firehose") == sub_reply("subscribe", "firehose", 1)
    pub = raw_clients(srv.port)
    pub_id = decode(pub.call_frame("CLIENT", "ID"))
    payload = os.urandom(5 * 1024).hex()  # 10 KB
    sent = 0
    receivers: list[int] = []
    limit = 200_000 if LONG else 20_000  # 200 MB (2 GB): far beyond any buffering
    start = time.perf_counter()
    while sent < limit:
        batch = 50
        pub.send(*[("PUBLISH", "firehose", payload)] * batch)
        receivers += [decode(f) for f in pub.frames(batch)]
        for _ in range(batch):
            assert fast.frame() == message("firehose", payload)
        sent += batch
        if receivers[-1] == 1:
            break
    took = time.perf_counter() - start
    assert receivers[-1] == 1, "the subscriber that never reads was never disconnected"
    cut = receivers.index(1)
    print(
        f"\nslow subscriber cut after {cut} messages of 10 KB ({cut * 10 / 1024:.1f} MB "
        f"published, {took * 1000:.0f} ms); publisher got all {len(receivers)} replies"
    )
    # every reply before the cut counted both subscribers, every one after only the reader
    assert set(receivers[:cut]) == {2} and set(receivers[cut:]) == {1}
    assert any(
        "overcoming of output buffer limits" in r.getMessage() and f"id={slow_id}" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    got = _drain_until_closed(slow)
    print(f"the slow subscriber could still read {got / 1e6:.1f} MB before EOF/reset")
    slow.close()
    assert slow_id not in {
        int(ln.split()[0][3:])
        for ln in decode(pub.call_frame("CLIENT", "LIST")).decode().splitlines()
    }
    assert decode(pub.call_frame("PUBSUB", "NUMSUB", "firehose")) == [b"firehose", 1]
    # the publisher is the same connection, and works
    assert decode(pub.call_frame("CLIENT", "ID")) == pub_id
    assert pub.call_frame("PING") == b"+PONG\r\n"
    assert fast.call_frame("PING") == b"*2\r\n" + bulk("pong") + bulk("")


def test_slow_task_subscriber_is_disconnected(spawn_server) -> None:
    """The same with task notifications, against a server in its own process: its memory
    stays bounded and it logs the disconnection."""
    proc = spawn_server("--pubsub-output-limit", "1mb")
    slow, slow_id = _slow_subscriber(proc.port, "tasks:local")
    c = RawClient(proc.port)
    try:
        tid = json.loads(decode(c.call_frame("TASK.CREATE", "tools/call")))["taskId"]
        rss_before = proc.rss()
        blob = os.urandom(5 * 1024).hex()
        updates = 0
        limit = 100_000 if LONG else 20_000
        while updates < limit:
            batch = 50
            c.send(
                *[
                    ("TASK.SETVARS", tid, json.dumps({"blob": blob, "n": updates + i}))
                    for i in range(batch)
                ]
            )
            for f in c.frames(batch):
                assert f.startswith(b"$"), f
            updates += batch
            if decode(c.call_frame("PUBSUB", "NUMSUB", "tasks:local")) == [b"tasks:local", 0]:
                break
        assert decode(c.call_frame("PUBSUB", "NUMSUB", "tasks:local")) == [b"tasks:local", 0]
        rss_after = proc.rss()
        print(
            f"\ntask subscriber cut after about {updates} notifications of ~10 KB; server RSS "
            f"{rss_before / 1e6:.1f} MB -> {rss_after / 1e6:.1f} MB"
        )
        assert rss_after - rss_before < 256 * 1024 * 1024  # generous: bounded, not ~200 MB
        got = _drain_until_closed(slow)
        print(f"the slow subscriber could still read {got / 1e6:.1f} MB before EOF/reset")
        assert slow_id not in {
            int(ln.split()[0][3:])
            for ln in decode(c.call_frame("CLIENT", "LIST")).decode().splitlines()
        }
        assert json.loads(decode(c.call_frame("TASK.GET", tid)))["_meta"]["n"] == updates - 1
        assert c.call_frame("PING") == b"+PONG\r\n"
    finally:
        slow.close()
        c.close()
    proc.proc.terminate()
    _, stderr = proc.proc.communicate(timeout=10)
    assert f"id={slow_id}" in stderr and "overcoming of output buffer limits" in stderr, stderr
    print(next(ln for ln in stderr.splitlines() if "overcoming" in ln))
