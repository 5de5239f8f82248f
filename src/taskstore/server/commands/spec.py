"""The command table: what each command is called, how many arguments it takes, what it may
do before authentication or only as admin, and the documentation COMMAND DOCS serves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskstore.protocol import SimpleString

if TYPE_CHECKING:
    from taskstore.server.connection import Connection

Handler = Callable[["Connection", list[bytes]], Any]


class _Blocked:
    """Returned by a handler that parked its client (blocking commands)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BLOCKED"


BLOCKED = _Blocked()


class CommandError(Exception):
    """Raised by a handler: the text is the complete error reply (``ERR ...``)."""


def syntax_error() -> CommandError:
    return CommandError("ERR syntax error")


def not_integer() -> CommandError:
    return CommandError("ERR value is not an integer or out of range")


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument as COMMAND DOCS describes it (redis-cli builds its hints from these)."""

    name: str
    type: str = "string"  # string | integer | key | pattern | pure-token | oneof | block
    token: str | None = None
    optional: bool = False
    multiple: bool = False
    arguments: tuple[Arg, ...] = ()

    def docs(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.token is not None:
            d["token"] = self.token
        if self.type != "pure-token" and self.type not in ("oneof", "block"):
            d["display_text"] = self.name
        flags = []
        if self.optional:
            flags.append("optional")
        if self.multiple:
            flags.append("multiple")
        if flags:
            # status replies, as Redis sends them: redis-cli asserts on the type
            d["flags"] = [SimpleString(f) for f in flags]
        if self.arguments:
            d["arguments"] = [a.docs() for a in self.arguments]
        return d


@dataclass(slots=True)
class Command:
    name: str  # lower case, "client|setname" for a subcommand
    arity: int  # Redis convention: exact if positive, minimum if negative (name included)
    handler: Handler
    flags: tuple[str, ...] = ()
    group: str = "connection"
    summary: str = ""
    since: str = "1.0.0"
    complexity: str = "O(1)"
    arguments: tuple[Arg, ...] = ()
    admin: bool = False  # needs the admin permission
    noauth: bool = False  # allowed before authentication
    categories: tuple[str, ...] = ()
    no_multi: bool = False  # refused inside MULTI, as Redis refuses it
    subcommands: dict[str, Command] = field(default_factory=dict)
    # derived from arity once, for the dispatch loop: len(args) must be in this range
    min_args: int = 0
    max_args: int = 0

    def __post_init__(self) -> None:
        self.set_arity(self.arity)
        self.write = "write" in self.flags

    # changes tasks: refused while the append-only file cannot be written (MISCONF)
    write: bool = field(init=False, default=False)

    def set_arity(self, arity: int) -> None:
        self.arity = arity
        self.min_args = abs(arity)
        self.max_args = arity if arity > 0 else 1 << 30

    def info(self) -> list[Any]:
        """The COMMAND INFO entry (Redis 7 layout: no keys, so no key specs)."""
        return [
            self.name,
            self.arity,
            [SimpleString(f) for f in self.flags],
            0,
            0,
            0,
            [SimpleString("@" + c) for c in self.categories],
            [],
            [],
            [sub.info() for sub in self.subcommands.values()],
        ]

    def docs(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "summary": self.summary,
            "since": self.since,
            "group": self.group,
            "complexity": self.complexity,
        }
        if self.arguments:
            d["arguments"] = [a.docs() for a in self.arguments]
        if self.subcommands:
            d["subcommands"] = {name: sub.docs() for name, sub in self.subcommands.items()}
        return d


#: name (lower case, as bytes) -> Command
TABLE: dict[bytes, Command] = {}


def command(
    name: str,
    arity: int,
    *,
    flags: tuple[str, ...] = (),
    group: str = "connection",
    summary: str = "",
    since: str = "1.0.0",
    complexity: str = "O(1)",
    arguments: tuple[Arg, ...] = (),
    admin: bool = False,
    noauth: bool = False,
    categories: tuple[str, ...] = (),
    no_multi: bool = False,
    parent: Command | None = None,
) -> Callable[[Handler], Command]:
    """Register a command (or, with ``parent``, a subcommand) and return its table entry."""

    def register(handler: Handler) -> Command:
        full = f"{parent.name}|{name}" if parent else name
        cmd = Command(
            full,
            arity,
            handler,
            flags,
            group,
            summary,
            since,
            complexity,
            arguments,
            admin,
            noauth,
            categories,
            no_multi,
        )
        if parent is None:
            TABLE[name.encode()] = cmd
        else:
            parent.subcommands[full] = cmd
        return cmd

    return register


def container(
    name: str,
    *,
    group: str,
    summary: str,
    since: str = "1.0.0",
    noauth: bool = False,
    admin: bool = False,
) -> Command:
    """A command made of subcommands (CLIENT, CONFIG, COMMAND)."""

    def dispatch(conn: Connection, args: list[bytes]) -> Any:
        sub = cmd.subcommands.get(f"{name}|{args[1].decode('utf-8', 'replace').lower()}")
        if sub is None:
            raise CommandError(
                "ERR unknown subcommand '%.128s'. Try %s HELP."
                % (args[1].decode("utf-8", "replace"), name.upper())
            )
        if not sub.min_args <= len(args) <= sub.max_args:
            raise CommandError(f"ERR wrong number of arguments for '{sub.name}' command")
        conn.last_cmd = sub.name
        if sub.admin:
            conn.require_admin(sub.name)
        return sub.handler(conn, args)

    cmd = Command(
        name, -2, dispatch, ("loading", "stale"), group, summary, since, noauth=noauth, admin=admin
    )
    TABLE[name.encode()] = cmd
    return cmd


def help_reply(name: str, lines: list[str]) -> list[str]:
    head = f"{name.upper()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return [SimpleString(x) for x in [head, *lines, "HELP", "    Print this help."]]
