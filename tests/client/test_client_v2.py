"""taskstore.client and the MCP 2026-07-28 task generation (design.md §5b), against real
in-process servers whose default generation is set explicitly (``mcp_version=``):

- ``version=`` pins every connection of a client (pool, reconnects, a pool or ``Redis`` passed
  in, pub/sub), whatever the server's default; ``None`` follows the server;
- TASK.ASK / ANSWER / ANSWERS [BLOCK] / FAIL / CANCEL REQUEST / INSPECT through TaskClient and
  AsyncTaskClient in both generations, typed results, errors as the existing classes;
- :class:`Task` parses both shapes and gives the server's bytes back;
- the MCP SDK 1.x adapter keeps the first generation on a server that defaults to the second.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, cast

import pytest
import redis
import redis.asyncio

from taskstore.client import (
    MCP_2025_11_25,
    MCP_2026_07_28,
    AsyncTaskClient,
    InputKeyExists,
    InvalidArgument,
    InvalidTransition,
    McpVersion,
    Task,
    TaskClient,
    TaskExists,
    TaskInspection,
    TaskNotFound,
    TooLarge,
)
from taskstore.client.errors import error_from_reply

from .conftest import until_blocked

V1: McpVersion = MCP_2025_11_25
V2: McpVersion = MCP_2026_07_28
VERSIONS = [pytest.param(V1, id="v2025"), pytest.param(V2, id="v2026")]

PROTOCOLS = [
    pytest.param({"protocol": 2}, id="resp2"),
    pytest.param({"protocol": 3}, id="resp3"),
    pytest.param({"protocol": 2, "decode_responses": True}, id="resp2-decoded"),
    pytest.param({"protocol": 3, "decode_responses": True}, id="resp3-decoded"),
]

ELICIT = {
    "method": "elicitation/create",
    "params": {"message": "Which file?", "requestedSchema": {"type": "object"}},
}
SAMPLE = {"method": "sampling/createMessage", "params": {"messages": [], "maxTokens": 10}}
ACCEPT = {"action": "accept", "content": {"file": "a.txt"}}
RESULT = {"content": [{"type": "text", "text": "done"}], "isError": False}
ERROR = {"code": -32000, "message": "tool crashed", "data": {"trace": "x"}}


def other(version: McpVersion) -> McpVersion:
    return V2 if version == V1 else V1


def connection_versions(r: redis.Redis, n: int = 3) -> list[str]:
    """TASK.VERSION on ``n`` distinct connections of a client's pool, opened at once."""
    pool = r.connection_pool
    try:
        conns = [pool.get_connection() for _ in range(n)]
    except TypeError:  # redis-py < 5.3 wants a command name
        conns = [pool.get_connection("TASK.VERSION") for _ in range(n)]
    try:
        assert len({id(c) for c in conns}) == n
        seen = []
        for conn in conns:
            conn.send_command("TASK.VERSION")
            reply = conn.read_response()
            seen.append(reply.decode() if isinstance(reply, bytes) else reply)
        return seen
    finally:
        for conn in conns:
            pool.release(conn)


# -- the generation of a client's connections -----------------------------------------------


@pytest.mark.parametrize("server_default", VERSIONS)
@pytest.mark.parametrize("version", [*VERSIONS, pytest.param(None, id="server")])
def test_version_pins_every_connection(
    make_server: Callable[..., Any], server_default: McpVersion, version: McpVersion | None
) -> None:
    srv = make_server(mcp_version=server_default)
    expected = version or server_default
    with TaskClient(srv.url, version=version) as c:
        assert c.mcp_version == version
        task = c.create(ttl=60_000, poll_interval=250)
        assert task.mcp_version == expected
        assert (task.ttl, task.ttl_ms, task.poll_interval, task.poll_interval_ms) == (
            60_000,
            60_000,
            250,
            250,
        )
        assert "ttlMs" in task.to_wire() if expected == V2 else "ttl" in task.to_wire()
        assert connection_versions(c.redis) == [expected] * 3
        assert c.list().tasks[0].mcp_version == expected


def test_default_is_first_generation(make_server: Callable[..., Any]) -> None:
    """Existing users keep the first generation on a server that defaults to the second."""
    srv = make_server(mcp_version=V2)
    with TaskClient(srv.url) as c:
        assert c.mcp_version == V1
        task = c.set_variables(c.create().task_id, {"k": 1})
        assert task.mcp_version == V1 and task.meta == {"k": 1}


def test_unsupported_version_is_refused_early() -> None:
    with pytest.raises(ValueError, match="unsupported MCP version '2024-11-05'"):
        TaskClient("redis://127.0.0.1:1", version="2024-11-05")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AsyncTaskClient("redis://127.0.0.1:1", version="v2")  # type: ignore[arg-type]


@pytest.mark.parametrize("version", VERSIONS)
def test_version_survives_reconnects(make_server: Callable[..., Any], version: McpVersion) -> None:
    srv = make_server(mcp_version=other(version))
    admin = redis.Redis.from_url(srv.url, single_connection_client=True)
    with TaskClient(srv.url, version=version) as c:
        task_id = c.create().task_id
        # the server closes every connection but the admin's
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        for _ in range(2):  # redis-py < 6 does not retry the first command on a dead socket
            try:
                got = c.get(task_id)
                break
            except redis.ConnectionError:
                continue
        assert got.mcp_version == version
        c.redis.connection_pool.disconnect()  # the client's side closing them too
        assert c.get(task_id).mcp_version == version
        # the server's default changes: the client's new connections still pin theirs
        admin.execute_command("CONFIG", "SET", "mcp_version", version)
        admin.execute_command("CONFIG", "SET", "mcp_version", other(version))
        c.redis.connection_pool.disconnect()
        assert c.get(task_id).mcp_version == version
    admin.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_async_version_survives_reconnects(
    make_server: Callable[..., Any], version: McpVersion
) -> None:
    srv = make_server(mcp_version=other(version))

    async def main() -> None:
        admin = redis.asyncio.Redis.from_url(srv.url, single_connection_client=True)
        async with AsyncTaskClient(srv.url, version=version) as c:
            assert c.mcp_version == version
            task_id = (await c.create()).task_id
            await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            for _ in range(2):
                try:
                    got = await c.get(task_id)
                    break
                except redis.ConnectionError:
                    continue
            assert got.mcp_version == version
            await c.redis.connection_pool.disconnect()
            assert (await c.get(task_id)).mcp_version == version
            # several connections at once: each one pinned
            waits = [c.answers(task_id, block=1) for _ in range(3)]
            assert await asyncio.gather(*waits) == [{}, {}, {}]
            assert await c.redis.execute_command("TASK.VERSION") in (version, version.encode())
        await admin.aclose()

    asyncio.run(main())


def test_callers_pool_and_redis_are_pinned(make_server: Callable[..., Any]) -> None:
    """A pool or Redis passed in, even one that has connected in the server's generation."""
    srv = make_server(mcp_version=V2)
    pool = redis.ConnectionPool.from_url(srv.url)
    used = redis.Redis(connection_pool=pool)
    assert used.execute_command("TASK.VERSION") == b"2026-07-28"  # an idle, open connection
    with TaskClient(connection_pool=pool) as c:
        assert c.create(task_id="p").mcp_version == V1
        assert connection_versions(used) == [V1] * 3
    # the pool keeps its hook: one pool, one generation
    with pytest.raises(ValueError, match="selects MCP version 2025-11-25 already"):
        TaskClient(connection_pool=pool, version=V2)
    with TaskClient(connection_pool=pool, version=V1) as again:
        assert again.get("p").mcp_version == V1
    pool.disconnect()

    # a single-connection Redis keeps its connection (and client id): TASK.VERSION on it
    single = redis.Redis.from_url(srv.url, single_connection_client=True)
    client_id = single.client_id()
    c = TaskClient(redis=single, version=V1)
    assert c.get("p").mcp_version == V1
    assert single.client_id() == client_id
    c.close()
    single.close()

    # version=None leaves a caller's pool alone
    plain = redis.Redis.from_url(srv.url)
    with TaskClient(redis=plain, version=None) as c:
        assert c.get("p").mcp_version == V2
    assert "redis_connect_func" not in plain.connection_pool.connection_kwargs
    plain.close()


def test_async_callers_pool_is_pinned(make_server: Callable[..., Any]) -> None:
    srv = make_server(mcp_version=V2)

    async def main() -> None:
        pool = redis.asyncio.ConnectionPool.from_url(srv.url)
        used = redis.asyncio.Redis(connection_pool=pool)
        assert await used.execute_command("TASK.VERSION") == b"2026-07-28"
        async with AsyncTaskClient(connection_pool=pool) as c:
            assert (await c.create(task_id="p")).mcp_version == V1
            assert await used.execute_command("TASK.VERSION") == b"2025-11-25"
        await pool.aclose()

        single = redis.asyncio.Redis.from_url(srv.url, single_connection_client=True)
        client_id = await single.client_id()
        c = AsyncTaskClient(redis=single, version=V1)
        assert (await c.get("p")).mcp_version == V1
        assert await single.client_id() == client_id
        await single.aclose()

    asyncio.run(main())


def test_connect_hook_of_the_caller_still_runs(make_server: Callable[..., Any]) -> None:
    srv = make_server(mcp_version=V2)
    calls: list[object] = []

    def mine(conn: Any) -> None:
        calls.append(conn)
        conn.on_connect()
        conn.send_command("CLIENT", "SETNAME", "worker-7")
        conn.read_response()

    with TaskClient(srv.url, redis_connect_func=mine) as c:
        assert c.create().mcp_version == V1
        assert c.redis.client_getname() in (b"worker-7", "worker-7")
    assert len(calls) == 1


def test_pubsub_messages_in_the_clients_generation(make_server: Callable[..., Any]) -> None:
    srv = make_server(mcp_version=V1)
    with TaskClient(srv.url, version=V2) as c:
        sub = c.redis.pubsub()  # a connection of the client's pool: pinned too
        sub.subscribe("tasks:local")
        first = sub.get_message(timeout=5)
        assert first is not None and first["type"] == "subscribe"
        task = c.create()
        c.ask(task.task_id, {"q": ELICIT})
        messages: list[Task] = []
        while len(messages) < 2:
            msg = sub.get_message(timeout=5)
            assert msg is not None
            messages.append(Task.from_wire(msg["data"]))
        sub.close()
    assert [m.mcp_version for m in messages] == [V2, V2]
    assert messages[1].input_requests == {"q": ELICIT}


def test_server_without_task_version(redis_server: int) -> None:
    """A server older than TASK.VERSION (here a real Redis) speaks the first generation: the
    default client connects to it; a second-generation client refuses to."""
    url = f"redis://127.0.0.1:{redis_server}"
    with TaskClient(url) as c:
        assert c.redis.ping() is True
    with TaskClient(url, version=V2) as c:
        with pytest.raises(redis.ResponseError, match="unknown command"):
            c.redis.ping()
        with pytest.raises(InvalidArgument, match="unknown command"):
            c.get("x")


# -- the round trip ---------------------------------------------------------------------------


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> McpVersion:
    return cast(McpVersion, request.param)


@pytest.fixture
def client(make_server: Callable[..., Any], version: McpVersion) -> Iterator[TaskClient]:
    srv = make_server(mcp_version=other(version))  # the client pins, whatever the default
    with TaskClient(srv.url, version=version) as c:
        c.url = srv.url  # type: ignore[attr-defined]
        yield c


def test_round_trip(client: TaskClient, version: McpVersion) -> None:
    v2 = version == V2
    task = client.create(ttl=60_000)
    asked = client.ask(task.task_id, {"file": ELICIT, "llm": SAMPLE}, message="need input")
    assert (asked.status, asked.status_message) == ("input_required", "need input")
    got = client.get(task.task_id)
    assert got == asked
    assert got.input_requests == ({"file": ELICIT, "llm": SAMPLE} if v2 else None)
    assert got.result is None and got.error is None and not got.has_result

    # a partial answer: still input_required, one request outstanding
    assert client.answer(task.task_id, {"file": ACCEPT}) == 1
    got = client.get(task.task_id)
    assert got.status == "input_required"
    assert got.input_requests == ({"llm": SAMPLE} if v2 else None)
    assert client.answers(task.task_id) == {"file": ACCEPT}
    assert client.answers(task.task_id, block=10) is None  # "llm" is outstanding

    # answered already, never asked, cannot be a key: ignored; the last one accepted
    reply = {"role": "assistant", "content": {"type": "text", "text": "hi"}}
    accepted = client.answer(
        task.task_id, {"file": {"action": "decline"}, "nope": {}, "bad key": {}, "llm": reply}
    )
    assert accepted == 1
    working = client.get(task.task_id)
    assert (working.status, working.status_message, working.input_requests) == (
        "working",
        None,
        None,
    )
    assert client.answers(task.task_id, block=10) == {"file": ACCEPT, "llm": reply}

    # a key is never asked twice, answered or not
    with pytest.raises(InputKeyExists) as exc:
        client.ask(task.task_id, {"new": ELICIT, "file": ELICIT})
    assert (exc.value.key, exc.value.task_id, exc.value.mcp_code) == ("file", None, -32602)
    assert isinstance(exc.value, TaskExists)
    assert str(exc.value) == "EXISTS input request key already used: file"
    assert client.get(task.task_id).status == "working"  # nothing changed

    done = client.complete(task.task_id, "completed", RESULT)
    assert client.result(task.task_id) == RESULT
    assert done.has_result is v2 and done.result == (RESULT if v2 else None)
    assert client.get(task.task_id) == done
    assert client.answer(task.task_id, {"x": {}}) == 0  # terminal: ignored

    record = client.inspect(task.task_id)
    assert record.issued_keys == ("file", "llm")
    assert record.answers == {"file": ACCEPT, "llm": reply}
    assert record.input_requests == {}
    assert record.task == done


def test_fail(client: TaskClient, version: McpVersion) -> None:
    task = client.create()
    failed = client.fail(task.task_id, ERROR, message="it broke")
    assert (failed.status, failed.status_message) == ("failed", "it broke")
    assert failed.error == (ERROR if version == V2 else None)
    assert client.result(task.task_id) == {"error": ERROR}
    assert client.inspect(task.task_id).error == ERROR
    with pytest.raises(InvalidTransition) as exc:
        client.fail(task.task_id, ERROR)
    assert (exc.value.from_status, exc.value.to_status) == ("failed", "failed")

    other_task = client.create()
    with pytest.raises(InvalidArgument, match="JSON-RPC error object"):
        client.fail(other_task.task_id, {"message": "no code"})
    # failed the first-generation way: the second generation shows an internal error
    old = client.complete(other_task.task_id, "failed", {"isError": True}, message="bad")
    if version == V2:
        assert old.error == {"code": -32603, "message": "bad"}
    else:
        assert old.error is None
    assert client.inspect(other_task.task_id).error is None


def test_request_cancel(client: TaskClient, version: McpVersion) -> None:
    task = client.create()
    client.ask(task.task_id, {"q": ELICIT})
    first = client.request_cancel(task.task_id, message="user gave up")
    assert (first.status, first.status_message) == ("input_required", "user gave up")
    record = client.inspect(task.task_id)
    assert record.cancel_requested and record.cancel_requested_at is not None
    # a second request changes nothing
    again = client.request_cancel(task.task_id, message="other")
    assert again == first
    assert client.inspect(task.task_id).cancel_requested_at == record.cancel_requested_at
    # cancellation requested: ANSWERS BLOCK answers at once though "q" is outstanding
    assert client.answers(task.task_id, block=10_000) == {}
    cancelled = client.cancel(task.task_id)
    assert cancelled.status == "cancelled"
    assert client.request_cancel(task.task_id) == cancelled  # terminal: a no-op, no error
    with pytest.raises(TaskNotFound):
        client.request_cancel("missing")


def test_request_cancel_wakes_wait(client: TaskClient) -> None:
    task = client.create()
    seen: list[Task | None] = []
    url = client.url  # type: ignore[attr-defined]
    with TaskClient(url, version=client.mcp_version) as waiter:
        thread = threading.Thread(
            target=lambda: seen.append(waiter.wait(task.task_id, block=30_000))
        )
        thread.start()
        until_blocked(url)
        client.request_cancel(task.task_id)
        thread.join(30)
    assert len(seen) == 1 and seen[0] is not None and seen[0].status == "working"


def test_answers_block_woken_by_another_client(client: TaskClient, version: McpVersion) -> None:
    task = client.create()
    client.ask(task.task_id, {"a": ELICIT, "b": ELICIT})
    url = client.url  # type: ignore[attr-defined]
    results: list[Any] = []

    def worker() -> None:
        with TaskClient(url, version=version) as w:
            results.append(w.answers(task.task_id, block=30_000))

    thread = threading.Thread(target=worker)
    thread.start()
    until_blocked(url)
    with TaskClient(url, version=other(version)) as requester:  # any generation may answer
        assert requester.answer(task.task_id, {"a": ACCEPT}) == 1
        until_blocked(url)  # one of two: the worker still waits
        assert requester.answer(task.task_id, {"b": ACCEPT}) == 1
    thread.join(30)
    assert results == [{"a": ACCEPT, "b": ACCEPT}]

    # woken by the end of the task too
    client.ask(task.task_id, {"c": ELICIT})
    thread = threading.Thread(target=worker)
    thread.start()
    until_blocked(url)
    client.cancel(task.task_id)
    thread.join(30)
    assert results[1] == {"a": ACCEPT, "b": ACCEPT}


@pytest.mark.parametrize("options", PROTOCOLS)
@pytest.mark.parametrize("version", VERSIONS)
def test_inspect(
    make_server: Callable[..., Any], version: McpVersion, options: dict[str, Any]
) -> None:
    srv = make_server(mcp_version=other(version))
    with TaskClient(srv.url, version=version, **options) as c:
        task = c.create("prompts/get", ttl=60_000, task_id="i-1")
        c.set_variables(task.task_id, {"step": 2, "who": "ann"})
        c.ask(task.task_id, {"z": ELICIT, "a": SAMPLE})
        c.answer(task.task_id, {"z": ACCEPT})
        record = c.inspect(task.task_id)
        assert isinstance(record, TaskInspection)
        assert record.task == c.get(task.task_id)
        assert record.task.mcp_version == version
        assert (record.owner, record.method) == ("local", "prompts/get")
        assert record.variables == {"step": 2, "who": "ann"}
        assert record.input_requests == {"a": SAMPLE}
        assert record.issued_keys == ("a", "z")
        assert record.answers == {"z": ACCEPT}
        assert record.error is None and record.cancel_requested_at is None
        assert not record.cancel_requested
        assert record.expires_at == task.created_at + timedelta(milliseconds=60_000)

        bare = c.inspect(c.create(ttl=c.config()["max_ttl_ms"]).task_id)
        assert (bare.variables, bare.input_requests, bare.answers) == ({}, {}, {})
        assert bare.issued_keys == ()
        with pytest.raises(TaskNotFound):
            c.inspect("missing")


def test_errors(make_server: Callable[..., Any], version: McpVersion) -> None:
    srv = make_server(mcp_version=other(version), max_input_bytes=400)
    with TaskClient(srv.url, version=version) as c:
        task = c.create()
        with pytest.raises(InvalidArgument, match="string method and an object params"):
            c.ask(task.task_id, {"k": {"method": "x"}})
        with pytest.raises(InvalidArgument, match="input request key"):
            c.ask(task.task_id, {"has space": ELICIT})
        with pytest.raises(ValueError, match="cannot be an input request key"):
            c.ask(task.task_id, {"Message": ELICIT})
        with pytest.raises(InvalidArgument):
            c.ask(task.task_id, {})
        big = {"method": "m", "params": {"text": "x" * 500}}
        with pytest.raises(TooLarge):
            c.ask(task.task_id, {"big": big})
        assert c.get(task.task_id).status == "working"  # nothing changed
        with pytest.raises(TaskNotFound):
            c.ask("missing", {"k": ELICIT})

        c.ask(task.task_id, {"k": ELICIT})
        # an answer that is not an object: the server refuses the batch
        with pytest.raises(InvalidArgument, match="JSON object"):
            c.answer(task.task_id, {"k": ["not", "an", "object"]})  # type: ignore[dict-item]
        # OWNER / MESSAGE keys (e.g. from an MCP client's tasks/update) are never outstanding:
        # left out instead of being read as options
        assert c.answer(task.task_id, {"OWNER": {"x": 1}, "MESSAGE": {}}) == 0
        assert c.answer(task.task_id, {"owner": {}, "k": ACCEPT}) == 1
        with pytest.raises(TaskNotFound):
            c.answer("missing", {"k": ACCEPT})
        with pytest.raises(TaskNotFound):
            c.answer("missing", {"OWNER": {}})  # nothing sendable: still NOTFOUND
        with pytest.raises(TaskNotFound):
            c.answers("missing")
        with pytest.raises(TaskNotFound):
            c.answers("missing", block=10)

        c.cancel(task.task_id)
        with pytest.raises(InvalidTransition):
            c.ask(task.task_id, {"k2": ELICIT})


def test_error_classes() -> None:
    e = error_from_reply("EXISTS input request key already used: a:b")
    assert type(e) is InputKeyExists and e.key == "a:b" and e.task_id is None
    e = error_from_reply("EXISTS task already exists: job-1")
    assert type(e) is TaskExists and e.task_id == "job-1"


# -- the wire shapes ----------------------------------------------------------------------------


def test_task_gives_back_the_servers_bytes(make_server: Callable[..., Any]) -> None:
    srv = make_server(mcp_version=V1)
    raw = redis.Redis.from_url(srv.url)
    raw.execute_command("TASK.VERSION", V2)
    with TaskClient(srv.url, version=V2) as c:
        ids = [c.create(ttl=60_000, poll_interval=100).task_id for _ in range(6)]
        c.ask(ids[1], {"q": ELICIT}, message="need a file")
        c.complete(ids[2], "completed", RESULT)
        c.complete(ids[3], "completed", None)  # a JSON null result
        c.fail(ids[4], ERROR)
        c.cancel(ids[5], message="stop")
        for task_id in ids:
            wire = bytes(raw.execute_command("TASK.GET", task_id))
            task = Task.from_wire(wire)
            assert task.to_json().encode() == wire
            assert task == c.get(task_id)
        assert Task.from_wire(bytes(raw.execute_command("TASK.GET", ids[3]))).has_result
        page = bytes(raw.execute_command("TASK.LIST"))
        parsed = c.list()
        assert json.dumps(parsed.to_wire(), separators=(",", ":")).encode() == page
        assert all(t.input_requests is None and not t.has_result for t in parsed.tasks)
    raw.close()


# -- the asyncio client ---------------------------------------------------------------------------


@pytest.mark.parametrize("options", PROTOCOLS[1:3])
def test_async_round_trip(
    make_server: Callable[..., Any], version: McpVersion, options: dict[str, Any]
) -> None:
    srv = make_server(mcp_version=other(version))
    v2 = version == V2

    async def main() -> None:
        async with (
            AsyncTaskClient(srv.url, version=version, **options) as worker,
            AsyncTaskClient(srv.url, version=other(version), **options) as requester,
        ):
            task = await worker.create()
            asked = await worker.ask(task.task_id, {"a": ELICIT, "b": SAMPLE}, message="?")
            assert asked.status == "input_required"
            assert asked.input_requests == ({"a": ELICIT, "b": SAMPLE} if v2 else None)

            waiting = asyncio.create_task(worker.answers(task.task_id, block=30_000))
            await asyncio.to_thread(until_blocked, srv.url)
            assert await requester.answer(task.task_id, {"a": ACCEPT}) == 1
            got = await worker.get(task.task_id)
            assert got.input_requests == ({"b": SAMPLE} if v2 else None)
            assert not waiting.done()
            assert await requester.answer(task.task_id, {"b": {"x": 1}, "a": {}}) == 1
            assert await waiting == {"a": ACCEPT, "b": {"x": 1}}
            assert await worker.answers(task.task_id, block=10) == {"a": ACCEPT, "b": {"x": 1}}

            with pytest.raises(InputKeyExists):
                await worker.ask(task.task_id, {"a": ELICIT})
            done = await worker.complete(task.task_id, "completed", RESULT)
            assert done.result == (RESULT if v2 else None)
            assert await requester.result(task.task_id) == RESULT

            record = await worker.inspect(task.task_id)
            assert record.issued_keys == ("a", "b") and record.task == done

            failing = await worker.create()
            cancel_seen = await requester.request_cancel(failing.task_id, message="stop")
            assert cancel_seen.status == "working"
            assert (await worker.inspect(failing.task_id)).cancel_requested
            assert await worker.answers(failing.task_id, block=0) == {}
            failed = await worker.fail(failing.task_id, ERROR)
            assert failed.error == (ERROR if v2 else None)
            assert await requester.result(failing.task_id) == {"error": ERROR}
            assert await worker.answer(failing.task_id, {"a": {}}) == 0
            with pytest.raises(TaskNotFound):
                await worker.answer("missing", {"a": {}})
            with pytest.raises(TaskNotFound):
                await worker.answer("missing", {"OWNER": {}})
            with pytest.raises(InvalidTransition):
                await worker.ask(failing.task_id, {"z": ELICIT})

    asyncio.run(main())


# -- the MCP SDK 1.x adapter ----------------------------------------------------------------------


def test_mcp_adapter_keeps_the_first_generation(make_server: Callable[..., Any]) -> None:
    pytest.importorskip("mcp")
    from mcp.types import CallToolResult, TaskMetadata, TextContent

    from taskstore.mcp import TaskstoreTaskStore

    srv = make_server(mcp_version=V2)

    async def main() -> None:
        async with TaskstoreTaskStore(srv.url) as store:
            created = await store.create_task(TaskMetadata(ttl=60_000), task_id="m-1")
            assert created.ttl == 60_000
            result = CallToolResult(content=[TextContent(type="text", text="ok")])
            await store.store_result("m-1", result)
            await store.update_task("m-1", status="completed")
            got = await store.get_task("m-1")
            assert got is not None and got.status == "completed"
            assert await store.get_result("m-1") == result

    asyncio.run(main())


def test_lease_take_renew_and_another_worker_refused(make_server: Any) -> None:
    from taskstore.client import LeaseHeld, TaskClient

    srv = make_server(mcp_version="2026-07-28")
    with TaskClient(srv.url, version="2026-07-28") as c:
        task = c.create("tools/call")
        assert c.lease(task.task_id, "w1", 5000) == 5000
        assert c.lease(task.task_id, "w1", 5000) == 5000
        with pytest.raises(LeaseHeld) as e:
            c.lease(task.task_id, "w2", 5000)
        assert e.value.task_id == task.task_id and 0 < (e.value.remaining_ms or 0) <= 5000
        assert e.value.mcp_code == -32603
        assert c.lease(task.task_id, "w1", 0) == 0
        assert c.inspect(task.task_id).task.status == "working"
