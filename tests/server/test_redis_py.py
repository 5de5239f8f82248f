"""redis-py 8, the way users first try it: defaults (RESP3), protocol=2, sync and asyncio,
with the hiredis parser and with the pure-Python one."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aredis
from redis._parsers import (
    _AsyncHiredisParser,
    _AsyncRESP2Parser,
    _AsyncRESP3Parser,
    _HiredisParser,
    _RESP2Parser,
    _RESP3Parser,
)

SYNC_PARSERS = {
    (2, "hiredis"): _HiredisParser,
    (3, "hiredis"): _HiredisParser,
    (2, "python"): _RESP2Parser,
    (3, "python"): _RESP3Parser,
}
ASYNC_PARSERS = {
    (2, "hiredis"): _AsyncHiredisParser,
    (3, "hiredis"): _AsyncHiredisParser,
    (2, "python"): _AsyncRESP2Parser,
    (3, "python"): _AsyncRESP3Parser,
}
MATRIX = [(p, parser) for p in (2, 3) for parser in ("hiredis", "python")]


def sync_client(port: int, protocol: int, parser: str) -> redis.Redis:
    pool = redis.ConnectionPool(
        host="127.0.0.1", port=port, protocol=protocol, parser_class=SYNC_PARSERS[protocol, parser]
    )
    return redis.Redis(connection_pool=pool)


def async_client(port: int, protocol: int, parser: str) -> aredis.Redis:
    pool = aredis.ConnectionPool(
        host="127.0.0.1", port=port, protocol=protocol, parser_class=ASYNC_PARSERS[protocol, parser]
    )
    return aredis.Redis(connection_pool=pool)


def test_defaults_are_resp3_and_work(server) -> None:
    r = redis.Redis.from_url(server.url)
    assert r.ping() is True
    info = r.client_info()
    assert info["resp"] == "3"
    assert info["lib-name"] == "redis-py"  # CLIENT SETINFO was accepted
    r.close()


@pytest.mark.parametrize(("protocol", "parser"), MATRIX)
def test_sync(server, protocol: int, parser: str) -> None:
    r = sync_client(server.port, protocol, parser)
    assert r.ping() is True
    assert r.echo(b"\x00binary\r\n") == b"\x00binary\r\n"
    assert r.client_setname("worker-1") is True
    # redis-py decodes CLIENT GETNAME itself under RESP2 (as it does against Redis)
    assert r.client_getname() in (b"worker-1", "worker-1")
    assert r.client_info()["resp"] == str(protocol)
    info = r.info()
    assert info["redis_version"] == "7.4.0"
    assert info["redis_mode"] == "standalone"
    assert info["loading"] == 0
    assert info["role"] == "master"
    assert info["tcp_port"] == server.port
    assert "tasks" in r.info("tasks")
    with r.pipeline() as p:  # MULTI/EXEC
        p.ping().echo("a").client_getname()
        assert p.execute()[:2] == [True, b"a"]
    with r.pipeline(transaction=False) as p:
        p.ping().echo("b")
        assert p.execute() == [True, b"b"]
    with pytest.raises(redis.ResponseError, match="unknown command 'NOSUCH'"):
        r.execute_command("NOSUCH", "x")
    # the connection still works after an error
    assert r.echo("after") == b"after"
    r.close()


@pytest.mark.parametrize(("protocol", "parser"), MATRIX)
def test_asyncio(server, protocol: int, parser: str) -> None:
    async def main() -> None:
        r = async_client(server.port, protocol, parser)
        assert await r.ping() is True
        assert await r.echo("x") == b"x"
        assert await r.client_setname("aio") is True
        assert await r.client_getname() in (b"aio", "aio")
        info = await r.info()
        assert info["redis_version"] == "7.4.0"
        async with r.pipeline() as p:
            p.ping()
            p.echo("a")
            assert await p.execute() == [True, b"a"]
        async with r.pipeline(transaction=False) as p:
            p.ping()
            p.echo("b")
            assert await p.execute() == [True, b"b"]
        # many concurrent requests over a pool
        got = await asyncio.gather(*(r.echo(str(i)) for i in range(50)))
        assert got == [str(i).encode() for i in range(50)]
        await r.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(("protocol", "parser"), MATRIX)
def test_pipeline_errors_surface_per_command(server, protocol: int, parser: str) -> None:
    r = sync_client(server.port, protocol, parser)
    with r.pipeline(transaction=False) as p:
        p.echo("a")
        p.execute_command("NOSUCH")
        p.echo("b")
        res = p.execute(raise_on_error=False)
    assert res[0] == b"a" and res[2] == b"b"
    assert isinstance(res[1], redis.ResponseError)
    # an error queued inside MULTI aborts the transaction, as in Redis
    with r.pipeline() as p:
        p.echo("a")
        p.execute_command("NOSUCH")
        with pytest.raises(redis.ResponseError):
            p.execute()
    r.close()


def test_hello_reply(server) -> None:
    r3 = sync_client(server.port, 3, "python")
    hello = r3.execute_command("HELLO", "3")
    assert hello[b"server"] == b"redis"
    assert hello[b"proto"] == 3
    assert hello[b"mode"] == b"standalone"
    assert hello[b"role"] == b"master"
    assert hello[b"modules"] == []
    assert isinstance(hello[b"id"], int)
    r3.close()


def test_password_protected(make_server) -> None:
    srv = make_server(requirepass="s3cret")
    anon = redis.Redis(port=srv.port, protocol=2)
    with pytest.raises(redis.AuthenticationError):
        anon.ping()
    for protocol in (2, 3):
        r = redis.Redis(port=srv.port, password="s3cret", protocol=protocol)
        assert r.ping() is True
        r.close()
        r = redis.Redis(port=srv.port, username="default", password="s3cret", protocol=protocol)
        assert r.ping() is True
        r.close()
        bad = redis.Redis(port=srv.port, password="wrong", protocol=protocol)
        with pytest.raises(redis.AuthenticationError):
            bad.ping()
        bad.close()
