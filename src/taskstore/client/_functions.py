"""The clients on Redis / Valkey with the taskstore Functions library (docs/production.md).

:meth:`TaskClient.from_url` / :meth:`AsyncTaskClient.from_url` detect the server on connect.
On taskstore nothing here is used. On Redis or Valkey the client's TASK commands (built by
:mod:`taskstore.client._commands`, exactly as for taskstore) are turned into
``FCALL ts_<command> 1 ts:{<owner>}: <generation> <config> [<random>] <arguments>`` by a
backend object that replaces the client's ``execute_command``; the replies and error texts
are taskstore's, so parsing and exceptions are shared.

Blocking commands (``TASK.RESULT … BLOCK``, ``TASK.WAIT``, ``TASK.ANSWERS … BLOCK``) never
block inside Redis: the backend subscribes to ``tasks:{<owner>}`` (sharded pub/sub) first,
then asks the function, which answers at once or says "not yet"; every notification about
the task (and a re-read at least every :data:`RECHECK_S` seconds, which also notices a task
evicted by its key's expiry or a worker lease that ran out) makes it ask again, until the
answer comes or the timeout passes. Subscribing before the first read means no change can
fall between the read and the subscription: no lost wake-ups.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import ResponseError

from taskstore.client._commands import Args
from taskstore.client._steps import Awaiting, Blocking, Step, Steps, io_method
from taskstore.client.errors import LibraryNotLoaded
from taskstore.client.task import MCP_2026_07_28, McpVersion
from taskstore.store.config import StoreConfig

__all__ = [
    "DEFAULT_OWNER",
    "RECHECK_S",
    "AsyncFunctionsBackend",
    "FunctionCall",
    "FunctionsBackend",
    "OwnerTag",
    "SyncFunctionsBackend",
    "check_library",
    "is_taskstore",
    "parse_call",
]

#: The owner of a client without ``owner=`` on Redis (taskstore's anonymous owner).
DEFAULT_OWNER: Final = "local"
#: A blocked call re-reads the task at least this often even without a notification.
RECHECK_S: Final = 1.0
#: How long to wait for the subscription's confirmation before reading.
_SUBSCRIBE_TIMEOUT_S: Final = 10.0

_FUNCTIONS: Final[dict[str, str]] = {
    f"TASK.{name.upper()}": f"ts_{name}"
    for name in (
        "create",
        "get",
        "update",
        "setvars",
        "setresult",
        "result",
        "complete",
        "cancel",
        "list",
        "cleanup",
        "del",
        "wait",
        "ask",
        "answer",
        "answers",
        "fail",
        "inspect",
        "lease",
    )
}


class OwnerTag(str):
    """The owner a client method puts after ``OWNER`` in functions mode: the backend finds it
    by type, so no user string can be mistaken for it."""

    __slots__ = ()


def is_taskstore(info: Mapping[str, Any]) -> bool:
    """Whether ``INFO server`` came from taskstore (it has ``taskstore_version``)."""
    return "taskstore_version" in info


def is_cluster_info(info: Mapping[str, Any]) -> bool:
    """Whether ``INFO server`` came from a cluster node (Redis: ``redis_mode``, Valkey 8:
    ``server_mode``)."""
    return "cluster" in (str(info.get("redis_mode", "")), str(info.get("server_mode", "")))


def redact(url: str) -> str:
    """``url`` without its password (error texts end up in logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def library_error(reason: str, url: str | None) -> LibraryNotLoaded:
    from taskstore.functions import LOAD_COMMAND

    command = LOAD_COMMAND if url is None else LOAD_COMMAND.replace("<redis-url>", redact(url))
    return LibraryNotLoaded(f"{reason}: load it with `{command}`")


def check_library(reply: Any, url: str | None) -> None:
    """Raise :class:`LibraryNotLoaded` unless ``reply`` (of ``FCALL ts_version 0``) is this
    package's library version."""
    from taskstore.functions import library_version

    want = library_version()
    have = reply.decode() if isinstance(reply, bytes) else str(reply)
    if have != want:
        raise library_error(
            f"the taskstore Functions library on this server is version {have}, this client "
            f"needs {want}",
            url,
        )


def missing_library(exc: ResponseError, url: str | None) -> LibraryNotLoaded | None:
    """The error for ``FCALL ts_version`` failing because the library is not loaded."""
    if "function not found" in str(exc).lower():
        return library_error("the taskstore Functions library is not loaded on this server", url)
    return None


@dataclass(slots=True)
class FunctionCall:
    """One TASK command as a function call."""

    function: str
    key: str
    owner: str
    head: list[Any]
    rest: list[Any]
    task_id: str | None
    #: None, or what the call waits for: "result", "wait", "answers"
    blocking: str | None = None
    timeout_ms: int = 0

    def args(self, *extra: Any) -> list[Any]:
        return ["FCALL", self.function, 1, self.key, *self.head, *self.rest, *extra]

    @property
    def channel(self) -> str:
        return f"tasks:{{{self.owner}}}"

    def matches(self, data: Any) -> bool:
        """Whether a notification is about this call's task."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if not isinstance(data, bytes) or self.task_id is None:
            return True
        prefix = b'{"taskId":' + json.dumps(self.task_id).encode() + b","
        return data.startswith(prefix)


def _timeout(value: Any) -> int | None:
    """The BLOCK value as the client sent it (None when it is not a plain integer: the
    function then replies with the error)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_call(args: Args, version: str, config: str, default_owner: str) -> FunctionCall:
    """The function call for the TASK command ``args`` (as :mod:`_commands` builds them)."""
    name = str(args[0]).upper()
    function = _FUNCTIONS.get(name)
    if function is None:
        raise ValueError(f"{name} has no counterpart in the taskstore Functions library")
    rest = list(args[1:])
    owner = default_owner
    if len(rest) >= 2 and isinstance(rest[-1], OwnerTag) and rest[-2] == "OWNER":
        owner = str(rest[-1])
        rest = rest[:-2]
    head: list[Any] = [version, config]
    if function == "ts_create":
        head.append(os.urandom(16).hex())
    task_id = None if function in ("ts_create", "ts_list", "ts_cleanup") or not rest else rest[0]
    call = FunctionCall(function, f"ts:{{{owner}}}:", owner, head, rest, _str(task_id))
    if function not in ("ts_result", "ts_answers", "ts_wait"):
        return call
    upper = [str(a).upper() if isinstance(a, str) else a for a in rest]
    if function in ("ts_result", "ts_answers") and "BLOCK" in upper[1:]:
        block = _timeout(rest[upper.index("BLOCK", 1) + 1]) if len(rest) > 2 else None
        if block is not None and block >= 0:
            call.blocking = "result" if function == "ts_result" else "answers"
            call.timeout_ms = block
    elif function == "ts_wait":
        block = 0
        if "BLOCK" in upper[1:]:
            found = _timeout(rest[upper.index("BLOCK", 1) + 1]) if len(rest) > 2 else None
            block = -1 if found is None else found
        if block >= 0:
            call.blocking = "wait"
            call.timeout_ms = block
    return call


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def _waiting(call: FunctionCall, reply: Any) -> bool:
    """Whether the function's reply means "not yet" (wait: the task's revision)."""
    if call.blocking == "wait":
        return isinstance(reply, int)
    return reply is None


def _recheck(call: FunctionCall, reply: Any) -> list[Any]:
    if call.blocking == "wait" and isinstance(reply, int):
        return call.args("REV", reply)
    return call.args()


def config_arg(config: StoreConfig | None) -> str:
    """The functions' ``<config>`` argument for ``config`` (the defaults when None)."""
    from taskstore.functions import config_arg as build

    return build(config)


def config_dict(arg: str) -> dict[str, Any]:
    """What ``config()`` answers in functions mode: the limits the client passes."""
    from taskstore.functions import CONFIG_FIELDS

    return dict(zip(CONFIG_FIELDS, (int(v) for v in arg.split(",")), strict=True))


def generation(version: McpVersion | None) -> str:
    """What the functions render: the client's generation, else taskstore's default."""
    return MCP_2026_07_28 if version is None else version


def _is_message(message: Any) -> bool:
    return isinstance(message, dict) and message.get("type") in ("smessage", b"smessage")


class FunctionsBackend:
    """``execute_command`` of a client on Redis/Valkey (a ``Redis`` or a ``RedisCluster``,
    of ``redis`` or ``redis.asyncio`` as the subclass says)."""

    def __init__(self, redis: Any, version: str, config: str, owner: str | None) -> None:
        self.redis = redis
        self.version = version
        self.config = config
        self.default_owner = owner or DEFAULT_OWNER
        self.cluster = hasattr(redis, "get_node_from_key")

    _close: Callable[[Any], Step]

    @io_method
    def execute(self, *args: Any) -> Steps[Any]:
        call = parse_call(list(args), self.version, self.config, self.default_owner)
        if call.blocking is None:
            return (yield lambda: self.redis.execute_command(*call.args()))
        channel = call.channel
        node = self.redis.get_node_from_key(channel) if self.cluster else None
        pubsub = self.redis.pubsub()
        try:
            yield lambda: pubsub.ssubscribe(channel)
            deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT_S
            while True:
                message = yield _next(pubsub, node, max(0.0, deadline - time.monotonic()))
                if isinstance(message, dict) and message.get("type") in (
                    "ssubscribe",
                    b"ssubscribe",
                ):
                    break
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no confirmation of SSUBSCRIBE {channel}")
            return (yield from _block(call, pubsub, node, self.redis))
        finally:
            yield self._close(pubsub)


def _next(pubsub: Any, node: Any, timeout: float) -> Step:
    if node is not None:
        return lambda: pubsub.get_sharded_message(timeout=timeout, target_node=node)
    return lambda: pubsub.get_message(timeout=timeout)


def _block(call: FunctionCall, pubsub: Any, node: Any, redis: Any) -> Steps[Any]:
    """Ask the function until it answers or the call's timeout passes (subscribed)."""
    reply = yield lambda: redis.execute_command(*call.args())
    deadline = None if call.timeout_ms == 0 else time.monotonic() + call.timeout_ms / 1000
    while _waiting(call, reply):
        wait = RECHECK_S
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            wait = min(wait, remaining)
        end = time.monotonic() + wait
        while True:
            message = yield _next(pubsub, node, max(0.0, end - time.monotonic()))
            if _is_message(message) and call.matches(message.get("data")):
                break
            if time.monotonic() >= end:
                break
        reply = yield functools.partial(redis.execute_command, *_recheck(call, reply))
    return reply


class SyncFunctionsBackend(FunctionsBackend, Blocking):
    """``execute_command`` of a :class:`TaskClient` on Redis/Valkey."""


class AsyncFunctionsBackend(FunctionsBackend, Awaiting):
    """``execute_command`` of an :class:`AsyncTaskClient` on Redis/Valkey."""
