"""Sans-IO half of the clients: the arguments of each TASK command and the parsing of its
reply. The sync and asyncio clients only add the I/O, so they cannot drift apart."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final, Literal

from taskstore.client.task import (
    McpVersion,
    Task,
    TaskInspection,
    TaskPage,
    TaskStatus,
    parse_timestamp,
)

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


def with_options(args: Args, **options: Arg | None) -> Args:
    """``args``, then ``NAME value`` for each option that is set (``OWNER`` last, by
    convention), in the order given."""
    for name, value in options.items():
        if value is not None:
            args += [name, value]
    return args


# -- arguments --------------------------------------------------------------------------------


def create_args(
    method: str, ttl: TTL, poll_interval: int | None, task_id: str | None, owner: str | None
) -> Args:
    return with_options(
        ["TASK.CREATE", method],
        TTL="NONE" if ttl == UNLIMITED else ttl,
        POLLINTERVAL=poll_interval,
        ID=task_id,
        OWNER=owner,
    )


def get_args(task_id: str, owner: str | None) -> Args:
    return with_options(["TASK.GET", task_id], OWNER=owner)


def update_args(
    task_id: str, status: TaskStatus | None, message: str | None, owner: str | None
) -> Args:
    args: Args = ["TASK.UPDATE", task_id] if status is None else ["TASK.UPDATE", task_id, status]
    return with_options(args, MESSAGE=message, OWNER=owner)


def set_variables_args(task_id: str, variables: Mapping[str, Any], owner: str | None) -> Args:
    return with_options(["TASK.SETVARS", task_id, dumps(dict(variables))], OWNER=owner)


def set_result_args(task_id: str, result: Any, owner: str | None) -> Args:
    return with_options(["TASK.SETRESULT", task_id, dumps(result)], OWNER=owner)


def result_args(task_id: str, block: int | None, any_status: bool, owner: str | None) -> Args:
    args = with_options(["TASK.RESULT", task_id], BLOCK=block)
    if any_status:
        args.append("ANY")
    return with_options(args, OWNER=owner)


def complete_args(
    task_id: str,
    status: Literal["completed", "failed"],
    result: Any,
    message: str | None,
    owner: str | None,
) -> Args:
    args: Args = ["TASK.COMPLETE", task_id, status, dumps(result)]
    return with_options(args, MESSAGE=message, OWNER=owner)


def cancel_args(task_id: str, message: str | None, owner: str | None) -> Args:
    return with_options(["TASK.CANCEL", task_id], MESSAGE=message, OWNER=owner)


def list_args(cursor: str | None, limit: int | None, owner: str | None) -> Args:
    return with_options(["TASK.LIST"], CURSOR=cursor, LIMIT=limit, OWNER=owner)


def delete_args(task_id: str, owner: str | None) -> Args:
    return with_options(["TASK.DEL", task_id], OWNER=owner)


def wait_args(
    task_id: str, status: TaskStatus | None, block: int | None, owner: str | None
) -> Args:
    return with_options(["TASK.WAIT", task_id], STATUS=status, BLOCK=block, OWNER=owner)


def cleanup_args(owner: str | None) -> Args:
    return with_options(["TASK.CLEANUP"], OWNER=owner)


def config_args(owner: str | None) -> Args:
    return with_options(["TASK.CONFIG"], OWNER=owner)


# -- the 2026-07-28 commands (docs/commands.md, 2026-07-28) ----------------------------------------

#: Words TASK.ASK / TASK.ANSWER read as options wherever a key could stand (any case): no
#: input request can have such a key.
_OPTION_WORDS: Final = frozenset({"MESSAGE", "OWNER"})
_MAX_KEY_LEN: Final = 256


def is_input_key(key: object) -> bool:
    """Whether ``key`` can name an input request: 1-256 printable ASCII characters without
    a space (the server's rule), and not an option word (``MESSAGE``, ``OWNER``)."""
    return (
        isinstance(key, str)
        and 0 < len(key) <= _MAX_KEY_LEN
        and key.isascii()
        and key.isprintable()
        and " " not in key
        and key.upper() not in _OPTION_WORDS
    )


def _object(value: Any) -> str:
    return dumps(dict(value) if isinstance(value, Mapping) else value)


def ask_args(
    task_id: str,
    requests: Mapping[str, Mapping[str, Any]],
    message: str | None,
    owner: str | None,
) -> Args:
    args: Args = ["TASK.ASK", task_id]
    for key, request in requests.items():
        if isinstance(key, str) and key.upper() in _OPTION_WORDS:
            raise ValueError(
                f"{key!r} cannot be an input request key (TASK.ASK reads it as an option)"
            )
        args += [key, _object(request)]
    return with_options(args, MESSAGE=message, OWNER=owner)


def answer_args(
    task_id: str, responses: Mapping[str, Mapping[str, Any]], owner: str | None
) -> Args | None:
    """TASK.ANSWER with the answers whose key could have been asked; None when none could.

    A key that no request can have (see :func:`is_input_key`) is never outstanding, so the
    server would ignore its answer anyway; leaving it out keeps one bad key (sent by an MCP
    client in ``tasks/update``) from failing the whole batch, and ``OWNER``/``MESSAGE`` from
    being read as options.
    """
    args: Args = ["TASK.ANSWER", task_id]
    for key, response in responses.items():
        if is_input_key(key):
            args += [key, _object(response)]
    if len(args) == 2:
        return None
    return with_options(args, OWNER=owner)


def answers_args(task_id: str, block: int | None, owner: str | None) -> Args:
    return with_options(["TASK.ANSWERS", task_id], BLOCK=block, OWNER=owner)


def fail_args(
    task_id: str, error: Mapping[str, Any], message: str | None, owner: str | None
) -> Args:
    return with_options(["TASK.FAIL", task_id, _object(error)], MESSAGE=message, OWNER=owner)


def lease_args(task_id: str, worker: str, ms: int, owner: str | None) -> Args:
    return with_options(["TASK.LEASE", task_id, worker, ms], OWNER=owner)


def request_cancel_args(task_id: str, message: str | None, owner: str | None) -> Args:
    return with_options(["TASK.CANCEL", task_id, "REQUEST"], MESSAGE=message, OWNER=owner)


def inspect_args(task_id: str, owner: str | None) -> Args:
    return with_options(["TASK.INSPECT", task_id], OWNER=owner)


def version_args(version: McpVersion | None) -> Args:
    return ["TASK.VERSION"] if version is None else ["TASK.VERSION", version]


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


def _items(reply: Any) -> list[tuple[Any, Any]]:
    """A map reply's pairs: a map in RESP3, a flat key/value array in RESP2."""
    if isinstance(reply, Mapping):
        return list(reply.items())
    flat = list(reply)
    return list(zip(flat[::2], flat[1::2], strict=True))


def parse_config(reply: Any) -> dict[str, Any]:
    """TASK.CONFIG: a map in RESP3, a flat key/value array in RESP2."""
    config: dict[str, Any] = {}
    for key, value in _items(reply):
        name = _text(key)
        if name == "allow_anonymous":
            value = bool(value)
        elif isinstance(value, bytes):
            value = value.decode("utf-8")
        config[name] = value
    return config


def parse_answers(reply: Any) -> dict[str, dict[str, Any]] | None:
    """TASK.ANSWERS: the answers object; None for the null reply of a BLOCK timeout."""
    if reply is None:
        return None
    answers: dict[str, dict[str, Any]] = parse_json(reply)
    return answers


def parse_inspection(reply: Any) -> TaskInspection:
    """TASK.INSPECT: the record's map (RESP3) or flat array (RESP2) as a TaskInspection."""
    fields = {_text(key): value for key, value in _items(reply)}

    def optional_time(name: str) -> Any:
        value = fields.get(name)
        return None if value is None else parse_timestamp(_text(value))

    error = fields.get("error")
    return TaskInspection(
        task=parse_task(fields["task"]),
        owner=_text(fields["owner"]),
        method=_text(fields["method"]),
        variables=parse_json(fields["variables"]),
        input_requests=parse_json(fields["input_requests"]),
        issued_keys=tuple(_text(key) for key in fields["issued_keys"] or ()),
        answers=parse_json(fields["answers"]),
        error=None if error is None else parse_json(error),
        cancel_requested_at=optional_time("cancel_requested_at"),
        expires_at=optional_time("expires_at"),
    )
