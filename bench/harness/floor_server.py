"""The floor under taskstore's per-operation CPU: the least a Python server on uvloop can do.

    python bench/harness/floor_server.py --level bare|reader [--port N]

Not a product: a yardstick for issue 16's ratios. It answers PING, HSET, HGETALL, DBSIZE,
INFO and CONFIG (what the harness and redis-benchmark send) from one dict, with one
``transport.write`` per read, and nothing else: no users, no limits, no MULTI, no
flow control, no statistics.

- ``bare``: hiredis parses each read and its requests are answered. Hostile input is not
  refused: ``+PING`` inside an array, a set or push header in place of ``*``, a huge declared
  count (hiredis reserves it) all pass or crash the process.
- ``reader``: the same with taskstore's own ``RequestReader`` in front (its exactness, see
  docs/architecture.md "The path of a request": a request is taken only in a form Redis
  accepts, and nothing is reserved from a declared size). The cheapest a server can be that
  keeps taskstore's guarantees on the wire, before any command runs.

Prints "floor ready on 127.0.0.1:PORT" once listening; SIGTERM/SIGINT end it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

import hiredis

PONG = b"+PONG\r\n"
EMPTY = b"*0\r\n"


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


class Floor(asyncio.Protocol):
    def __init__(self, data: dict[bytes, dict[bytes, bytes]], level: str) -> None:
        self.data = data
        self.transport: Any = None
        if level == "reader":
            from taskstore.protocol import RequestReader

            self.reader: Any = RequestReader()
            self.data_received = self.exact  # type: ignore[method-assign]
        else:
            self.reader = hiredis.Reader()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        cmds = []
        try:
            while (cmd := reader.gets()) is not False:
                cmds.append(cmd)
        except hiredis.ProtocolError:  # an inline command, for one: not served here
            self.transport.write(b"-ERR Protocol error\r\n")
            self.transport.close()
            return
        self.answer(cmds)

    def exact(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        cmds, err = reader.parse()
        self.answer(cmds)
        if err is not None:
            self.transport.write(b"-%b\r\n" % str(err).encode())
            self.transport.close()

    def answer(self, cmds: list[list[bytes]]) -> None:
        out = []
        for args in cmds:
            name = args[0].upper()
            if name == b"PING":
                out.append(PONG)
            elif name == b"HGETALL":
                fields = self.data.get(args[1], {})
                out.append(b"*%d\r\n" % (2 * len(fields)))
                for k, v in fields.items():
                    out.append(bulk(k))
                    out.append(bulk(v))
            elif name == b"HSET":
                fields = self.data.setdefault(args[1], {})
                before = len(fields)
                for i in range(2, len(args) - 1, 2):
                    fields[args[i]] = args[i + 1]
                out.append(b":%d\r\n" % (len(fields) - before))
            elif name == b"DBSIZE":
                out.append(b":%d\r\n" % len(self.data))
            elif name == b"INFO":
                out.append(bulk(b"# Stats\r\ntotal_error_replies:0\r\n"))
            elif name == b"CONFIG":
                out.append(EMPTY)
            else:
                out.append(b"-ERR unknown command\r\n")
        if out:
            self.transport.write(b"".join(out))


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--level", choices=("bare", "reader"), default="bare")
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    data: dict[bytes, dict[bytes, bytes]] = {}
    server = await loop.create_server(
        lambda: Floor(data, args.level), "127.0.0.1", args.port, backlog=511
    )
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"floor ready on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()
    return 0


if __name__ == "__main__":
    import uvloop

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    code = uvloop.run(main())
    sys.stdout.flush()
    os._exit(code)
