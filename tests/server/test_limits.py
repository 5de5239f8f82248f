"""Per-client limits: declared sizes, pipelining without reading, maxclients, idle timeout,
query buffer. Memory is measured on a server in its own process (RSS from /proc)."""

from __future__ import annotations

import socket
import threading
import time

import redis

from rawclient import RawClient, pack

MiB = 1024 * 1024


def settle_rss(proc, wait: float = 0.3) -> int:
    time.sleep(wait)
    return proc.rss()


def test_announced_sizes_cost_only_what_is_sent(spawn_server) -> None:
    srv = spawn_server()
    with RawClient(srv.port) as warm:
        assert warm.call("PING") == b"PONG"
    base = settle_rss(srv)
    clients = []
    # refused at once: over the limits
    for header in (b"*200000000\r\n", b"*1\r\n$2000000000\r\n"):
        c = RawClient(srv.port)
        assert c.raw(header, 0.2).startswith(b"-ERR Protocol error: invalid")
        assert c.is_closed()
        c.close()
    # within the limits and left waiting: the largest count and bulk Redis would accept
    for _ in range(10):
        for header in (
            b"*1048576\r\n",
            b"*2\r\n$4\r\nECHO\r\n$67108864\r\n",
            b"*3\r\n$3\r\nSET\r\n",
        ):
            c = RawClient(srv.port)
            c.send(header)
            clients.append(c)
    grown = settle_rss(srv) - base
    with RawClient(srv.port) as other:
        assert other.call("ECHO", "served") == b"served"
    for c in clients:
        c.close()
    print(f"RSS growth with {len(clients)} clients announcing large sizes: {grown / 1024:.0f} KiB")
    assert grown < 1 * MiB, grown


def test_pipelining_without_reading_is_bounded(spawn_server) -> None:
    """100 MB of requests from a client that does not read: the server stops reading it."""
    srv = spawn_server()
    with RawClient(srv.port) as warm:
        assert warm.call("PING") == b"PONG"
    base = settle_rss(srv)
    payload = b"x" * 1000
    request = pack("ECHO", payload)
    reply = b"$1000\r\n" + payload + b"\r\n"
    count = 100 * MiB // len(request)
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sent = [0]

    def send() -> None:
        batch = request * 256
        for _ in range(count // 256):
            sock.sendall(batch)
            sent[0] += 256

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    peak = 0
    last = -1
    # wait until the sender is stuck (server stopped reading) or done
    while sender.is_alive():
        time.sleep(0.3)
        peak = max(peak, srv.rss())
        if sent[0] == last:
            break
        last = sent[0]
    stalled_at = sent[0]
    peak = max(peak, srv.rss())
    # another client is served normally meanwhile
    with RawClient(srv.port) as other:
        assert other.call("ECHO", "meanwhile") == b"meanwhile"
    # now read everything: every reply arrives, in order
    received = 0
    expected = (count // 256) * 256
    buf = b""
    sock.settimeout(30)
    while received < expected:
        chunk = sock.recv(1 << 20)
        assert chunk, "server closed the connection"
        buf += chunk
        n = len(buf) // len(reply)
        if n:
            assert buf[: n * len(reply)] == reply * n
            buf = buf[n * len(reply) :]
            received += n
        if received % 10000 < 100:
            peak = max(peak, srv.rss())
    sender.join(30)
    sock.close()
    grown = peak - base
    print(
        f"pipelined {expected * len(request) / MiB:.0f} MiB; sender stalled after "
        f"{stalled_at * len(request) / MiB:.1f} MiB; peak RSS growth {grown / MiB:.1f} MiB"
    )
    assert stalled_at < expected, "the server never stopped reading a client that does not read"
    assert grown < 8 * MiB, grown


def test_maxclients(make_server) -> None:
    srv = make_server(maxclients=2)
    a, b = RawClient(srv.port), RawClient(srv.port)
    assert a.call("PING") == b"PONG" and b.call("PING") == b"PONG"
    with RawClient(srv.port) as c:
        assert c.read_quiet(0.5) == b"-ERR max number of clients reached\r\n"
        assert c.is_closed()
    a.close()
    time.sleep(0.1)
    with RawClient(srv.port) as d:
        assert d.call("PING") == b"PONG"
    b.close()
    info = redis.Redis(port=srv.port, protocol=2).info("stats")
    assert info["rejected_connections"] == 1


def test_idle_timeout(make_server) -> None:
    srv = make_server(timeout=1)
    idle = RawClient(srv.port)
    busy = RawClient(srv.port)
    assert idle.call("PING") == b"PONG"
    deadline = time.monotonic() + 4
    closed = False
    while time.monotonic() < deadline and not closed:
        assert busy.call("PING") == b"PONG"
        closed = idle.is_closed(0.2)
    assert closed, "idle client was not closed"
    assert busy.call("PING") == b"PONG"
    idle.close()
    busy.close()


def test_timeout_zero_never_closes(make_server) -> None:
    srv = make_server(timeout=0)
    with RawClient(srv.port) as c:
        assert c.call("PING") == b"PONG"
        assert not c.is_closed(1.5)
        assert c.call("PING") == b"PONG"


def test_query_buffer_limit_closes_the_client(make_server) -> None:
    srv = make_server(client_query_buffer_limit="64kb")
    with RawClient(srv.port) as c, RawClient(srv.port) as other:
        c.send(b"*2\r\n$4\r\nECHO\r\n$1000000\r\n")
        try:
            c.send(b"x" * 200_000)
        except OSError:
            pass
        assert c.is_closed()
        assert other.call("PING") == b"PONG"


def test_config_set_limits_take_effect(make_server) -> None:
    srv = make_server()
    r = redis.Redis(port=srv.port, protocol=3)
    assert r.config_set("maxclients", 1) is True
    assert r.config_get("maxclients") == {"maxclients": "1"}
    with RawClient(srv.port) as c:
        assert c.read_quiet(0.5) == b"-ERR max number of clients reached\r\n"
    assert r.config_set("maxclients", 100) is True
    with RawClient(srv.port) as c:
        assert c.call("PING") == b"PONG"
    r.close()
