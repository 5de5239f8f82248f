"""taskstore's TASK semantics as a Redis Functions library (docs/production.md).

``taskstore.lua`` (``#!lua name=taskstore``) implements every TASK operation of docs/commands.md §3
and §5b for Redis >= 7 and Valkey >= 7, standalone or cluster: keys ``ts:{<owner>}:…`` (one
hash slot per owner), retention with ``PEXPIREAT``, notifications with ``SPUBLISH`` on
``tasks:{<owner>}``. :class:`taskstore.client.TaskClient.from_url` speaks to it.

Load it with ``python -m taskstore.functions load <redis-url>`` (every primary of a cluster);
``check`` tells whether the loaded version is this package's. See docs/production.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

from redis import Redis, RedisCluster
from redis.exceptions import ResponseError

from taskstore.store.config import StoreConfig

__all__ = [
    "CONFIG_FIELDS",
    "LIBRARY_NAME",
    "LOAD_COMMAND",
    "NodeVersion",
    "check",
    "config_arg",
    "is_cluster",
    "library_code",
    "library_version",
    "load",
    "loaded_versions",
]

LIBRARY_NAME: Final = "taskstore"
#: How a user loads the library (named in the clients' error when it is missing).
LOAD_COMMAND: Final = "python -m taskstore.functions load <redis-url>"

#: The store limits the functions take, comma separated, in this order (the ``<config>``
#: argument of every call).
CONFIG_FIELDS: Final[tuple[str, ...]] = (
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
)

_VERSION_RE = re.compile(r"^local VERSION = '([^']+)'$", re.M)


@cache
def library_code() -> str:
    """The library's Lua source, as ``FUNCTION LOAD`` takes it."""
    return resources.files(__package__).joinpath("taskstore.lua").read_text("utf-8")


@cache
def library_version() -> str:
    """The version of the library this package ships (``FCALL ts_version 0`` once loaded)."""
    match = _VERSION_RE.search(library_code())
    if match is None:  # pragma: no cover - the file is part of the package
        raise RuntimeError("taskstore.lua declares no VERSION")
    return match.group(1)


def config_arg(config: StoreConfig | Mapping[str, int] | None = None) -> str:
    """The ``<config>`` argument for ``config`` (the store's defaults when None)."""
    cfg = StoreConfig() if config is None else config
    values: Mapping[str, Any] = (
        cfg if isinstance(cfg, Mapping) else {name: getattr(cfg, name) for name in CONFIG_FIELDS}
    )
    return ",".join(str(int(values[name])) for name in CONFIG_FIELDS)


@dataclass(frozen=True, slots=True)
class NodeVersion:
    """The library version loaded on one server (None: not loaded)."""

    node: str
    version: str | None


def is_cluster(redis: Redis) -> bool:
    """Whether ``redis`` is connected to a node of a Redis Cluster."""
    from taskstore.client._functions import is_cluster_info

    return is_cluster_info(redis.info("server"))


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _nodes(url: str, **options: Any) -> Iterator[tuple[str, Redis]]:
    """One client per server to load on: the server itself, or every primary of a cluster."""
    single = Redis.from_url(url, **options)
    try:
        cluster = is_cluster(single)
    except BaseException:
        single.close()
        raise
    if not cluster:
        try:
            kwargs = single.connection_pool.connection_kwargs
            yield f"{kwargs.get('host')}:{kwargs.get('port')}", single
        finally:
            single.close()
        return
    single.close()
    rc = RedisCluster.from_url(url, **options)
    try:
        primaries: list[Any] = rc.get_primaries()  # type: ignore[no-untyped-call]
        for node in primaries:
            yield node.name, node.redis_connection
    finally:
        rc.close()


def _version_of(node: Redis) -> str | None:
    try:
        return _text(node.fcall("ts_version", 0))
    except ResponseError as e:
        if "function not found" in str(e).lower():
            return None
        raise


def load(url: str, **options: Any) -> list[NodeVersion]:
    """``FUNCTION LOAD REPLACE`` the library on the server of ``url`` (every primary of a
    cluster); returns the version each one then reports."""
    code = library_code()
    loaded = []
    for name, node in _nodes(url, **options):
        node.function_load(code, replace=True)
        loaded.append(NodeVersion(name, _version_of(node)))
    return loaded


def loaded_versions(url: str, **options: Any) -> list[NodeVersion]:
    """The library version loaded on each server of ``url`` (every primary of a cluster)."""
    return [NodeVersion(name, _version_of(node)) for name, node in _nodes(url, **options)]


def check(url: str, **options: Any) -> tuple[bool, list[NodeVersion]]:
    """Whether every server of ``url`` runs this package's library version, and what each has."""
    versions = loaded_versions(url, **options)
    ok = all(v.version == library_version() for v in versions)
    return ok, versions
