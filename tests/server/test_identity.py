"""Identity and permissions (design.md §3): every boundary tested both ways."""

from __future__ import annotations

import hashlib
import json

import hiredis
import pytest
import redis

from rawclient import RawClient

USERS = [
    {"name": "alice", "password": "alice-pw"},
    {"name": "bob", "password": "sha256:" + hashlib.sha256(b"bob-pw").hexdigest()},
    {"name": "mcp", "password": "mcp-pw", "permissions": ["impersonate"]},
    {"name": "ops", "password": "ops-pw", "permissions": ["admin"]},
    {"name": "gone", "password": "gone-pw", "enabled": False},
]
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOAUTH = "NOAUTH Authentication required."


def err(c: RawClient, *args: object) -> str:
    reply = c.call(*args)
    assert isinstance(reply, hiredis.ReplyError), reply
    return str(reply)


def login(port: int, user: str, password: str) -> RawClient:
    c = RawClient(port)
    assert c.call("AUTH", user, password) == b"OK"
    return c


@pytest.fixture
def srv(make_server):
    return make_server(users=USERS)


def test_auth_forms(srv) -> None:
    with RawClient(srv.port) as c:
        assert c.call("ACL", "WHOAMI") == b"default"
        assert c.call("AUTH", "alice", "alice-pw") == b"OK"
        assert c.call("ACL", "WHOAMI") == b"alice"
        assert c.call("AUTH", "bob", "bob-pw") == b"OK"  # sha256: form
        assert c.call("ACL", "WHOAMI") == b"bob"
        assert err(c, "AUTH", "bob", "wrong") == WRONGPASS
        assert err(c, "AUTH", "nobody", "x") == WRONGPASS
        assert err(c, "AUTH", "gone", "gone-pw") == WRONGPASS  # disabled
        assert c.call("ACL", "WHOAMI") == b"bob"  # a failed AUTH changes nothing
    with RawClient(srv.port) as c:
        hello = c.call("HELLO", "3", "AUTH", "alice", "alice-pw", "SETNAME", "w1")
        assert hello[b"proto"] == 3
        assert c.call("ACL", "WHOAMI") == b"alice"
        assert c.call("CLIENT", "GETNAME") == b"w1"
        assert err(c, "HELLO", "3", "AUTH", "alice", "nope") == WRONGPASS
    for protocol in (2, 3):
        r = redis.Redis(port=srv.port, username="alice", password="alice-pw", protocol=protocol)
        assert r.acl_whoami() in (b"alice", "alice")
        r.close()
        bad = redis.Redis(port=srv.port, username="alice", password="x", protocol=protocol)
        with pytest.raises(redis.AuthenticationError):
            bad.ping()
        bad.close()


def test_owner_comes_from_identity(srv) -> None:
    alice = login(srv.port, "alice", "alice-pw")
    bob = login(srv.port, "bob", "bob-pw")
    anon = RawClient(srv.port)
    a_task = json.loads(alice.call("TASK.CREATE", "m", "ID", "same-id"))
    b_task = json.loads(bob.call("TASK.CREATE", "m", "ID", "same-id"))  # ids are per owner
    json.loads(anon.call("TASK.CREATE", "m", "ID", "same-id"))  # owner "local"
    alice.call("TASK.UPDATE", "same-id", "input_required")
    assert json.loads(bob.call("TASK.GET", "same-id"))["status"] == "working"
    assert a_task["createdAt"] <= b_task["createdAt"]
    assert alice.call("DBSIZE") == 1 and bob.call("DBSIZE") == 1
    only_bob = bob.call("TASK.CREATE", "m")
    tid = json.loads(only_bob)["taskId"]
    # a foreign id answers exactly as an id that never existed
    assert err(alice, "TASK.GET", tid) == f"NOTFOUND task not found: {tid}"
    for args in (
        ("TASK.UPDATE", tid, "failed"),
        ("TASK.CANCEL", tid),
        ("TASK.RESULT", tid),
        ("TASK.SETVARS", tid, "{}"),
        ("TASK.SETRESULT", tid, "1"),
        ("TASK.COMPLETE", tid, "completed", "1"),
    ):
        assert err(alice, *args) == f"NOTFOUND task not found: {tid}"
    assert alice.call("TASK.DEL", tid) == 0
    assert tid not in alice.call("TASK.LIST").decode()
    assert json.loads(bob.call("TASK.GET", tid))["status"] == "working"
    for c in (alice, bob, anon):
        c.close()


def test_impersonation_both_ways(srv) -> None:
    mcp = login(srv.port, "mcp", "mcp-pw")
    alice = login(srv.port, "alice", "alice-pw")
    created = json.loads(mcp.call("TASK.CREATE", "tools/call", "OWNER", "user-42"))
    tid = created["taskId"]
    assert json.loads(mcp.call("TASK.GET", tid, "OWNER", "user-42"))["taskId"] == tid
    assert err(mcp, "TASK.GET", tid) == f"NOTFOUND task not found: {tid}"  # mcp's own owner
    assert mcp.call("TASK.LIST", "LIMIT", "5", "OWNER", "user-42").count(tid.encode()) == 1
    assert json.loads(mcp.call("TASK.CANCEL", tid, "OWNER", "user-42"))["status"] == "cancelled"
    assert mcp.call("DBSIZE") == 0  # counts mcp's own owner
    # refused to everyone else, with the user's name
    assert err(alice, "TASK.GET", tid, "OWNER", "user-42") == (
        "NOPERM User alice has no permissions to act as another owner"
    )
    with RawClient(srv.port) as anon:
        assert err(anon, "TASK.CREATE", "m", "OWNER", "x") == (
            "NOPERM User default has no permissions to act as another owner"
        )
    with login(srv.port, "ops", "ops-pw") as ops:  # admin is not impersonation
        assert err(ops, "TASK.LIST", "OWNER", "user-42").startswith("NOPERM User ops")
    assert err(mcp, "TASK.GET", tid, "OWNER", "bad owner").startswith("ERR OWNER must be")
    # impersonating alice reaches alice's tasks
    own = json.loads(alice.call("TASK.CREATE", "m"))["taskId"]
    assert json.loads(mcp.call("TASK.GET", own, "OWNER", "alice"))["taskId"] == own
    mcp.close()
    alice.close()


ADMIN_ONLY = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "SET", "timeout", "0"),
    ("CONFIG", "RESETSTAT"),
    ("CLIENT", "KILL", "ID", "999999"),
    ("CLIENT", "LIST"),
    ("ACL", "USERS"),
]


@pytest.mark.parametrize("args", ADMIN_ONLY, ids=lambda a: " ".join(a))
def test_admin_commands_both_ways(srv, args: tuple[str, ...]) -> None:
    with login(srv.port, "alice", "alice-pw") as alice:
        name = (
            args[0].lower()
            if args[0] not in ("CONFIG", "CLIENT", "ACL")
            else (f"{args[0].lower()}|{args[1].lower()}")
        )
        assert (
            err(alice, *args) == f"NOPERM User alice has no permissions to run the '{name}' command"
        )
    with login(srv.port, "ops", "ops-pw") as ops:
        assert not isinstance(ops.call(*args), hiredis.ReplyError)
    with RawClient(srv.port) as anon:  # the default user is an admin (anonymous on loopback)
        assert not isinstance(anon.call(*args), hiredis.ReplyError)


def test_shutdown_needs_admin(srv) -> None:
    with login(srv.port, "alice", "alice-pw") as alice:
        assert (
            err(alice, "SHUTDOWN")
            == "NOPERM User alice has no permissions to run the 'shutdown' command"
        )
        assert alice.call("PING") == b"PONG"


def test_global_cleanup_and_dbsize_scope(srv) -> None:
    alice = login(srv.port, "alice", "alice-pw")
    ops = login(srv.port, "ops", "ops-pw")
    alice.call("TASK.CREATE", "m")
    ops.call("TASK.CREATE", "m")
    assert alice.call("DBSIZE") == 1
    assert ops.call("DBSIZE") == 2  # admin: every owner
    assert alice.call("TASK.CLEANUP") == 0 and ops.call("TASK.CLEANUP") == 0
    info = alice.call("INFO", "tasks").decode()
    assert "tasks:1" in info and "tasks_owners" not in info  # no view of other owners
    assert "tasks_owners:2" in ops.call("INFO", "tasks").decode()
    assert alice.call("CONFIG", "GET", "requirepass") == {b"requirepass": b""} or alice.call(
        "CONFIG", "GET", "requirepass"
    ) == [b"requirepass", b""]
    alice.close()
    ops.close()


def test_requirepass_limits_before_auth(make_server) -> None:
    srv = make_server(requirepass="pw", users=USERS)
    with RawClient(srv.port) as c:
        assert err(c, "PING") == NOAUTH
        assert err(c, "TASK.LIST") == NOAUTH
        assert err(c, "ACL", "WHOAMI") == NOAUTH
        assert err(c, "HELLO", "3").startswith("NOAUTH HELLO must be called")
        assert c.call("RESET") == b"RESET"
        # Redis's unauthenticated limits
        reply = c.raw(b"*11\r\n", 0.2)
        assert reply == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
        assert c.is_closed()
    with RawClient(srv.port) as c:
        assert c.raw(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", 0.2) == (
            b"-ERR Protocol error: unauthenticated bulk length\r\n"
        )
    with RawClient(srv.port) as c:
        assert c.call("AUTH", "pw") == b"OK"
        assert c.call("ACL", "WHOAMI") == b"default"
        assert c.call("ECHO", "x" * 20000) == b"x" * 20000  # limits lifted after AUTH
        assert c.call("TASK.CREATE", "m")  # default user, owner local, with the password
        assert c.call("RESET") == b"RESET"
        assert err(c, "PING") == NOAUTH  # RESET forgets the authentication
    with RawClient(srv.port) as c:
        assert c.call("AUTH", "alice", "alice-pw") == b"OK"
        assert c.call("PING") == b"PONG"


def test_anonymous_off_needs_a_user(make_server) -> None:
    srv = make_server(users=USERS, allow_anonymous="no")
    with RawClient(srv.port) as anon:
        assert anon.call("PING") == b"PONG"
        assert err(anon, "TASK.CREATE", "m") == NOAUTH
        assert err(anon, "FLUSHALL") == NOAUTH
        # the default user has no password (as in Redis): AUTH succeeds but grants nothing
        assert anon.call("AUTH", "default", "anything") == b"OK"
        assert err(anon, "TASK.CREATE", "m") == NOAUTH  # still anonymous
    with login(srv.port, "alice", "alice-pw") as alice:
        assert json.loads(alice.call("TASK.CREATE", "m"))["status"] == "working"


def test_users_in_toml(tmp_path, spawn_server) -> None:
    cfg = tmp_path / "taskstore.toml"
    digest = hashlib.sha256(b"s3").hexdigest()
    cfg.write_text(
        '[[users]]\nname = "svc"\npassword = "sha256:%s"\npermissions = ["impersonate"]\n' % digest
    )
    srv = spawn_server(str(cfg))
    with RawClient(srv.port) as c:
        assert c.call("AUTH", "svc", "s3") == b"OK"
        assert json.loads(c.call("TASK.CREATE", "m", "OWNER", "end-user"))["status"] == "working"


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([{"name": "a"}], "password must be a non-empty string"),
        ([{"name": "a", "password": "sha256:abc"}], "64 hex digits"),
        ([{"name": "a", "password": "p", "permissions": ["root"]}], "unknown permission 'root'"),
        ([{"name": "a b", "password": "p"}], "name must be"),
        ([{"name": "a", "password": "p"}, {"name": "a", "password": "q"}], "defined twice"),
        ([{"name": "default", "password": "p"}], "requirepass"),
        ([{"name": "a", "password": "p", "extra": 1}], "unknown key 'extra'"),
    ],
)
def test_bad_users_are_config_errors(users, message: str) -> None:
    from taskstore.server.config import ConfigError, ServerConfig

    with pytest.raises(ConfigError, match=message):
        ServerConfig.build(users=users)


def test_protected_mode_counts_users() -> None:
    from taskstore.server.config import ConfigError, ServerConfig

    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0"):
        ServerConfig.build(bind="0.0.0.0").check_protected_mode()
    ServerConfig.build(bind="0.0.0.0", users=USERS).check_protected_mode()
    ServerConfig.build(bind="0.0.0.0", requirepass="x").check_protected_mode()
    ServerConfig.build(bind="0.0.0.0", protected_mode="no").check_protected_mode()
    # beyond loopback, anonymous access defaults to off
    assert ServerConfig.build(bind="0.0.0.0", users=USERS).anonymous is False
    assert ServerConfig.build(bind="127.0.0.1").anonymous is True
    assert ServerConfig.build(bind="0.0.0.0", allow_anonymous="yes", protected_mode="no").anonymous
