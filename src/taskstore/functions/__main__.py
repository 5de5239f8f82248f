"""``python -m taskstore.functions load|check|version <redis-url>``.

``load``: ``FUNCTION LOAD REPLACE`` of the taskstore library on the server (on a cluster, on
every primary), then prints the version each one reports. ``check``: prints what each server
has loaded and exits 0 only when every one runs this package's version (1 when outdated or
missing). ``version``: prints this package's library version.
"""

from __future__ import annotations

import argparse
import sys

from redis.exceptions import RedisError

from taskstore.functions import LOAD_COMMAND, check, library_version, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m taskstore.functions",
        description="Load or check taskstore's Redis Functions library (Redis/Valkey >= 7).",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    for action, text in (
        ("load", "FUNCTION LOAD REPLACE on the server (every primary of a cluster)"),
        ("check", "exit 0 if every server runs this package's library version"),
    ):
        p = sub.add_parser(action, help=text)
        p.add_argument("url", help="redis://[user:password@]host:port (rediss:// for TLS)")
    sub.add_parser("version", help="print the library version this package ships")
    args = parser.parse_args(argv)
    if args.action == "version":
        print(library_version())
        return 0
    try:
        if args.action == "load":
            for node in load(args.url):
                print(f"{node.node}: taskstore library {node.version} loaded")
            return 0
        ok, versions = check(args.url)
    except RedisError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    want = library_version()
    for node in versions:
        if node.version is None:
            state = f"missing (run: {LOAD_COMMAND})"
        elif node.version == want:
            state = f"{node.version} (current)"
        else:
            state = f"{node.version} (outdated: this package has {want}; run: {LOAD_COMMAND})"
        print(f"{node.node}: taskstore library {state}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
