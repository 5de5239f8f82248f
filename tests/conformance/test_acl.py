"""docs/production.md's ACL example, as written there, on Redis, Redis Cluster and Valkey: a
service user per owner may run the library on its own owner's keys and channel only."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from conformance.backends import LIMITS, Backend
from taskstore.client import PermissionDenied, TaskClient, TaskNotFound, WrongPassword

#: The rules of docs/production.md (the owner, password and user name filled in).
RULES = (
    "on >{password} resetkeys %RW~ts:{{{owner}}}:* resetchannels &tasks:{{{owner}}} "
    "-@all +@connection +info +fcall +ssubscribe +sunsubscribe "
    # the commands the library runs (an ACL checks each command a function runs)
    "+time +hget +hmget +hset +hdel +hexists +hincrby +del +exists +zadd +zrem +zrange +zcard "
    "+pexpireat +spublish"
)
#: What a cluster client needs besides (the slot map and the command table).
CLUSTER_RULES = " +cluster|slots +cluster|shards +cluster|nodes +command"


@pytest.fixture(params=["redis", "cluster", "valkey"])
def redis_backend(request: pytest.FixtureRequest, backends: dict[str, Backend]) -> Backend:
    return backends[request.param]


def setuser(backend: Backend, user: str, rules: str) -> None:
    for url in backend.nodes:
        r = redis.Redis.from_url(url)
        try:
            r.execute_command("ACL", "SETUSER", user, *rules.split())
        finally:
            r.close()


def deluser(backend: Backend, user: str) -> None:
    for url in backend.nodes:
        r = redis.Redis.from_url(url)
        try:
            r.execute_command("ACL", "DELUSER", user)
        finally:
            r.close()


@pytest.fixture
def service_users(redis_backend: Backend) -> Iterator[tuple[str, str]]:
    """Two owners, each with its service user (svc-<owner>, password pw-<owner>)."""
    owners = (f"acl-a-{uuid.uuid4().hex[:6]}", f"acl-b-{uuid.uuid4().hex[:6]}")
    extra = CLUSTER_RULES if redis_backend.name == "cluster" else ""
    for owner in owners:
        setuser(
            redis_backend, f"svc-{owner}", RULES.format(password=f"pw-{owner}", owner=owner) + extra
        )
    try:
        yield owners
    finally:
        for owner in owners:
            deluser(redis_backend, f"svc-{owner}")


def url_for(backend: Backend, user: str, password: str) -> str:
    return backend.url.replace("redis://", f"redis://{user}:{password}@", 1)


def test_acl_per_owner(redis_backend: Backend, service_users: tuple[str, str]) -> None:
    a, b = service_users
    ca = TaskClient.from_url(url_for(redis_backend, f"svc-{a}", f"pw-{a}"), owner=a, config=LIMITS)
    cb = TaskClient.from_url(url_for(redis_backend, f"svc-{b}", f"pw-{b}"), owner=b, config=LIMITS)
    try:
        t = ca.create()
        ca.complete(t.task_id, "completed", {"ok": 1})
        assert ca.result(t.task_id, block=1000) == {"ok": 1}  # SSUBSCRIBE tasks:{a} allowed
        start = time.monotonic()
        assert ca.wait(t.task_id, block=100) is None
        assert time.monotonic() - start < 2
        # b's service cannot act for a: NOPERM, nothing read or written
        with pytest.raises(PermissionDenied) as e:
            cb.get(t.task_id, owner=a)
        assert str(e.value) in (
            "NOPERM this user has no permissions to access one of the keys used as arguments",
            "NOPERM No permissions to access a key",  # Valkey 8 / Redis 7.2+
        )
        with pytest.raises(PermissionDenied):
            cb.create(owner=a)
        with pytest.raises(PermissionDenied):
            cb.result(t.task_id, block=100, owner=a)  # nor subscribe to a's channel
        # within its own owner it sees none of a's tasks
        with pytest.raises(TaskNotFound):
            cb.get(t.task_id)
        assert cb.list().tasks == []
        assert [x.task_id for x in ca.list().tasks] == [t.task_id]
    finally:
        ca.close()
        cb.close()


def test_wrong_password(redis_backend: Backend, service_users: tuple[str, str]) -> None:
    a, _ = service_users
    with pytest.raises(WrongPassword):
        TaskClient.from_url(url_for(redis_backend, f"svc-{a}", "nope"), owner=a)
