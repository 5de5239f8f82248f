"""The command table. Importing this package registers every command family."""

from taskstore.server.commands import (  # noqa: F401
    pubsub,
    server,
    session,
    tasks,
    transactions,
)
from taskstore.server.commands.base import BLOCKED, TABLE, Arg, Command, CommandError, command

#: TABLE, plus each name in upper case: clients send one or the other, so the dispatch loop
#: finds a command without lower-casing its name first (other spellings fall back to that).
LOOKUP: dict[bytes, Command] = {**TABLE, **{name.upper(): cmd for name, cmd in TABLE.items()}}

__all__ = ["BLOCKED", "LOOKUP", "TABLE", "Arg", "Command", "CommandError", "command"]
