"""docs/production.md's ACL example, as written there, on Redis, Redis Cluster and Valkey — and
its taskstore counterpart (two configured users without ``impersonate``): a service acts for
its own owner only, on every backend the same way (PermissionDenied for another owner's
tasks and channel, NOTFOUND for tasks it does not have)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from conformance.backends import LIMITS, Backend
from taskstore.client import PermissionDenied, TaskClient, TaskNotFound, WrongPassword

#: The rules of docs/production.md (the owner and the password filled in).
RULES = (
    "on >{password} resetkeys %RW~ts:{{{owner}}}:* resetchannels &tasks:{{{owner}}} "
    "-@all +@connection +info +fcall +ssubscribe +sunsubscribe "
    # the commands the library runs (an ACL checks each command a function runs)
    "+time +hget +hmget +hset +hdel +hexists +hincrby +del +exists +zadd +zrem +zrange +zcard "
    "+pexpireat +spublish"
)
#: What a cluster client needs besides (the slot map and the command table).
CLUSTER_RULES = " +cluster|slots +cluster|shards +cluster|nodes +command"

#: Redis's refusals of a key or (a blocking read subscribes first) a channel
NOPERM_REDIS = (
    "NOPERM this user has no permissions to access one of the keys used as arguments",  # 7.0
    "NOPERM this user has no permissions to access one of the channels used as arguments",
    "NOPERM No permissions to access a key",  # Valkey 8
    "NOPERM No permissions to access a channel",
)


def acl(backend: Backend, *args: str) -> None:
    for url in backend.nodes:
        r = redis.Redis.from_url(url)
        try:
            r.execute_command("ACL", *args)
        finally:
            r.close()


@pytest.fixture
def services(backend: Backend) -> Iterator[tuple[str, str]]:
    """Two owners, each with its service user ``svc-<owner>`` / ``pw-<owner>`` (taskstore:
    the configured users acl-a and acl-b, whose owners are their names)."""
    if backend.is_taskstore:
        yield ("acl-a", "acl-b")
        return
    owners = (f"acl-a-{uuid.uuid4().hex[:6]}", f"acl-b-{uuid.uuid4().hex[:6]}")
    extra = CLUSTER_RULES if backend.name == "cluster" else ""
    for owner in owners:
        rules = RULES.format(password=f"pw-{owner}", owner=owner) + extra
        acl(backend, "SETUSER", f"svc-{owner}", *rules.split())
    try:
        yield owners
    finally:
        for owner in owners:
            acl(backend, "DELUSER", f"svc-{owner}")


def service(backend: Backend, owner: str, password: str | None = None) -> TaskClient:
    """The service of ``owner``: on taskstore its own user (no OWNER), on Redis its ACL user
    with ``owner=``."""
    if backend.is_taskstore:
        base = backend.url.split("@", 1)[1]
        url = f"redis://{owner}:{password or 'pw-' + owner}@{base}"
        return TaskClient.from_url(url, config=LIMITS)
    url = backend.url.replace("redis://", f"redis://svc-{owner}:{password or 'pw-' + owner}@")
    return TaskClient.from_url(url, owner=owner, config=LIMITS)


def test_one_service_per_owner(backend: Backend, services: tuple[str, str]) -> None:
    a, b = services
    ca, cb = service(backend, a), service(backend, b)
    try:
        t = ca.create()
        ca.complete(t.task_id, "completed", {"ok": 1})
        assert ca.result(t.task_id, block=1000) == {"ok": 1}  # its own channel: allowed
        start = time.monotonic()
        assert ca.wait(t.task_id, block=100) is None
        assert time.monotonic() - start < 2
        # b's service cannot act for a: nothing read or written
        calls = (
            lambda: cb.get(t.task_id, owner=a),
            lambda: cb.create(owner=a),
            lambda: cb.result(t.task_id, block=100, owner=a),  # nor wait on a's channel
            lambda: cb.delete(t.task_id, owner=a),
        )
        for call in calls:
            with pytest.raises(PermissionDenied) as e:
                call()
            if backend.is_taskstore:
                assert str(e.value) == f"NOPERM User {b} has no permissions to act as another owner"
            else:
                assert str(e.value) in NOPERM_REDIS
        # within its own owner it sees none of a's tasks
        with pytest.raises(TaskNotFound) as nf:
            cb.get(t.task_id)
        assert str(nf.value) == f"NOTFOUND task not found: {t.task_id}"
        assert t.task_id not in [x.task_id for x in cb.all_tasks()]
        assert t.task_id in [x.task_id for x in ca.all_tasks()]
        assert ca.get(t.task_id).status == "completed"
    finally:
        ca.close()
        cb.close()


def test_wrong_password(backend: Backend, services: tuple[str, str]) -> None:
    a, _ = services
    with pytest.raises(WrongPassword) as e:
        service(backend, a, password="nope")
    assert str(e.value).startswith("WRONGPASS invalid username-password pair")
