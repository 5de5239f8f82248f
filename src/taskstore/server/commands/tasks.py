"""The TASK command family (docs/commands.md §3). Each command is one spec: its documented
arguments are also its parser (``Grammar``), so a handler receives typed values and the
caller's owner, and reaches the server only through ``TaskContext``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from taskstore.protocol import OK
from taskstore.server.blocking import ANSWERS, RESULT_ANY, answers_reply, result_reply
from taskstore.server.commands.spec import (
    WORD_STEP,
    Arg,
    Command,
    CommandError,
    Grammar,
    Handler,
    Word,
    syntax_error,
)
from taskstore.server.config import MCP_VERSIONS
from taskstore.store import (
    InvalidArgument,
    TaskRecord,
    TaskStatus,
    TaskStore,
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


class TaskContext(Protocol):
    """What a TASK handler may use of its connection: the store, the MCP generation replies
    render in, and (blocking commands) parking the client."""

    @property
    def store(self) -> TaskStore: ...

    @property
    def v2(self) -> bool: ...

    @property
    def in_exec(self) -> bool: ...

    def block(self, owner: str, task_id: str, kind: str, status: Any, timeout_ms: int) -> Any: ...


# -- words -> values ----------------------------------------------------------------------


def _text(raw: bytes) -> str:
    # surrogateescape keeps any bytes round-trippable into error messages
    return raw.decode("utf-8", "surrogateescape")


def _utf8(what: str) -> Word:
    def word(raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgument(f"{what} must be valid UTF-8") from None

    return word


def _whole(what: str) -> Word:
    def word(raw: bytes) -> int:
        value = int(raw) if raw.isdigit() else 0
        if value < 1:
            raise InvalidArgument(f"{what} must be a whole number >= 1")
        return value

    return word


def _count(raw: bytes) -> int:
    """Digits, else 0: the store refuses 0 with its own range message."""
    return int(raw) if raw.isdigit() else 0


#: TTL NONE: kept for ever (where max_ttl_ms allows it)
UNLIMITED = -1


def _ttl(raw: bytes) -> int:
    if raw.upper() == b"NONE":
        return UNLIMITED
    return _count(raw)  # 0: the store's TTL error


def _timeout(raw: bytes) -> int:
    """BLOCK <ms>: 0 waits forever (Redis's wording for bad timeouts)."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    ms = int(raw) if digits.isdigit() else None
    if ms is None or not -(2**63) <= ms < 2**63:
        raise CommandError("ERR timeout is not an integer or out of range")
    if ms < 0:
        raise CommandError("ERR timeout is negative")
    return ms


def _status(raw: bytes) -> TaskStatus:
    return parse_status(_text(raw))


def _lease_ms(raw: bytes) -> int:
    if not raw.isdigit():
        raise InvalidArgument("lease must be a whole number of ms")
    return int(raw)


def _version(raw: bytes) -> bool:
    """An MCP version: True for 2026-07-28."""
    version = _text(raw)
    if version not in MCP_VERSIONS:
        shown = version if version.isprintable() and len(version) <= 64 else "<invalid>"
        raise CommandError(
            f"ERR unsupported MCP version '{shown}' (supported: {', '.join(MCP_VERSIONS)})"
        )
    return version == MCP_VERSIONS[1]


# -- the spec of a TASK command ---------------------------------------------------------------

_OWNER = Arg("owner", token="OWNER", optional=True)
_MESSAGE = Arg("text", token="MESSAGE", optional=True, value=_utf8("MESSAGE"), dest="message")
_ID = Arg("id", dest="task_id")
_JSON_KEY_VALUE = "ERR syntax error: every key needs a JSON value"

_CATEGORIES = {"write": "write", "readonly": "read", "blocking": "blocking"}


def task_command(
    name: str,
    arity: int,
    *,
    flags: tuple[str, ...],
    summary: str,
    arguments: tuple[Arg, ...],
    since: str = "0.1.0",
    complexity: str = "O(1)",
    every_owner: bool = False,
    stops: frozenset[bytes] = frozenset(),
) -> Callable[[Callable[..., Any]], Command]:
    """The spec of a TASK command taking ``OWNER``: its handler is called as
    ``handler(ctx, owner, *values)``, values in the order the arguments first name them.

    The owner is the caller's, or ``OWNER``'s for identities that may impersonate; with
    ``every_owner`` an admin that names none gets ``None`` (TASK.CLEANUP: all owners).
    """
    grammar = Grammar((*arguments, _OWNER), default=_text, stops=stops)
    owner_slot = len(grammar.slots) - 1
    assert grammar.slots[owner_slot] == "owner"
    categories = tuple(_CATEGORIES[f] for f in flags if f in _CATEGORIES)
    categories += ("fast",) if "fast" in flags else ("slow",)
    # Requests that name every positional argument and no option skip the parser: one
    # word each, converted in place (TASK.GET <id>, TASK.CREATE <method>, TASK.UPDATE <id>
    # <status>, ...).
    plain, simple, check = grammar.plain()
    if every_owner:
        plain = -1
    ends = grammar.ends

    def spec(fn: Callable[..., Any]) -> Command:
        parsed = _specialized(name, grammar, fn, owner_slot, every_owner) or _generic(
            grammar, fn, owner_slot, every_owner
        )

        # the plain form, one function per word count (the owner is resolved before any
        # word is converted, as in the parsed form)
        run: Handler = parsed
        if plain == 1:

            def run(conn: Connection, words: list[bytes]) -> Any:
                if len(words) == 1:
                    return fn(conn, conn.task_owner())
                return parsed(conn, words)

        elif plain == 2:
            (c1,) = simple

            def run(conn: Connection, words: list[bytes]) -> Any:
                if len(words) == 2:
                    return fn(conn, conn.task_owner(), c1(words[1]))
                return parsed(conn, words)

        elif plain == 3:
            c1, c2 = simple

            def run(conn: Connection, words: list[bytes]) -> Any:
                if len(words) == 3 and (check < 0 or words[check].upper() not in ends):
                    return fn(conn, conn.task_owner(), c1(words[1]), c2(words[2]))
                return parsed(conn, words)

        elif plain > 3:

            def run(conn: Connection, words: list[bytes]) -> Any:
                if len(words) == plain and (check < 0 or words[check].upper() not in ends):
                    owner = conn.task_owner()
                    return fn(conn, owner, *[c(w) for c, w in zip(simple, words[1:], strict=True)])
                return parsed(conn, words)

        return Command(
            name,
            arity,
            run,
            flags,
            "task",
            summary,
            since,
            complexity,
            (*arguments, _OWNER),
            categories=categories,
            grammar=grammar,
        )

    return spec


def _generic(
    grammar: Grammar, fn: Callable[..., Any], owner_slot: int, every_owner: bool
) -> Handler:
    """The parser of any grammar: ``Grammar.split``, the owner, the conversions, the call."""
    split = grammar.split
    converters = [(slot, word) for slot, word in grammar.converters if slot != owner_slot]

    def parsed(conn: Connection, words: list[bytes]) -> Any:
        values = split(words)
        raw = values[owner_slot]
        owner: str | None
        if raw is not None:
            owner = conn.impersonate(_text(raw))
        elif every_owner and conn.is_admin:
            conn.task_owner()  # the anonymous-access check, as for every TASK command
            owner = None
        else:
            owner = conn.task_owner()
        values.pop()
        for slot, word in converters:
            raw = values[slot]
            if raw is not None:
                values[slot] = word(raw)
        return fn(conn, owner, *values)

    return parsed


def _specialized(
    name: str, grammar: Grammar, fn: Callable[..., Any], owner_slot: int, every_owner: bool
) -> Handler | None:
    """The parser of a grammar made of single words and options, written out as Python for
    this command (as dataclasses writes ``__init__``): the same steps as ``Grammar.split``,
    the owner, the conversions and the call, without a loop over the spec at run time.
    None for grammars with repeated or grouped arguments (the generic path serves them)."""
    steps = grammar.steps
    if any(kind != WORD_STEP for kind, _, _, _ in steps):
        return None
    slots = range(len(grammar.slots))
    lines = [
        "def parsed(conn, words):",
        "    n = len(words)",
        "    " + " = ".join(f"v{k}" for k in slots) + " = None",
        "    i = 1",
    ]
    for _, slot, optional, _ in steps:
        if optional:
            lines += [
                "    if i < n and words[i].upper() not in ends:",
                f"        v{slot} = words[i]",
                "        i += 1",
            ]
        else:
            lines += [
                "    if i >= n:",
                "        raise syntax_error()",
                f"    v{slot} = words[i]",
                "    i += 1",
            ]
    lines += ["    while i < n:", "        t = words[i].upper()"]
    for k, (token, (slot, takes_value)) in enumerate(grammar.options.items()):
        lines.append(f"        {'if' if k == 0 else 'elif'} t == {token!r}:")
        if takes_value:
            lines += [
                "            if i + 1 >= n:",
                "                raise syntax_error()",
                f"            v{slot} = words[i + 1]",
                "            i += 2",
            ]
        else:
            lines += [f"            v{slot} = True", "            i += 1"]
    lines += ["        else:", "            raise syntax_error()"]
    lines += [
        f"    if v{owner_slot} is not None:",
        f"        owner = impersonate(conn, v{owner_slot})",
    ]
    if every_owner:
        lines += [
            "    elif conn.is_admin:",
            "        conn.task_owner()  # the anonymous-access check",
            "        owner = None",
        ]
    lines += ["    else:", "        owner = conn.task_owner()"]
    converters = dict(grammar.converters)
    for slot in slots:
        if slot != owner_slot and slot in converters:
            lines += [f"    if v{slot} is not None:", f"        v{slot} = c{slot}(v{slot})"]
    args = ", ".join(f"v{k}" for k in slots if k != owner_slot)
    lines.append(f"    return fn(conn, owner{', ' if args else ''}{args})")
    namespace: dict[str, Any] = {
        "__name__": __name__,
        "ends": grammar.ends,
        "fn": fn,
        "impersonate": lambda conn, raw: conn.impersonate(_text(raw)),
        "syntax_error": syntax_error,
        **{f"c{slot}": word for slot, word in converters.items()},
    }
    exec(compile("\n".join(lines), f"<{name} parser>", "exec"), namespace)
    handler: Handler = namespace["parsed"]
    return handler


def _task(ctx: TaskContext, record: TaskRecord) -> bytes:
    """A task in the connection's MCP generation (docs/commands.md, Second-generation tasks)."""
    return record.wire_json_v2() if ctx.v2 else record.wire_json()


# -- 2025-11-25 -------------------------------------------------------------------------------


@task_command(
    "task.create",
    -2,
    flags=("write", "denyoom", "fast"),
    summary="Creates a task in the working status and returns it.",
    complexity="O(log N) where N is the number of tasks of the owner",
    arguments=(
        Arg("method", value=_utf8("method")),
        Arg("ttl", token="TTL", optional=True, value=_ttl),
        Arg(
            "poll-interval",
            "integer",
            token="POLLINTERVAL",
            optional=True,
            value=_whole("POLLINTERVAL"),
        ),
        Arg("id", token="ID", optional=True, dest="task_id"),
    ),
)
def task_create(
    ctx: TaskContext,
    owner: str,
    method: str,
    ttl: int | None = None,
    poll_interval: int | None = None,
    task_id: str | None = None,
) -> bytes:
    if ttl is None and poll_interval is None and task_id is None:
        record = ctx.store.create(owner, method)
    else:
        record = ctx.store.create(
            owner,
            method,
            None if ttl == UNLIMITED else ttl,
            unlimited=ttl == UNLIMITED,
            poll_interval_ms=poll_interval,
            task_id=task_id,
        )
    return record.wire_json_v2() if ctx.v2 else record.wire_json()


@task_command(
    "task.get",
    -2,
    flags=("readonly", "fast"),
    summary="Returns a task (expired tasks too, until they are evicted).",
    arguments=(_ID,),
)
def task_get(ctx: TaskContext, owner: str, task_id: str) -> bytes:
    record = ctx.store.get(owner, task_id)
    return record.wire_json_v2() if ctx.v2 else record.wire_json()


_STATUSES = ("working", "input_required", "completed", "failed", "cancelled")


@task_command(
    "task.update",
    -3,
    flags=("write", "fast"),
    summary="Changes a task's status and/or status message (MESSAGE alone: terminal tasks too).",
    # a status, a message, or both: one of two blocks (the docs' grammar has no "at least one")
    arguments=(
        _ID,
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
                            arguments=tuple(Arg(s, "pure-token", token=s) for s in _STATUSES),
                            value=_status,
                        ),
                        _MESSAGE,
                    ),
                ),
                Arg("text", token="MESSAGE", value=_utf8("MESSAGE"), dest="message"),
            ),
        ),
    ),
)
def task_update(
    ctx: TaskContext,
    owner: str,
    task_id: str,
    status: TaskStatus | None = None,
    message: str | None = None,
) -> bytes:
    if status is None and message is None:
        raise CommandError("ERR TASK.UPDATE needs a status, MESSAGE or both")
    record = ctx.store.update_status(
        owner, task_id, status, message, set_message=message is not None
    )
    return _task(ctx, record)


@task_command(
    "task.setvars",
    -3,
    flags=("write", "denyoom"),
    summary="Merges a JSON object into a task's variables (null deletes a key).",
    complexity="O(N) where N is the size of the variables",
    arguments=(_ID, Arg("json-object", value=bytes, dest="variables")),
)
def task_setvars(ctx: TaskContext, owner: str, task_id: str, variables: bytes) -> bytes:
    return _task(ctx, ctx.store.set_variables(owner, task_id, variables))


@task_command(
    "task.setresult",
    -3,
    flags=("write", "denyoom"),
    summary="Stores a task's result (any JSON value); the status does not change.",
    complexity="O(N) where N is the size of the result",
    arguments=(_ID, Arg("json", value=bytes, dest="result")),
)
def task_setresult(ctx: TaskContext, owner: str, task_id: str, result: bytes) -> Any:
    ctx.store.set_result(owner, task_id, result)
    return OK


_BLOCK = Arg("timeout", "integer", token="BLOCK", optional=True, value=_timeout)


@task_command(
    "task.result",
    -2,
    flags=("readonly", "blocking"),
    summary="Returns a terminal task's result JSON (ANY: whatever the status); with BLOCK, waits "
    "for it.",
    arguments=(
        _ID,
        _BLOCK,
        Arg("any", "pure-token", token="ANY", optional=True, dest="any_status"),
    ),
)
def task_result(
    ctx: TaskContext,
    owner: str,
    task_id: str,
    timeout: int | None = None,
    any_status: bool | None = None,
) -> Any:
    store = ctx.store
    if timeout is None:
        if any_status:
            return store.stored_result(owner, task_id)  # None: a null reply
        return store.get_result(owner, task_id)
    record = store.get(owner, task_id)  # NOTFOUND at once
    ready = result_reply(record, store, bool(any_status))
    if ready is not None:
        return ready
    if ctx.in_exec:
        return None  # inside MULTI nothing waits: as if the timeout passed
    return ctx.block(owner, task_id, RESULT_ANY if any_status else "result", None, timeout)


@task_command(
    "task.wait",
    -2,
    flags=("readonly", "blocking"),
    summary="Waits until a task's status differs from STATUS (or, without it, its next change).",
    arguments=(_ID, Arg("status", token="STATUS", optional=True, value=_status), _BLOCK),
)
def task_wait(
    ctx: TaskContext,
    owner: str,
    task_id: str,
    status: TaskStatus | None = None,
    timeout: int | None = None,
) -> Any:
    record = ctx.store.get(owner, task_id)  # NOTFOUND at once
    if status is not None and record.status != status:
        return _task(ctx, record)
    if ctx.in_exec:
        return None
    return ctx.block(owner, task_id, "wait", status, timeout or 0)


@task_command(
    "task.complete",
    -4,
    flags=("write", "denyoom"),
    summary="Sets a task's terminal status and its result together, or neither.",
    arguments=(
        _ID,
        Arg(
            "status",
            "oneof",
            arguments=(
                Arg("completed", "pure-token", token="completed"),
                Arg("failed", "pure-token", token="failed"),
            ),
            value=_status,
        ),
        Arg("json", value=bytes, dest="result"),
        _MESSAGE,
    ),
)
def task_complete(
    ctx: TaskContext,
    owner: str,
    task_id: str,
    status: TaskStatus,
    result: bytes,
    message: str | None = None,
) -> bytes:
    return _task(ctx, ctx.store.complete_with_result(owner, task_id, status, result, message))


@task_command(
    "task.cancel",
    -2,
    flags=("write", "fast"),
    summary="Cancels a task that is not terminal yet; REQUEST only records a cooperative "
    "cancellation request.",
    arguments=(_ID, Arg("request", "pure-token", token="REQUEST", optional=True), _MESSAGE),
)
def task_cancel(
    ctx: TaskContext,
    owner: str,
    task_id: str,
    request: bool | None = None,
    message: str | None = None,
) -> bytes:
    if request:
        return _task(ctx, ctx.store.request_cancel(owner, task_id, message))
    return _task(ctx, ctx.store.cancel(owner, task_id, message))


@task_command(
    "task.list",
    -1,
    flags=("readonly",),
    summary="Lists the caller's tasks, newest first, a page at a time (MCP ListTasksResult).",
    complexity="O(log N + M): N tasks of the owner, M the page size",
    arguments=(
        Arg("cursor", token="CURSOR", optional=True),
        Arg("count", "integer", token="LIMIT", optional=True, value=_count),
    ),
)
def task_list(
    ctx: TaskContext, owner: str, cursor: str | None = None, count: int | None = None
) -> bytes:
    records, next_cursor = ctx.store.list(owner, cursor, count)
    return (list_json_v2 if ctx.v2 else list_json)(records, next_cursor)


@task_command(
    "task.cleanup",
    -1,
    flags=("write",),
    summary="Evicts expired tasks now (the caller's; every owner's for admins); returns the count.",
    complexity="O(N) where N is the number of expired tasks",
    arguments=(),
    every_owner=True,
)
def task_cleanup(ctx: TaskContext, owner: str | None) -> int:
    return ctx.store.cleanup_expired(owner)


@task_command(
    "task.config",
    -1,
    flags=("readonly", "fast"),
    summary="Returns the effective task store and security configuration.",
    arguments=(),
)
def task_config(ctx: TaskContext, owner: str) -> dict[str, Any]:
    return dict(ctx.store.config_items())


@task_command(
    "task.del",
    -2,
    flags=("write", "fast"),
    summary="Deletes a task; 1 if it existed, else 0.",
    arguments=(_ID,),
)
def task_del(ctx: TaskContext, owner: str, task_id: str) -> int:
    return 1 if ctx.store.delete(owner, task_id) else 0


# -- 2026-07-28: input requests, answers, errors, the record, the generation ----------------

# Pairs of ``<key> <json>``: a word that is an option name starts the options, so MESSAGE and
# OWNER cannot be keys (any case), on TASK.ANSWER (which has no MESSAGE) too.
_KEY = Arg("key", value=_text)


@task_command(
    "task.ask",
    -4,
    flags=("write", "denyoom"),
    summary="Adds input requests to a task and sets it input_required, atomically.",
    since="0.2.0",
    complexity="O(N) where N is the size of the requests",
    arguments=(
        _ID,
        Arg(
            "request",
            "block",
            multiple=True,
            arguments=(_KEY, Arg("request-json")),
            incomplete=_JSON_KEY_VALUE,
            dest="requests",
        ),
        _MESSAGE,
    ),
)
def task_ask(
    ctx: TaskContext,
    owner: str,
    task_id: str,
    requests: list[tuple[str, bytes | str]],
    message: str | None = None,
) -> bytes:
    return _task(ctx, ctx.store.ask(owner, task_id, requests, message))


@task_command(
    "task.answer",
    -4,
    flags=("write", "denyoom"),
    summary="Answers outstanding input requests; returns how many answers were accepted.",
    since="0.2.0",
    complexity="O(N) where N is the size of the answers",
    arguments=(
        _ID,
        Arg(
            "answer",
            "block",
            multiple=True,
            arguments=(_KEY, Arg("response-json")),
            incomplete=_JSON_KEY_VALUE,
            dest="answers",
        ),
    ),
    stops=frozenset({b"MESSAGE"}),
)
def task_answer(
    ctx: TaskContext, owner: str, task_id: str, answers: list[tuple[str, bytes | str]]
) -> int:
    return ctx.store.answer(owner, task_id, answers)


@task_command(
    "task.answers",
    -2,
    flags=("readonly", "blocking"),
    summary="Returns every answer received so far; with BLOCK, waits until none is outstanding, "
    "the task ends or cancellation is requested.",
    since="0.2.0",
    arguments=(_ID, _BLOCK),
)
def task_answers(ctx: TaskContext, owner: str, task_id: str, timeout: int | None = None) -> Any:
    store = ctx.store
    if timeout is None:
        return store.answers(owner, task_id)
    record = store.get(owner, task_id)  # NOTFOUND at once
    ready = answers_reply(record)
    if ready is not None:
        return ready
    if ctx.in_exec:
        return None
    return ctx.block(owner, task_id, ANSWERS, None, timeout)


@task_command(
    "task.fail",
    -3,
    flags=("write", "denyoom"),
    summary="Fails a task with a JSON-RPC error object (code, message, data), atomically.",
    since="0.2.0",
    arguments=(_ID, Arg("error-json", value=bytes, dest="error"), _MESSAGE),
)
def task_fail(
    ctx: TaskContext, owner: str, task_id: str, error: bytes, message: str | None = None
) -> bytes:
    return _task(ctx, ctx.store.fail(owner, task_id, error, message))


@task_command(
    "task.inspect",
    -2,
    flags=("readonly",),
    summary="Returns the whole record of a task as a map, for workers and people at redis-cli.",
    since="0.2.0",
    arguments=(_ID,),
)
def task_inspect(ctx: TaskContext, owner: str, task_id: str) -> dict[str, Any]:
    record = ctx.store.get(owner, task_id)
    interaction = record.interaction
    requests = interaction.requests if interaction is not None else {}
    variables = record.variables
    return {
        "task": _task(ctx, record),
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


@task_command(
    "task.lease",
    -4,
    flags=("write", "fast"),
    summary="Takes or renews a worker's lease on a task (0 releases it); a lease that runs out "
    "fails the task.",
    since="0.2.0",
    arguments=(_ID, Arg("worker"), Arg("ms", "integer", value=_lease_ms)),
)
def task_lease(ctx: TaskContext, owner: str, task_id: str, worker: str, ms: int) -> Any:
    return ctx.store.lease(owner, task_id, worker, ms)


_VERSION_ARGS = (
    Arg(
        "version",
        "oneof",
        optional=True,
        arguments=tuple(Arg(v, "pure-token", token=v) for v in MCP_VERSIONS),
        value=_version,
    ),
)
_VERSION = Grammar(_VERSION_ARGS)


def _task_version(conn: Connection, words: list[bytes]) -> Any:
    if len(words) > 2:
        raise CommandError("ERR wrong number of arguments for 'task.version' command")
    (v2,) = _VERSION.parse(words)
    if v2 is None:
        return MCP_VERSIONS[1] if conn.v2 else MCP_VERSIONS[0]
    conn.v2 = v2
    return OK


task_version = Command(
    "task.version",
    -1,
    _task_version,
    ("fast",),
    "task",
    "Shows or sets the MCP task generation this connection renders tasks in.",
    "0.2.0",
    arguments=_VERSION_ARGS,
    categories=("connection", "fast"),
)

#: the family, in the order COMMAND lists it
COMMANDS = (
    task_create,
    task_get,
    task_update,
    task_setvars,
    task_setresult,
    task_result,
    task_wait,
    task_complete,
    task_cancel,
    task_list,
    task_cleanup,
    task_config,
    task_del,
    task_ask,
    task_answer,
    task_answers,
    task_fail,
    task_inspect,
    task_lease,
    task_version,
)
