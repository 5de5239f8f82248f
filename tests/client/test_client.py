"""taskstore.client against real servers: every TASK command through TaskClient and
AsyncTaskClient, in RESP2 and RESP3, with and without decoded responses; the Task dataclass
against the server's exact bytes; and every error code of design.md §5 raised as its own
class with the right ``mcp_code``."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

import taskstore.store.errors as store_errors
from taskstore.client import (
    UNLIMITED,
    AsyncTaskClient,
    AuthenticationRequired,
    IdentityError,
    InternalError,
    InvalidArgument,
    InvalidTransition,
    LeaseHeld,
    LimitExceeded,
    NotReady,
    PermissionDenied,
    Task,
    TaskClient,
    TaskError,
    TaskExists,
    TaskExpired,
    TaskNotFound,
    TaskPage,
    TooLarge,
    Unblocked,
    WrongPassword,
)
from taskstore.client.errors import error_from_reply

from .conftest import USERS, until_blocked, user_url

PROTOCOLS = [
    pytest.param({"protocol": 2}, id="resp2"),
    pytest.param({"protocol": 3}, id="resp3"),
    pytest.param({"protocol": 2, "decode_responses": True}, id="resp2-decoded"),
    pytest.param({"protocol": 3, "decode_responses": True}, id="resp3-decoded"),
]


@pytest.fixture(params=PROTOCOLS)
def options(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.param)


@pytest.fixture
def client(server: Any, options: dict[str, Any]) -> Iterator[TaskClient]:
    with TaskClient(server.url, **options) as c:
        yield c


def raw_get(url: str, task_id: str, owner: str | None = None) -> bytes:
    r = redis.Redis.from_url(url)
    try:
        r.execute_command("TASK.VERSION", "2025-11-25")  # the client's default generation
        args = ["TASK.GET", task_id] + (["OWNER", owner] if owner else [])
        return bytes(r.execute_command(*args))
    finally:
        r.close()


# -- connecting ---------------------------------------------------------------------------


def test_connect_forms(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSTORE_URL", server.url)
    with TaskClient() as c:  # $TASKSTORE_URL
        created = c.create(task_id="env")
    pool = redis.ConnectionPool.from_url(server.url)
    with TaskClient(connection_pool=pool) as c:
        assert c.get("env") == created
    pool.disconnect()
    r = redis.Redis.from_url(server.url)
    c = TaskClient(redis=r)
    assert c.redis is r
    c.close()
    assert r.ping() is True  # a Redis passed in stays open
    r.close()
    with pytest.raises(TypeError):
        TaskClient(server.url, redis=r)

    monkeypatch.delenv("TASKSTORE_URL")
    c = TaskClient()  # nothing connects until the first command
    kwargs = c.redis.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"]) == ("127.0.0.1", 6379)
    c.close()


# -- every command, sync ------------------------------------------------------------------


def test_lifecycle(client: TaskClient, server: Any) -> None:
    t = client.create("tools/call", ttl=60_000, poll_interval=250, task_id="job-1")
    assert isinstance(t, Task)
    assert (t.task_id, t.status, t.ttl, t.poll_interval) == ("job-1", "working", 60_000, 250)
    assert t.status_message is None and t.meta is None and not t.is_terminal
    assert t.created_at == t.last_updated_at and t.created_at.tzinfo is not None
    assert client.get("job-1") == t

    generated = client.create()
    assert len(generated.task_id) == 36 and generated.ttl == 3_600_000
    assert generated.poll_interval == 5000

    t = client.update("job-1", "input_required", message="need a file")
    assert (t.status, t.status_message) == ("input_required", "need a file")
    t = client.update("job-1", message="still waiting")
    assert (t.status, t.status_message) == ("input_required", "still waiting")
    t = client.update("job-1", "working")
    assert (t.status, t.status_message) == ("working", None)

    t = client.set_variables("job-1", {"step": 1, "file": "a.txt"})
    assert t.meta == {"step": 1, "file": "a.txt"} == t.variables
    t = client.set_variables("job-1", {"file": None})
    assert t.meta == {"step": 1}

    assert client.set_result("job-1", {"partial": True}) is None
    with pytest.raises(NotReady):
        client.result("job-1")
    t = client.complete("job-1", "completed", {"content": [{"type": "text", "text": "é"}]})
    assert t.status == "completed" and t.is_terminal and t.meta == {"step": 1}
    assert client.result("job-1") == {"content": [{"type": "text", "text": "é"}]}
    assert client.result("job-1", block=0) == {"content": [{"type": "text", "text": "é"}]}

    f = client.complete(client.create().task_id, "failed", None, message="boom")
    assert (f.status, f.status_message) == ("failed", "boom")
    assert client.result(f.task_id) is None  # a stored JSON null

    c = client.cancel(generated.task_id, message="user asked")
    assert (c.status, c.status_message) == ("cancelled", "user asked")

    assert client.delete("job-1") is True
    assert client.delete("job-1") is False
    assert client.cleanup() == 0
    config = client.config()
    assert config["max_ttl_ms"] == 86_400_000 and config["allow_anonymous"] is True
    assert config["default_owner"] == "local"


def test_unlimited_ttl(make_server: Callable[..., Any]) -> None:
    srv = make_server(max_ttl_ms=0)
    with TaskClient(srv.url) as c:
        assert c.create(ttl=UNLIMITED).ttl is None
        assert c.config()["max_ttl_ms"] == 0


def test_list_pages_and_iterators(client: TaskClient) -> None:
    ids = [client.create(task_id=f"t{i}").task_id for i in range(7)]
    newest_first = ids[::-1]
    page = client.list(limit=3)
    assert isinstance(page, TaskPage)
    assert [t.task_id for t in page.tasks] == newest_first[:3] and page.next_cursor
    page2 = client.list(cursor=page.next_cursor, limit=3)
    assert [t.task_id for t in page2.tasks] == newest_first[3:6]
    pages = list(client.iter_pages(limit=3))
    assert [len(p.tasks) for p in pages] == [3, 3, 1]
    assert pages[-1].next_cursor is None
    assert [t.task_id for t in client.iter_tasks(limit=2)] == newest_first
    assert [t.task_id for t in client.all_tasks()] == newest_first
    assert client.list().next_cursor is None
    assert page.to_wire()["nextCursor"] == page.next_cursor


def test_wait_and_blocking_result(client: TaskClient, server: Any) -> None:
    t = client.create(task_id="w")
    # the status already differs: at once
    assert client.wait("w", status="input_required", block=0) == t
    assert client.wait("w", status="working", block=10) is None
    with pytest.raises(TimeoutError):
        client.result("w", block=10)

    got: dict[str, Any] = {}

    def waiter() -> None:
        with TaskClient(server.url) as other:
            got["task"] = other.wait("w", status="working")
            got["result"] = other.result("w", block=0)

    thread = threading.Thread(target=waiter)
    thread.start()
    until_blocked(server.url)
    client.complete("w", "completed", {"ok": 1})
    thread.join(30)
    assert got["task"].status == "completed"
    assert got["result"] == {"ok": 1}


def test_result_any(client: TaskClient, server: Any) -> None:
    """``any=True``: TASK.RESULT … ANY, the stored result whatever the status."""
    t = client.create(task_id="r")
    missing = object()
    assert client.result("r", any=True) is None  # nothing stored yet
    assert client.result("r", any=True, default=missing) is missing
    client.set_result("r", {"partial": 1})
    assert client.result("r", any=True) == {"partial": 1}
    with pytest.raises(NotReady):
        client.result("r")  # without any=True: unchanged
    client.set_result("r", None)
    assert client.result("r", any=True, default=missing) is None  # a stored JSON null
    client.update("r", "input_required")
    client.set_result("r", {"partial": 2})
    assert client.result("r", any=True, block=0) == {"partial": 2}  # at once
    with pytest.raises(TaskNotFound):
        client.result("nope", any=True)

    other = client.create().task_id
    with pytest.raises(TimeoutError):
        client.result(other, any=True, block=5)
    got: dict[str, Any] = {}

    def wait() -> None:
        with TaskClient(server.url) as c:
            got["result"] = c.result(other, any=True, block=0)

    thread = threading.Thread(target=wait)
    thread.start()
    until_blocked(server.url)
    client.set_result(other, {"early": True})  # the task is still working
    thread.join(30)
    assert got == {"result": {"early": True}}
    assert client.get(other).status == "working"
    assert client.get(t.task_id).status == "input_required"


def test_message_update_on_a_terminal_task(client: TaskClient) -> None:
    client.create(task_id="m")
    client.complete("m", "completed", {"ok": True}, message="done")
    t = client.update("m", message="archived")
    assert (t.status, t.status_message) == ("completed", "archived")
    with pytest.raises(InvalidTransition) as e:
        client.update("m", "completed", message="again")
    assert (e.value.from_status, e.value.to_status) == ("completed", "completed")
    assert client.result("m") == {"ok": True}


def test_owner_impersonation(make_server: Callable[..., Any], options: dict[str, Any]) -> None:
    srv = make_server(users=USERS)
    with (
        TaskClient(user_url(srv.url, "svc", "svc-pw"), owner="alice", **options) as svc,
        TaskClient(user_url(srv.url, "alice", "alice-pw"), **options) as alice,
    ):
        t = svc.create(task_id="a1")
        assert alice.get("a1") == t
        with pytest.raises(TaskNotFound):
            svc.get("a1", owner="bob")  # one call for another owner
        svc.create(task_id="b1", owner="bob")
        assert [x.task_id for x in svc.iter_tasks(owner="bob")] == ["b1"]
        assert [x.task_id for x in alice.iter_tasks()] == ["a1"]
        with pytest.raises(PermissionDenied) as e:
            alice.get("b1", owner="bob")
        assert e.value.mcp_code is None
        assert str(e.value) == "NOPERM User alice has no permissions to act as another owner"


# -- the Task dataclass -------------------------------------------------------------------


def test_task_to_wire_is_the_server_json(client: TaskClient, server: Any) -> None:
    client.create(task_id="wire", ttl=5000, poll_interval=10)
    client.update("wire", "input_required", message='quote " and ünïcode ✓')
    t = client.set_variables("wire", {"nested": {"a": [1, 2.5, None, True]}, "s": "✓"})
    raw = raw_get(server.url, "wire")
    assert t.to_json().encode() == raw
    assert t.to_wire() == json.loads(raw)
    assert list(t.to_wire()) == list(json.loads(raw))  # field order too
    assert Task.from_wire(raw) == t == Task.from_wire(t.to_wire())
    assert Task.from_wire(raw.decode()) == t


def test_task_from_wire_optional_fields() -> None:
    t = Task.from_wire(
        {
            "taskId": "x",
            "status": "working",
            "createdAt": "2026-11-26T13:24:57.123Z",
            "lastUpdatedAt": "2026-11-26T13:24:57.123Z",
            "ttl": None,
        }
    )
    assert t.ttl is None and t.poll_interval is None and t.variables == {}
    assert t.to_wire() == {
        "taskId": "x",
        "status": "working",
        "createdAt": "2026-11-26T13:24:57.123Z",
        "lastUpdatedAt": "2026-11-26T13:24:57.123Z",
        "ttl": None,
    }
    with pytest.raises(ValueError, match="unknown task status"):
        Task.from_wire({**t.to_wire(), "status": "done"})


# -- errors -------------------------------------------------------------------------------

#: design.md §5: reply prefix -> (client class, MCP code); None is the table's "—".
SECTION_5 = {
    "NOTFOUND": (TaskNotFound, -32602),
    "EXPIRED": (TaskExpired, -32602),
    "INVALIDTRANSITION": (InvalidTransition, -32602),
    "NOTREADY": (NotReady, -32602),
    "TOOLARGE": (TooLarge, -32602),
    "LIMIT": (LimitExceeded, -32603),
    "ERR": (InvalidArgument, -32602),
    "EXISTS": (TaskExists, -32602),
    "LEASED": (LeaseHeld, -32603),
    "NOAUTH": (AuthenticationRequired, None),
    "NOPERM": (PermissionDenied, None),
    "WRONGPASS": (WrongPassword, None),
}


def test_error_classes_match_design_and_store() -> None:
    for code, (cls, mcp_code) in SECTION_5.items():
        assert issubclass(cls, TaskError)
        assert cls.code == code and cls.mcp_code == mcp_code
    for cls in (AuthenticationRequired, PermissionDenied, WrongPassword, Unblocked):
        assert issubclass(cls, IdentityError)
    # the server's own error classes agree on every code they share
    for name in store_errors.__all__:
        server_cls = getattr(store_errors, name)
        client_cls = SECTION_5[server_cls.code][0]
        assert client_cls.mcp_code == server_cls.mcp_code, name
    assert InternalError.mcp_code == -32603 and issubclass(InternalError, InvalidArgument)


def test_error_from_reply_text() -> None:
    e = error_from_reply(
        "INVALIDTRANSITION invalid transition from completed to cancelled for task t:1"
    )
    assert isinstance(e, InvalidTransition)
    assert (e.from_status, e.to_status, e.task_id) == ("completed", "cancelled", "t:1")
    e = error_from_reply("INVALIDTRANSITION task a b is failed: terminal tasks do not change")
    assert isinstance(e, InvalidTransition)
    assert (e.from_status, e.to_status, e.task_id) == ("failed", None, "a b")
    e = error_from_reply("NOTREADY task x is working; no result yet")
    assert isinstance(e, NotReady) and (e.task_id, e.status) == ("x", "working")
    # redis-py strips "ERR ": the LIMIT option's error must not look like the LIMIT code
    e = error_from_reply("LIMIT must be between 1 and 1000")
    assert type(e) is InvalidArgument and e.message == "ERR LIMIT must be between 1 and 1000"
    e = error_from_reply("LIMIT owner has 1 tasks (max 1): cancel or wait for existing tasks")
    assert type(e) is LimitExceeded and e.mcp_code == -32603
    e = error_from_reply("internal error running 'task.get'")
    assert type(e) is InternalError and e.mcp_code == -32603
    e = error_from_reply("ERR syntax error")
    assert type(e) is InvalidArgument and e.detail == "syntax error"
    assert str(e) == "ERR syntax error"


def _raises(cls: type[TaskError], fn: Callable[[], object]) -> TaskError:
    with pytest.raises(TaskError) as info:
        fn()
    err = info.value
    assert type(err) is cls, (type(err), err)
    assert err.mcp_code == SECTION_5.get(err.code, (None, cls.mcp_code))[1]
    assert str(err).startswith(cls.code + " ")
    return err


def test_every_task_error_over_the_wire(
    make_server: Callable[..., Any], options: dict[str, Any]
) -> None:
    srv = make_server(max_tasks_per_owner=3, expired_retention_ms=3_600_000)
    with TaskClient(srv.url, **options) as c:
        e = _raises(TaskNotFound, lambda: c.get("nope"))
        assert e.task_id == "nope" and e.detail == "task not found: nope"
        done = c.create(task_id="done")
        c.complete("done", "completed", {})
        e = _raises(InvalidTransition, lambda: c.cancel("done"))
        assert isinstance(e, InvalidTransition)
        assert (e.from_status, e.to_status, e.task_id) == ("completed", "cancelled", "done")
        e = _raises(InvalidTransition, lambda: c.update("done", "working", message="late"))
        assert isinstance(e, InvalidTransition) and e.from_status == "completed"
        assert c.update("done", message="late").status_message == "late"  # not a transition
        work = c.create(task_id="work")
        e = _raises(NotReady, lambda: c.result("work"))
        assert e.task_id == "work"
        deep: dict[str, Any] = {}
        for _ in range(11):
            deep = {"d": deep}
        e = _raises(TooLarge, lambda: c.set_variables("work", deep))
        assert "levels deep" in e.detail
        e = _raises(TaskExists, lambda: c.create(task_id=done.task_id))
        assert e.task_id == "done"
        # the third task, with a ttl of 1 ms: expired, not evicted (retention 1 h)
        c.create(task_id="short", ttl=1)
        _raises(LimitExceeded, lambda: c.create())
        deadline = time.monotonic() + 30
        while True:
            try:
                c.update("short", message="tick")
            except TaskExpired as exc:
                assert exc.task_id == "short" and exc.mcp_code == -32602
                break
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert c.get("short").task_id == "short"  # expired tasks stay readable
        e = _raises(InvalidArgument, lambda: c.list(limit=0))
        assert e.message == "ERR LIMIT must be between 1 and 1000"
        _raises(InvalidArgument, lambda: c.list(cursor="bogus"))
        _raises(InvalidArgument, lambda: c.get("has space"))
        _raises(InvalidArgument, lambda: c.update(work.task_id, "Working"))  # type: ignore[arg-type]
        _raises(InvalidArgument, lambda: c.update(work.task_id))


def test_identity_errors(make_server: Callable[..., Any], options: dict[str, Any]) -> None:
    srv = make_server(requirepass="pw")
    with TaskClient(srv.url, **options) as c:
        e = _raises(AuthenticationRequired, lambda: c.get("x"))
        # RESP2: the command is refused; RESP3: redis-py's HELLO 3 handshake already is
        assert str(e) in (
            "NOAUTH Authentication required.",
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client "
            "and select the RESP protocol version at the same time",
        )
        assert e.mcp_code is None
    with TaskClient(srv.url.replace("redis://", "redis://:wrong@"), **options) as c:
        e = _raises(WrongPassword, lambda: c.get("x"))
        assert e.mcp_code is None
    with TaskClient(srv.url.replace("redis://", "redis://:pw@"), **options) as c:
        _raises(TaskNotFound, lambda: c.get("x"))

    users = make_server(users=USERS)
    with TaskClient(user_url(users.url, "alice", "wrong"), **options) as c:
        e = _raises(WrongPassword, lambda: c.create())
        assert "invalid username-password pair" in str(e)
    with TaskClient(user_url(users.url, "alice", "alice-pw"), owner="bob", **options) as c:
        _raises(PermissionDenied, lambda: c.create())


def test_unblocked(server: Any, options: dict[str, Any]) -> None:
    r = redis.Redis.from_url(server.url, single_connection_client=True, **options)
    client_id = r.client_id()
    c = TaskClient(redis=r)
    c.create(task_id="u")
    caught: list[BaseException] = []

    def blocked() -> None:
        try:
            c.wait("u", status="working", block=0)
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    until_blocked(server.url)
    admin = redis.Redis.from_url(server.url)
    assert admin.execute_command("CLIENT", "UNBLOCK", client_id, "ERROR") == 1
    admin.close()
    thread.join(30)
    assert len(caught) == 1 and type(caught[0]) is Unblocked
    assert caught[0].mcp_code is None
    r.close()


# -- the asyncio client -------------------------------------------------------------------


def test_async_client(server: Any, options: dict[str, Any]) -> None:
    async def main() -> None:
        async with AsyncTaskClient(server.url, **options) as c:
            t = await c.create(task_id="a", ttl=1000, poll_interval=5)
            assert await c.get("a") == t
            assert (await c.update("a", "input_required", message="m")).status_message == "m"
            assert (await c.set_variables("a", {"k": [1]})).meta == {"k": [1]}
            await c.set_result("a", {"r": 1})
            with pytest.raises(NotReady):
                await c.result("a")
            with pytest.raises(TimeoutError):
                await c.result("a", block=5)
            assert await c.result("a", any=True) == {"r": 1}
            assert await c.result("a", any=True, block=0) == {"r": 1}
            empty = (await c.create()).task_id
            assert await c.result(empty, any=True, default=0) == 0
            assert await c.delete(empty) is True
            assert await c.wait("a", status="input_required", block=5) is None

            waiter = asyncio.ensure_future(c.wait("a", status="input_required"))
            result = asyncio.ensure_future(c.result("a", block=0))
            await asyncio.to_thread(until_blocked, server.url, 2)
            done = await c.complete("a", "completed", {"r": 2}, message="ok")
            assert await waiter == done
            assert await result == {"r": 2}

            b = await c.create()
            assert (await c.cancel(b.task_id)).status == "cancelled"
            with pytest.raises(InvalidTransition):
                await c.cancel(b.task_id)
            for i in range(4):
                await c.create(task_id=f"p{i}")
            pages = [p async for p in c.iter_pages(limit=4)]
            assert [len(p.tasks) for p in pages] == [4, 2]
            ids = [t.task_id async for t in c.iter_tasks(limit=1)]
            assert ids == ["p3", "p2", "p1", "p0", b.task_id, "a"]
            assert [t.task_id for t in await c.all_tasks()] == ids
            assert (await c.list(limit=1)).next_cursor is not None
            assert await c.delete("a") is True and await c.delete("a") is False
            with pytest.raises(TaskNotFound) as e:
                await c.get("a")
            assert e.value.mcp_code == -32602
            assert await c.cleanup() == 0
            assert (await c.config())["list_max_limit"] == 1000

    asyncio.run(main())


def test_async_client_pool_and_owner(make_server: Callable[..., Any]) -> None:
    srv = make_server(users=USERS)

    async def main() -> None:
        pool = redis.asyncio.ConnectionPool.from_url(user_url(srv.url, "svc", "svc-pw"))
        async with AsyncTaskClient(connection_pool=pool, owner="alice") as svc:
            await svc.create(task_id="x")
            async with AsyncTaskClient(user_url(srv.url, "alice", "alice-pw")) as alice:
                assert (await alice.get("x")).task_id == "x"
            with pytest.raises(TaskNotFound):
                await svc.get("x", owner="local")
        await pool.aclose()  # a pool passed in belongs to the caller
        async with AsyncTaskClient(user_url(srv.url, "alice", "alice-pw"), owner="x") as bad:
            with pytest.raises(PermissionDenied):
                await bad.get("x")

    asyncio.run(main())


# -- typing -------------------------------------------------------------------------------


def test_shipped_typed() -> None:
    from importlib.resources import files

    assert files("taskstore").joinpath("py.typed").is_file()
