"""The one scenario every client runs, and the checks applied to what each client reports.

Every driver (redis-py here, the Node.js scripts in node/, redis-cli in test_redis_cli.py)
produces the same dict: each reply encoded as ``{"type": ..., "value": ...}`` or
``{"error": {"class", "libraryError", "message"}}``. ``check_scenario`` then asserts the same
things for all of them, so a client that sees a different reply shape fails here.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

SCENARIO = json.loads((Path(__file__).with_name("scenario.json")).read_text())
CHANNEL: str = SCENARIO["channel"]
RESULT_JSON = '{"content":[{"type":"text","text":"done"}]}'
VARIABLES = {"step": 2, "file": "a.txt"}
MESSAGE = "need a file name"
MESSAGES_EXPECTED: int = SCENARIO["messages"]
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def with_id(command: list[str], task_id: str) -> list[str]:
    return [arg.replace("{id}", task_id) for arg in command]


# -- checks --------------------------------------------------------------------------


def check_task(
    reply: dict[str, Any],
    string_type: str,
    *,
    task_id: str | None = None,
    status: str,
    message: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A reply carrying a task: the library's string type, the MCP Task JSON, fields in order."""
    assert "error" not in reply, f"expected a task ({status}), got an error: {reply}"
    assert reply["type"] == string_type, f"reply type {reply['type']}, expected {string_type}"
    task = json.loads(reply["value"])
    keys = ["taskId", "status"]
    keys += ["statusMessage"] if message is not None else []
    keys += ["createdAt", "lastUpdatedAt", "ttl", "pollInterval"]
    keys += ["_meta"] if meta is not None else []
    assert list(task) == keys, reply["value"]
    if task_id is not None:
        assert task["taskId"] == task_id
    assert task["status"] == status, reply["value"]
    assert task.get("statusMessage") == message
    assert task.get("_meta") == meta
    assert _TIME.match(task["createdAt"]) and _TIME.match(task["lastUpdatedAt"])
    assert task["lastUpdatedAt"] >= task["createdAt"]
    assert task["ttl"] == 60000
    assert task["pollInterval"] == 5000
    return task


def check_error(reply: dict[str, Any], message: str, error_classes: tuple[str, ...]) -> None:
    """An error reply surfaced as the library's error type, with the server's exact text."""
    assert "error" in reply, f"expected the error {message!r}, got {reply}"
    err = reply["error"]
    assert err["libraryError"] is True, f"not the library's reply-error type: {err}"
    assert err["class"] in error_classes, f"error class {err['class']}, expected {error_classes}"
    assert err["message"] == message, err


def check_string(reply: dict[str, Any], string_type: str, value: str) -> None:
    assert "error" not in reply, reply
    assert reply["type"] == string_type, reply
    assert reply["value"] == value


def check_batch(
    replies: list[dict[str, Any]],
    task_id: str,
    string_type: str,
    error_classes: tuple[str, ...],
) -> None:
    """SCENARIO["batch"] run in a pipeline or in MULTI/EXEC, for the task ``task_id``."""
    assert len(replies) == len(SCENARIO["batch"]), replies
    create, get, inreq, working, setvars, complete, result, cancel = replies
    first = check_task(create, string_type, task_id=task_id, status="working")
    assert check_task(get, string_type, task_id=task_id, status="working") == first
    check_task(inreq, string_type, task_id=task_id, status="input_required", message=MESSAGE)
    check_task(working, string_type, task_id=task_id, status="working")
    check_task(setvars, string_type, task_id=task_id, status="working", meta=VARIABLES)
    check_task(complete, string_type, task_id=task_id, status="completed", meta=VARIABLES)
    check_string(result, string_type, RESULT_JSON)
    check_error(
        cancel,
        f"INVALIDTRANSITION invalid transition from completed to cancelled for task {task_id}",
        error_classes,
    )


def check_scenario(
    out: dict[str, Any],
    *,
    string_type: str,
    error_classes: tuple[str, ...],
    multi_thrown: tuple[str, ...] | None = None,
) -> None:
    """Everything a client reported for the whole scenario."""
    assert out.get("clientErrors", []) == [], out["clientErrors"]
    created = check_task(out["create"], string_type, status="working")
    tid = created["taskId"]
    steps = out["steps"]
    assert list(steps) == [name for name, _ in SCENARIO["steps"]]
    assert check_task(steps["get"], string_type, status="working") == created
    check_task(steps["input_required"], string_type, status="input_required", message=MESSAGE)
    check_task(steps["working"], string_type, status="working")
    check_task(steps["setvars"], string_type, status="working", meta=VARIABLES)
    check_error(steps["notready"], f"NOTREADY task {tid} is working; no result yet", error_classes)
    check_task(steps["complete"], string_type, status="completed", meta=VARIABLES)
    check_string(steps["result"], string_type, RESULT_JSON)

    # pagination: every task exactly once, newest first, nextCursor on all pages but the last
    pages = [json.loads(p["value"]) for p in out["pages"]]
    for p in out["pages"]:
        assert "error" not in p and p["type"] == string_type, p
    size = SCENARIO["page_size"]
    listed = [t for page in pages for t in page["tasks"]]
    assert len(listed) == SCENARIO["list_tasks"] + 1, pages
    assert len({t["taskId"] for t in listed}) == len(listed)
    assert all(len(page["tasks"]) <= size for page in pages)
    assert all("nextCursor" in page for page in pages[:-1])
    assert "nextCursor" not in pages[-1]
    assert listed[-1]["taskId"] == tid and listed[-1]["status"] == "completed"
    assert [t["createdAt"] for t in listed] == sorted(
        (t["createdAt"] for t in listed), reverse=True
    )

    check_error(
        out["cancel"],
        f"INVALIDTRANSITION invalid transition from completed to cancelled for task {tid}",
        error_classes,
    )
    check_batch(out["pipeline"], SCENARIO["pipeline_id"], string_type, error_classes)

    multi = out["multi"]
    if multi_thrown is not None:
        assert multi.get("thrown", {}).get("class") in multi_thrown, multi
    else:
        assert "thrown" not in multi, multi
    check_batch(multi["replies"], SCENARIO["multi_id"], string_type, error_classes)

    # pub/sub: each change of the caller's tasks, as task JSON, in order per task
    messages = [json.loads(m) for m in out["messages"]]
    assert len(messages) == MESSAGES_EXPECTED, out["messages"]
    by_task: dict[str, list[str]] = {}
    for m in messages:
        assert list(m)[:2] == ["taskId", "status"], m
        by_task.setdefault(m["taskId"], []).append(m["status"])
    lifecycle = ["working", "input_required", "working", "working", "completed"]
    assert by_task.pop(tid) == lifecycle
    assert by_task.pop(SCENARIO["pipeline_id"]) == lifecycle
    assert by_task.pop(SCENARIO["multi_id"]) == lifecycle
    assert sorted(by_task.values()) == [["working"]] * SCENARIO["list_tasks"]
    with_meta = [m for m in messages if m["taskId"] == tid and "_meta" in m]
    assert [m["_meta"] for m in with_meta] == [VARIABLES, VARIABLES]

    # PING and INFO through the library's own methods (redis-py: True and a parsed dict)
    assert out["ping"].get("value") in ("PONG", True), out["ping"]
    assert "redis_version:7.4.0" in out["info"].get("value", ""), out["info"]


# -- redis-py drivers ------------------------------------------------------------------


def _encode_py(value: Any, error_type: type) -> dict[str, Any]:
    if isinstance(value, BaseException):
        return {
            "error": {
                "class": type(value).__name__,
                "libraryError": isinstance(value, error_type),
                "message": str(value),
            }
        }
    if isinstance(value, bytes):
        return {"type": "bytes", "value": value.decode()}
    if isinstance(value, list):
        return {"type": "list", "value": [_encode_py(v, error_type) for v in value]}
    return {"type": type(value).__name__, "value": value}


def run_redis_py(r: Any) -> dict[str, Any]:
    """The scenario through a synchronous redis-py client (already constructed)."""
    import redis

    err = redis.exceptions.ResponseError

    def send(command: list[str]) -> dict[str, Any]:
        try:
            return _encode_py(r.execute_command(*command), err)
        except redis.exceptions.ResponseError as e:
            return _encode_py(e, err)

    pubsub = r.pubsub()
    pubsub.subscribe(CHANNEL)
    confirmation = pubsub.get_message(timeout=10)
    assert confirmation is not None and confirmation["type"] == "subscribe", confirmation

    out: dict[str, Any] = {"create": send(SCENARIO["create"])}
    tid = json.loads(out["create"]["value"])["taskId"]
    out["steps"] = {name: send(with_id(cmd, tid)) for name, cmd in SCENARIO["steps"]}
    for _ in range(SCENARIO["list_tasks"]):
        send(SCENARIO["create"])
    out["pages"] = []
    cursor = None
    while len(out["pages"]) < 20:
        cmd = ["TASK.LIST", "LIMIT", str(SCENARIO["page_size"])]
        page = send([*cmd, "CURSOR", cursor] if cursor else cmd)
        out["pages"].append(page)
        cursor = json.loads(page["value"]).get("nextCursor") if "value" in page else None
        if not cursor:
            break
    out["cancel"] = send(with_id(SCENARIO["cancel"], tid))

    for key, transaction in (("pipeline", False), ("multi", True)):
        pipe = r.pipeline(transaction=transaction)  # transaction=True (the default) is MULTI/EXEC
        task_id = SCENARIO["multi_id" if transaction else "pipeline_id"]
        for cmd in SCENARIO["batch"]:
            pipe.execute_command(*with_id(cmd, task_id))
        replies = [_encode_py(v, err) for v in pipe.execute(raise_on_error=False)]
        out[key] = {"replies": replies} if transaction else replies

    messages: list[str] = []
    deadline = time.monotonic() + 10
    while len(messages) < MESSAGES_EXPECTED and time.monotonic() < deadline:
        m = pubsub.get_message(timeout=0.2)
        if m is not None and m["type"] == "message":
            data = m["data"]
            messages.append(data.decode() if isinstance(data, bytes) else data)
    out["messages"] = messages
    pubsub.unsubscribe(CHANNEL)
    pubsub.close()
    # the library's own command methods, as a first try would use them
    out["ping"] = _encode_py(r.ping(), err)
    out["info"] = {"type": "dict", "value": _info_text(r.info("server"))}
    r.close()
    return out


def _info_text(info: dict[str, Any]) -> str:
    """redis-py parses INFO into a dict; back to text for the common check."""
    return "\n".join(f"{k}:{v}" for k, v in info.items())


async def run_redis_py_async(r: Any) -> dict[str, Any]:
    """The same scenario through redis.asyncio."""
    import redis

    err = redis.exceptions.ResponseError

    async def send(command: list[str]) -> dict[str, Any]:
        try:
            return _encode_py(await r.execute_command(*command), err)
        except redis.exceptions.ResponseError as e:
            return _encode_py(e, err)

    pubsub = r.pubsub()
    await pubsub.subscribe(CHANNEL)
    confirmation = await pubsub.get_message(timeout=10)
    assert confirmation is not None and confirmation["type"] == "subscribe", confirmation

    out: dict[str, Any] = {"create": await send(SCENARIO["create"])}
    tid = json.loads(out["create"]["value"])["taskId"]
    out["steps"] = {name: await send(with_id(cmd, tid)) for name, cmd in SCENARIO["steps"]}
    for _ in range(SCENARIO["list_tasks"]):
        await send(SCENARIO["create"])
    out["pages"] = []
    cursor = None
    while len(out["pages"]) < 20:
        cmd = ["TASK.LIST", "LIMIT", str(SCENARIO["page_size"])]
        page = await send([*cmd, "CURSOR", cursor] if cursor else cmd)
        out["pages"].append(page)
        cursor = json.loads(page["value"]).get("nextCursor") if "value" in page else None
        if not cursor:
            break
    out["cancel"] = await send(with_id(SCENARIO["cancel"], tid))

    for key, transaction in (("pipeline", False), ("multi", True)):
        pipe = r.pipeline(transaction=transaction)
        task_id = SCENARIO["multi_id" if transaction else "pipeline_id"]
        for cmd in SCENARIO["batch"]:
            pipe.execute_command(*with_id(cmd, task_id))
        replies = [_encode_py(v, err) for v in await pipe.execute(raise_on_error=False)]
        out[key] = {"replies": replies} if transaction else replies

    messages: list[str] = []
    deadline = time.monotonic() + 10
    while len(messages) < MESSAGES_EXPECTED and time.monotonic() < deadline:
        m = await pubsub.get_message(timeout=0.2)
        if m is not None and m["type"] == "message":
            data = m["data"]
            messages.append(data.decode() if isinstance(data, bytes) else data)
    out["messages"] = messages
    await pubsub.unsubscribe(CHANNEL)
    await pubsub.aclose()
    out["ping"] = _encode_py(await r.ping(), err)
    out["info"] = {"type": "dict", "value": _info_text(await r.info("server"))}
    await r.aclose()
    return out
