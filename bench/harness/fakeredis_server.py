"""Run fakeredis's TcpFakeServer as a process of its own, so its CPU can be measured.

    python bench/harness/fakeredis_server.py [--port N]

Prints "fakeredis ready on 127.0.0.1:PORT" once listening; SIGTERM/SIGINT end it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    from fakeredis import TcpFakeServer

    # socketserver's default listen backlog is 5; redis-benchmark opens 50 connections at once
    # and would otherwise see dropped SYNs (1 s retransmits). Redis itself uses 511.
    TcpFakeServer.request_queue_size = 511
    server = TcpFakeServer(("127.0.0.1", args.port), server_type="redis")
    port = server.server_address[1]

    def _bye(*_: object) -> None:
        sys.stdout.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, _bye)
    signal.signal(signal.SIGINT, _bye)
    print(f"fakeredis ready on 127.0.0.1:{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
