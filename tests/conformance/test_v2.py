"""The second-generation operations (MCP 2026-07-28, design.md §5b) and worker leases on every
backend: input requests and answers, JSON-RPC errors, cancellation requests, the record."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from conformance.backends import LIMITS, Backend
from taskstore.client import (
    InputKeyExists,
    InvalidArgument,
    InvalidTransition,
    LeaseHeld,
    TaskClient,
    TaskExpired,
    TaskNotFound,
    TooLarge,
)
from taskstore.client import _commands as cmd

ELICIT = {"method": "elicitation/create", "params": {"message": "name?", "requestedSchema": {}}}


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def raw_get(client: TaskClient, task_id: str) -> str:
    reply = client._execute(*cmd.get_args(task_id, client._owner(None)))
    assert isinstance(reply, bytes)
    return reply.decode()


def test_input_round_trip(backend: Backend) -> None:
    owner = backend.owner()
    c = backend.client(owner, version="2026-07-28")
    t = c.create()
    assert t.mcp_version == "2026-07-28" and t.input_requests is None
    wire = raw_get(c, t.task_id)
    assert '"ttlMs":60000,"pollIntervalMs":1500}' in wire and '"ttl":' not in wire
    asked = c.ask(t.task_id, {"k1": ELICIT, "k2": {"method": "sampling/x", "params": {}}})
    assert asked.status == "input_required" and asked.status_message is None
    assert asked.input_requests == {"k1": ELICIT, "k2": {"method": "sampling/x", "params": {}}}
    assert raw_get(c, t.task_id).endswith(
        ',"inputRequests":{"k1":' + dumps(ELICIT) + ',"k2":{"method":"sampling/x","params":{}}}}'
    )
    more = c.ask(t.task_id, {"k3": ELICIT}, message="waiting")
    assert list(more.input_requests or {}) == ["k1", "k2", "k3"]
    assert more.status_message == "waiting"
    with pytest.raises(InputKeyExists) as e:
        c.ask(t.task_id, {"k1": ELICIT})
    assert str(e.value) == "EXISTS input request key already used: k1"
    assert e.value.key == "k1"
    # the first generation sees the same task, with the variables, without the requests
    v1 = backend.client(owner)
    assert v1.get(t.task_id).status == "input_required"
    assert v1.get(t.task_id).input_requests is None
    assert c.answers(t.task_id) == {}
    assert c.answer(t.task_id, {"k2": {"action": "accept"}, "nope": {"x": 1}}) == 1
    assert c.answer(t.task_id, {"k2": {"again": True}}) == 0  # answered already: ignored
    assert c.get(t.task_id).status == "input_required"
    assert c.answers(t.task_id, block=50) is None  # requests are still outstanding
    assert c.answer(t.task_id, {"k3": {"c": 3}, "k1": {"content": {"name": "Ada"}}}) == 2
    back = c.get(t.task_id)
    assert back.status == "working" and back.input_requests is None
    assert back.status_message is None  # returning to working clears it
    answers = c.answers(t.task_id)
    assert answers == {
        "k2": {"action": "accept"},
        "k3": {"c": 3},
        "k1": {"content": {"name": "Ada"}},
    }
    assert list(answers or {}) == ["k2", "k3", "k1"]  # arrival order
    assert c.answers(t.task_id, block=50) == answers
    # a key is unique over the task's whole life, answered or not
    with pytest.raises(InputKeyExists):
        c.ask(t.task_id, {"k2": ELICIT})
    info = c.inspect(t.task_id)
    assert info.issued_keys == ("k1", "k2", "k3")
    assert info.input_requests == {}
    assert info.answers == answers
    assert info.owner == owner and info.method == "tools/call"
    assert info.error is None and info.cancel_requested_at is None
    done = c.complete(t.task_id, "completed", {"content": [{"type": "text", "text": "hi"}]})
    assert done.result == {"content": [{"type": "text", "text": "hi"}]} and done.has_result
    assert raw_get(c, t.task_id).endswith(',"result":{"content":[{"type":"text","text":"hi"}]}}')
    assert c.answer(t.task_id, {"k9": {}}) == 0  # terminal: ignored
    with pytest.raises(InvalidTransition) as e2:
        c.ask(t.task_id, {"k9": ELICIT})
    assert str(e2.value) == (
        f"INVALIDTRANSITION invalid transition from completed to input_required for task "
        f"{t.task_id}"
    )
    assert [x.input_requests for x in c.list().tasks] == [None]  # list items are plain Tasks


@pytest.mark.parametrize(
    ("requests", "text"),
    [
        ({"k": []}, "ERR invalid JSON: request 'k' must be a JSON object"),
        (
            {"k": {"method": 1, "params": {}}},
            "ERR request 'k' must be a JSON object with a string method and an object params",
        ),
        (
            {"k": {"method": "m", "params": []}},
            "ERR request 'k' must be a JSON object with a string method and an object params",
        ),
        (
            {"it's": {"method": "m"}},
            'ERR request "it\'s" must be a JSON object with a string method and an object params',
        ),
        (
            {"k": {"method": "m", "params": {"x": "y" * 1100}}},
            "TOOLARGE request 'k' is 1132 bytes (max 1024)",
        ),
        (
            {"k": {"method": "m", "params": {"x": "y" * 500}}, "j": ELICIT | {"p": "z" * 410}},
            "TOOLARGE input requests and answers are 1032 bytes (max 1024)",
        ),
        (
            {"bad key": ELICIT},
            "ERR invalid input request key: must be 1-256 printable ASCII characters (0x21-0x7e)",
        ),
        ({}, "ERR TASK.ASK needs at least one key and request"),
    ],
)
def test_ask_errors(backend: Backend, requests: dict[str, Any], text: str) -> None:
    c = backend.client(backend.owner(), version="2026-07-28")
    t = c.create()
    with pytest.raises((InvalidArgument, TooLarge)) as e:
        c.ask(t.task_id, requests)
    assert str(e.value) == text
    after = c.get(t.task_id)
    assert after.status == "working" and after.last_updated_at == t.last_updated_at
    assert c.inspect(t.task_id).issued_keys == ()


def test_answer_errors(backend: Backend) -> None:
    c = backend.client(backend.owner(), version="2026-07-28")
    t = c.create()
    c.ask(t.task_id, {"k": ELICIT, "k2": ELICIT})
    with pytest.raises(InvalidArgument) as e:
        c.answer(t.task_id, {"k": [1]})  # type: ignore[dict-item]
    assert str(e.value) == "ERR invalid JSON: response 'k' must be a JSON object"
    with pytest.raises(TooLarge) as e2:
        c.answer(t.task_id, {"k": {"x": "y" * 1100}})
    assert str(e2.value) == "TOOLARGE response 'k' is 1108 bytes (max 1024)"
    with pytest.raises(TooLarge) as e3:
        c.answer(t.task_id, {"k": {"x": "y" * 1000}})
    total = len("k") + len(dumps({"x": "y" * 1000})) + len("k2") + len(dumps(ELICIT))
    assert str(e3.value) == f"TOOLARGE input requests and answers are {total} bytes (max 1024)"
    assert c.get(t.task_id).status == "input_required"
    # keys no request can have are left out by the client; an unknown task is NOTFOUND
    assert c.answer(t.task_id, {"has space": {}}) == 0
    with pytest.raises(TaskNotFound):
        c.answer("missing", {"has space": {}})
    with pytest.raises(TaskNotFound):
        c.answer("missing", {"k": {}})


def test_fail(backend: Backend) -> None:
    owner = backend.owner()
    c = backend.client(owner, version="2026-07-28")
    t = c.create()
    error = {"code": -32000, "message": "tool broke", "data": {"why": ["x", 1.25]}}
    failed = c.fail(t.task_id, error, message="broken")
    assert (failed.status, failed.status_message, failed.error) == ("failed", "broken", error)
    assert raw_get(c, t.task_id).endswith(f',"error":{dumps(error)}}}')
    assert backend.client(owner).result(t.task_id) == {"error": error}
    assert c.inspect(t.task_id).error == error
    with pytest.raises(InvalidTransition):
        c.fail(t.task_id, error)
    # failed the first-generation way: an internal error built from the message
    u = c.create()
    c.complete(u.task_id, "failed", {"isError": True}, message="went wrong")
    assert c.get(u.task_id).error == {"code": -32603, "message": "went wrong"}
    w = c.create()
    c.complete(w.task_id, "failed", {"isError": True})
    assert c.get(w.task_id).error == {"code": -32603, "message": "Task failed"}
    for bad, text in (
        (
            {"code": 1.0, "message": "m"},
            "ERR error must be a JSON-RPC error object: an integer code and a string message",
        ),
        (
            {"code": True, "message": "m"},
            "ERR error must be a JSON-RPC error object: an integer code and a string message",
        ),
        (
            {"message": "m"},
            "ERR error must be a JSON-RPC error object: an integer code and a string message",
        ),
        ([1], "ERR invalid JSON: error must be a JSON object"),
    ):
        with pytest.raises(InvalidArgument) as e:
            c.fail(c.create().task_id, bad)  # type: ignore[arg-type]
        assert str(e.value) == text


def test_request_cancel(backend: Backend) -> None:
    c = backend.client(backend.owner(), version="2026-07-28")
    t = c.create()
    c.ask(t.task_id, {"k": ELICIT})
    r = c.request_cancel(t.task_id, message="stop please")
    assert r.status == "input_required" and r.status_message == "stop please"
    info = c.inspect(t.task_id)
    assert info.cancel_requested and info.cancel_requested_at is not None
    assert c.answers(t.task_id, block=50) == {}  # a cancellation request ends the wait
    again = c.request_cancel(t.task_id, message="ignored")
    assert again.status_message == "stop please"
    assert again.last_updated_at == r.last_updated_at  # a second request changes nothing
    x = c.cancel(t.task_id)
    assert x.status == "cancelled"
    assert c.request_cancel(t.task_id).status == "cancelled"  # terminal: no error


def test_lease(backend: Backend) -> None:
    c = backend.client(backend.owner(), version="2026-07-28")
    t = c.create()
    assert c.lease(t.task_id, "w1", 10_000) == 10_000
    before = c.get(t.task_id)
    assert before.last_updated_at == t.last_updated_at  # invisible to clients
    with pytest.raises(LeaseHeld) as e:
        c.lease(t.task_id, "w2", 1000)
    assert str(e.value).startswith(f"LEASED task {t.task_id} is leased by another worker for ")
    assert e.value.remaining_ms is not None and 9000 < e.value.remaining_ms <= 10_000
    assert c.lease(t.task_id, "w1", 0) == 0
    assert c.lease(t.task_id, "w2", 150) == 150
    assert c.inspect(t.task_id).task.status == "working"
    for bad, text in (
        (("w 3", 10), "ERR invalid worker: must be 1-256 printable ASCII characters (0x21-0x7e)"),
        (("w3", -1), "ERR lease must be a whole number of ms"),
        (("w3", 86_400_001), "ERR lease must be between 0 and 86400000 ms"),
    ):
        with pytest.raises(InvalidArgument) as e2:
            c.lease(t.task_id, *bad)  # type: ignore[arg-type]
        assert str(e2.value) == text
    # the lease runs out: the task fails (worker lost)
    deadline = time.monotonic() + 5
    while c.get(t.task_id).status != "failed":
        assert time.monotonic() < deadline, "the lease never ran out"
        time.sleep(0.05)
    lost = c.get(t.task_id)
    assert lost.status_message == "worker lost"
    assert lost.error == {
        "code": -32603,
        "message": "worker lost: lease expired",
        "data": {"worker": "w2"},
    }
    assert c.lease(t.task_id, "w1", 100) == 0  # terminal: no lease needed


def test_v2_expired(backend: Backend) -> None:
    c = backend.client(backend.owner(), version="2026-07-28")
    t = c.create(ttl=150)
    c.ask(t.task_id, {"k": ELICIT})
    time.sleep(0.2)
    assert c.answer(t.task_id, {"k": {"late": True}}) == 0
    with pytest.raises(TaskExpired):
        c.request_cancel(t.task_id)
    assert c.get(t.task_id).input_requests == {"k": ELICIT}
    assert LIMITS.expired_retention_ms > 150
