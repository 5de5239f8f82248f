"""node-redis (npm `redis`, current and previous major) and ioredis (6 and 5), installed from
tests/compat/package-lock.json, each through the logging proxy. The scenario runs in Node.js
(node/*.mjs) and prints every reply as JSON; the checks are the same as for every client."""

from __future__ import annotations

import json

import pytest

from .conftest import (
    NODE_DIR,
    differences_from_redis,
    handshake_of,
    main_connection,
    npm_version,
    run_node,
)
from .scenario import check_scenario

PASSWORD = "compat-pw"

# (alias in package.json, createClient options, RESP version it should speak, options row)
NODE_REDIS = [
    ("redis6", {}, 3, False),
    ("redis6", {"RESP": 2}, 2, False),
    ("redis6", {"name": "compat-suite"}, 3, True),
    ("redis5", {}, 2, False),
    ("redis5", {"RESP": 3}, 3, False),
    ("redis5", {"name": "compat-suite"}, 2, True),
]

# (alias, new Redis(...) options, RESP version, options row)
IOREDIS = [
    ("ioredis6", {}, 3, False),
    ("ioredis6", {"protocol": 2}, 2, False),
    ("ioredis6", {"connectionName": "compat-suite", "enableAutoPipelining": True}, 3, True),
    ("ioredis5", {}, 2, False),
    ("ioredis5", {"connectionName": "compat-suite", "enableAutoPipelining": True}, 2, True),
]


def _ids(variants: list[tuple[str, dict, int, bool]]) -> list[str]:
    out = []
    for alias, opts, resp, options in variants:
        out.append(f"{alias}-{'options' if options else 'defaults' if not opts else f'resp{resp}'}")
    return out


def _describe(opts: dict, options: bool, how: str) -> str:
    text = how + (" " + json.dumps(opts) if opts else " defaults")
    if options:
        text += " + password (server with requirepass)"
    return text


def _run(
    script: str,
    alias: str,
    opts: dict,
    resp: int,
    options: bool,
    client: str,
    how: str,
    make_server,
    logging_proxy,
    reference_redis,
    row,
) -> tuple[dict, list[str]]:
    r = row(client, npm_version(alias), f"RESP{resp}", _describe(opts, options, how))
    srv = make_server(requirepass=PASSWORD) if options else make_server()
    proxy = logging_proxy(srv.port)
    env = {"TASKSTORE_PORT": str(proxy.port)}
    if options:
        env["TASKSTORE_PASSWORD"] = PASSWORD
    out = run_node(NODE_DIR / script, alias, json.dumps(opts), env=env)
    conn = main_connection(proxy)
    r.handshake = handshake_of(conn)
    assert out["version"] == r.version
    assert proxy.wait_closed(), f"{client} left a connection open after closing"
    assert (
        differences_from_redis(conn, srv.port, reference_redis(PASSWORD if options else None)) == []
    )
    hello = [c for c in conn.commands if c[0].upper() == b"HELLO"]
    if resp == 3:
        assert hello and hello[0][1] == b"3", r.handshake
    else:
        assert not hello, r.handshake
    return out, r.handshake


@pytest.mark.parametrize(("alias", "opts", "resp", "options"), NODE_REDIS, ids=_ids(NODE_REDIS))
def test_node_redis(
    alias, opts, resp, options, make_server, logging_proxy, reference_redis, row
) -> None:
    major = alias.removeprefix("redis")
    out, _ = _run(
        "node_redis_scenario.mjs",
        alias,
        opts,
        resp,
        options,
        f"node-redis {major}",
        "createClient",
        make_server,
        logging_proxy,
        reference_redis,
        row,
    )
    # errors are ErrorReply (the reply errors are its subclass SimpleError); exec() of a
    # MULTI whose EXEC array holds an error reply rejects with MultiErrorReply
    check_scenario(
        out,
        string_type="string",
        error_classes=("SimpleError", "ErrorReply"),
        multi_thrown=("MultiErrorReply",),
    )


@pytest.mark.parametrize(("alias", "opts", "resp", "options"), IOREDIS, ids=_ids(IOREDIS))
def test_ioredis(
    alias, opts, resp, options, make_server, logging_proxy, reference_redis, row
) -> None:
    major = alias.removeprefix("ioredis")
    out, handshake = _run(
        "ioredis_scenario.mjs",
        alias,
        opts,
        resp,
        options,
        f"ioredis {major}",
        "new Redis",
        make_server,
        logging_proxy,
        reference_redis,
        row,
    )
    # ioredis 5 surfaces ReplyError; ioredis 6 its subclass SimpleError (both instanceof
    # Redis.ReplyError); multi().exec() resolves with [error, reply] pairs
    check_scenario(out, string_type="string", error_classes=("ReplyError", "SimpleError"))
    assert any(h.startswith("INFO") for h in handshake), "ioredis's ready check (INFO) is gone"
