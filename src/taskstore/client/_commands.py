"""Sans-IO half of the clients: the arguments of each TASK command and the parsing of its
reply. The sync and asyncio clients only add the I/O, so they cannot drift apart."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final, Literal

from taskstore.client.task import Task, TaskPage, TaskStatus

DEFAULT_URL: Final = "redis://127.0.0.1:6379"
URL_ENV: Final = "TASKSTORE_URL"

#: ``ttl=UNLIMITED`` asks for unlimited retention (``TTL NONE``; the server must run with
#: ``max_ttl_ms 0``).
UNLIMITED: Final = "none"

Arg = str | bytes | int
Args = list[Arg]
TTL = int | Literal["none"] | None


def default_url() -> str:
    """``$TASKSTORE_URL``, else ``redis://127.0.0.1:6379``."""
    return os.environ.get(URL_ENV) or DEFAULT_URL


def dumps(value: Any) -> str:
    """Compact JSON, as the server itself writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _text(reply: Any) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8")
    if isinstance(reply, str):
        return reply
    raise TypeError(f"expected a bulk string reply, got {reply!r}")


def with_owner(args: Args, owner: str | None) -> Args:
    if owner is not None:
        args += ["OWNER", owner]
    return args


# -- arguments --------------------------------------------------------------------------------


def create_args(
    method: str, ttl: TTL, poll_interval: int | None, task_id: str | None, owner: str | None
) -> Args:
    args: Args = ["TASK.CREATE", method]
    if ttl is not None:
        args += ["TTL", "NONE" if ttl == UNLIMITED else ttl]
    if poll_interval is not None:
        args += ["POLLINTERVAL", poll_interval]
    if task_id is not None:
        args += ["ID", task_id]
    return with_owner(args, owner)


def get_args(task_id: str, owner: str | None) -> Args:
    return with_owner(["TASK.GET", task_id], owner)


def update_args(
    task_id: str, status: TaskStatus | None, message: str | None, owner: str | None
) -> Args:
    args: Args = ["TASK.UPDATE", task_id]
    if status is not None:
        args.append(status)
    if message is not None:
        args += ["MESSAGE", message]
    return with_owner(args, owner)


def set_variables_args(task_id: str, variables: Mapping[str, Any], owner: str | None) -> Args:
    return with_owner(["TASK.SETVARS", task_id, dumps(dict(variables))], owner)


def set_result_args(task_id: str, result: Any, owner: str | None) -> Args:
    return with_owner(["TASK.SETRESULT", task_id, dumps(result)], owner)


def result_args(task_id: str, block: int | None, any_status: bool, owner: str | None) -> Args:
    args: Args = ["TASK.RESULT", task_id]
    if block is not None:
        args += ["BLOCK", block]
    if any_status:
        args.append("ANY")
    return with_owner(args, owner)


def complete_args(
    task_id: str,
    status: Literal["completed", "failed"],
    result: Any,
    message: str | None,
    owner: str | None,
) -> Args:
    args: Args = ["TASK.COMPLETE", task_id, status, dumps(result)]
    if message is not None:
        args += ["MESSAGE", message]
    return with_owner(args, owner)


def cancel_args(task_id: str, message: str | None, owner: str | None) -> Args:
    args: Args = ["TASK.CANCEL", task_id]
    if message is not None:
        args += ["MESSAGE", message]
    return with_owner(args, owner)


def list_args(cursor: str | None, limit: int | None, owner: str | None) -> Args:
    args: Args = ["TASK.LIST"]
    if cursor is not None:
        args += ["CURSOR", cursor]
    if limit is not None:
        args += ["LIMIT", limit]
    return with_owner(args, owner)


def delete_args(task_id: str, owner: str | None) -> Args:
    return with_owner(["TASK.DEL", task_id], owner)


def wait_args(
    task_id: str, status: TaskStatus | None, block: int | None, owner: str | None
) -> Args:
    args: Args = ["TASK.WAIT", task_id]
    if status is not None:
        args += ["STATUS", status]
    if block is not None:
        args += ["BLOCK", block]
    return with_owner(args, owner)


def cleanup_args(owner: str | None) -> Args:
    return with_owner(["TASK.CLEANUP"], owner)


def config_args(owner: str | None) -> Args:
    return with_owner(["TASK.CONFIG"], owner)


# -- replies ----------------------------------------------------------------------------------


def parse_task(reply: Any) -> Task:
    return Task.from_wire(_text(reply))


def parse_optional_task(reply: Any) -> Task | None:
    return None if reply is None else parse_task(reply)


def parse_page(reply: Any) -> TaskPage:
    return TaskPage.from_wire(_text(reply))


def parse_json(reply: Any) -> Any:
    return json.loads(_text(reply))


def parse_ok(reply: Any) -> None:
    if reply not in (b"OK", "OK", True):
        raise TypeError(f"expected +OK, got {reply!r}")


def parse_bool(reply: Any) -> bool:
    return bool(int(reply))


def parse_int(reply: Any) -> int:
    return int(reply)


def parse_config(reply: Any) -> dict[str, Any]:
    """TASK.CONFIG: a map in RESP3, a flat key/value array in RESP2."""
    items: list[tuple[Any, Any]]
    if isinstance(reply, Mapping):
        items = list(reply.items())
    else:
        flat = list(reply)
        items = list(zip(flat[::2], flat[1::2], strict=True))
    config: dict[str, Any] = {}
    for key, value in items:
        name = _text(key)
        if name == "allow_anonymous":
            value = bool(value)
        elif isinstance(value, bytes):
            value = value.decode("utf-8")
        config[name] = value
    return config
