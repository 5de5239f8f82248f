"""Blocking reads on every backend, woken by another process: TASK.RESULT … BLOCK, TASK.WAIT,
TASK.ANSWERS … BLOCK (on Redis: subscribe to tasks:{<owner>} first, then re-read), their
timeouts, and the asyncio client."""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conformance.backends import LIMITS, PYTHON, Backend, child_env
from taskstore.client import AsyncTaskClient, InvalidArgument, NotReady, TaskNotFound
from taskstore.client._functions import RECHECK_S

ELICIT = {"method": "elicitation/create", "params": {}}

#: the other process: one TaskClient.from_url, one call after a delay
CHILD = textwrap.dedent(
    """
    import sys, time, json
    from taskstore.client import TaskClient
    url, owner, version, delay, code = sys.argv[1:6]
    c = TaskClient.from_url(url, owner=owner, version=version)
    time.sleep(float(delay))
    exec(code)
    c.close()
    """
)


@contextmanager
def other_process(
    backend: Backend, owner: str, code: str, delay: float = 0.3, version: str = "2025-11-25"
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [PYTHON, "-c", CHILD, backend.url, owner, version, str(delay), code],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_result_block_woken_by_another_process(backend: Backend) -> None:
    owner = backend.owner()
    c = backend.client(owner)
    t = c.create()
    code = f"c.complete({t.task_id!r}, 'completed', {{'done': [1, 2]}})"
    with other_process(backend, owner, code):
        start = time.monotonic()
        assert c.result(t.task_id, block=20_000) == {"done": [1, 2]}
        elapsed = time.monotonic() - start
    # woken by the change itself, not by a periodic re-read
    assert elapsed < 10
    # already terminal: at once
    assert c.result(t.task_id, block=10) == {"done": [1, 2]}


def test_no_lost_wake_ups(backend: Backend) -> None:
    """The change lands right as the waiter starts, many times: every wait ends with it,
    well before the periodic re-read would have caught a missed notification."""
    owner = backend.owner()
    c = backend.client(owner)
    ids = [c.create().task_id for _ in range(8)]
    code = (
        "for i in " + repr(ids) + ":\n"
        "    time.sleep(0.05)\n"
        "    c.update(i, 'completed')\n"
        "    c.set_result(i, {'i': i})\n"
    )
    with other_process(backend, owner, code, delay=0.2):
        for task_id in ids:
            start = time.monotonic()
            assert c.result(task_id, block=20_000) == {"i": task_id}
            assert time.monotonic() - start < RECHECK_S * 0.9 + 0.3


def test_wait(backend: Backend) -> None:
    owner = backend.owner()
    c = backend.client(owner)
    t = c.create()
    # a status that differs already: at once
    now = c.wait(t.task_id, status="input_required", block=10)
    assert now is not None and now.status == "working"
    with other_process(backend, owner, f"c.update({t.task_id!r}, 'input_required')"):
        woke = c.wait(t.task_id, status="working", block=20_000)
    assert woke is not None and woke.status == "input_required"
    # without STATUS: the next change of any kind (here: variables only)
    with other_process(backend, owner, f"c.set_variables({t.task_id!r}, {{'p': 1}})"):
        changed = c.wait(t.task_id, block=20_000)
    assert changed is not None and changed.meta == {"p": 1}
    assert changed.status == "input_required"
    assert c.wait(t.task_id, block=100) is None  # nothing changes: timeout
    assert c.wait(t.task_id, status="input_required", block=100) is None
    with pytest.raises(InvalidArgument) as e:
        c.wait(t.task_id, block=-1)
    assert str(e.value) == "ERR timeout is negative"
    with pytest.raises(TaskNotFound):
        c.wait("missing", block=100)


def test_wait_ends_with_deletion(backend: Backend) -> None:
    owner = backend.owner()
    c = backend.client(owner)
    t = c.create()
    with (
        other_process(backend, owner, f"c.delete({t.task_id!r})"),
        pytest.raises(TaskNotFound) as e,
    ):
        c.wait(t.task_id, block=20_000)
    assert str(e.value) == f"NOTFOUND task not found: {t.task_id}"


def test_result_block_timeouts(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        c.result(t.task_id, block=150)
    assert 0.14 <= time.monotonic() - start < 5
    # completed without a result yet: keeps waiting (the result may follow)
    c.update(t.task_id, "completed")
    with pytest.raises(TimeoutError):
        c.result(t.task_id, block=100)
    c.set_result(t.task_id, [1])
    assert c.result(t.task_id, block=100) == [1]
    # cancelled without a result: NOTREADY, no result is coming
    u = c.create()
    c.cancel(u.task_id)
    with pytest.raises(NotReady) as e:
        c.result(u.task_id, block=100)
    assert str(e.value) == f"NOTREADY task {u.task_id} is cancelled; no result yet"
    with pytest.raises(InvalidArgument) as e2:
        c.result(u.task_id, block=-5)
    assert str(e2.value) == "ERR timeout is negative"


def test_result_any_block(backend: Backend) -> None:
    owner = backend.owner()
    c = backend.client(owner)
    t = c.create()
    with other_process(backend, owner, f"c.set_result({t.task_id!r}, 'partial')"):
        assert c.result(t.task_id, block=20_000, any=True) == "partial"
    assert c.get(t.task_id).status == "working"


def test_answers_block_and_cancel_request(backend: Backend) -> None:
    owner = backend.owner()
    c = backend.client(owner, version="2026-07-28")
    t = c.create()
    c.ask(t.task_id, {"a": ELICIT, "b": ELICIT})
    code = (
        f"c.answer({t.task_id!r}, {{'a': {{'x': 1}}}})\n"
        "time.sleep(0.1)\n"
        f"c.answer({t.task_id!r}, {{'b': {{'y': 2}}}})\n"
    )
    with other_process(backend, owner, code, version="2026-07-28"):
        assert c.answers(t.task_id, block=20_000) == {"a": {"x": 1}, "b": {"y": 2}}
    assert c.get(t.task_id).status == "working"
    c.ask(t.task_id, {"c": ELICIT})
    assert c.answers(t.task_id, block=100) is None
    # a cancellation request ends an ANSWERS wait and a WAIT alike
    with other_process(backend, owner, f"c.request_cancel({t.task_id!r})"):
        assert c.answers(t.task_id, block=20_000) == {"a": {"x": 1}, "b": {"y": 2}}
    assert c.inspect(t.task_id).cancel_requested
    u = c.create()
    with other_process(backend, owner, f"c.request_cancel({u.task_id!r})"):
        woke = c.wait(u.task_id, block=20_000)
    assert woke is not None and woke.status == "working"
    assert c.inspect(u.task_id).cancel_requested


def test_async_client(backend: Backend) -> None:
    """Every method of AsyncTaskClient once, and a wake-up from another process."""

    async def main() -> None:
        owner = backend.owner()
        c: AsyncTaskClient = await backend.aclient(owner, version="2026-07-28")
        try:
            assert c.backend == ("taskstore" if backend.is_taskstore else "functions")
            t = await c.create(ttl=30_000, poll_interval=100, task_id="async-1")
            assert (await c.get(t.task_id)).task_id == "async-1"
            assert (await c.update(t.task_id, message="m")).status_message == "m"
            await c.set_variables(t.task_id, {"v": 1})
            assert (await c.inspect(t.task_id)).variables == {"v": 1}
            await c.set_result(t.task_id, {"r": 1})
            assert await c.result(t.task_id, any=True) == {"r": 1}
            asked = await c.ask(t.task_id, {"k": ELICIT})
            assert asked.input_requests == {"k": ELICIT}
            assert await c.answer(t.task_id, {"k": {"ok": True}}) == 1
            assert await c.answers(t.task_id) == {"k": {"ok": True}}
            assert await c.answers(t.task_id, block=50) == {"k": {"ok": True}}
            assert await c.lease(t.task_id, "w", 5000) == 5000
            assert (await c.request_cancel(t.task_id)).status == "working"
            assert (await c.wait(t.task_id, status="input_required", block=10)) is not None
            assert (await c.wait(t.task_id, block=50)) is None
            done = await c.complete(t.task_id, "completed", {"content": []})
            assert done.result == {"content": []}
            assert await c.result(t.task_id) == {"content": []}
            u = await c.create()
            assert (await c.fail(u.task_id, {"code": 5, "message": "x"})).error == {
                "code": 5,
                "message": "x",
            }
            v = await c.create()
            assert (await c.cancel(v.task_id)).status == "cancelled"
            page = await c.list(limit=2)
            assert [x.task_id for x in page.tasks] == [v.task_id, u.task_id]
            assert [x.task_id for x in await c.all_tasks()] == [v.task_id, u.task_id, "async-1"]
            assert len([p async for p in c.iter_pages(limit=1)]) == 3
            assert len([x async for x in c.iter_tasks(limit=2)]) == 3
            assert await c.delete(v.task_id) is True
            assert await c.cleanup() == 0
            assert (await c.config())["max_input_bytes"] == LIMITS.max_input_bytes
            with pytest.raises(TaskNotFound):
                await c.get(v.task_id)
            w = await c.create()
            proc = await asyncio.create_subprocess_exec(
                PYTHON,
                "-c",
                CHILD,
                backend.url,
                owner,
                "2025-11-25",
                "0.3",
                f"c.complete({w.task_id!r}, 'completed', 42)",
                env=child_env(),
            )
            try:
                assert await c.result(w.task_id, block=20_000) == 42
                assert await proc.wait() == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            with pytest.raises(TimeoutError):
                await c.result((await c.create()).task_id, block=50)
        finally:
            await c.aclose()

    asyncio.run(main())
