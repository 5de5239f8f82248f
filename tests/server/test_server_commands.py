"""CONFIG, INFO, CLIENT, COMMAND, SHUTDOWN details that the wire comparisons cannot cover."""

from __future__ import annotations

import json
import logging

import hiredis
import redis

from rawclient import RawClient


def test_shutdown_is_refused_inside_multi(server) -> None:
    with RawClient(server.port) as c:
        assert c.call("MULTI") == b"OK"
        err = c.call("SHUTDOWN")
        assert isinstance(err, hiredis.ReplyError)
        assert str(err) == "ERR Command not allowed inside a transaction"
        assert str(c.call("EXEC")).startswith("EXECABORT")
        assert c.call("PING") == b"PONG"  # the server is still up


def test_config_set_store_settings_apply_at_once(server) -> None:
    r = redis.Redis(port=server.port, protocol=3, decode_responses=True)
    assert r.config_set("max_tasks_per_owner", 1)
    r.execute_command("TASK.CREATE", "m")
    try:
        r.execute_command("TASK.CREATE", "m")
        raise AssertionError("limit not applied")
    except redis.ResponseError as e:
        assert str(e).startswith("LIMIT owner has 1 tasks (max 1)")
    cfg = r.execute_command("TASK.CONFIG")
    assert cfg["max_tasks_per_owner"] == 1
    # dependent settings are checked together and nothing changes on failure
    try:
        r.config_set("default_ttl_ms", 100_000_000)
        raise AssertionError("accepted a default ttl above max_ttl_ms")
    except redis.ResponseError as e:
        assert "default_ttl_ms" in str(e)
    assert r.config_get("default_ttl_ms") == {"default_ttl_ms": "3600000"}
    try:
        r.config_set("shards", 32)
        raise AssertionError("shards changed at runtime")
    except redis.ResponseError as e:
        assert "can't set immutable config" in str(e)
    try:
        r.config_set("maxclients", "lots")
        raise AssertionError("accepted a non-integer")
    except redis.ResponseError as e:
        assert "maxclients" in str(e)
    r.close()


def test_config_set_allow_anonymous_and_task_config(server) -> None:
    admin = redis.Redis(port=server.port, protocol=3, decode_responses=True)
    assert admin.execute_command("TASK.CONFIG")["allow_anonymous"] is True
    assert admin.config_set("allow_anonymous", "no")
    with RawClient(server.port) as c:
        for args in (("TASK.CREATE", "m"), ("TASK.LIST",), ("DBSIZE",), ("FLUSHALL",)):
            reply = c.call(*args)
            assert str(reply) == "NOAUTH Authentication required.", args
        assert c.call("PING") == b"PONG"
    # the admin's own connection is anonymous too now: TASK.CONFIG says so before refusing
    try:
        admin.execute_command("TASK.CONFIG")
        raise AssertionError("anonymous TASK.CONFIG allowed")
    except redis.AuthenticationError:
        pass
    except redis.ResponseError as e:
        assert "NOAUTH" in str(e) or "Authentication" in str(e)
    admin.close()


def test_config_set_requirepass(server) -> None:
    r = redis.Redis(port=server.port, protocol=2)
    assert r.config_set("requirepass", "pw")
    with RawClient(server.port) as c:
        assert str(c.call("PING")) == "NOAUTH Authentication required."
        assert c.call("AUTH", "pw") == b"OK"
        tid = json.loads(c.call("TASK.CREATE", "m"))["taskId"]
        assert json.loads(c.call("TASK.GET", tid))["taskId"] == tid
    r.close()


def test_config_set_loglevel(server) -> None:
    r = redis.Redis(port=server.port, protocol=2)
    assert r.config_set("loglevel", "warning")
    assert logging.getLogger("taskstore").level == logging.WARNING
    assert r.config_set("loglevel", "debug")
    assert logging.getLogger("taskstore").level == logging.DEBUG
    assert r.config_get("loglevel") == {"loglevel": "debug"}
    r.close()


def test_client_list_kill_and_info(server) -> None:
    a = redis.Redis(port=server.port, protocol=2, client_name="alpha")
    b = redis.Redis(port=server.port, protocol=3, client_name="beta")
    a.ping()
    b.ping()
    clients = {c["name"]: c for c in a.client_list()}
    assert {"alpha", "beta"} <= set(clients)
    assert clients["beta"]["resp"] == "3"
    assert a.client_info()["name"] == "alpha"
    assert a.client_kill_filter(_id=int(clients["beta"]["id"])) == 1
    names = {c["name"] for c in a.client_list()}
    assert "beta" not in names
    info = a.info("clients")
    assert info["connected_clients"] >= 1
    a.close()
    b.close()


def test_info_sections(server) -> None:
    r = redis.Redis(port=server.port, protocol=2)
    everything = r.info("everything")
    for key in (
        "redis_version",
        "run_id",
        "uptime_in_seconds",
        "taskstore_version",
        "connected_clients",
        "used_memory",
        "loading",
        "total_commands_processed",
        "role",
        "tasks",
        "tasks_working",
        "tasks_owners",
    ):
        assert key in everything, key
    server_only = r.info("server")
    assert "connected_clients" not in server_only and "redis_version" in server_only
    r.close()


def test_command_list_and_count(server) -> None:
    with RawClient(server.port) as c:
        names = c.call("COMMAND", "LIST")
        assert b"task.create" in names and b"ping" in names
        assert c.call("COMMAND", "COUNT") == len(names)
        assert c.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "task.*") == sorted(
            n for n in names if n.startswith(b"task.")
        ) or set(c.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "task.*")) == {
            n for n in names if n.startswith(b"task.")
        }
        everything = c.call("COMMAND")
        assert len(everything) == len(names)
        docs = c.call("COMMAND", "DOCS", "client")
        fields = dict(zip(docs[1][::2], docs[1][1::2], strict=True))
        subs = fields[b"subcommands"]
        assert b"client|setname" in subs[::2]


def test_instantaneous_ops_per_sec_follows_the_load(server) -> None:
    """Redis's INFO field: commands per second, the mean over the last 16 intervals of hz;
    back to 0 once the server has been idle that long."""
    import time

    r = redis.Redis(port=server.port)
    pipe = r.pipeline(transaction=False)
    deadline = time.monotonic() + 2.0  # 20 ticks at hz 10: the 16 samples all under load
    sent = 0
    started = time.monotonic()
    while time.monotonic() < deadline:
        for _ in range(200):
            pipe.ping()
        pipe.execute()
        sent += 200
    rate = sent / (time.monotonic() - started)
    shown = r.info("stats")["instantaneous_ops_per_sec"]
    # per second (not per tick, nor a sum of 16): within a factor of the client's own count
    assert rate / 3 < shown < rate * 3, (shown, rate)
    time.sleep(2.0)  # 20 idle ticks
    assert r.info("stats")["instantaneous_ops_per_sec"] == 0
    r.close()
