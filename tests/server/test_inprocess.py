"""taskstore in-process (design.md §8): `async with taskstore.Server(port=0)`, the
`ServerThread` runner for synchronous code, and the `taskstore_server` pytest plugin fixture."""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import socket
import threading
import time

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

import taskstore
from rawclient import RawClient
from taskstore.server.config import ConfigError

pytest_plugins = ["pytester"]


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def runner_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "taskstore" and t.is_alive()}


# -- async Server ---------------------------------------------------------------


def test_async_server_context_manager() -> None:
    async def main() -> tuple[int, float, float]:
        t0 = time.perf_counter()
        async with taskstore.Server(port=0) as srv:
            t1 = time.perf_counter()
            assert srv.port > 0
            assert srv.url == f"redis://127.0.0.1:{srv.port}"
            r = redis.asyncio.Redis.from_url(srv.url, decode_responses=True)
            try:
                assert await r.ping() is True
                assert await r.echo("tracer") == "tracer"
                assert (await r.info("server"))["tcp_port"] == srv.port
                assert await r.config_get("maxclients") == {"maxclients": "10000"}
                # many concurrent clients on the same loop as the server
                clients = [redis.asyncio.Redis.from_url(srv.url) for _ in range(20)]
                replies = await asyncio.gather(*(c.echo(str(i)) for i, c in enumerate(clients)))
                assert replies == [str(i).encode() for i in range(20)]
                for c in clients:
                    await c.aclose()
            finally:
                await r.aclose()
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        return srv.port, t1 - t0, t3 - t2

    port, start_s, stop_s = asyncio.run(main())
    print(f"async Server: start {start_s * 1000:.2f} ms, stop {stop_s * 1000:.2f} ms")
    assert refused(port)


def test_async_server_explicit_start_stop() -> None:
    async def main() -> int:
        srv = taskstore.Server(port=0, maxclients=5)
        await srv.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"PING\r\n")
            assert await reader.readline() == b"+PONG\r\n"
            writer.close()
            await writer.wait_closed()
        finally:
            await srv.stop()
        await asyncio.wait_for(srv.wait_stopped(), 5)
        return srv.port

    assert refused(asyncio.run(main()))


# -- ServerThread ------------------------------------------------------------------


def test_server_thread_context_manager() -> None:
    before = runner_threads()
    t0 = time.perf_counter()
    with taskstore.ServerThread(port=0) as srv:
        t1 = time.perf_counter()
        assert srv.port > 0
        assert srv.url == f"redis://127.0.0.1:{srv.port}"
        r = redis.Redis.from_url(srv.url, decode_responses=True)
        assert r.ping() is True
        assert r.echo("a b") == "a b"
        assert r.info("server")["tcp_port"] == srv.port
        r.close()
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    print(f"ServerThread: start {(t1 - t0) * 1000:.2f} ms, stop {(t3 - t2) * 1000:.2f} ms")
    assert refused(srv.port)
    assert runner_threads() == before, "the runner's thread outlived the with block"


def test_two_servers_at_once() -> None:
    timings = []
    t0 = time.perf_counter()
    with taskstore.ServerThread(port=0) as a:
        t1 = time.perf_counter()
        with taskstore.ServerThread(port=0, maxclients=77) as b:
            t2 = time.perf_counter()
            assert a.port != b.port
            ra = redis.Redis.from_url(a.url, decode_responses=True)
            rb = redis.Redis.from_url(b.url, decode_responses=True)
            assert ra.config_get("maxclients") == {"maxclients": "10000"}
            assert rb.config_get("maxclients") == {"maxclients": "77"}
            # state is per server: a change on one is not seen on the other
            assert ra.config_set("timeout", 30) is True
            assert ra.config_get("timeout") == {"timeout": "30"}
            assert rb.config_get("timeout") == {"timeout": "0"}
            assert ra.info("server")["run_id"] != rb.info("server")["run_id"]
            ra.close()
            rb.close()
            t3 = time.perf_counter()
        t4 = time.perf_counter()
        timings.append(("b", t2 - t1, t4 - t3))
        # a keeps serving after b stopped
        assert refused(b.port)
        assert redis.Redis.from_url(a.url).ping() is True
        t5 = time.perf_counter()
    t6 = time.perf_counter()
    timings.append(("a", t1 - t0, t6 - t5))
    for name, start_s, stop_s in timings:
        print(f"server {name}: start {start_s * 1000:.2f} ms, stop {stop_s * 1000:.2f} ms")
    assert refused(a.port)


def test_settings_as_keyword_arguments(make_server) -> None:
    srv = make_server(
        maxclients=3,
        timeout=9,
        max_tasks_per_owner=5,
        expired_retention_ms=250,
        proto_max_bulk_len="2mb",
        loglevel="warning",
        allow_anonymous="no",
    )
    r = redis.Redis.from_url(srv.url, decode_responses=True)
    cfg = r.config_get("*")
    assert cfg["maxclients"] == "3"
    assert cfg["timeout"] == "9"
    assert cfg["max_tasks_per_owner"] == "5"
    assert cfg["expired_retention_ms"] == "250"
    assert cfg["proto_max_bulk_len"] == str(2 * 1024 * 1024)
    assert cfg["loglevel"] == "warning"
    assert cfg["allow_anonymous"] == "no"
    # the flag spelling works as a CONFIG GET pattern too
    assert r.config_get("max-tasks-per-owner") == {"max_tasks_per_owner": "5"}
    # maxclients is enforced: r is one client, two more fit, the fourth is turned away
    with RawClient(srv.port) as c2, RawClient(srv.port) as c3, RawClient(srv.port) as c4:
        assert c2.call("PING") == b"PONG"
        assert c3.call("PING") == b"PONG"
        assert c4.raw(b"PING\r\n") == b"-ERR max number of clients reached\r\n"
        assert c4.is_closed()
    r.close()


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"maxclients": 0}, ["maxclients", "at least 1"]),
        ({"port": "abc"}, ["port", "abc"]),
        ({"loglevel": "loud"}, ["loglevel", "loud"]),
        ({"shards": 3}, ["shards", "power of two"]),
        ({"protected_mode": "maybe"}, ["protected_mode"]),
        ({"no_such_setting": 1}, ["no_such_setting"]),
        ({"default_ttl_ms": 10, "max_ttl_ms": 5}, ["default_ttl_ms", "max_ttl_ms"]),
    ],
    ids=["maxclients", "port", "loglevel", "shards", "bool", "unknown", "ttl-pair"],
)
def test_bad_setting_raises_config_error(settings: dict[str, object], words: list[str]) -> None:
    before = runner_threads()
    for factory in (taskstore.Server, taskstore.ServerThread):
        with pytest.raises(ConfigError) as info:
            factory(**settings)
        message = str(info.value)
        assert "\n" not in message
        for word in words:
            assert word in message, (word, message)
    assert issubclass(ConfigError, ValueError)
    assert runner_threads() == before


def _wait_threads(before: set[threading.Thread], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while runner_threads() != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner_threads() == before, "a server thread is still running"


def test_server_thread_port_in_use() -> None:
    before = runner_threads()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        runner = taskstore.ServerThread(port=port)
        with pytest.raises(ConfigError, match=f"port {port} is already in use"):
            runner.start()
    _wait_threads(before)
    runner.stop()  # a no-op once the failed runner's thread has ended


class _SlowClosingLoop(asyncio.SelectorEventLoop):
    """An event loop whose close() takes a while: widens the window between the runner's
    loop stopping and its thread ending, which a stop() from another thread can hit."""

    def close(self) -> None:
        time.sleep(1.0)
        super().close()


def test_stop_after_failed_start_returns_quietly(
    monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    monkeypatch.setattr(asyncio, "new_event_loop", _SlowClosingLoop)
    before = runner_threads()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        runner = taskstore.ServerThread(port=blocker.getsockname()[1])
        try:
            with pytest.raises(ConfigError):
                runner.start()
        finally:
            started = time.perf_counter()
            try:
                runner.stop()  # the try/finally pattern: must be harmless after a failed start
            finally:
                print(f"stop() after a failed start took {time.perf_counter() - started:.3f} s")
                _wait_threads(before)
    gc.collect()  # a shutdown scheduled on the dying loop would warn when collected
    never_run = [w for w in recwarn.list if "was never awaited" in str(w.message)]
    assert not never_run, [str(w.message) for w in never_run]


def test_shutdown_over_the_wire_stops_server_thread() -> None:
    before = runner_threads()
    runner = taskstore.ServerThread(port=0)
    with runner as srv:
        with RawClient(srv.port) as bystander, RawClient(srv.port) as c:
            assert bystander.call("PING") == b"PONG"
            assert c.raw(b"SHUTDOWN\r\n", settle=0.5) == b""  # no reply, as in Redis
            assert c.is_closed()
            assert bystander.is_closed()
        _wait_threads(before)
        assert refused(srv.port)
    # __exit__ (stop) after the server stopped on its own raised nothing
    runner.stop()


def test_redis_py_shutdown_in_process() -> None:
    with taskstore.ServerThread(port=0) as srv:
        r = redis.Redis.from_url(srv.url, retry=Retry(NoBackoff(), 0))
        assert r.ping() is True
        assert r.shutdown() is None  # the closed connection counts as success
        deadline = time.monotonic() + 5
        while not refused(srv.port) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert refused(srv.port)


# -- the pytest plugin ---------------------------------------------------------------

_PLUGIN_TESTS = """
import redis

SEEN = []


def test_first(taskstore_server):
    r = redis.Redis.from_url(taskstore_server.url, decode_responses=True)
    assert r.ping() is True
    assert r.echo("from the plugin") == "from the plugin"
    assert r.config_set("timeout", 42)
    SEEN.append((taskstore_server.port, r.info("server")["run_id"]))
    r.close()


def test_second_gets_a_fresh_server(taskstore_server):
    r = redis.Redis.from_url(taskstore_server.url, decode_responses=True)
    assert r.config_get("timeout") == {"timeout": "0"}
    assert SEEN and r.info("server")["run_id"] != SEEN[0][1]
    r.close()


def test_server_is_stopped_after_the_test():
    import socket
    import pytest

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", SEEN[0][0]), timeout=1).close()
"""


def test_pytest_plugin_fixture(pytester: pytest.Pytester) -> None:
    eps = importlib.metadata.entry_points(group="pytest11")
    if not any(ep.value == "taskstore.pytest_plugin" for ep in eps):
        pytest.fail("taskstore's pytest11 entry point is not registered: run pip install -e .")
    pytester.makepyfile(test_uses_plugin=_PLUGIN_TESTS)
    started = time.perf_counter()
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    print(f"pytester run: {time.perf_counter() - started:.2f} s")
    result.assert_outcomes(passed=3)


def test_pytest_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    """The fixture comes from the registered plugin, not from anything in the test tree."""
    pytester.makepyfile(
        test_uses_plugin="def test_x(taskstore_server):\n    assert taskstore_server.port\n"
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-p", "no:taskstore")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'taskstore_server' not found*"])
