"""The command table. Importing this package registers every command family."""

from taskstore.server.commands import connection, server, tasks, transactions  # noqa: F401
from taskstore.server.commands.base import BLOCKED, TABLE, Arg, Command, CommandError, command

__all__ = ["BLOCKED", "TABLE", "Arg", "Command", "CommandError", "command"]
