"""The browser console (docs/console.md): an HTTP page on the server's own event loop that
shows one owner's tasks live, behind the same identities as the Redis protocol.

Server-side only; the store knows nothing of it. Nothing here imports aiohttp until the
console is turned on (``console_port``): :func:`open_console` is the one way in, and it turns
a missing aiohttp into the one-line :class:`~taskstore.server.config.ConfigError` the CLI
prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskstore.server.config import ConfigError

if TYPE_CHECKING:
    from taskstore.console.web import Console
    from taskstore.server.app import Server

__all__ = ["MISSING_AIOHTTP", "open_console"]

#: What the CLI and CONFIG SET say when the console is wanted but aiohttp is not installed.
MISSING_AIOHTTP = (
    "console_port: the console needs aiohttp, which is not installed: "
    "pip install 'taskstore[console]'"
)


def open_console(server: Server, port: int) -> Console:
    """Bind the console's listening sockets now (errors are ``ConfigError``); serving starts
    with ``await console.serve()``."""
    try:
        import aiohttp.web  # noqa: F401  (only to tell a missing install apart)
    except ImportError:
        raise ConfigError(MISSING_AIOHTTP) from None
    from taskstore.console.web import Console

    return Console(server, port)
