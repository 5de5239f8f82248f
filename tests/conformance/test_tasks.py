"""The first-generation TASK operations through TaskClient, with the same assertions on every
backend: taskstore, Redis, Redis Cluster and Valkey (see conftest.py)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest

from conformance.backends import LIMITS, Backend
from taskstore.client import (
    InvalidArgument,
    InvalidTransition,
    LimitExceeded,
    NotReady,
    TaskClient,
    TaskExists,
    TaskExpired,
    TaskNotFound,
    TooLarge,
)
from taskstore.client import _commands as cmd

UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


def raw(client: TaskClient, args: cmd.Args) -> Any:
    """A TASK command's raw reply through the client's own transport (TASK or FCALL)."""
    return client._execute(*args)


def raw_get(client: TaskClient, task_id: str) -> bytes:
    reply = raw(client, cmd.get_args(task_id, client._owner(None)))
    assert isinstance(reply, bytes)
    return reply


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_create_and_get(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create("tools/call")
    assert t.status == "working"
    assert t.ttl == LIMITS.default_ttl_ms
    assert t.poll_interval == LIMITS.default_poll_interval_ms
    assert t.created_at == t.last_updated_at
    assert t.status_message is None and t.meta is None
    import re

    assert re.match(UUID4, t.task_id)
    assert c.get(t.task_id) == t
    wire = raw_get(c, t.task_id).decode()
    created = wire.split('"createdAt":"')[1][:24]
    assert wire == (
        f'{{"taskId":"{t.task_id}","status":"working","createdAt":"{created}",'
        f'"lastUpdatedAt":"{created}","ttl":{LIMITS.default_ttl_ms},'
        f'"pollInterval":{LIMITS.default_poll_interval_ms}}}'
    )
    assert created.endswith("Z") and created[10] == "T" and created[19] == "."
    assert abs(t.created_at.timestamp() - time.time()) < 5

    u = c.create("sampling/createMessage", ttl=5000, poll_interval=250, task_id="my-id_1")
    assert (u.task_id, u.ttl, u.poll_interval) == ("my-id_1", 5000, 250)
    with pytest.raises(TaskExists) as e:
        c.create(task_id="my-id_1")
    assert str(e.value) == "EXISTS task already exists: my-id_1"
    assert e.value.task_id == "my-id_1"
    inspection = c.inspect("my-id_1")
    assert inspection.method == "sampling/createMessage"
    assert inspection.expires_at == u.created_at + timedelta(milliseconds=5000)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"ttl": 0}, "ERR TTL must be a whole number >= 1 or NONE"),
        ({"ttl": -5}, "ERR TTL must be a whole number >= 1 or NONE"),
        (
            {"ttl": LIMITS.max_ttl_ms + 1},
            f"ERR TTL {LIMITS.max_ttl_ms + 1}ms exceeds maximum allowed {LIMITS.max_ttl_ms}ms",
        ),
        (
            {"ttl": 10**30},
            f"ERR TTL {10**30}ms exceeds maximum allowed {LIMITS.max_ttl_ms}ms",
        ),
        (
            {"ttl": "none"},
            f"ERR unlimited TTL (TTL NONE) needs max_ttl_ms 0; max_ttl_ms is {LIMITS.max_ttl_ms}",
        ),
        ({"poll_interval": 0}, "ERR POLLINTERVAL must be a whole number >= 1"),
        ({"poll_interval": 2**60}, "ERR POLLINTERVAL must be a whole number >= 1"),
        (
            {"task_id": "has space"},
            "ERR invalid task id: must be 1-256 printable ASCII characters (0x21-0x7e)",
        ),
        (
            {"task_id": "x" * 257},
            "ERR invalid task id: must be 1-256 printable ASCII characters (0x21-0x7e)",
        ),
        (
            {"task_id": "é"},
            "ERR invalid task id: must be 1-256 printable ASCII characters (0x21-0x7e)",
        ),
        ({"method": ""}, "ERR request method must not be empty"),
        (
            {"method": "m" * (LIMITS.max_string_length + 1)},
            f"TOOLARGE request method is {LIMITS.max_string_length + 1} bytes "
            f"(max {LIMITS.max_string_length})",
        ),
    ],
)
def test_create_errors(backend: Backend, kwargs: dict[str, Any], text: str) -> None:
    c = backend.client(backend.owner())
    kwargs = dict(kwargs)  # the parameters are shared by the four backends
    method = kwargs.pop("method", "tools/call")
    with pytest.raises((InvalidArgument, TooLarge)) as e:
        c.create(method, **kwargs)
    assert str(e.value) == text
    assert c.list().tasks == []


def test_transitions(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create()
    t1 = c.update(t.task_id, "input_required", message="need input")
    assert (t1.status, t1.status_message) == ("input_required", "need input")
    assert t1.last_updated_at >= t.last_updated_at
    t2 = c.update(t.task_id, "working")
    assert (t2.status, t2.status_message) == ("working", None)  # a status change clears it
    t3 = c.update(t.task_id, message="50%")
    assert (t3.status, t3.status_message) == ("working", "50%")
    with pytest.raises(InvalidTransition) as e:
        c.update(t.task_id, "working")
    assert str(e.value) == (
        f"INVALIDTRANSITION invalid transition from working to working for task {t.task_id}"
    )
    assert (e.value.from_status, e.value.to_status) == ("working", "working")
    done = c.update(t.task_id, "completed", message="done")
    assert (done.status, done.status_message) == ("completed", "done")
    for status in ("working", "input_required", "completed", "failed", "cancelled"):
        with pytest.raises(InvalidTransition) as e:
            c.update(t.task_id, status)  # type: ignore[arg-type]
        assert str(e.value) == (
            f"INVALIDTRANSITION invalid transition from completed to {status} for task {t.task_id}"
        )
    # a message alone is not a transition: allowed on terminal tasks
    assert c.update(t.task_id, message="still done").status_message == "still done"
    assert c.get(t.task_id).status == "completed"


def test_update_errors(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create()
    with pytest.raises(InvalidArgument) as e:
        c.update(t.task_id, "bogus")  # type: ignore[arg-type]
    assert str(e.value) == (
        "ERR invalid status 'bogus': expected working, input_required, completed, failed or "
        "cancelled"
    )
    with pytest.raises(InvalidArgument) as e:
        c.update(t.task_id)
    assert str(e.value) == "ERR TASK.UPDATE needs a status, MESSAGE or both"
    with pytest.raises(TooLarge) as e:
        c.update(t.task_id, message="é" * LIMITS.max_string_length)
    assert str(e.value) == (
        f"TOOLARGE status message is {2 * LIMITS.max_string_length} bytes "
        f"(max {LIMITS.max_string_length})"
    )
    with pytest.raises(TaskNotFound) as e:
        c.update("nope", "completed")
    assert str(e.value) == "NOTFOUND task not found: nope"


def test_variables(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create()
    values = {
        "s": 'héllo "quoted" \\ / \n\t\u0001 \u2028 😀',
        "i": 12345678901234567890123,
        "f": [1.5, 0.1, 1e16, 1e-5, 123456789.125, -0.0, 2.5e-300, 1e22],
        "n": {"deep": {"x": [True, False, None]}},
        "u": "\U0001f600",
    }
    t1 = c.set_variables(t.task_id, values)
    assert t1.meta == values
    assert raw_get(c, t.task_id).decode().endswith(f',"_meta":{dumps(values)}}}')
    t2 = c.set_variables(t.task_id, {"s": None, "i": 7, "new": "v"})
    expected = {k: v for k, v in values.items() if k != "s"} | {"i": 7, "new": "v"}
    assert t2.meta == expected
    assert list(t2.meta) == ["i", "f", "n", "u", "new"]  # merge keeps the keys' positions
    assert raw_get(c, t.task_id).decode().endswith(f',"_meta":{dumps(expected)}}}')
    t3 = c.set_variables(t.task_id, dict.fromkeys(expected))
    assert t3.meta is None and "_meta" not in raw_get(c, t.task_id).decode()
    # a null for a key that does not exist changes nothing but the timestamp
    assert c.set_variables(t.task_id, {"ghost": None}).meta is None


def test_variable_limits(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create()
    c.set_variables(t.task_id, {"keep": 1})
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"a": {"b": {"c": {"d": {}}}}},
            f"TOOLARGE variables nest 5 levels deep (max {LIMITS.max_variable_depth})",
        ),
        (
            {"a": [[[[]]]]},
            f"TOOLARGE variables nest 5 levels deep (max {LIMITS.max_variable_depth})",
        ),
        (
            {"k" * 301: 1},
            f"TOOLARGE string of 301 bytes exceeds max_string_length {LIMITS.max_string_length}",
        ),
        (
            {"a": "é" * 151},
            f"TOOLARGE string of 302 bytes exceeds max_string_length {LIMITS.max_string_length}",
        ),
    ]
    for update, text in cases:
        with pytest.raises(TooLarge) as e:
            c.set_variables(t.task_id, update)
        assert str(e.value) == text
    big = {f"k{i}": "x" * 250 for i in range(8)}
    size = len(dumps({"keep": 1} | big))
    with pytest.raises(TooLarge) as e:
        c.set_variables(t.task_id, big)
    assert str(e.value) == (
        f"TOOLARGE variables are {size} bytes (max {LIMITS.max_variable_size_bytes})"
    )
    assert c.get(t.task_id).meta == {"keep": 1}  # nothing changed
    # a deep value may replace... depth counts only what the merge keeps: null deletes
    assert c.set_variables(t.task_id, {"a": {"b": {"c": 1}}, "keep": None}).meta == {
        "a": {"b": {"c": 1}}
    }


def test_results(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create()
    with pytest.raises(NotReady) as e:
        c.result(t.task_id)
    assert str(e.value) == f"NOTREADY task {t.task_id} is working; no result yet"
    assert c.result(t.task_id, any=True, default="none") == "none"
    c.set_result(t.task_id, {"partial": [1, 2.50, "x"]})
    assert c.get(t.task_id).status == "working"
    assert c.result(t.task_id, any=True) == {"partial": [1, 2.5, "x"]}
    with pytest.raises(NotReady):
        c.result(t.task_id)
    done = c.complete(t.task_id, "completed", {"content": [{"type": "text", "text": "ok"}]})
    assert done.status == "completed" and done.status_message is None
    assert c.result(t.task_id) == {"content": [{"type": "text", "text": "ok"}]}
    # the result text is stored as given
    c.set_result(t.task_id, None)
    assert c.result(t.task_id) is None
    with pytest.raises(TooLarge) as e:
        c.set_result(t.task_id, "x" * LIMITS.max_result_bytes)
    assert str(e.value) == (
        f"TOOLARGE result is {LIMITS.max_result_bytes + 2} bytes (max {LIMITS.max_result_bytes})"
    )
    failed = c.create()
    f = c.complete(failed.task_id, "failed", {"isError": True}, message="boom")
    assert (f.status, f.status_message) == ("failed", "boom")
    assert c.result(failed.task_id) == {"isError": True}
    with pytest.raises(InvalidTransition) as e:
        c.complete(failed.task_id, "completed", {})
    assert str(e.value) == (
        f"INVALIDTRANSITION invalid transition from failed to completed for task {failed.task_id}"
    )
    with pytest.raises(InvalidArgument) as e:
        c.complete(c.create().task_id, "cancelled", {})  # type: ignore[arg-type]
    assert str(e.value) == "ERR status must be completed or failed"


def test_cancel(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create()
    x = c.cancel(t.task_id, message="user asked")
    assert (x.status, x.status_message) == ("cancelled", "user asked")
    with pytest.raises(NotReady) as e:
        c.result(t.task_id)
    assert str(e.value) == f"NOTREADY task {t.task_id} is cancelled; no result yet"
    with pytest.raises(InvalidTransition) as e:
        c.cancel(t.task_id)
    assert str(e.value) == (
        f"INVALIDTRANSITION invalid transition from cancelled to cancelled for task {t.task_id}"
    )


def test_delete(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create()
    assert c.delete(t.task_id) is True
    assert c.delete(t.task_id) is False
    with pytest.raises(TaskNotFound):
        c.get(t.task_id)
    with pytest.raises(InvalidArgument) as e:
        c.delete("bad id")
    assert str(e.value) == (
        "ERR invalid task id: must be 1-256 printable ASCII characters (0x21-0x7e)"
    )


def test_owner_isolation(backend: Backend) -> None:
    alice = backend.client(backend.owner("alice"))
    bob = backend.client(backend.owner("bob"))
    t = alice.create(task_id="shared-name")
    alice.set_variables(t.task_id, {"secret": 1})
    missing = "never-created"
    ops = [
        lambda c, i: c.get(i),
        lambda c, i: c.update(i, "completed"),
        lambda c, i: c.update(i, message="m"),
        lambda c, i: c.set_variables(i, {"a": 1}),
        lambda c, i: c.set_result(i, 1),
        lambda c, i: c.result(i),
        lambda c, i: c.result(i, any=True),
        lambda c, i: c.complete(i, "completed", 1),
        lambda c, i: c.cancel(i),
        lambda c, i: c.request_cancel(i),
        lambda c, i: c.inspect(i),
        lambda c, i: c.answers(i),
        lambda c, i: c.answer(i, {"k": {}}),
        lambda c, i: c.ask(i, {"k": {"method": "m", "params": {}}}),
        lambda c, i: c.fail(i, {"code": 1, "message": "m"}),
        lambda c, i: c.lease(i, "w", 1000),
        lambda c, i: c.wait(i, block=50),
        lambda c, i: c.result(i, block=50),
    ]
    for op in ops:
        with pytest.raises(TaskNotFound) as foreign:
            op(bob, t.task_id)
        with pytest.raises(TaskNotFound) as absent:
            op(bob, missing)
        assert str(foreign.value) == f"NOTFOUND task not found: {t.task_id}"
        assert str(absent.value) == f"NOTFOUND task not found: {missing}"
        assert type(foreign.value) is type(absent.value)
    assert bob.delete(t.task_id) is False
    assert bob.list().tasks == []
    assert bob.cleanup() == 0
    # bob may use the same id for his own task
    assert bob.create(task_id="shared-name").task_id == "shared-name"
    assert alice.get(t.task_id).meta == {"secret": 1} and alice.get(t.task_id).status == "working"
    assert bob.get("shared-name").meta is None
    # a cursor of alice's is not bob's
    for i in range(6):
        alice.create(task_id=f"a{i}")
    page = alice.list(limit=2)
    assert page.next_cursor is not None
    with pytest.raises(InvalidArgument) as e:
        bob.list(cursor=page.next_cursor)
    assert str(e.value) == "ERR invalid cursor"


def test_list_pages(backend: Backend) -> None:
    c = backend.client(backend.owner())
    ids = [c.create(task_id=f"t{i:02d}").task_id for i in range(10)]
    page = c.list()
    assert [t.task_id for t in page.tasks] == ids[::-1][: LIMITS.list_default_limit]
    assert page.next_cursor is not None
    assert [t.task_id for t in c.all_tasks()] == ids[::-1]
    assert [len(p.tasks) for p in c.iter_pages(limit=3)] == [3, 3, 3, 1]
    full = c.list(limit=10)
    assert full.next_cursor is None and len(full.tasks) == 10
    for bad in (0, LIMITS.list_max_limit + 1, -1):
        with pytest.raises(InvalidArgument) as e:
            c.list(limit=bad)
        assert str(e.value) == f"ERR LIMIT must be between 1 and {LIMITS.list_max_limit}"
    for cursor in ("garbage", page.next_cursor[:-1] + "A", "A" * 28, "=" * 28):
        if cursor == page.next_cursor:
            continue
        with pytest.raises(InvalidArgument) as e:
            c.list(cursor=cursor)
        assert str(e.value) == "ERR invalid cursor"


def test_pagination_under_churn(backend: Backend) -> None:
    c = backend.client(backend.owner())
    ids = [c.create(task_id=f"c{i:02d}").task_id for i in range(10)]
    first = c.list(limit=3)
    assert [t.task_id for t in first.tasks] == ["c09", "c08", "c07"]
    assert first.next_cursor is not None
    # churn between pages: new tasks, deleted tasks (the last one returned included)
    c.create(task_id="new1")
    c.delete("c07")
    c.delete("c05")
    second = c.list(cursor=first.next_cursor, limit=3)
    assert [t.task_id for t in second.tasks] == ["c06", "c04", "c03"]
    c.delete("c02")
    c.create(task_id="new2")
    assert second.next_cursor is not None
    rest = c.list(cursor=second.next_cursor, limit=3)
    assert [t.task_id for t in rest.tasks] == ["c01", "c00"]
    assert rest.next_cursor is None
    # the cursor stays valid: read again, it gives the same position
    again = c.list(cursor=first.next_cursor, limit=10)
    assert [t.task_id for t in again.tasks] == ["c06", "c04", "c03", "c01", "c00"]
    assert len(ids) == 10
    assert [t.task_id for t in c.list(limit=2).tasks] == ["new2", "new1"]


def test_task_limit(backend: Backend) -> None:
    c = backend.client(backend.owner())
    for _ in range(LIMITS.max_tasks_per_owner):
        c.create(ttl=300)
    with pytest.raises(LimitExceeded) as e:
        c.create()
    assert str(e.value) == (
        f"LIMIT owner has {LIMITS.max_tasks_per_owner} tasks (max "
        f"{LIMITS.max_tasks_per_owner}): cancel or wait for existing tasks to expire"
    )
    assert e.value.mcp_code == -32603
    # terminal tasks count too, until they are evicted (ttl + retention)
    time.sleep((300 + LIMITS.expired_retention_ms) / 1000 + 0.1)
    assert c.create().status == "working"


def test_expiry(backend: Backend) -> None:
    c = backend.client(backend.owner())
    t = c.create(ttl=200)
    keep = c.create(ttl=60_000)
    c.set_result(t.task_id, {"r": 1})
    time.sleep(0.3)
    # expired: readable, not mutable
    assert c.get(t.task_id).task_id == t.task_id
    assert c.result(t.task_id, any=True) == {"r": 1}
    assert t.task_id in [x.task_id for x in c.all_tasks()]
    mutations = [
        lambda: c.update(t.task_id, "completed"),
        lambda: c.update(t.task_id, message="m"),
        lambda: c.set_variables(t.task_id, {"a": 1}),
        lambda: c.set_result(t.task_id, 1),
        lambda: c.complete(t.task_id, "completed", 1),
        lambda: c.cancel(t.task_id),
        lambda: c.request_cancel(t.task_id),
        lambda: c.ask(t.task_id, {"k": {"method": "m", "params": {}}}),
        lambda: c.fail(t.task_id, {"code": 1, "message": "m"}),
        lambda: c.lease(t.task_id, "w", 100),
    ]
    for mutate in mutations:
        with pytest.raises(TaskExpired) as e:
            mutate()
        assert str(e.value) == f"EXPIRED task expired: {t.task_id}"
    assert c.answer(t.task_id, {"k": {}}) == 0
    # evicted once the retention has passed too
    time.sleep(LIMITS.expired_retention_ms / 1000 + 0.05)
    with pytest.raises(TaskNotFound):
        c.get(t.task_id)
    assert [x.task_id for x in c.all_tasks()] == [keep.task_id]


def test_cleanup(backend: Backend) -> None:
    c = backend.client(backend.owner())
    short = [c.create(ttl=100).task_id for _ in range(3)]
    long = c.create(ttl=60_000)
    time.sleep(0.2)
    assert c.cleanup() == 3  # expired ones go now, without waiting for the retention
    assert c.cleanup() == 0
    for task_id in short:
        with pytest.raises(TaskNotFound):
            c.get(task_id)
    assert [t.task_id for t in c.all_tasks()] == [long.task_id]


def test_config(backend: Backend) -> None:
    config = backend.client(backend.owner()).config()
    for name in (
        "default_ttl_ms",
        "max_ttl_ms",
        "max_tasks_per_owner",
        "max_variable_size_bytes",
        "max_variable_depth",
        "max_string_length",
        "max_result_bytes",
        "max_input_bytes",
        "default_poll_interval_ms",
        "list_default_limit",
        "list_max_limit",
        "expired_retention_ms",
    ):
        assert config[name] == getattr(LIMITS, name), name


@pytest.mark.parametrize("options", [{"protocol": 3}, {"decode_responses": True}])
def test_redis_options(backend: Backend, options: dict[str, Any]) -> None:
    """RESP3 and decoded replies parse the same (maps, nulls, integers, pub/sub pushes)."""
    owner = backend.owner()
    c = TaskClient.from_url(
        backend.url, owner=owner, version="2026-07-28", config=LIMITS, **options
    )
    try:
        t = c.create(task_id="opt-1")
        c.set_variables(t.task_id, {"v": [1, "é"]})
        c.ask(t.task_id, {"k": {"method": "m", "params": {}}})
        info = c.inspect(t.task_id)
        assert info.variables == {"v": [1, "é"]} and info.issued_keys == ("k",)
        assert info.error is None and info.cancel_requested_at is None
        assert c.answers(t.task_id, block=20) is None
        assert c.wait(t.task_id, block=20) is None
        assert c.result(t.task_id, any=True) is None
        with pytest.raises(TimeoutError):
            c.result(t.task_id, block=20)
        assert c.answer(t.task_id, {"k": {"ok": 1}}) == 1
        assert c.wait(t.task_id, status="input_required", block=1000) is not None
        c.complete(t.task_id, "completed", {"done": True})
        assert c.result(t.task_id, block=1000) == {"done": True}
        assert c.get(t.task_id).result == {"done": True}
        assert c.delete(t.task_id) is True and c.cleanup() == 0
        assert c.list().tasks == []
    finally:
        c.close()


@pytest.mark.parametrize("owner", ["has space", "é", "x" * 257, "tab\there"])
def test_invalid_owner(backend: Backend, owner: str) -> None:
    c = backend.client(owner)
    for call in (lambda: c.get("x"), lambda: c.create(), lambda: c.list()):
        with pytest.raises(InvalidArgument) as e:
            call()
        assert str(e.value) == "ERR OWNER must be 1-256 printable ASCII characters without spaces"
