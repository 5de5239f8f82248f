"""taskstore.mcp.TaskstoreTaskStore against the MCP Python SDK's TaskStore contract.

The contract tests run twice, once on the SDK's own InMemoryTaskStore and once on the adapter
over a real taskstore server, with the same assertions: what they check is the SDK's
behaviour, and the adapter has to match it. The tests after them pin down, one by one, the
differences that docs/mcp.md lists, and how the adapter bridges each.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import textwrap
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

pytest.importorskip("mcp.shared.experimental.tasks.store")

from mcp.server.experimental.task_scope import new_session_scope, scoped_task_id
from mcp.shared.experimental.tasks.in_memory_task_store import InMemoryTaskStore
from mcp.shared.experimental.tasks.store import TaskStore
from mcp.types import (
    CallToolResult,
    CreateMessageResult,
    ElicitResult,
    Result,
    Task,
    TaskMetadata,
    TextContent,
)

from taskstore.client import AsyncTaskClient, LimitExceeded, NotReady, PermissionDenied, TaskClient
from taskstore.mcp import RESULT_TYPE_KEY, TaskstoreTaskStore, decode_result, encode_result

from .conftest import PYTHON, USERS, blocked_clients, child_env, until_blocked, user_url

Body = Callable[[TaskStore], Awaitable[None]]
UUID4 = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


class CustomResult(Result):
    """A Result subclass of the application's own."""

    answer: int
    note: str | None = None


def run(store: TaskStore, body: Body) -> None:
    async def main() -> None:
        try:
            await body(store)
        finally:
            if isinstance(store, TaskstoreTaskStore):
                await store.aclose()

    asyncio.run(main())


@pytest.fixture(params=["in-memory", "taskstore"])
def new_store(request: pytest.FixtureRequest, server: Any) -> Callable[..., TaskStore]:
    """Make the store under test: the SDK's reference, or the adapter on a fresh server."""

    def make(**kwargs: Any) -> TaskStore:
        if request.param == "in-memory":
            return InMemoryTaskStore(**kwargs)
        return TaskstoreTaskStore(server.url, **kwargs)

    return make


async def wait_until_waiting(store: TaskStore, url: str, n: int = 1) -> None:
    """Return once ``n`` wait_for_update calls are really waiting (no sleeping and hoping)."""
    if isinstance(store, TaskstoreTaskStore):
        await asyncio.to_thread(until_blocked, url, n)
    else:
        for _ in range(5):
            await asyncio.sleep(0)


async def still_waiting(store: TaskStore, url: str, waiter: asyncio.Future[Any]) -> bool:
    """Whether ``waiter`` is still parked after a change just made (synchronously decided:
    the server wakes a blocked client while it runs the change itself)."""
    await wait_until_waiting(store, url)
    return not waiter.done()


# == the contract, on both stores =================================================================


def test_create_task_generates_ids(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        a = await store.create_task(TaskMetadata(ttl=60_000))
        b = await store.create_task(TaskMetadata(ttl=60_000), task_id="")  # "" = generate
        assert isinstance(a, Task) and type(a) is Task
        assert UUID4.match(a.taskId) and UUID4.match(b.taskId) and a.taskId != b.taskId
        assert (a.status, a.statusMessage, a.ttl, a.pollInterval) == (
            "working",
            None,
            60_000,
            500,
        )
        assert a.createdAt == a.lastUpdatedAt
        assert a.createdAt.tzinfo is not None
        assert await store.get_task(a.taskId) == a

    run(new_store(), body)


def test_create_task_keeps_chosen_ids(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        sdk_id = scoped_task_id(new_session_scope())  # what run_task passes
        assert re.match(r"\A[0-9a-f]{32}:[0-9a-f-]{36}\Z", sdk_id)
        for task_id in (sdk_id, "job-1", "a/b:c?d=e#f", "x" * 256):
            task = await store.create_task(TaskMetadata(ttl=1000), task_id=task_id)
            assert task.taskId == task_id
            got = await store.get_task(task_id)
            assert got is not None and got.taskId == task_id

    run(new_store(), body)


def test_create_task_duplicate_id(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=1000), task_id="dup")
        with pytest.raises(ValueError, match=r"\ATask with ID dup already exists\Z"):
            await store.create_task(TaskMetadata(ttl=1000), task_id="dup")

    run(new_store(), body)


def test_get_task_unknown(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        assert await store.get_task("nope") is None
        assert await store.get_task(str(uuid.uuid4())) is None

    run(new_store(), body)


def test_update_task_status_and_message(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        t = await store.create_task(TaskMetadata(ttl=60_000), task_id="u")
        await asyncio.sleep(0.002)  # so that lastUpdatedAt can move on a millisecond clock
        t1 = await store.update_task("u", status_message="step 1")
        assert (t1.status, t1.statusMessage) == ("working", "step 1")
        assert t1.lastUpdatedAt > t.lastUpdatedAt and t1.createdAt == t.createdAt
        # a status change without a message keeps the message
        t2 = await store.update_task("u", status="input_required")
        assert (t2.status, t2.statusMessage) == ("input_required", "step 1")
        # the same status again is no transition: no error, the message may change
        t3 = await store.update_task("u", status="input_required", status_message="need x")
        assert (t3.status, t3.statusMessage) == ("input_required", "need x")
        t4 = await store.update_task("u", status="working", status_message="resumed")
        assert (t4.status, t4.statusMessage) == ("working", "resumed")
        # neither: only lastUpdatedAt moves
        await asyncio.sleep(0.002)
        t5 = await store.update_task("u")
        assert (t5.status, t5.statusMessage) == ("working", "resumed")
        assert t5.lastUpdatedAt > t4.lastUpdatedAt
        t6 = await store.update_task("u", status="completed")
        assert (t6.status, t6.statusMessage) == ("completed", "resumed")
        assert await store.get_task("u") == t6

    run(new_store(), body)


def test_update_task_errors(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        with pytest.raises(ValueError, match=r"\ATask with ID nope not found\Z"):
            await store.update_task("nope", status="completed")
        with pytest.raises(ValueError, match=r"\ATask with ID nope not found\Z"):
            await store.update_task("nope", status_message="x")
        for terminal in ("completed", "failed", "cancelled"):
            await store.create_task(TaskMetadata(ttl=60_000), task_id=terminal)
            await store.update_task(terminal, status=terminal)  # type: ignore[arg-type]
            for other in ("working", "input_required", "completed", "failed", "cancelled"):
                if other == terminal:
                    continue
                with pytest.raises(
                    ValueError, match=rf"\ACannot transition from terminal status '{terminal}'\Z"
                ):
                    await store.update_task(terminal, status=other)  # type: ignore[arg-type]
            # the same terminal status again is not a transition
            again = await store.update_task(terminal, status=terminal)  # type: ignore[arg-type]
            assert again.status == terminal
            assert (await store.update_task(terminal)).status == terminal

    run(new_store(), body)


def test_store_and_get_result_restore_the_class(new_store: Callable[..., TaskStore]) -> None:
    results: list[Result] = [
        CallToolResult(content=[TextContent(type="text", text="6")]),
        CallToolResult(
            content=[TextContent(type="text", text="x", _meta={"k": 1})],
            structuredContent={"total": 6},
            isError=True,
            _meta={"app/trace": "t1"},
        ),
        CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="hi"), model="m"
        ),
        ElicitResult(action="accept", content={"name": "x", "n": 2, "ok": True}),
        Result(),
        Result(_meta={}),
        Result.model_validate({"custom": [1, {"a": None}], "other": "ü"}),
        CustomResult(answer=42),
        CustomResult(answer=7, note="n", _meta={"a": 1}),
    ]

    async def body(store: TaskStore) -> None:
        for i, stored in enumerate(results):
            tid = f"r{i}"
            await store.create_task(TaskMetadata(ttl=60_000), task_id=tid)
            await store.store_result(tid, stored)
            await store.update_task(tid, status="completed")
            got = await store.get_result(tid)
            assert type(got) is type(stored), i
            assert got == stored, i
            assert got is not None
            assert got.meta == stored.meta, i

    run(new_store(), body)


def test_result_errors_and_absence(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        with pytest.raises(ValueError, match=r"\ATask with ID nope not found\Z"):
            await store.store_result("nope", Result())
        assert await store.get_result("nope") is None
        await store.create_task(TaskMetadata(ttl=60_000), task_id="t")
        await store.update_task("t", status="failed", status_message="boom")
        assert await store.get_result("t") is None  # terminal, no result
        # a result may still be attached to a terminal task, and replaced
        await store.store_result("t", CallToolResult(content=[], isError=True))
        await store.store_result("t", CallToolResult(content=[], isError=False))
        assert await store.get_result("t") == CallToolResult(content=[], isError=False)

    run(new_store(), body)


def test_get_result_whatever_the_status(new_store: Callable[..., TaskStore]) -> None:
    """get_result gives back what store_result stored, at any status."""

    async def body(store: TaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="p")
        assert await store.get_result("p") is None  # nothing stored yet
        partial = CallToolResult(content=[TextContent(type="text", text="so far")])
        await store.store_result("p", partial)
        assert await store.get_result("p") == partial  # still working
        await store.update_task("p", status="input_required")
        assert await store.get_result("p") == partial
        final = CustomResult(answer=1)
        await store.store_result("p", final)
        await store.update_task("p", status="cancelled")
        got = await store.get_result("p")
        assert type(got) is CustomResult and got == final

    run(new_store(), body)


def test_terminal_task_messages_still_change(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        for terminal in ("completed", "failed", "cancelled"):
            t = await store.create_task(TaskMetadata(ttl=60_000), task_id=terminal)
            done = await store.update_task(
                terminal,
                status=terminal,  # type: ignore[arg-type]
                status_message="done",
            )
            await asyncio.sleep(0.002)
            later = await store.update_task(terminal, status_message="archived")
            assert (later.status, later.statusMessage) == (terminal, "archived")
            assert later.lastUpdatedAt > done.lastUpdatedAt and later.createdAt == t.createdAt
            # with the same terminal status too (no transition)
            again = await store.update_task(
                terminal,
                status=terminal,  # type: ignore[arg-type]
                status_message="again",
            )
            assert (again.status, again.statusMessage) == (terminal, "again")
            assert await store.get_task(terminal) == again
            with pytest.raises(ValueError, match=r"\ACannot transition from terminal status"):
                await store.update_task(terminal, status="working", status_message="no")
            got = await store.get_task(terminal)
            assert got is not None and got.statusMessage == "again"

    run(new_store(), body)


def test_cleanup_and_get_all_tasks_helpers(new_store: Callable[..., TaskStore]) -> None:
    """The in-memory store's synchronous helpers, which the SDK's tests call."""

    async def body(store: TaskStore) -> None:
        assert isinstance(store, InMemoryTaskStore | TaskstoreTaskStore)
        a = await store.create_task(TaskMetadata(ttl=60_000))
        b = await store.create_task(TaskMetadata(ttl=60_000))
        assert {t.taskId for t in store.get_all_tasks()} == {a.taskId, b.taskId}
        store.cleanup()  # synchronous, inside the loop
        # the store is still usable afterwards
        c = await store.create_task(TaskMetadata(ttl=60_000))
        assert await store.get_task(c.taskId) == c

    run(new_store(), body)


def test_list_tasks_pages(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        assert await store.list_tasks() == ([], None)
        created = {(await store.create_task(TaskMetadata(ttl=60_000))).taskId for _ in range(25)}
        seen: list[str] = []
        sizes: list[int] = []
        cursor: str | None = None
        while True:
            page, cursor = await store.list_tasks(cursor)
            assert all(type(t) is Task for t in page)
            sizes.append(len(page))
            seen += [t.taskId for t in page]
            if cursor is None:
                break
        assert sizes == [10, 10, 5]
        assert len(seen) == 25 and set(seen) == created

        with pytest.raises(ValueError, match=r"\AInvalid cursor: bogus\Z"):
            await store.list_tasks("bogus")

    run(new_store(), body)


def test_list_tasks_exact_pages_and_page_size(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        for _ in range(10):
            await store.create_task(TaskMetadata(ttl=60_000))
        page, cursor = await store.list_tasks()
        assert len(page) == 10 and cursor is None  # a full last page has no cursor
        for task in page:
            assert await store.delete_task(task.taskId)

    run(new_store(), body)

    async def small(store: TaskStore) -> None:
        for _ in range(3):
            await store.create_task(TaskMetadata(ttl=60_000))
        page, cursor = await store.list_tasks()
        assert len(page) == 2 and cursor is not None
        page, cursor = await store.list_tasks(cursor)
        assert len(page) == 1 and cursor is None

    run(new_store(page_size=2), small)


def test_delete_task(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="d")
        await store.store_result("d", Result())
        assert await store.delete_task("d") is True
        assert await store.get_task("d") is None
        assert await store.get_result("d") is None
        assert await store.delete_task("d") is False
        assert await store.delete_task("never") is False
        # the id can be used again
        assert (await store.create_task(TaskMetadata(ttl=1), task_id="d")).taskId == "d"

    run(new_store(), body)


def test_wait_for_update_unknown(new_store: Callable[..., TaskStore]) -> None:
    async def body(store: TaskStore) -> None:
        with pytest.raises(ValueError, match=r"\ATask with ID nope not found\Z"):
            await store.wait_for_update("nope")
        await store.notify_update("nope")  # no waiter, no task: nothing happens

    run(new_store(), body)


def test_wait_for_update_wakes_on_status_change_only(
    new_store: Callable[..., TaskStore], server: Any
) -> None:
    async def body(store: TaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="w")
        waiter = asyncio.ensure_future(store.wait_for_update("w"))
        await wait_until_waiting(store, server.url)
        # a message, no status change: does not wake it
        await store.update_task("w", status_message="progress")
        await store.update_task("w", status="working")
        await store.store_result("w", Result())
        assert await still_waiting(store, server.url, waiter)
        await store.update_task("w", status="input_required")
        await asyncio.wait_for(waiter, 30)
        assert waiter.result() is None

    run(new_store(), body)


def test_notify_update_wakes_the_waiter(new_store: Callable[..., TaskStore], server: Any) -> None:
    async def body(store: TaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="n")
        waiter = asyncio.ensure_future(store.wait_for_update("n"))
        await wait_until_waiting(store, server.url)
        await store.notify_update("n")
        await asyncio.wait_for(waiter, 30)

    run(new_store(), body)


def test_wait_for_update_can_be_cancelled(new_store: Callable[..., TaskStore], server: Any) -> None:
    """The SDK's tasks/result handler cancels the wait when a queued message wins the race."""

    async def body(store: TaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="c")
        waiter = asyncio.ensure_future(store.wait_for_update("c"))
        await wait_until_waiting(store, server.url)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        if isinstance(store, TaskstoreTaskStore):
            # the server let go of the blocked wait (its connection was closed)
            await asyncio.to_thread(until_blocked, server.url, 0)
            assert store._local_waiters == {}
        # and the store works as before
        assert (await store.update_task("c", status="completed")).status == "completed"

    run(new_store(), body)


# == how the adapter bridges the differences (docs/mcp.md) ========================================


def ts_run(url: str, body: Callable[[TaskstoreTaskStore], Awaitable[None]], **kw: Any) -> None:
    async def main() -> None:
        async with TaskstoreTaskStore(url, **kw) as store:
            await body(store)

    asyncio.run(main())


def test_ttl_none_and_out_of_range(make_server: Callable[..., Any]) -> None:
    bounded = make_server(max_ttl_ms=120_000, default_ttl_ms=30_000)

    async def body(store: TaskstoreTaskStore) -> None:
        # None ("never expires"): the server's default ttl, as unlimited is not allowed
        assert (await store.create_task(TaskMetadata(ttl=None))).ttl == 30_000
        assert (await store.create_task(TaskMetadata())).ttl == 30_000
        # over the maximum: lowered to it (MCP lets the receiver choose the actual ttl)
        assert (await store.create_task(TaskMetadata(ttl=10**12))).ttl == 120_000
        # zero or negative: 1 ms
        assert (await store.create_task(TaskMetadata(ttl=0))).ttl == 1
        assert (await store.create_task(TaskMetadata(ttl=-5))).ttl == 1
        # the maximum changed at run time: read again when the server refuses
        r = redis.Redis.from_url(bounded.url)
        r.config_set("max_ttl_ms", 60_000)
        assert (await store.create_task(TaskMetadata(ttl=90_000))).ttl == 60_000
        r.config_set("max_ttl_ms", 0)
        r.close()
        # (None never makes the server refuse: a store created now sees the change)
        async with TaskstoreTaskStore(bounded.url) as fresh:
            assert (await fresh.create_task(TaskMetadata(ttl=None))).ttl is None

    ts_run(bounded.url, body)

    unlimited = make_server(max_ttl_ms=0)

    async def body2(store: TaskstoreTaskStore) -> None:
        assert (await store.create_task(TaskMetadata(ttl=None))).ttl is None
        assert (await store.create_task(TaskMetadata(ttl=2**60))).ttl == 2**53 - 1

    ts_run(unlimited.url, body2)


def test_list_order_is_newest_first(server: Any) -> None:
    async def body(store: TaskstoreTaskStore) -> None:
        ids = [(await store.create_task(TaskMetadata(ttl=1000))).taskId for _ in range(3)]
        page, _ = await store.list_tasks()
        assert [t.taskId for t in page] == ids[::-1]
        memory = InMemoryTaskStore()
        mids = [(await memory.create_task(TaskMetadata(ttl=1000))).taskId for _ in range(3)]
        assert [t.taskId for t in (await memory.list_tasks())[0]] == mids

    ts_run(server.url, body)


def test_terminal_ttl_counts_from_creation(server: Any) -> None:
    async def body(store: TaskstoreTaskStore) -> None:
        t = await store.create_task(TaskMetadata(ttl=60_000), task_id="t")
        done = await store.update_task("t", status="completed", status_message="done")
        # the ttl still counts from creation (the SDK's in-memory store restarts it)
        assert done.ttl == t.ttl == 60_000 and done.createdAt == t.createdAt

    ts_run(server.url, body)


def test_terminal_message_races_a_status_change(server: Any) -> None:
    """The task became terminal between the adapter's TASK.GET and its TASK.UPDATE: leaving
    that status is the SDK's ValueError; taking the same status is a message update."""

    async def body(store: TaskstoreTaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="r")
        real_get = store._get
        calls = 0

        async def stale_get(task_id: str) -> Any:
            nonlocal calls
            calls += 1
            current = await real_get(task_id)
            if calls == 1:  # the first read: still working, then another process finishes it
                with TaskClient(server.url) as other:
                    other.complete(task_id, "completed", {}, message="by another process")
            return current

        store._get = stale_get  # type: ignore[method-assign]
        with pytest.raises(ValueError, match=r"\ACannot transition from terminal status"):
            await store.update_task("r", status="input_required", status_message="x")
        calls = 0
        await store.create_task(TaskMetadata(ttl=60_000), task_id="s")
        got = await store.update_task("s", status="completed", status_message="mine")
        assert (got.status, got.statusMessage) == ("completed", "mine")
        assert calls == 2  # read again after the server's INVALIDTRANSITION

    ts_run(server.url, body)


def test_get_result_reads_with_any(server: Any) -> None:
    """get_result is TASK.RESULT … ANY: a result stored by another client shows at once."""

    async def body(store: TaskstoreTaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="t")
        with TaskClient(server.url) as c:
            c.set_result("t", {"content": []})
            with pytest.raises(NotReady):
                c.result("t")  # taskstore's own TASK.RESULT still waits for a terminal status
        assert await store.get_result("t") == Result.model_validate({"content": []})

    ts_run(server.url, body)


def test_expired_tasks(make_server: Callable[..., Any]) -> None:
    srv = make_server(expired_retention_ms=3_600_000)

    async def body(store: TaskstoreTaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=1), task_id="e")
        deadline = asyncio.get_running_loop().time() + 30
        while True:  # until the server says it has expired
            try:
                await store.update_task("e", status_message="tick")
            except ValueError as e:
                assert str(e) == "Task with ID e has expired"
                break
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.005)
        got = await store.get_task("e")  # readable until evicted
        assert got is not None and got.status == "working"
        with pytest.raises(ValueError, match=r"\ATask with ID e has expired\Z"):
            await store.store_result("e", Result())
        with pytest.raises(ValueError, match=r"\ATask with ID e already exists\Z"):
            await store.create_task(TaskMetadata(ttl=1), task_id="e")
        assert "e" in [t.taskId for t in (await store.list_tasks())[0]]
        assert await store.delete_task("e") is True

    ts_run(srv.url, body)


def test_ids_taskstore_cannot_hold(server: Any) -> None:
    async def body(store: TaskstoreTaskStore) -> None:
        for bad in ("has space", "x" * 257, "ü"):
            with pytest.raises(ValueError, match=r"\AInvalid task ID"):
                await store.create_task(TaskMetadata(ttl=1000), task_id=bad)
            assert await store.get_task(bad) is None
            assert await store.get_result(bad) is None
            assert await store.delete_task(bad) is False
            with pytest.raises(ValueError, match=r"not found"):
                await store.update_task(bad, status="completed")
            with pytest.raises(ValueError, match=r"not found"):
                await store.store_result(bad, Result())
            with pytest.raises(ValueError, match=r"not found"):
                await store.wait_for_update(bad)

    ts_run(server.url, body)


def test_many_waiters_on_one_task(server: Any) -> None:
    """The SDK's in-memory store keeps one event per task, so of several concurrent waiters
    only the last one wakes; the adapter wakes them all."""

    async def body(store: TaskstoreTaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="m")
        waiters = [asyncio.ensure_future(store.wait_for_update("m")) for _ in range(3)]
        await asyncio.to_thread(until_blocked, server.url, 3)
        await store.notify_update("m")
        await asyncio.wait_for(asyncio.gather(*waiters), 30)
        waiters = [asyncio.ensure_future(store.wait_for_update("m")) for _ in range(3)]
        await asyncio.to_thread(until_blocked, server.url, 3)
        await store.update_task("m", status="input_required")
        await asyncio.wait_for(asyncio.gather(*waiters), 30)

    ts_run(server.url, body)


def test_wait_for_update_returns_when_the_task_is_deleted(server: Any) -> None:
    async def body(store: TaskstoreTaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="gone")
        waiter = asyncio.ensure_future(store.wait_for_update("gone"))
        await asyncio.to_thread(until_blocked, server.url)
        assert await store.delete_task("gone") is True
        await asyncio.wait_for(waiter, 30)

    ts_run(server.url, body)


def test_wait_chunks_follow_the_socket_timeout(server: Any) -> None:
    async def body(store: TaskstoreTaskStore) -> None:
        assert store.wait_chunk_ms == 500  # half the URL's socket_timeout
        await store.create_task(TaskMetadata(ttl=60_000), task_id="s")
        waiter = asyncio.ensure_future(store.wait_for_update("s"))
        await asyncio.to_thread(until_blocked, server.url)
        await asyncio.sleep(1.2)  # longer than one chunk and than the socket timeout
        assert not waiter.done()
        await store.update_task("s", status="cancelled")
        await asyncio.wait_for(waiter, 30)

    ts_run(server.url + "?socket_timeout=1", body)


def test_wait_chunks_follow_redis_py_default_socket_timeout(server: Any) -> None:
    """redis-py 8 reads with a 5 s timeout unless the URL says otherwise: a TASK.WAIT of
    30 s would fail with a TimeoutError after 5 s, so each wait is re-sent within half that."""
    store = TaskstoreTaskStore(server.url)
    timeout = store.socket_timeout()
    if timeout is None:  # redis-py before 8: no read timeout, whole 30 s chunks
        assert store.wait_chunk_ms == 30_000
    else:
        assert store.wait_chunk_ms == min(30_000, int(timeout * 500))
    assert TaskstoreTaskStore(server.url + "?socket_timeout=60").wait_chunk_ms == 30_000


def test_wait_for_update_on_a_terminal_task_returns_at_once(server: Any) -> None:
    """A terminal status never changes again: waiting would be for ever (the in-memory store
    does wait). The SDK's tasks/result handler reads the task, then waits; a task completed in
    between must not leave it waiting."""

    async def body(store: TaskstoreTaskStore) -> None:
        for status in ("completed", "failed", "cancelled"):
            await store.create_task(TaskMetadata(ttl=60_000), task_id=status)
            await store.update_task(status, status=status)  # type: ignore[arg-type]
            await asyncio.wait_for(store.wait_for_update(status), 5)
        assert blocked_clients(server.url) == 0

    ts_run(server.url, body)


def test_task_variables_and_result_marker(server: Any) -> None:
    async def body(store: TaskstoreTaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=60_000), task_id="v")
        with TaskClient(server.url) as c:
            c.set_variables("v", {"step": 2})
        got = await store.get_task("v")
        assert got is not None and got.model_dump(by_alias=True)["_meta"] == {"step": 2}
        result = CallToolResult(content=[TextContent(type="text", text="r")])
        await store.store_result("v", result)
        await store.update_task("v", status="completed")
        with TaskClient(server.url) as c:
            stored = c.result("v")
        # what other clients read: the MCP result, its class named in _meta
        assert stored == {
            "content": [{"type": "text", "text": "r"}],
            "isError": False,
            "_meta": {RESULT_TYPE_KEY: "mcp.types:CallToolResult"},
        }
        assert await store.get_result("v") == result
        # a result stored by another client, without the marker: a plain Result
        with TaskClient(server.url) as c:
            c.set_result("v", {"content": [], "extra": 1})
        plain = await store.get_result("v")
        assert type(plain) is Result
        assert plain.model_dump(by_alias=True, exclude_none=True) == {"content": [], "extra": 1}

    ts_run(server.url, body)


def test_encode_decode_result_edges() -> None:
    assert decode_result(encode_result(Result(_meta={}))) == Result(_meta={})
    assert decode_result(encode_result(Result())).meta is None
    unknown = {"x": 1, "_meta": {RESULT_TYPE_KEY: "somewhere:Unknown", "k": 2}}
    got = decode_result(unknown)
    assert type(got) is Result and got.meta == {"k": 2}
    # a stored class that no longer validates: the data as a plain Result
    broken = {"content": "not a list", "_meta": {RESULT_TYPE_KEY: "mcp.types:CallToolResult"}}
    assert type(decode_result(broken)) is Result
    with pytest.raises(ValueError, match="not a JSON object"):
        decode_result([1, 2])


def test_owner_and_impersonation(make_server: Callable[..., Any]) -> None:
    srv = make_server(users=USERS)
    svc_url = user_url(srv.url, "svc", "svc-pw")

    async def body(store: TaskstoreTaskStore) -> None:
        assert store.owner == "alice"
        await store.create_task(TaskMetadata(ttl=60_000), task_id="a1")
        with TaskClient(user_url(srv.url, "alice", "alice-pw")) as alice:
            assert alice.get("a1").task_id == "a1"
        async with TaskstoreTaskStore(svc_url, owner="bob") as bob:
            assert await bob.get_task("a1") is None
            assert await bob.list_tasks() == ([], None)

    ts_run(svc_url, body, owner="alice")

    async def refused(store: TaskstoreTaskStore) -> None:
        with pytest.raises(PermissionDenied):
            await store.create_task(TaskMetadata(ttl=1000))

    ts_run(user_url(srv.url, "alice", "alice-pw"), refused, owner="bob")


def test_limit_is_not_a_value_error(make_server: Callable[..., Any]) -> None:
    srv = make_server(max_tasks_per_owner=1)

    async def body(store: TaskstoreTaskStore) -> None:
        await store.create_task(TaskMetadata(ttl=1000))
        with pytest.raises(LimitExceeded) as e:
            await store.create_task(TaskMetadata(ttl=1000))
        assert e.value.mcp_code == -32603 and not isinstance(e.value, ValueError)

    ts_run(srv.url, body)


def test_constructor(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKSTORE_URL", raising=False)
    store = TaskstoreTaskStore()
    assert store.url == "redis://127.0.0.1:6379"
    kwargs = store.connection_kwargs()
    assert (kwargs["host"], kwargs["port"]) == ("127.0.0.1", 6379)
    assert (store.page_size, store.poll_interval_ms, store.owner) == (10, 500, None)
    assert isinstance(store, TaskStore)

    monkeypatch.setenv("TASKSTORE_URL", server.url)

    async def body() -> None:
        async with TaskstoreTaskStore(poll_interval_ms=None, request_method="sampling/x") as s:
            t = await s.create_task(TaskMetadata(ttl=1000), task_id="p")
            assert t.pollInterval == 5000  # the server's default_poll_interval_ms
        with pytest.raises(ValueError):
            TaskstoreTaskStore(page_size=0)
        async with AsyncTaskClient(server.url) as shared:
            with pytest.raises(TypeError):
                TaskstoreTaskStore(server.url, client=shared)
            s = TaskstoreTaskStore(client=shared, wait_chunk_ms=10**9)
            assert s.url is None and s.connection_kwargs()["port"] == server.port
            assert (await s.get_task("p")) is not None
            await s.aclose()  # not its client to close
            assert await shared.get("p")
            with pytest.raises(TypeError, match="needs a store made with a URL"):
                s.get_all_tasks()

    asyncio.run(body())
    with TaskClient(server.url) as c:
        assert c.get("p").task_id == "p"


# == stores that are never closed (the SDK makes its own and drops them) ==========================

UNCLOSED = textwrap.dedent(
    """
    import asyncio, gc, sys, threading, time
    import redis
    try:
        import uvloop
    except ImportError:  # the uvloop extra is not installed
        uvloop = None
    from mcp.types import TaskMetadata
    from taskstore.mcp import TaskstoreTaskStore

    URL = sys.argv[1]
    admin = redis.Redis.from_url(URL, single_connection_client=True)
    admin_lock = threading.Lock()

    def clients(field="connected_clients"):
        with admin_lock:
            return int(admin.info("clients")[field])

    def others():
        return clients() - 1  # all but admin

    def settle(n=0):
        deadline = time.monotonic() + 10
        while others() != n:
            assert time.monotonic() < deadline, f"{others()} connections, expected {n}"
            time.sleep(0.002)

    async def asettle(n=0):
        deadline = time.monotonic() + 10
        while others() != n:
            assert time.monotonic() < deadline, f"{others()} connections, expected {n}"
            await asyncio.sleep(0.002)

    async def use(store):
        task = await store.create_task(TaskMetadata(ttl=60_000))
        assert (await store.get_task(task.taskId)).taskId == task.taskId
        await store.store_result(task.taskId, __import__("mcp").types.Result())
        await store.update_task(task.taskId, status="completed", status_message="done")
        return task.taskId

    # a store that outlives its loop: the loop's shutdown closes its connections, and the
    # next loop gets connections of its own
    kept = TaskstoreTaskStore(URL)
    asyncio.run(use(kept))
    settle()
    asyncio.run(use(kept))
    if uvloop is not None:
        uvloop.run(use(kept))
    settle()

    # dropped while its loop runs: closed on that loop, soon
    async def dropped():
        store = TaskstoreTaskStore(URL)
        await use(store)
        assert others() == 1
        del store
        gc.collect()
        await asettle()
    asyncio.run(dropped())

    # cleanup(), synchronous, inside the loop; then the store reconnects
    async def cleaned():
        store = TaskstoreTaskStore(URL)
        await use(store)
        store.cleanup()
        await asettle()
        await use(store)
        store.close()
        await asettle()
        store.close()  # twice is fine
    asyncio.run(cleaned())

    # close() as the last thing the loop runs: its guard is closed at the loop's shutdown,
    # by the scheduled close and by shutdown_asyncgens() at once
    async def closed_last():
        store = TaskstoreTaskStore(URL)
        await store.create_task(TaskMetadata(ttl=60_000))
        store.close()
    for _ in range(3):
        asyncio.run(closed_last())
    settle()

    # a wait in flight when the loop ends (the runner cancels it), never closed
    async def waiting():
        store = TaskstoreTaskStore(URL)
        tid = await use(store)
        other = await store.create_task(TaskMetadata(ttl=60_000))
        asyncio.get_running_loop().create_task(store.wait_for_update(other.taskId))
        while clients("blocked_clients") != 1:
            await asyncio.sleep(0.002)
    asyncio.run(waiting())
    settle()

    # one store, two loops in two threads at once; close() from a third thread
    shared = TaskstoreTaskStore(URL)
    ready = threading.Barrier(3)
    def thread_main():
        async def go():
            await use(shared)
            ready.wait()  # both loops hold connections now
            ready.wait()  # close() was called from the main thread
            await asettle()
        asyncio.run(go())
    threads = [threading.Thread(target=thread_main) for _ in range(2)]
    for t in threads:
        t.start()
    ready.wait()
    assert others() == 2
    shared.close()
    ready.wait()
    for t in threads:
        t.join()
    settle()

    # closed after its loop is gone, and never used again
    late = TaskstoreTaskStore(URL)
    asyncio.run(use(late))
    late.close()
    settle()
    # every guard ran to its end: nothing of these stores stays behind
    import taskstore.mcp as adapter
    gc.collect()
    assert not adapter._open_clients and not adapter._closing, (
        adapter._open_clients, adapter._closing
    )
    admin.close()
    print("ok")
    """
)


def test_unclosed_stores_leak_nothing(server: Any) -> None:
    """Every way a store can be left unclosed, under ``-W error``: no ResourceWarning, no
    "Exception ignored", and the server sees every connection closed."""
    proc = subprocess.run(
        [PYTHON, "-W", "error", "-c", UNCLOSED, server.url],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "ok\n")
