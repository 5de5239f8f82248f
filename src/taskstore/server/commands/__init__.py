"""The command table: every command's spec, family by family (docs/architecture.md,
Commands). Nothing registers itself: a command exists when it is listed here."""

from taskstore.server.commands import pubsub, server, session, tasks, transactions
from taskstore.server.commands.spec import BLOCKED, Arg, Command, CommandError, table

#: lower-case name (bytes) -> spec
TABLE: dict[bytes, Command] = table(
    session.COMMANDS,
    tasks.COMMANDS,
    pubsub.COMMANDS,
    transactions.COMMANDS,
    server.COMMANDS,
)

#: TABLE, plus each name in upper case: clients send one or the other, so the dispatch loop
#: finds a command without lower-casing its name first (other spellings fall back to that).
LOOKUP: dict[bytes, Command] = {**TABLE, **{name.upper(): cmd for name, cmd in TABLE.items()}}

__all__ = ["BLOCKED", "LOOKUP", "TABLE", "Arg", "Command", "CommandError"]
