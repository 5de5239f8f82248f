"""Exceptions the taskstore clients raise for error replies (docs/commands.md §3).

Every error reply of the server starts with a code word; each code has its own class here, and
each class carries ``mcp_code``, the JSON-RPC error code an MCP server should answer with:

=====================  ===================  ========
reply prefix           class                mcp_code
=====================  ===================  ========
``NOTFOUND``           TaskNotFound         -32602
``EXPIRED``            TaskExpired          -32602
``INVALIDTRANSITION``  InvalidTransition    -32602
``NOTREADY``           NotReady             -32602
``TOOLARGE``           TooLarge             -32602
``LIMIT``              LimitExceeded        -32603
``EXISTS``             TaskExists           -32602
``EXISTS input …``     InputKeyExists       -32602
``ERR``                InvalidArgument      -32602
``ERR internal …``     InternalError        -32603
``NOAUTH``             AuthenticationRequired  None
``NOPERM``             PermissionDenied     None
``WRONGPASS``          WrongPassword        None
``UNBLOCKED``          Unblocked            None
=====================  ===================  ========

``None`` means what docs/commands.md §3 writes as "—": the error is about the connection's identity,
not about a task, so it has no MCP counterpart (an MCP server meeting one has a configuration
problem and would answer -32603, internal error).

All of them derive from :class:`TaskError`. Errors that are not replies of the server
(connection refused, timeouts) are redis-py's own exceptions and pass through unchanged.
"""

from __future__ import annotations

import re
from typing import ClassVar

from redis import exceptions as rexc

__all__ = [
    "AuthenticationRequired",
    "IdentityError",
    "InputKeyExists",
    "InternalError",
    "InvalidArgument",
    "InvalidTransition",
    "LeaseHeld",
    "LibraryNotLoaded",
    "LimitExceeded",
    "NotReady",
    "PermissionDenied",
    "TaskError",
    "TaskExists",
    "TaskExpired",
    "TaskNotFound",
    "TooLarge",
    "Unblocked",
    "WrongPassword",
    "error_from_reply",
    "translate",
]

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class TaskError(Exception):
    """An error reply of the taskstore server.

    ``str(err)`` and ``err.message`` are the complete reply text (``"NOTFOUND task not found:
    x"``); ``err.code`` is its first word, ``err.detail`` the rest, and ``err.mcp_code`` the
    JSON-RPC code to map it to (``None`` for identity errors, which have none).
    """

    code: ClassVar[str] = "ERR"
    mcp_code: ClassVar[int | None] = INVALID_PARAMS

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        code, _, detail = message.partition(" ")
        self.detail = detail if code == self.code else message
        self.task_id: str | None = None

    def __str__(self) -> str:
        return self.message


class _TaskIdError(TaskError):
    """An error whose text ends with ``: <task id>``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        _, sep, tail = self.detail.rpartition(": ")
        self.task_id = tail if sep else None


class TaskNotFound(_TaskIdError):
    """``NOTFOUND``: no such task for this owner (another owner's task looks the same)."""

    code = "NOTFOUND"


class TaskExpired(_TaskIdError):
    """``EXPIRED``: a mutation of a task past ``createdAt + ttl`` (reads still work)."""

    code = "EXPIRED"


class TaskExists(_TaskIdError):
    """``EXISTS``: TASK.CREATE with an ``ID`` this owner already holds."""

    code = "EXISTS"


_INPUT_KEY_USED = "input request key already used: "


class InputKeyExists(TaskExists):
    """``EXISTS input request key already used: <key>``: TASK.ASK with a key that this task
    has issued before (keys are unique over a task's whole life, answered or not); nothing
    changed. ``key`` is that key; ``task_id`` is ``None`` (the text does not name the task).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.task_id = None
        self.key: str | None = (
            self.detail[len(_INPUT_KEY_USED) :] if self.detail.startswith(_INPUT_KEY_USED) else None
        )


_TRANSITION = re.compile(r"invalid transition from (\S+) to (\S+) for task (.+)\Z", re.S)
_TERMINAL = re.compile(r"task (.+) is (\S+): terminal tasks do not change\Z", re.S)
_NOTREADY = re.compile(r"task (.+) is (\S+); no result yet\Z", re.S)


class InvalidTransition(TaskError):
    """``INVALIDTRANSITION``: the status machine forbids the change, or the task is terminal.

    ``from_status`` is the task's status; ``to_status`` the one asked for (``None`` for a
    message-only update of a terminal task).
    """

    code = "INVALIDTRANSITION"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.from_status: str | None = None
        self.to_status: str | None = None
        if m := _TRANSITION.match(self.detail):
            self.from_status, self.to_status, self.task_id = m.group(1), m.group(2), m.group(3)
        elif m := _TERMINAL.match(self.detail):
            self.task_id, self.from_status = m.group(1), m.group(2)


class NotReady(TaskError):
    """``NOTREADY``: the task is not terminal, or is terminal without a stored result."""

    code = "NOTREADY"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.status: str | None = None
        if m := _NOTREADY.match(self.detail):
            self.task_id, self.status = m.group(1), m.group(2)


class TooLarge(TaskError):
    """``TOOLARGE``: a size, depth or length limit of the server's configuration."""

    code = "TOOLARGE"


_LEASED = re.compile(r"task (.+) is leased by another worker for (\d+) ms\Z", re.S)


class LeaseHeld(TaskError):
    """``LEASED``: TASK.LEASE of a task another worker holds a live lease on (MCP: internal
    error). ``task_id`` and ``remaining_ms`` come from the text."""

    code = "LEASED"
    mcp_code = INTERNAL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.remaining_ms: int | None = None
        if m := _LEASED.match(self.detail):
            self.task_id, self.remaining_ms = m.group(1), int(m.group(2))


class LimitExceeded(TaskError):
    """``LIMIT``: the owner already holds ``max_tasks_per_owner`` tasks (MCP: internal error)."""

    code = "LIMIT"
    mcp_code = INTERNAL_ERROR


class InvalidArgument(TaskError):
    """``ERR``: bad arguments (syntax, id, status name, TTL, JSON, cursor, LIMIT, timeout)."""

    code = "ERR"


class InternalError(InvalidArgument):
    """``ERR internal error running '<command>'``: the server failed unexpectedly."""

    mcp_code = INTERNAL_ERROR


class IdentityError(TaskError):
    """An error about who the connection is, not about a task: no MCP code."""

    mcp_code = None


class AuthenticationRequired(IdentityError):
    """``NOAUTH``: the connection must authenticate (``requirepass``, anonymous access off)."""

    code = "NOAUTH"


class PermissionDenied(IdentityError):
    """``NOPERM``: e.g. ``OWNER`` without the ``impersonate`` permission."""

    code = "NOPERM"


class WrongPassword(IdentityError):
    """``WRONGPASS``: wrong password, unknown user, or a disabled user."""

    code = "WRONGPASS"


class Unblocked(IdentityError):
    """``UNBLOCKED``: a blocking TASK.RESULT / TASK.WAIT ended by ``CLIENT UNBLOCK … ERROR``."""

    code = "UNBLOCKED"


class LibraryNotLoaded(RuntimeError):
    """``from_url()`` reached Redis or Valkey without the taskstore Functions library, or with
    another version of it than this client's: the text names the command that loads it
    (``python -m taskstore.functions load <redis-url>``). Not an error reply of a task
    command, so not a :class:`TaskError`."""


_BY_CODE: dict[str, type[TaskError]] = {
    cls.code: cls
    for cls in (
        TaskNotFound,
        TaskExpired,
        InvalidTransition,
        NotReady,
        TooLarge,
        LimitExceeded,
        TaskExists,
        LeaseHeld,
        AuthenticationRequired,
        PermissionDenied,
        WrongPassword,
        Unblocked,
    )
}


def error_from_reply(text: str) -> TaskError:
    """The exception for an error reply's complete text (``"<CODE> <detail>"``)."""
    code = text.partition(" ")[0]
    # `ERR LIMIT must be between 1 and <max>` once redis-py has stripped its `ERR `
    cls = None if text.startswith("LIMIT must ") else _BY_CODE.get(code)
    if cls is TaskExists and text.startswith(_INPUT_KEY_USED, len(code) + 1):
        cls = InputKeyExists
    if cls is not None:
        return cls(text)
    if code != "ERR":
        text = "ERR " + text
    if text.startswith("ERR internal error"):
        return InternalError(text)
    return InvalidArgument(text)


def translate(exc: rexc.RedisError) -> TaskError | None:
    """The :class:`TaskError` for a redis-py exception raised by an error reply, else None.

    redis-py keeps the full text of replies with a code it does not know (``NOTFOUND …``) but
    strips the code word of those it knows, turning ``ERR`` into a bare ``ResponseError`` and
    ``NOAUTH``/``WRONGPASS``/``NOPERM`` into its own subclasses; this undoes both.
    """
    text = str(exc)
    if isinstance(exc, rexc.NoPermissionError):
        return PermissionDenied(text if text.startswith("NOPERM ") else "NOPERM " + text)
    if isinstance(exc, rexc.AuthenticationError):
        # NOAUTH and WRONGPASS (and `ERR invalid password`) arrive without their code word
        for code in ("NOAUTH", "WRONGPASS"):
            if text.startswith(code + " "):
                return _BY_CODE[code](text)
        if "invalid username-password pair" in text or text == "invalid password":
            return WrongPassword("WRONGPASS " + text)
        if text.startswith(("AUTH <password> called", "Client sent AUTH")):
            return InvalidArgument("ERR " + text)
        # `Authentication required.`, `HELLO must be called with the client already …`
        return AuthenticationRequired("NOAUTH " + text)
    if type(exc) is rexc.ResponseError:
        return error_from_reply(text)
    return None
