"""``taskstore-server [config.toml] [--setting value ...]``: run a server until a signal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from taskstore import __version__
from taskstore.server.config import LOG_LEVELS, SETTINGS, ConfigError, ServerConfig, load_file

PROG = "taskstore-server"


_FLAGS = {s.flag: s.name for s in SETTINGS.values()}


def usage() -> str:
    lines = [
        f"usage: {PROG} [config.toml] [--setting value ...]",
        "",
        "Every setting is also a key of the TOML file and a CONFIG GET/SET parameter.",
        "",
    ]
    for s in SETTINGS.values():
        default = s.render(s.default) if s.default not in (None, "") else '""'
        lines.append(f"  {s.flag:<30} {s.help} (default {default})")
    lines += ["", "  --version                      print the version and exit"]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> tuple[str | None, dict[str, str]]:
    """Split argv into the config file path and flag settings (strings, checked later)."""
    path: str | None = None
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            flag, eq, value = arg.partition("=")
            name = _FLAGS.get(flag.lower().replace("_", "-"))
            if name is None:
                raise ConfigError(f"unknown option '{flag}' (see {PROG} --help)")
            if not eq:
                if i + 1 >= len(argv):
                    raise ConfigError(f"option '{flag}' needs a value")
                i += 1
                value = argv[i]
            flags[name] = value
        elif path is None and i == 0:
            path = arg
        else:
            raise ConfigError(f"unexpected argument '{arg}' (see {PROG} --help)")
        i += 1
    return path, flags


def build_config(argv: list[str]) -> ServerConfig:
    path, flags = parse_args(argv)
    file_values = load_file(path) if path else {}
    cfg = ServerConfig.build(file_values, **flags)
    cfg.check_protected_mode()
    return cfg


def loop_factory(choice: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError("event_loop: uvloop is not installed") from None
        else:
            return "uvloop", uvloop.new_event_loop
    return "asyncio", asyncio.new_event_loop


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args and args[0] in ("-v", "--version"):
        print(f"taskstore {__version__}")
        return 0
    try:
        cfg = build_config(args)
        loop_name, factory = loop_factory(cfg.event_loop)
    except ConfigError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=LOG_LEVELS[cfg.loglevel],
        format="%(asctime)s.%(msecs)03d %(levelname)s %(message)s",
        datefmt="%d %b %Y %H:%M:%S",
        stream=sys.stderr,
    )
    with asyncio.Runner(loop_factory=factory) as runner:
        try:
            return runner.run(_serve(cfg, loop_name))
        except ConfigError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            return 2


async def _serve(cfg: ServerConfig, loop_name: str) -> int:
    from taskstore.server.app import Server

    server = Server(cfg)
    server.manage_gc = True  # this process is ours: keep full GC pauses away (see app.py)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, server, sig)
    anon = "on" if cfg.anonymous else "off"
    report = server.load_report
    if report is not None:
        dropped = f", {report.dropped} past retention evicted" if report.dropped else ""
        print(
            f"DB loaded from append only file {server.aof.path if server.aof else ''}: "
            f"{report.tasks} tasks in {report.seconds:.3f} seconds{dropped}",
            flush=True,
        )
    console = f"; console on {server.console.url}" if server.console is not None else ""
    print(
        f"taskstore {__version__} ready on {cfg.bind}:{server.port} "
        f"(pid {os.getpid()}, {loop_name}, anonymous access {anon}){console}",
        flush=True,
    )
    await server.wait_stopped()
    logging.getLogger("taskstore").info("taskstore stopped")
    return 0


def _on_signal(server: Any, sig: signal.Signals) -> None:
    logging.getLogger("taskstore").info("received %s, shutting down", sig.name)
    server.request_shutdown()
