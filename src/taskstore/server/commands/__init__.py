"""The command table. Importing this package registers every command family."""

from taskstore.server.commands import (  # noqa: F401
    connection,
    pubsub,
    server,
    tasks,
    transactions,
)
from taskstore.server.commands.base import BLOCKED, TABLE, Arg, Command, CommandError, command

__all__ = ["BLOCKED", "TABLE", "Arg", "Command", "CommandError", "command"]
