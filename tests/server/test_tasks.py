"""The TASK commands over the wire: lifecycle, every error row of design.md §5, every limit of
§4 at and past its boundary, the MCP JSON shape, pagination and expiry with real TTLs."""

from __future__ import annotations

import json
import time

import hiredis
import pytest
import redis
from mcp_types import ListTasksResult, Task

from rawclient import RawClient, pack

STATUSES = ["working", "input_required", "completed", "failed", "cancelled"]
TERMINAL = {"completed", "failed", "cancelled"}
ALLOWED = {
    ("working", "input_required"),
    ("working", "completed"),
    ("working", "failed"),
    ("working", "cancelled"),
    ("input_required", "working"),
    ("input_required", "completed"),
    ("input_required", "failed"),
    ("input_required", "cancelled"),
}


def ok(c: RawClient, *args: object) -> bytes:
    reply = c.call(*args)
    assert not isinstance(reply, hiredis.ReplyError), reply
    return reply


def err(c: RawClient, *args: object) -> str:
    reply = c.call(*args)
    assert isinstance(reply, hiredis.ReplyError), reply
    return str(reply)


def task(c: RawClient, *args: object) -> dict:
    raw = ok(c, *args)
    Task.model_validate_json(raw)  # the MCP 2025-11-25 model
    return json.loads(raw)


def new_task(c: RawClient, *extra: object) -> str:
    return task(c, "TASK.CREATE", "tools/call", *extra)["taskId"]


def reach(c: RawClient, status: str) -> str:
    """A task in ``status`` (through an allowed path)."""
    tid = new_task(c)
    if status == "input_required":
        ok(c, "TASK.UPDATE", tid, "input_required")
    elif status in ("completed", "failed"):
        ok(c, "TASK.COMPLETE", tid, status, '{"content":[]}')
    elif status == "cancelled":
        ok(c, "TASK.CANCEL", tid)
    return tid


@pytest.fixture
def c(server):
    with RawClient(server.port) as client:
        yield client


def test_create_shape(c: RawClient) -> None:
    t = task(c, "TASK.CREATE", "tools/call")
    assert t["status"] == "working"
    assert t["ttl"] == 3_600_000 and t["pollInterval"] == 5000
    assert t["createdAt"] == t["lastUpdatedAt"]
    assert t["createdAt"].endswith("Z") and len(t["createdAt"]) == 24
    assert "statusMessage" not in t and "_meta" not in t
    assert len(t["taskId"]) == 36 and t["taskId"][14] == "4"  # uuid4
    t2 = task(c, "TASK.CREATE", "tools/call", "ttl", "1000", "pollinterval", "250", "id", "my-id")
    assert (t2["taskId"], t2["ttl"], t2["pollInterval"]) == ("my-id", 1000, 250)
    assert task(c, "TASK.GET", "my-id") == t2


@pytest.mark.parametrize("src", STATUSES)
@pytest.mark.parametrize("dst", STATUSES)
def test_every_status_pair(c: RawClient, src: str, dst: str) -> None:
    tid = reach(c, src)
    if (src, dst) in ALLOWED:
        t = task(c, "TASK.UPDATE", tid, dst)
        assert t["status"] == dst
        assert task(c, "TASK.GET", tid)["status"] == dst
    else:
        assert err(c, "TASK.UPDATE", tid, dst) == (
            f"INVALIDTRANSITION invalid transition from {src} to {dst} for task {tid}"
        )
        assert task(c, "TASK.GET", tid)["status"] == src


def test_lifecycle_with_messages_variables_result(c: RawClient) -> None:
    tid = new_task(c)
    t = task(c, "TASK.UPDATE", tid, "input_required", "MESSAGE", "need a name")
    assert t["statusMessage"] == "need a name"
    t = task(c, "TASK.UPDATE", tid, "MESSAGE", "still waiting")  # progress, same status
    assert (t["status"], t["statusMessage"]) == ("input_required", "still waiting")
    t = task(c, "TASK.UPDATE", tid, "working")  # a status change clears the message
    assert "statusMessage" not in t
    t = task(c, "TASK.SETVARS", tid, '{"a":1,"b":{"c":[1,2]}}')
    assert t["_meta"] == {"a": 1, "b": {"c": [1, 2]}}
    t = task(c, "TASK.SETVARS", tid, '{"a":null,"d":"x"}')
    assert t["_meta"] == {"b": {"c": [1, 2]}, "d": "x"}
    assert ok(c, "TASK.SETRESULT", tid, '{"partial":true}') == b"OK"
    assert err(c, "TASK.RESULT", tid) == f"NOTREADY task {tid} is working; no result yet"
    t = task(
        c,
        "TASK.COMPLETE",
        tid,
        "completed",
        '{"content":[{"type":"text","text":"hi"}]}',
        "MESSAGE",
        "done",
    )
    assert (t["status"], t["statusMessage"]) == ("completed", "done")
    assert ok(c, "TASK.RESULT", tid) == b'{"content":[{"type":"text","text":"hi"}]}'
    t = task(c, "TASK.UPDATE", tid, "MESSAGE", "late")  # a message change is no transition
    assert (t["status"], t["statusMessage"]) == ("completed", "late")
    assert err(c, "TASK.UPDATE", tid, "working") == (
        f"INVALIDTRANSITION invalid transition from completed to working for task {tid}"
    )
    assert err(c, "TASK.CANCEL", tid) == (
        f"INVALIDTRANSITION invalid transition from completed to cancelled for task {tid}"
    )
    assert ok(c, "TASK.DEL", tid) == 1
    assert ok(c, "TASK.DEL", tid) == 0
    assert err(c, "TASK.GET", tid) == f"NOTFOUND task not found: {tid}"


def test_cancel(c: RawClient) -> None:
    tid = new_task(c)
    t = task(c, "TASK.CANCEL", tid, "MESSAGE", "user asked")
    assert (t["status"], t["statusMessage"]) == ("cancelled", "user asked")
    assert err(c, "TASK.RESULT", tid) == f"NOTREADY task {tid} is cancelled; no result yet"


def test_failed_result_is_readable(c: RawClient) -> None:
    tid = new_task(c)
    task(c, "TASK.COMPLETE", tid, "failed", '{"isError":true,"content":[]}')
    assert json.loads(ok(c, "TASK.RESULT", tid)) == {"isError": True, "content": []}


def test_complete_is_atomic(c: RawClient) -> None:
    tid = new_task(c)
    ok(c, "TASK.SETRESULT", tid, '"before"')
    assert err(c, "TASK.COMPLETE", tid, "completed", "{not json").startswith("ERR invalid JSON")
    assert err(c, "TASK.COMPLETE", tid, "working", "{}") == "ERR status must be completed or failed"
    t = task(c, "TASK.GET", tid)
    assert t["status"] == "working"
    task(c, "TASK.CANCEL", tid)
    assert err(c, "TASK.COMPLETE", tid, "completed", '"after"') == (
        f"INVALIDTRANSITION invalid transition from cancelled to completed for task {tid}"
    )
    assert task(c, "TASK.GET", tid)["status"] == "cancelled"


# -- TASK.RESULT … ANY and TASK.UPDATE … MESSAGE on terminal tasks (design.md §5) ----------


def blocked(c: RawClient) -> int:
    info = ok(c, "INFO", "clients").decode()
    return int(info.split("blocked_clients:")[1].split()[0])


def until_blocked(c: RawClient, n: int = 1) -> None:
    deadline = time.monotonic() + 30
    while blocked(c) != n:
        assert time.monotonic() < deadline, f"blocked_clients never became {n}"
        time.sleep(0.002)


@pytest.mark.parametrize("protocol", [2, 3])
def test_result_any_returns_a_stored_result_whatever_the_status(server, protocol: int) -> None:
    with RawClient(server.port) as c:
        if protocol == 3:
            ok(c, "HELLO", "3")
        tid = new_task(c)
        null = b"_\r\n" if protocol == 3 else b"$-1\r\n"
        assert c.raw(b"TASK.RESULT " + tid.encode() + b" ANY\r\n", 0.05) == null  # none yet
        assert err(c, "TASK.RESULT", tid) == f"NOTREADY task {tid} is working; no result yet"
        ok(c, "TASK.SETRESULT", tid, '{"partial": true}')
        assert ok(c, "TASK.RESULT", tid, "ANY") == b'{"partial": true}'  # byte for byte
        assert ok(c, "TASK.RESULT", tid, "any") == b'{"partial": true}'  # case-insensitive
        assert err(c, "TASK.RESULT", tid).startswith("NOTREADY ")  # without ANY: unchanged
        ok(c, "TASK.UPDATE", tid, "input_required")
        assert ok(c, "TASK.RESULT", tid, "ANY") == b'{"partial": true}'
        ok(c, "TASK.SETRESULT", tid, "null")  # a stored JSON null is a result, not "none"
        assert ok(c, "TASK.RESULT", tid, "ANY") == b"null"
        ok(c, "TASK.COMPLETE", tid, "completed", '{"v":1}')
        assert ok(c, "TASK.RESULT", tid, "ANY") == ok(c, "TASK.RESULT", tid) == b'{"v":1}'
        # cancelled without a result: ANY gives null where the plain form says NOTREADY
        gone = reach(c, "cancelled")
        assert ok(c, "TASK.RESULT", gone, "ANY") is None
        assert err(c, "TASK.RESULT", gone).startswith("NOTREADY ")
        assert err(c, "TASK.RESULT", "nope", "ANY") == "NOTFOUND task not found: nope"
        assert err(c, "TASK.RESULT", "a b", "ANY").startswith("ERR invalid task id")
        assert err(c, "TASK.RESULT", tid, "ANY", "x") == "ERR syntax error"
        assert err(c, "TASK.RESULT", tid, "BLOCK") == "ERR syntax error"
        assert err(c, "TASK.RESULT", tid, "ANY", "OWNER", "bob") == (
            "NOPERM User default has no permissions to act as another owner"
        )
        # inside MULTI the same replies
        ok(c, "MULTI")
        assert ok(c, "TASK.RESULT", tid, "ANY") == b"QUEUED"
        assert ok(c, "TASK.RESULT", gone, "ANY") == b"QUEUED"
        assert ok(c, "EXEC") == [b'{"v":1}', None]


def test_result_any_owner_option_is_a_value_not_a_flag(make_server) -> None:
    srv = make_server(users=[{"name": "svc", "password": "pw", "permissions": ["impersonate"]}])
    with RawClient(srv.port) as c:
        ok(c, "AUTH", "svc", "pw")
        tid = new_task(c, "OWNER", "ANY")  # an owner called ANY
        ok(c, "TASK.SETRESULT", tid, "1", "OWNER", "ANY")
        assert ok(c, "TASK.RESULT", tid, "OWNER", "ANY", "ANY") == b"1"
        assert ok(c, "TASK.RESULT", tid, "ANY", "OWNER", "ANY") == b"1"
        assert err(c, "TASK.RESULT", tid, "ANY").startswith("NOTFOUND ")  # svc's own owner


def test_result_any_on_an_expired_task_until_eviction(make_server) -> None:
    srv = make_server(expired_retention_ms=300)
    with RawClient(srv.port) as c:
        tid = new_task(c, "TTL", "50")
        ok(c, "TASK.SETRESULT", tid, '{"r":1}')
        time.sleep(0.1)
        assert ok(c, "TASK.RESULT", tid, "ANY") == b'{"r":1}'  # expired, still readable
        time.sleep(0.35)
        assert err(c, "TASK.RESULT", tid, "ANY") == f"NOTFOUND task not found: {tid}"


def test_result_any_block(server) -> None:
    with RawClient(server.port) as c, RawClient(server.port) as waiter:
        tid = new_task(c)
        ok(c, "TASK.SETRESULT", tid, '"early"')
        # a stored result answers at once, whatever the status
        assert ok(waiter, "TASK.RESULT", tid, "BLOCK", "0", "ANY") == b'"early"'
        assert ok(waiter, "TASK.RESULT", tid, "ANY", "BLOCK", "0") == b'"early"'

        # no result yet: waits for one, and a result stored while still working answers it
        other = new_task(c)
        waiter.send(pack("TASK.RESULT", other, "ANY", "BLOCK", "0"))
        until_blocked(c)
        task(c, "TASK.UPDATE", other, "input_required")  # not a result: keeps waiting
        assert blocked(c) == 1
        ok(c, "TASK.SETRESULT", other, '{"step":1}')
        assert waiter.reply() == b'{"step":1}'
        assert task(c, "TASK.GET", other)["status"] == "input_required"

        # a terminal status without a result: completed keeps waiting for a late result...
        late = new_task(c)
        waiter.send(pack("TASK.RESULT", late, "BLOCK", "0", "ANY"))
        until_blocked(c)
        ok(c, "TASK.UPDATE", late, "completed")
        assert blocked(c) == 1
        ok(c, "TASK.SETRESULT", late, '"late"')
        assert waiter.reply() == b'"late"'
        # ...cancelled answers NOTREADY, as without ANY (a null reply would mean a timeout)
        cancelled = new_task(c)
        waiter.send(pack("TASK.RESULT", cancelled, "BLOCK", "0", "ANY"))
        until_blocked(c)
        ok(c, "TASK.CANCEL", cancelled)
        assert str(waiter.reply()) == f"NOTREADY task {cancelled} is cancelled; no result yet"
        assert (
            str(waiter.call("TASK.RESULT", cancelled, "BLOCK", "0", "ANY"))
            == f"NOTREADY task {cancelled} is cancelled; no result yet"
        )

        # timeout: a null reply; deletion: NOTFOUND
        quiet = new_task(c)
        assert waiter.call("TASK.RESULT", quiet, "ANY", "BLOCK", "20") is None
        waiter.send(pack("TASK.RESULT", quiet, "ANY", "BLOCK", "0"))
        until_blocked(c)
        ok(c, "TASK.DEL", quiet)
        assert str(waiter.reply()) == f"NOTFOUND task not found: {quiet}"
        # inside MULTI nothing waits
        ok(waiter, "MULTI")
        waiter.call("TASK.RESULT", new_task(c), "ANY", "BLOCK", "0")
        assert ok(waiter, "EXEC") == [None]


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_message_update_on_a_terminal_task(server, status: str) -> None:
    with RawClient(server.port) as c, RawClient(server.port) as waiter:
        tid = reach(c, status)
        before = task(c, "TASK.GET", tid)
        time.sleep(0.002)  # a later millisecond for lastUpdatedAt
        waiter.send(pack("TASK.WAIT", tid))  # no STATUS: the next change of any kind
        until_blocked(c)
        t = task(c, "TASK.UPDATE", tid, "MESSAGE", "after the end")
        assert (t["status"], t["statusMessage"]) == (status, "after the end")
        assert t["lastUpdatedAt"] > before["lastUpdatedAt"]
        assert t["createdAt"] == before["createdAt"] and t["ttl"] == before["ttl"]
        assert json.loads(waiter.reply()) == t
        assert task(c, "TASK.GET", tid) == t
        # every status change is still refused, the same status included, with or without MESSAGE
        for new in STATUSES:
            assert err(c, "TASK.UPDATE", tid, new) == (
                f"INVALIDTRANSITION invalid transition from {status} to {new} for task {tid}"
            )
            assert err(c, "TASK.UPDATE", tid, new, "MESSAGE", "x").startswith(
                "INVALIDTRANSITION invalid transition"
            )
        assert err(c, "TASK.CANCEL", tid, "MESSAGE", "x").startswith("INVALIDTRANSITION ")
        assert task(c, "TASK.GET", tid)["status"] == status
        if status != "cancelled":  # the result stays
            assert ok(c, "TASK.RESULT", tid) == b'{"content":[]}'


def test_message_update_on_an_expired_terminal_task_is_refused(make_server) -> None:
    srv = make_server(expired_retention_ms=60_000)
    with RawClient(srv.port) as c:
        tid = new_task(c, "TTL", "30")
        ok(c, "TASK.COMPLETE", tid, "completed", "{}", "MESSAGE", "done")
        time.sleep(0.06)
        assert err(c, "TASK.UPDATE", tid, "MESSAGE", "late") == f"EXPIRED task expired: {tid}"
        assert task(c, "TASK.GET", tid)["statusMessage"] == "done"


# -- every error row of design.md §5 -------------------------------------------------------


def test_error_rows(make_server) -> None:
    srv = make_server(max_tasks_per_owner=2, max_result_bytes=10)
    with RawClient(srv.port) as c:
        assert err(c, "TASK.GET", "nope") == "NOTFOUND task not found: nope"
        tid = new_task(c, "TTL", "1")
        time.sleep(0.01)
        assert err(c, "TASK.UPDATE", tid, "failed") == f"EXPIRED task expired: {tid}"
        t2 = new_task(c, "ID", "t2")
        assert err(c, "TASK.UPDATE", t2, "working").startswith("INVALIDTRANSITION ")
        assert err(c, "TASK.RESULT", t2).startswith("NOTREADY ")
        assert err(c, "TASK.SETRESULT", t2, '"12345678901"').startswith(
            "TOOLARGE result is 13 bytes"
        )
        assert err(c, "TASK.CREATE", "m") == (
            "LIMIT owner has 2 tasks (max 2): cancel or wait for existing tasks to expire"
        )
        assert err(c, "TASK.SETVARS", t2, "[1]").startswith("ERR invalid JSON")
        assert err(c, "TASK.CREATE", "m", "TTL", "x").startswith("ERR TTL must be")
        assert err(c, "TASK.LIST", "CURSOR", "forged") == "ERR invalid cursor"
        ok(c, "TASK.DEL", tid)
        assert err(c, "TASK.CREATE", "m", "ID", "t2") == "EXISTS task already exists: t2"
        assert err(c, "TASK.GET", "t2", "OWNER", "bob") == (
            "NOPERM User default has no permissions to act as another owner"
        )


def test_syntax_and_arity_errors(c: RawClient) -> None:
    assert err(c, "TASK.GET") == "ERR wrong number of arguments for 'task.get' command"
    assert err(c, "TASK.CREATE") == "ERR wrong number of arguments for 'task.create' command"
    assert err(c, "TASK.CREATE", "m", "TTL") == "ERR syntax error"
    assert err(c, "TASK.CREATE", "m", "BOGUS", "1") == "ERR syntax error"
    tid = new_task(c)
    assert err(c, "TASK.UPDATE", tid, "bogus").startswith("ERR ")
    assert (
        err(c, "TASK.RESULT", tid, "BLOCK", "x") == "ERR timeout is not an integer or out of range"
    )
    assert err(c, "TASK.RESULT", tid, "BLOCK", "-1") == "ERR timeout is negative"
    assert err(c, "TASK.WAIT", tid, "STATUS", "nope").startswith("ERR ")
    assert err(c, "TASK.LIST", "LIMIT", "abc") == "ERR LIMIT must be between 1 and 1000"
    assert (
        err(c, "TASK.CREATE", "m", "POLLINTERVAL", "0")
        == "ERR POLLINTERVAL must be a whole number >= 1"
    )


# -- limits of design.md §4 at and past the boundary ---------------------------------------


def test_ttl_limits(make_server) -> None:
    srv = make_server(max_ttl_ms=5000, default_ttl_ms=1000)
    with RawClient(srv.port) as c:
        assert task(c, "TASK.CREATE", "m", "TTL", "5000")["ttl"] == 5000
        assert (
            err(c, "TASK.CREATE", "m", "TTL", "5001")
            == "ERR TTL 5001ms exceeds maximum allowed 5000ms"
        )
        assert err(c, "TASK.CREATE", "m", "TTL", "0").startswith(
            "ERR TTL must be a whole number >= 1"
        )
        assert err(c, "TASK.CREATE", "m", "TTL", "-5").startswith(
            "ERR TTL must be a whole number >= 1"
        )
        assert err(c, "TASK.CREATE", "m", "TTL", "NONE").startswith("ERR unlimited TTL")
    unlimited = make_server(max_ttl_ms=0)
    with RawClient(unlimited.port) as c:
        assert task(c, "TASK.CREATE", "m", "TTL", "none")["ttl"] is None
        assert task(c, "TASK.CREATE", "m", "TTL", "99999999999")["ttl"] == 99999999999


def test_max_tasks_counts_every_record(make_server) -> None:
    srv = make_server(max_tasks_per_owner=3)
    with RawClient(srv.port) as c:
        a = new_task(c)
        ok(c, "TASK.CANCEL", a)  # terminal still counts
        new_task(c, "TTL", "1")  # expired-but-not-evicted still counts
        time.sleep(0.01)
        new_task(c)
        assert err(c, "TASK.CREATE", "m").startswith("LIMIT owner has 3 tasks (max 3)")
        ok(c, "TASK.DEL", a)
        new_task(c)
    unlimited = make_server(max_tasks_per_owner=0)
    with RawClient(unlimited.port) as c:
        for _ in range(150):
            new_task(c)


def test_variable_limits(make_server) -> None:
    srv = make_server(max_variable_size_bytes=20, max_variable_depth=2, max_string_length=5)
    with RawClient(srv.port) as c:
        t1 = task(c, "TASK.CREATE", "m")["taskId"]  # max_string_length bounds the method too
        assert task(c, "TASK.SETVARS", t1, '{"k":"12345"}')["_meta"] == {"k": "12345"}
        assert err(c, "TASK.SETVARS", t1, '{"k":"123456"}').startswith("TOOLARGE string of 6 bytes")
        assert err(c, "TASK.SETVARS", t1, '{"123456":1}').startswith("TOOLARGE string of 6 bytes")
        t2 = task(c, "TASK.CREATE", "m")["taskId"]
        assert task(c, "TASK.SETVARS", t2, '{"a":{"b":1}}')["_meta"] == {"a": {"b": 1}}
        assert err(c, "TASK.SETVARS", t2, '{"a":{"b":{"c":1}}}').startswith(
            "TOOLARGE variables nest"
        )
        t3 = task(c, "TASK.CREATE", "m")["taskId"]
        assert len('{"k":"12345","x":12}') == 20
        assert task(c, "TASK.SETVARS", t3, '{"k":"12345","x":12}')["_meta"] == {
            "k": "12345",
            "x": 12,
        }
        assert err(c, "TASK.SETVARS", t3, '{"y":1}') == "TOOLARGE variables are 26 bytes (max 20)"
        assert task(c, "TASK.GET", t3)["_meta"] == {"k": "12345", "x": 12}  # unchanged


def test_result_limit(make_server) -> None:
    srv = make_server(max_result_bytes=10)
    with RawClient(srv.port) as c:
        tid = new_task(c)
        assert ok(c, "TASK.SETRESULT", tid, '"12345678"') == b"OK"  # 10 bytes
        assert (
            err(c, "TASK.SETRESULT", tid, '"123456789"') == "TOOLARGE result is 11 bytes (max 10)"
        )
        assert err(c, "TASK.COMPLETE", tid, "completed", '"123456789"') == (
            "TOOLARGE result is 11 bytes (max 10)"
        )
        assert task(c, "TASK.GET", tid)["status"] == "working"


def test_list_limits(make_server) -> None:
    srv = make_server(list_default_limit=3, list_max_limit=5)
    with RawClient(srv.port) as c:
        for _ in range(7):
            new_task(c)
        page = ListTasksResult.model_validate_json(ok(c, "TASK.LIST"))
        assert len(page.tasks) == 3 and page.next_cursor
        assert len(json.loads(ok(c, "TASK.LIST", "LIMIT", "5"))["tasks"]) == 5
        assert err(c, "TASK.LIST", "LIMIT", "6") == "ERR LIMIT must be between 1 and 5"
        assert err(c, "TASK.LIST", "LIMIT", "0") == "ERR LIMIT must be between 1 and 5"
        last = json.loads(ok(c, "TASK.LIST", "LIMIT", "5", "CURSOR", page.next_cursor))
        assert len(last["tasks"]) == 4 and "nextCursor" not in last


def test_task_id_limits(c: RawClient) -> None:
    assert task(c, "TASK.CREATE", "m", "ID", "x" * 256)["taskId"] == "x" * 256
    assert err(c, "TASK.CREATE", "m", "ID", "x" * 257).startswith("ERR ")
    assert err(c, "TASK.CREATE", "m", "ID", "has space").startswith("ERR ")
    assert err(c, "TASK.CREATE", "m", "ID", "").startswith("ERR ")


# -- pagination ------------------------------------------------------------------------------


def test_pagination_1000_tasks_with_changes_between_pages(make_server) -> None:
    with RawClient(make_server(max_tasks_per_owner=0).port) as c:
        _paginate(c)


def _paginate(c: RawClient) -> None:
    created = [new_task(c) for _ in range(1000)]
    deleted = set(created[100:1000:13])
    seen: list[str] = []
    cursor = None
    extra = 0
    while True:
        args = ["TASK.LIST", "LIMIT", "7"] + (["CURSOR", cursor] if cursor else [])
        page = json.loads(ok(c, *args))
        ListTasksResult.model_validate(page)
        for t in page["tasks"]:
            Task.model_validate(t)
        seen += [t["taskId"] for t in page["tasks"]]
        # tasks created and deleted between pages
        new_task(c)
        extra += 1
        if deleted:
            ok(c, "TASK.DEL", deleted.pop())
        cursor = page.get("nextCursor")
        if not cursor:
            break
    remaining = [t for t in reversed(created) if t in set(seen)]
    assert len(seen) == len(set(seen)), "a task was returned twice"
    assert seen == remaining, "not newest first"
    never_deleted = [t for t in created if t not in set(created[100:1000:13])]
    assert set(never_deleted) <= set(seen), "a task that was never deleted was skipped"
    assert not set(seen) - set(created), "a task created after the first page appeared"


def test_forged_cursors(c: RawClient) -> None:
    for _ in range(3):
        new_task(c)
    cursor = json.loads(ok(c, "TASK.LIST", "LIMIT", "1"))["nextCursor"]
    assert ok(c, "TASK.LIST", "CURSOR", cursor)
    for forged in (
        "",
        "x",
        cursor[:-1],
        cursor[:-1] + ("A" if cursor[-1] != "A" else "B"),
        "0" * 40,
    ):
        assert err(c, "TASK.LIST", "CURSOR", forged) == "ERR invalid cursor"


# -- expiry with real TTLs -------------------------------------------------------------------


def test_expiry_readable_then_expired_then_evicted(make_server) -> None:
    srv = make_server(expired_retention_ms=300)
    with RawClient(srv.port) as c:
        tid = new_task(c, "TTL", "50")
        done = new_task(c, "TTL", "50")
        ok(c, "TASK.COMPLETE", done, "completed", '{"r":1}')
        time.sleep(0.1)
        assert task(c, "TASK.GET", tid)["status"] == "working"  # readable after expiry
        assert ok(c, "TASK.RESULT", done) == b'{"r":1}'
        assert tid in ok(c, "TASK.LIST").decode()
        expired = f"EXPIRED task expired: {tid}"
        assert err(c, "TASK.UPDATE", tid, "failed") == expired
        assert err(c, "TASK.UPDATE", tid, "MESSAGE", "x") == expired
        assert err(c, "TASK.SETVARS", tid, "{}") == expired
        assert err(c, "TASK.SETRESULT", tid, "1") == expired
        assert err(c, "TASK.COMPLETE", tid, "completed", "1") == expired
        assert err(c, "TASK.CANCEL", tid) == expired
        time.sleep(0.35)
        assert err(c, "TASK.GET", tid) == f"NOTFOUND task not found: {tid}"
        assert err(c, "TASK.RESULT", done) == f"NOTFOUND task not found: {done}"
        assert tid not in ok(c, "TASK.LIST").decode()


def test_cleanup_count_and_retention_zero(make_server) -> None:
    srv = make_server(expired_retention_ms=0, hz=1)
    with RawClient(srv.port) as c:
        for _ in range(5):
            new_task(c, "TTL", "20")
        keep = new_task(c)
        time.sleep(0.05)
        assert ok(c, "TASK.CLEANUP") in (5, 0)  # 0 if the background sweep got there first
        assert ok(c, "TASK.CLEANUP") == 0
        assert ok(c, "DBSIZE") == 1
        assert task(c, "TASK.GET", keep)["status"] == "working"


def test_cleanup_counts_exactly(make_server) -> None:
    srv = make_server(expired_retention_ms=0, hz=1)  # sweep once a second
    with RawClient(srv.port) as c:
        ok(c, "CONFIG", "SET", "hz", "1")
        for _ in range(4):
            new_task(c, "TTL", "10")
        time.sleep(0.03)
        # lazily evicted on access is not counted again
        assert ok(c, "TASK.CLEANUP") + ok(c, "TASK.CLEANUP") <= 4


def test_background_sweep_evicts(make_server) -> None:
    srv = make_server(expired_retention_ms=0, hz=50, max_tasks_per_owner=0)
    with RawClient(srv.port) as c:
        for _ in range(200):
            new_task(c, "TTL", "30")
        deadline = time.monotonic() + 3
        while ok(c, "DBSIZE") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ok(c, "DBSIZE") == 0
        info = redis.Redis(port=srv.port, protocol=2).info("tasks")
        assert info["tasks_evicted_total"] == 200


# -- server-side commands around tasks --------------------------------------------------------


def test_dbsize_flushall_info_config(c: RawClient) -> None:
    for _ in range(3):
        new_task(c)
    assert ok(c, "DBSIZE") == 3
    info = ok(c, "INFO", "tasks").decode()
    assert "tasks:3" in info and "tasks_working:3" in info and "tasks_owners:1" in info
    assert "db0:keys=3" in ok(c, "INFO", "keyspace").decode()
    cfg = ok(c, "TASK.CONFIG")
    pairs = dict(zip(cfg[::2], cfg[1::2], strict=True))
    assert pairs[b"max_tasks_per_owner"] == 100 or pairs[b"max_tasks_per_owner"] == b"100"
    assert ok(c, "FLUSHALL") == b"OK"
    assert ok(c, "DBSIZE") == 0


def test_command_docs_for_task_commands(c: RawClient) -> None:
    names = [
        "task.create",
        "task.get",
        "task.update",
        "task.setvars",
        "task.setresult",
        "task.result",
        "task.complete",
        "task.cancel",
        "task.list",
        "task.cleanup",
        "task.config",
        "task.del",
    ]
    docs = ok(c, "COMMAND", "DOCS", *names)
    entries = dict(zip(docs[::2], docs[1::2], strict=True))
    assert sorted(entries) == sorted(n.encode() for n in names)
    for name, doc in entries.items():
        fields = dict(zip(doc[::2], doc[1::2], strict=True))
        assert fields[b"group"] == b"task" and fields[b"summary"], name
        if name != b"task.config" and name != b"task.cleanup" and name != b"task.list":
            assert fields[b"arguments"], name

    def pairs(flat: list) -> dict:
        return dict(zip(flat[::2], flat[1::2], strict=True))

    args = [pairs(a) for a in pairs(entries[b"task.result"])[b"arguments"]]
    assert [a[b"name"] for a in args] == [b"id", b"timeout", b"any", b"owner"]
    any_arg = args[2]
    assert (any_arg[b"type"], any_arg[b"token"]) == (b"pure-token", b"ANY")
    assert any_arg[b"flags"] == [b"optional"]
    info = ok(c, "COMMAND", "INFO", "task.create")
    assert info[0][0] == b"task.create" and info[0][1] == -2


def test_resp3_and_resp2_replies_are_the_same_json(server) -> None:
    r2 = redis.Redis(port=server.port, protocol=2)
    r3 = redis.Redis(port=server.port, protocol=3)
    raw = r3.execute_command("TASK.CREATE", "tools/call")
    tid = json.loads(raw)["taskId"]
    assert r2.execute_command("TASK.GET", tid) == r3.execute_command("TASK.GET", tid) == raw
    with pytest.raises(redis.ResponseError, match="NOTFOUND"):
        r3.execute_command("TASK.GET", "missing")
    # MULTI/EXEC with TASK commands
    with r3.pipeline() as p:
        p.execute_command("TASK.UPDATE", tid, "input_required")
        p.execute_command("TASK.GET", tid)
        a, b = p.execute()
    assert json.loads(a)["status"] == json.loads(b)["status"] == "input_required"
