"""The TASK command family (docs/commands.md §3): parse the arguments, apply them to the store with
the caller's owner, reply with the task's wire JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskstore.protocol import OK
from taskstore.server.blocking import ANSWERS, RESULT_ANY, answers_reply, result_reply
from taskstore.server.commands.base import Arg, CommandError, command
from taskstore.server.config import MCP_VERSIONS
from taskstore.store import (
    InvalidArgument,
    TaskRecord,
    answers_json,
    json_object,
    list_json,
    list_json_v2,
    parse_status,
)
from taskstore.store.jsonutil import dumps_compact
from taskstore.store.timefmt import format_ms

if TYPE_CHECKING:
    from taskstore.server.connection import Connection

_OWNER_ARG = Arg("owner", token="OWNER", optional=True)
_GROUP = "task"


def _text(raw: bytes) -> str:
    # surrogateescape keeps any bytes round-trippable into error messages
    return raw.decode("utf-8", "surrogateescape")


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(f"{what} must be valid UTF-8") from None


def _int(raw: bytes, what: str) -> int:
    value = int(raw) if raw.isdigit() else 0
    if value < 1:
        raise InvalidArgument(f"{what} must be a whole number >= 1")
    return value


def _options(
    conn: Connection,
    args: list[bytes],
    start: int,
    names: frozenset[bytes],
    flags: frozenset[bytes] = frozenset(),
) -> tuple[str, dict[bytes, bytes]]:
    """Parse ``KEY value`` options and bare ``FLAG`` tokens from ``start``; returns (owner,
    options), a flag that is present mapped to ``b""``.

    ``OWNER`` is accepted on every command, from identities allowed to impersonate.
    """
    opts: dict[bytes, bytes] = {}
    i = start
    n = len(args)
    while i < n:
        key = args[i].upper()
        if (key in names or key == b"OWNER") and i + 1 < n:
            opts[key] = args[i + 1]
            i += 2
        elif key in flags:
            opts[key] = b""
            i += 1
        else:
            raise CommandError("ERR syntax error")
    owner_raw = opts.pop(b"OWNER", None)
    if owner_raw is None:
        return conn.task_owner(), opts
    return conn.impersonate(_text(owner_raw)), opts


def _task(conn: Connection, record: TaskRecord) -> bytes:
    """A task in the connection's MCP generation (docs/commands.md, Second-generation tasks)."""
    return record.wire_json_v2() if conn.v2 else record.wire_json()


def _message(opts: dict[bytes, bytes]) -> str | None:
    """The MESSAGE option's text, if given."""
    raw = opts.get(b"MESSAGE")
    return None if raw is None else _utf8(raw, "MESSAGE")


def _owner_only(conn: Connection, args: list[bytes], start: int) -> str:
    if len(args) == start:  # the hot path: no options at all
        return conn.task_owner()
    return _options(conn, args, start, frozenset())[0]


_CREATE_OPTS = frozenset({b"TTL", b"POLLINTERVAL", b"ID"})


@command(
    "task.create",
    -2,
    flags=("write", "denyoom", "fast"),
    group=_GROUP,
    summary="Creates a task in the working status and returns it.",
    since="0.1.0",
    complexity="O(log N) where N is the number of tasks of the owner",
    arguments=(
        Arg("method"),
        Arg("ttl", token="TTL", optional=True),
        Arg("poll-interval", "integer", token="POLLINTERVAL", optional=True),
        Arg("id", token="ID", optional=True),
        _OWNER_ARG,
    ),
    categories=("write", "fast"),
)
def task_create(conn: Connection, args: list[bytes]) -> Any:
    if len(args) == 2:  # the hot path: no options
        record = conn.server.store.create(conn.task_owner(), _utf8(args[1], "method"))
        return record.wire_json_v2() if conn.v2 else record.wire_json()
    owner, opts = _options(conn, args, 2, _CREATE_OPTS)
    ttl_ms: int | None = None
    unlimited = False
    raw_ttl = opts.get(b"TTL")
    if raw_ttl is not None:
        if raw_ttl.upper() == b"NONE":
            unlimited = True
        else:
            ttl_ms = int(raw_ttl) if raw_ttl.isdigit() else 0  # 0: the store's TTL error
    poll = opts.get(b"POLLINTERVAL")
    raw_id = opts.get(b"ID")
    record = conn.server.store.create(
        owner,
        _utf8(args[1], "method"),
        ttl_ms,
        unlimited=unlimited,
        poll_interval_ms=None if poll is None else _int(poll, "POLLINTERVAL"),
        task_id=None if raw_id is None else _text(raw_id),
    )
    return _task(conn, record)


@command(
    "task.get",
    -2,
    flags=("readonly", "fast"),
    group=_GROUP,
    summary="Returns a task (expired tasks too, until they are evicted).",
    since="0.1.0",
    arguments=(Arg("id"), _OWNER_ARG),
    categories=("read", "fast"),
)
def task_get(conn: Connection, args: list[bytes]) -> Any:
    if len(args) == 2:
        record = conn.server.store.get(conn.task_owner(), _text(args[1]))
    else:
        record = conn.server.store.get(_owner_only(conn, args, 2), _text(args[1]))
    return record.wire_json_v2() if conn.v2 else record.wire_json()


_MESSAGE_OPTS = frozenset({b"MESSAGE"})


@command(
    "task.update",
    -3,
    flags=("write", "fast"),
    group=_GROUP,
    summary="Changes a task's status and/or status message (MESSAGE alone: terminal tasks too).",
    since="0.1.0",
    # a status, a message, or both: one of two blocks (the docs' grammar has no "at least one")
    arguments=(
        Arg("id"),
        Arg(
            "change",
            "oneof",
            arguments=(
                Arg(
                    "status-change",
                    "block",
                    arguments=(
                        Arg(
                            "status",
                            "oneof",
                            arguments=(
                                Arg("working", "pure-token", token="working"),
                                Arg("input_required", "pure-token", token="input_required"),
                                Arg("completed", "pure-token", token="completed"),
                                Arg("failed", "pure-token", token="failed"),
                                Arg("cancelled", "pure-token", token="cancelled"),
                            ),
                        ),
                        Arg("text", token="MESSAGE", optional=True),
                    ),
                ),
                Arg("text", token="MESSAGE"),
            ),
        ),
        _OWNER_ARG,
    ),
    categories=("write", "fast"),
)
def task_update(conn: Connection, args: list[bytes]) -> Any:
    start = 2
    status = None
    if args[2].upper() not in (b"MESSAGE", b"OWNER"):
        status = parse_status(_text(args[2]))
        start = 3
    owner, opts = _options(conn, args, start, _MESSAGE_OPTS)
    set_message = b"MESSAGE" in opts
    if status is None and not set_message:
        raise CommandError("ERR TASK.UPDATE needs a status, MESSAGE or both")
    record = conn.server.store.update_status(
        owner,
        _text(args[1]),
        status,
        _message(opts),
        set_message=set_message,
    )
    return _task(conn, record)


@command(
    "task.setvars",
    -3,
    flags=("write", "denyoom"),
    group=_GROUP,
    summary="Merges a JSON object into a task's variables (null deletes a key).",
    since="0.1.0",
    complexity="O(N) where N is the size of the variables",
    arguments=(Arg("id"), Arg("json-object"), _OWNER_ARG),
    categories=("write",),
)
def task_setvars(conn: Connection, args: list[bytes]) -> Any:
    owner = _owner_only(conn, args, 3)
    return _task(conn, conn.server.store.set_variables(owner, _text(args[1]), args[2]))


@command(
    "task.setresult",
    -3,
    flags=("write", "denyoom"),
    group=_GROUP,
    summary="Stores a task's result (any JSON value); the status does not change.",
    since="0.1.0",
    complexity="O(N) where N is the size of the result",
    arguments=(Arg("id"), Arg("json"), _OWNER_ARG),
    categories=("write",),
)
def task_setresult(conn: Connection, args: list[bytes]) -> Any:
    owner = _owner_only(conn, args, 3)
    conn.server.store.set_result(owner, _text(args[1]), args[2])
    return OK


_RESULT_OPTS = frozenset({b"BLOCK"})
_RESULT_FLAGS = frozenset({b"ANY"})


def _timeout(raw: bytes) -> int:
    """BLOCK <ms>: 0 waits forever (Redis's wording for bad timeouts)."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    ms = int(raw) if digits.isdigit() else None
    if ms is None or not -(2**63) <= ms < 2**63:
        raise CommandError("ERR timeout is not an integer or out of range")
    if ms < 0:
        raise CommandError("ERR timeout is negative")
    return ms


@command(
    "task.result",
    -2,
    flags=("readonly", "blocking"),
    group=_GROUP,
    summary="Returns a terminal task's result JSON (ANY: whatever the status); with BLOCK, waits "
    "for it.",
    since="0.1.0",
    arguments=(
        Arg("id"),
        Arg("timeout", "integer", token="BLOCK", optional=True),
        Arg("any", "pure-token", token="ANY", optional=True),
        _OWNER_ARG,
    ),
    categories=("read", "blocking"),
)
def task_result(conn: Connection, args: list[bytes]) -> Any:
    owner, opts = _options(conn, args, 2, _RESULT_OPTS, _RESULT_FLAGS)
    task_id = _text(args[1])
    store = conn.server.store
    raw_block = opts.get(b"BLOCK")
    any_status = b"ANY" in opts
    if raw_block is None:
        if any_status:
            return store.stored_result(owner, task_id)  # None: a null reply
        return store.get_result(owner, task_id)
    timeout = _timeout(raw_block)
    record = store.get(owner, task_id)  # NOTFOUND at once
    ready = result_reply(record, store, any_status)
    if ready is not None:
        return ready
    if conn.in_exec:
        return None  # inside MULTI nothing waits: as if the timeout passed
    return conn.block(owner, task_id, RESULT_ANY if any_status else "result", None, timeout)


_WAIT_OPTS = frozenset({b"STATUS", b"BLOCK"})


@command(
    "task.wait",
    -2,
    flags=("readonly", "blocking"),
    group=_GROUP,
    summary="Waits until a task's status differs from STATUS (or, without it, its next change).",
    since="0.1.0",
    arguments=(
        Arg("id"),
        Arg("status", token="STATUS", optional=True),
        Arg("timeout", "integer", token="BLOCK", optional=True),
        _OWNER_ARG,
    ),
    categories=("read", "blocking"),
)
def task_wait(conn: Connection, args: list[bytes]) -> Any:
    owner, opts = _options(conn, args, 2, _WAIT_OPTS)
    task_id = _text(args[1])
    raw_status = opts.get(b"STATUS")
    status = None if raw_status is None else parse_status(_text(raw_status))
    raw_block = opts.get(b"BLOCK")
    timeout = 0 if raw_block is None else _timeout(raw_block)
    record = conn.server.store.get(owner, task_id)  # NOTFOUND at once
    if status is not None and record.status != status:
        return _task(conn, record)
    if conn.in_exec:
        return None
    return conn.block(owner, task_id, "wait", status, timeout)


@command(
    "task.complete",
    -4,
    flags=("write", "denyoom"),
    group=_GROUP,
    summary="Sets a task's terminal status and its result together, or neither.",
    since="0.1.0",
    arguments=(
        Arg("id"),
        Arg(
            "status",
            "oneof",
            arguments=(
                Arg("completed", "pure-token", token="completed"),
                Arg("failed", "pure-token", token="failed"),
            ),
        ),
        Arg("json"),
        Arg("text", token="MESSAGE", optional=True),
        _OWNER_ARG,
    ),
    categories=("write",),
)
def task_complete(conn: Connection, args: list[bytes]) -> Any:
    owner, opts = _options(conn, args, 4, _MESSAGE_OPTS)
    record = conn.server.store.complete_with_result(
        owner,
        _text(args[1]),
        parse_status(_text(args[2])),
        args[3],
        _message(opts),
    )
    return _task(conn, record)


_CANCEL_FLAGS = frozenset({b"REQUEST"})


@command(
    "task.cancel",
    -2,
    flags=("write", "fast"),
    group=_GROUP,
    summary="Cancels a task that is not terminal yet; REQUEST only records a cooperative "
    "cancellation request.",
    since="0.1.0",
    arguments=(
        Arg("id"),
        Arg("request", "pure-token", token="REQUEST", optional=True),
        Arg("text", token="MESSAGE", optional=True),
        _OWNER_ARG,
    ),
    categories=("write", "fast"),
)
def task_cancel(conn: Connection, args: list[bytes]) -> Any:
    owner, opts = _options(conn, args, 2, _MESSAGE_OPTS, _CANCEL_FLAGS)
    message = _message(opts)
    store = conn.server.store
    if b"REQUEST" in opts:
        return _task(conn, store.request_cancel(owner, _text(args[1]), message))
    return _task(conn, store.cancel(owner, _text(args[1]), message))


_LIST_OPTS = frozenset({b"CURSOR", b"LIMIT"})


@command(
    "task.list",
    -1,
    flags=("readonly",),
    group=_GROUP,
    summary="Lists the caller's tasks, newest first, a page at a time (MCP ListTasksResult).",
    since="0.1.0",
    complexity="O(log N + M): N tasks of the owner, M the page size",
    arguments=(
        Arg("cursor", token="CURSOR", optional=True),
        Arg("count", "integer", token="LIMIT", optional=True),
        _OWNER_ARG,
    ),
    categories=("read",),
)
def task_list(conn: Connection, args: list[bytes]) -> Any:
    owner, opts = _options(conn, args, 1, _LIST_OPTS)
    store = conn.server.store
    raw_limit = opts.get(b"LIMIT")
    # anything but digits becomes 0, which the store refuses with its range message
    limit = None if raw_limit is None else int(raw_limit) if raw_limit.isdigit() else 0
    raw_cursor = opts.get(b"CURSOR")
    records, next_cursor = store.list(
        owner, None if raw_cursor is None else _text(raw_cursor), limit
    )
    return (list_json_v2 if conn.v2 else list_json)(records, next_cursor)


@command(
    "task.cleanup",
    -1,
    flags=("write",),
    group=_GROUP,
    summary="Evicts expired tasks now (the caller's; every owner's for admins); returns the count.",
    since="0.1.0",
    complexity="O(N) where N is the number of expired tasks",
    arguments=(_OWNER_ARG,),
    categories=("write", "slow"),
)
def task_cleanup(conn: Connection, args: list[bytes]) -> Any:
    if len(args) == 1 and conn.is_admin:
        conn.task_owner()  # anonymous-access check, as for every TASK command
        return conn.server.store.cleanup_expired(None)
    return conn.server.store.cleanup_expired(_owner_only(conn, args, 1))


@command(
    "task.config",
    -1,
    flags=("readonly", "fast"),
    group=_GROUP,
    summary="Returns the effective task store and security configuration.",
    since="0.1.0",
    arguments=(_OWNER_ARG,),
    categories=("read", "fast"),
)
def task_config(conn: Connection, args: list[bytes]) -> Any:
    _owner_only(conn, args, 1)
    return dict(conn.server.store.config_items())


@command(
    "task.del",
    -2,
    flags=("write", "fast"),
    group=_GROUP,
    summary="Deletes a task; 1 if it existed, else 0.",
    since="0.1.0",
    arguments=(Arg("id"), _OWNER_ARG),
    categories=("write", "fast"),
)
def task_del(conn: Connection, args: list[bytes]) -> Any:
    owner = _owner_only(conn, args, 2)
    return 1 if conn.server.store.delete(owner, _text(args[1])) else 0


# -- 2026-07-28: input requests, answers, errors, the record, the generation ----------------


def _pairs(
    conn: Connection, args: list[bytes], start: int
) -> tuple[str, list[tuple[str, bytes]], dict[bytes, bytes]]:
    """``<key> <json> [<key> <json> …]`` then options (MESSAGE, OWNER) from ``start``.

    A pair position whose first word is an option name starts the options, so MESSAGE and
    OWNER cannot be keys (any case).
    """
    pairs: list[tuple[str, bytes]] = []
    i = start
    n = len(args)
    while i < n and args[i].upper() not in (b"MESSAGE", b"OWNER"):
        if i + 1 >= n:
            raise CommandError("ERR syntax error: every key needs a JSON value")
        pairs.append((_text(args[i]), args[i + 1]))
        i += 2
    owner, opts = _options(conn, args, i, _MESSAGE_OPTS)
    return owner, pairs, opts


@command(
    "task.ask",
    -4,
    flags=("write", "denyoom"),
    group=_GROUP,
    summary="Adds input requests to a task and sets it input_required, atomically.",
    since="0.2.0",
    complexity="O(N) where N is the size of the requests",
    arguments=(
        Arg("id"),
        Arg("request", "block", multiple=True, arguments=(Arg("key"), Arg("request-json"))),
        Arg("text", token="MESSAGE", optional=True),
        _OWNER_ARG,
    ),
    categories=("write",),
)
def task_ask(conn: Connection, args: list[bytes]) -> Any:
    owner, pairs, opts = _pairs(conn, args, 2)
    record = conn.server.store.ask(
        owner,
        _text(args[1]),
        list(pairs),
        _message(opts),
    )
    return _task(conn, record)


@command(
    "task.answer",
    -4,
    flags=("write", "denyoom"),
    group=_GROUP,
    summary="Answers outstanding input requests; returns how many answers were accepted.",
    since="0.2.0",
    complexity="O(N) where N is the size of the answers",
    arguments=(
        Arg("id"),
        Arg("answer", "block", multiple=True, arguments=(Arg("key"), Arg("response-json"))),
        _OWNER_ARG,
    ),
    categories=("write",),
)
def task_answer(conn: Connection, args: list[bytes]) -> Any:
    owner, pairs, opts = _pairs(conn, args, 2)
    if opts:
        raise CommandError("ERR syntax error")
    return conn.server.store.answer(owner, _text(args[1]), list(pairs))


_ANSWERS_OPTS = frozenset({b"BLOCK"})


@command(
    "task.answers",
    -2,
    flags=("readonly", "blocking"),
    group=_GROUP,
    summary="Returns every answer received so far; with BLOCK, waits until none is outstanding, "
    "the task ends or cancellation is requested.",
    since="0.2.0",
    arguments=(Arg("id"), Arg("timeout", "integer", token="BLOCK", optional=True), _OWNER_ARG),
    categories=("read", "blocking"),
)
def task_answers(conn: Connection, args: list[bytes]) -> Any:
    owner, opts = _options(conn, args, 2, _ANSWERS_OPTS)
    task_id = _text(args[1])
    store = conn.server.store
    raw_block = opts.get(b"BLOCK")
    if raw_block is None:
        return store.answers(owner, task_id)
    timeout = _timeout(raw_block)
    record = store.get(owner, task_id)  # NOTFOUND at once
    ready = answers_reply(record)
    if ready is not None:
        return ready
    if conn.in_exec:
        return None
    return conn.block(owner, task_id, ANSWERS, None, timeout)


@command(
    "task.fail",
    -3,
    flags=("write", "denyoom"),
    group=_GROUP,
    summary="Fails a task with a JSON-RPC error object (code, message, data), atomically.",
    since="0.2.0",
    arguments=(
        Arg("id"),
        Arg("error-json"),
        Arg("text", token="MESSAGE", optional=True),
        _OWNER_ARG,
    ),
    categories=("write",),
)
def task_fail(conn: Connection, args: list[bytes]) -> Any:
    owner, opts = _options(conn, args, 3, _MESSAGE_OPTS)
    record = conn.server.store.fail(
        owner,
        _text(args[1]),
        args[2],
        _message(opts),
    )
    return _task(conn, record)


@command(
    "task.inspect",
    -2,
    flags=("readonly",),
    group=_GROUP,
    summary="Returns the whole record of a task as a map, for workers and people at redis-cli.",
    since="0.2.0",
    arguments=(Arg("id"), _OWNER_ARG),
    categories=("read",),
)
def task_inspect(conn: Connection, args: list[bytes]) -> Any:
    owner = _owner_only(conn, args, 2)
    record = conn.server.store.get(owner, _text(args[1]))
    interaction = record.interaction
    requests = interaction.requests if interaction is not None else {}
    variables = record.variables
    return {
        "task": _task(conn, record),
        "owner": record.owner,
        "method": record.request_method,
        "variables": dumps_compact(variables) if variables else b"{}",
        "input_requests": json_object(requests),
        "issued_keys": sorted(interaction.issued) if interaction is not None else [],
        "answers": answers_json(interaction),
        "error": interaction.error if interaction is not None else None,
        "cancel_requested_at": None
        if interaction is None or interaction.cancel_requested_at_ms is None
        else format_ms(interaction.cancel_requested_at_ms),
        "expires_at": None if record.expires_at_ms is None else format_ms(record.expires_at_ms),
        "lease_holder": interaction.lease_holder if interaction is not None else None,
        "lease_expires_at": None
        if interaction is None or interaction.lease_expires_at_ms is None
        else format_ms(interaction.lease_expires_at_ms),
    }


@command(
    "task.lease",
    -4,
    flags=("write", "fast"),
    group=_GROUP,
    summary="Takes or renews a worker's lease on a task (0 releases it); a lease that runs out "
    "fails the task.",
    since="0.2.0",
    arguments=(Arg("id"), Arg("worker"), Arg("ms", "integer"), _OWNER_ARG),
    categories=("write", "fast"),
)
def task_lease(conn: Connection, args: list[bytes]) -> Any:
    owner = _owner_only(conn, args, 4)
    raw = args[3]
    if not raw.isdigit():
        raise InvalidArgument("lease must be a whole number of ms")
    return conn.server.store.lease(owner, _text(args[1]), _text(args[2]), int(raw))


@command(
    "task.version",
    -1,
    flags=("fast",),
    group=_GROUP,
    summary="Shows or sets the MCP task generation this connection renders tasks in.",
    since="0.2.0",
    arguments=(
        Arg(
            "version",
            "oneof",
            optional=True,
            arguments=tuple(Arg(v, "pure-token", token=v) for v in MCP_VERSIONS),
        ),
    ),
    categories=("connection", "fast"),
)
def task_version(conn: Connection, args: list[bytes]) -> Any:
    if len(args) == 1:
        return MCP_VERSIONS[1] if conn.v2 else MCP_VERSIONS[0]
    if len(args) > 2:
        raise CommandError("ERR wrong number of arguments for 'task.version' command")
    version = _text(args[1])
    if version not in MCP_VERSIONS:
        shown = version if version.isprintable() and len(version) <= 64 else "<invalid>"
        raise CommandError(
            f"ERR unsupported MCP version '{shown}' (supported: {', '.join(MCP_VERSIONS)})"
        )
    conn.v2 = version == MCP_VERSIONS[1]
    return OK
