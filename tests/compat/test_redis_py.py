"""redis-py 8.x, sync and asyncio, through the logging proxy: RESP3 (its default) and
``protocol=2``, each with hiredis (the default when installed) and with the pure-Python
parser, plus one row with the common options (password, client name, decode_responses)."""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
import pytest
import redis
import redis.asyncio
from redis._parsers import _AsyncRESP2Parser, _AsyncRESP3Parser, _RESP2Parser, _RESP3Parser

from .conftest import differences_from_redis, handshake_of, main_connection
from .scenario import check_scenario, run_redis_py, run_redis_py_async

PASSWORD = "compat-pw"

# (id, protocol, hiredis, options row) -> keyword arguments for Redis(...)
VARIANTS = [
    ("resp3-hiredis", 3, True, False),
    ("resp3-python-parser", 3, False, False),
    ("resp2-hiredis", 2, True, False),
    ("resp2-python-parser", 2, False, False),
    ("resp3-options", 3, True, True),
]


def _kwargs(asyncio_api: bool, protocol: int, use_hiredis: bool, options: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if protocol == 2:
        kwargs["protocol"] = 2
    if not use_hiredis:
        if asyncio_api:
            kwargs["parser_class"] = _AsyncRESP3Parser if protocol == 3 else _AsyncRESP2Parser
        else:
            kwargs["parser_class"] = _RESP3Parser if protocol == 3 else _RESP2Parser
    if options:
        kwargs.update(password=PASSWORD, client_name="compat-suite", decode_responses=True)
    return kwargs


def _describe(kwargs: dict[str, Any]) -> str:
    parts = []
    for key, value in kwargs.items():
        if key == "parser_class":
            parts.append(f"parser_class={value.__name__} (hiredis off)")
        elif key == "password":
            parts.append("password (server with requirepass)")
        else:
            parts.append(f"{key}={value!r}")
    return ", ".join(parts) or "defaults (hiredis on)"


@pytest.mark.parametrize("api", ["sync", "asyncio"])
@pytest.mark.parametrize(
    ("protocol", "use_hiredis", "options"),
    [v[1:] for v in VARIANTS],
    ids=[v[0] for v in VARIANTS],
)
def test_redis_py(
    api: str,
    protocol: int,
    use_hiredis: bool,
    options: bool,
    make_server,
    logging_proxy,
    reference_redis,
    row,
) -> None:
    asyncio_api = api == "asyncio"
    kwargs = _kwargs(asyncio_api, protocol, use_hiredis, options)
    version = redis.__version__ + (f" + hiredis {hiredis.__version__}" if use_hiredis else "")
    r = row(f"redis-py ({api})", version, f"RESP{protocol}", _describe(kwargs))
    srv = make_server(requirepass=PASSWORD) if options else make_server()
    proxy = logging_proxy(srv.port)
    url = f"redis://127.0.0.1:{proxy.port}"

    def check_parser(client: Any) -> None:
        parser = type(client.connection_pool.make_connection()._parser).__name__
        assert ("Hiredis" in parser) == use_hiredis, parser

    if asyncio_api:

        async def main() -> dict[str, Any]:
            client = redis.asyncio.Redis.from_url(url, **kwargs)
            check_parser(client)
            return await run_redis_py_async(client)

        out = asyncio.run(main())
    else:
        client = redis.Redis.from_url(url, **kwargs)
        check_parser(client)
        out = run_redis_py(client)

    conn = main_connection(proxy)
    r.handshake = handshake_of(conn)
    assert proxy.wait_closed(), "redis-py left a connection open after close()"
    assert (
        differences_from_redis(conn, srv.port, reference_redis(PASSWORD if options else None)) == []
    )
    check_scenario(
        out,
        string_type="str" if options else "bytes",  # decode_responses=False is the default
        error_classes=("ResponseError",),
    )
    # the RESP version asked for is the one the connection speaks
    hello = [c for c in conn.commands if c[0].upper() == b"HELLO"]
    if protocol == 3:
        assert hello and hello[0][1] == b"3", r.handshake
    else:
        assert not hello, r.handshake
