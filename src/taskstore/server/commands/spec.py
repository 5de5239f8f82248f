"""Command specs: one declaration per command gives its name, arity, flags, and the arguments
COMMAND DOCS shows; for TASK commands the same arguments are also the parser (``Grammar``)
that turns the words a client sent into the values its handler takes, so the documented
grammar and what the server accepts cannot drift apart (docs/architecture.md, Commands)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskstore.protocol import SimpleString

if TYPE_CHECKING:
    from taskstore.server.connection import Connection

#: What the dispatcher calls: the connection and the words of the request, name first.
Handler = Callable[["Connection", list[bytes]], Any]
#: Turns one word into the value a handler takes; raises the error reply for a bad word.
Word = Callable[[bytes], Any]


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
    """One argument: what COMMAND DOCS says of it (redis-cli builds its hints from that) and,
    for commands parsed by their grammar, how its word becomes a value.

    ``value`` converts the word (raising the command's error for a bad one); ``dest`` names
    the handler parameter it fills (default: ``name`` with dashes as underscores; two
    arguments may share one, as TASK.UPDATE's two ways to give ``MESSAGE``); ``incomplete`` is
    the error when a repeated block runs out of words half way.
    """

    name: str
    type: str = "string"  # string | integer | key | pattern | pure-token | oneof | block
    token: str | None = None
    optional: bool = False
    multiple: bool = False
    arguments: tuple[Arg, ...] = ()
    value: Word | None = None
    dest: str | None = None
    incomplete: str = "ERR syntax error"

    @property
    def slot_name(self) -> str:
        return self.dest or self.name.replace("-", "_")

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


class Grammar:
    """A parser made from a command's documented arguments.

    The shape every TASK command has: positional arguments first (words; a ``oneof`` of
    tokens; a ``block``, possibly repeated), then options (``TOKEN value`` or a bare
    ``TOKEN``) in any order, as Redis takes its own commands' options. An option token where
    an optional positional could stand ends the positionals. Each argument fills one slot,
    named by ``Arg.slot_name``; ``parse`` returns the slots in order of first appearance:
    ``None`` for an absent argument, ``True`` for a present bare token, a list of tuples for
    a repeated block, else the word as ``Arg.value`` (or ``default``) converted it.

    Words are split first and converted after, in slot order, so a syntax error wins over a
    bad value; ``parse`` can leave the conversion to ``convert`` (TASK commands resolve the
    caller's owner in between).
    """

    __slots__ = (
        "converters",
        "ends",
        "lead",
        "options",
        "positional",
        "slots",
        "steps",
        "tokens",
    )

    def __init__(
        self,
        arguments: tuple[Arg, ...],
        default: Word | None = None,
        stops: frozenset[bytes] = frozenset(),
    ) -> None:
        """``default`` converts words whose argument names no ``value``; ``stops`` are words
        that end repeated positionals besides the option tokens (reserved words)."""
        self.slots: list[str] = []
        self.positional: list[Arg] = []
        #: TOKEN -> (slot, whether a value follows the token)
        self.options: dict[bytes, tuple[int, bool]] = {}
        converters: dict[int, Word] = {}
        for arg in arguments:
            if arg.token is None:
                self.positional.append(arg)
            self._collect(arg, converters, default)
        self.tokens = frozenset(self.options)
        self.ends = self.tokens | stops
        self.converters = sorted(converters.items())
        self.steps = self._compile(self.positional)
        steps = self.steps
        required_words = all(kind == _WORD and not opt for kind, _, opt, _ in steps)
        in_order = [slot for _, slot, _, _ in steps] == list(range(len(steps)))
        self.lead = len(steps) if required_words and in_order else 0

    def plain(self) -> tuple[int, list[Word], int]:
        """The form that skips the parser: every positional argument one word, in the first
        slots, no option. Returns how many words it has (name included; -1 when the grammar
        has no such form), their converters, and the index of the one optional word that
        must not be an option name (-1 for none)."""
        steps = self.steps
        if any(kind != _WORD for kind, _, _, _ in steps):
            return -1, [], -1
        if [slot for _, slot, _, _ in steps] != list(range(len(steps))):
            return -1, [], -1
        optional = [k + 1 for k, (_, _, opt, _) in enumerate(steps) if opt]
        if len(optional) > 1:
            return -1, [], -1
        found = dict(self.converters)
        converters = [found.get(slot, bytes) for slot in range(len(steps))]
        return 1 + len(steps), converters, optional[0] if optional else -1

    def _slot(self, arg: Arg) -> int:
        name = arg.slot_name
        if name not in self.slots:
            self.slots.append(name)
        return self.slots.index(name)

    def _collect(self, arg: Arg, converters: dict[int, Word], default: Word | None) -> None:
        """Give ``arg`` (and what it holds) a slot; register every option token."""
        if arg.token is not None:
            if arg.type == "block":
                raise TypeError(f"{arg.name}: a block option is not part of this grammar")
            self.options[arg.token.upper().encode()] = (self._slot(arg), arg.type != "pure-token")
            if arg.type != "pure-token":
                self._convert(arg, converters, default)
            return
        if arg.type == "oneof" and not _tokens_only(arg):
            for alternative in arg.arguments:
                self._collect(alternative, converters, default)
            return
        if arg.type == "block":
            if arg.multiple:
                self._slot(arg)  # one slot: the list of tuples
                for part in arg.arguments:
                    if part.token is not None or part.type in ("oneof", "block"):
                        raise TypeError(f"{arg.name}: only plain words repeat in this grammar")
            else:
                for part in arg.arguments:
                    self._collect(part, converters, default)
            return
        self._convert(arg, converters, default)

    def _convert(self, arg: Arg, converters: dict[int, Word], default: Word | None) -> None:
        slot = self._slot(arg)
        word = arg.value or (_token_word(arg) if arg.type == "oneof" else default)
        if word is not None and not arg.multiple:
            converters[slot] = word

    def parse(self, words: list[bytes]) -> list[Any]:
        """The slots of ``words`` (name first, as the client sent them), converted."""
        values = self.split(words)
        self.convert(values)
        return values

    def split(self, words: list[bytes]) -> list[Any]:
        """The slots of ``words`` as words, not converted yet (a syntax error first)."""
        values: list[Any] = [None] * len(self.slots)
        lead = self.lead
        if lead:  # the positionals are that many required words, in the first slots
            i = lead + 1
            if i > len(words):
                raise syntax_error()
            values[:lead] = words[1:i]
        else:
            i = self._run(self.steps, words, 1, values)
        n = len(words)
        options = self.options
        while i < n:
            found = options.get(words[i].upper())
            if found is None:
                raise syntax_error()
            slot, takes_value = found
            if not takes_value:
                values[slot] = True
                i += 1
            elif i + 1 < n:
                values[slot] = words[i + 1]
                i += 2
            else:
                raise syntax_error()
        return values

    def convert(self, values: list[Any]) -> None:
        for slot, word in self.converters:
            raw = values[slot]
            if raw is not None:
                values[slot] = word(raw)

    def _compile(self, args: Iterable[Arg]) -> list[_Step]:
        """The positional arguments as steps the parser runs (slots looked up once)."""
        steps: list[_Step] = []
        for arg in args:
            if arg.token is not None:
                continue  # an option: anywhere after the positionals
            if arg.type == "block" and arg.multiple:
                converters = tuple(part.value for part in arg.arguments)
                extra: Any = (len(arg.arguments), converters, arg.incomplete)
                steps.append((_REPEAT, self.slots.index(arg.slot_name), arg.optional, extra))
            elif arg.type == "block":
                steps.append(_group(arg.optional, self._compile(arg.arguments)))
            elif arg.type == "oneof" and not _tokens_only(arg):
                # alternatives led by a token are options; the word starts the other one,
                # unless it is an option token (then this argument is absent: the handler
                # says what is missing)
                steps.append(_group(True, self._compile(arg.arguments)))
            elif arg.multiple:
                steps.append((_MANY, self.slots.index(arg.slot_name), arg.optional, None))
            else:
                steps.append((_WORD, self.slots.index(arg.slot_name), arg.optional, None))
        return steps

    def _run(self, steps: list[_Step], words: list[bytes], i: int, out: list[Any]) -> int:
        n = len(words)
        ends = self.ends
        for kind, slot, optional, extra in steps:
            here = i < n and (not optional or words[i].upper() not in ends)
            if kind == _WORD:
                if here:
                    out[slot] = words[i]
                    i += 1
                elif not optional:
                    raise syntax_error()
            elif kind == _GROUP:
                if here:
                    i = self._run(extra, words, i, out)
            elif kind == _REPEAT:
                i = self._repeated(slot, extra, words, i, out)
            else:  # _MANY
                taken: list[bytes] = []
                while i < n and (not taken or words[i].upper() not in ends):
                    taken.append(words[i])
                    i += 1
                out[slot] = taken or None
        return i

    def _repeated(
        self,
        slot: int,
        extra: tuple[int, tuple[Word | None, ...], str],
        words: list[bytes],
        i: int,
        out: list[Any],
    ) -> int:
        """A block of plain words as many times as it stands before the options; none at
        all is left to the handler to refuse, in its own words."""
        size, converters, incomplete = extra
        groups: list[tuple[Any, ...]] = []
        n = len(words)
        ends = self.ends
        while i < n and words[i].upper() not in ends:
            if i + size > n:
                raise CommandError(incomplete)
            group = words[i : i + size]
            groups.append(
                tuple(w if c is None else c(w) for c, w in zip(converters, group, strict=True))
            )
            i += size
        out[slot] = groups
        return i


# A compiled positional argument: (kind, slot, optional, extra).
_Step = tuple[int, int, bool, Any]
_WORD, _GROUP, _REPEAT, _MANY = range(4)
#: the kind of a step that is one word (for parsers written out per command)
WORD_STEP = _WORD


def _group(optional: bool, steps: list[_Step]) -> _Step:
    """Steps taken together, or none of them; a group of one word is that word."""
    if len(steps) == 1 and steps[0][0] == _WORD:
        _, slot, inner_optional, _ = steps[0]
        return (_WORD, slot, optional or inner_optional, None)
    return (_GROUP, -1, optional, steps)


def _tokens_only(arg: Arg) -> bool:
    return all(a.type == "pure-token" for a in arg.arguments)


def _token_word(arg: Arg) -> Word:
    """A ``oneof`` of tokens with no converter of its own: the token, as documented."""
    known = {a.token.upper().encode(): a.token for a in arg.arguments if a.token is not None}

    def word(raw: bytes) -> str:
        token = known.get(raw.upper())
        if token is None:
            raise syntax_error()
        return token

    return word


@dataclass(slots=True)
class Command:
    """One command's spec; the table entry the dispatcher runs."""

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
    #: the parser made from ``arguments`` (TASK commands), for introspection and tests
    grammar: Grammar | None = None
    # derived from arity once, for the dispatch loop: len(args) must be in this range
    min_args: int = 0
    max_args: int = 0
    # changes tasks: refused while the append-only file cannot be written (MISCONF)
    write: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.set_arity(self.arity)
        self.write = "write" in self.flags

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
) -> Callable[[Handler], Command]:
    """The spec of a command whose handler takes the request's words (``name`` is the
    subcommand's own name when it goes into a ``container``)."""

    def spec(handler: Handler) -> Command:
        return Command(
            name,
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

    return spec


def container(
    name: str,
    subcommands: Iterable[Command],
    *,
    group: str,
    summary: str,
    since: str = "1.0.0",
    noauth: bool = False,
    admin: bool = False,
    arity: int = -2,
    bare: Handler | None = None,
    help: list[str] | None = None,
) -> Command:
    """A command made of subcommands (CLIENT, CONFIG, COMMAND); ``bare`` answers the command
    without a subcommand (COMMAND alone), where there is one; ``help`` (two lines per
    subcommand) becomes its HELP subcommand, in Redis's layout."""

    def dispatch(conn: Connection, args: list[bytes]) -> Any:
        if len(args) == 1 and bare is not None:
            return bare(conn, args)
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
        name,
        arity,
        dispatch,
        ("loading", "stale"),
        group,
        summary,
        since,
        noauth=noauth,
        admin=admin,
    )
    if help is not None:
        lines = help_reply(name, help)
        subcommands = (
            *subcommands,
            Command(
                "help",
                2,
                lambda conn, args: lines,
                summary="Returns helpful text about the different subcommands.",
                since="5.0.0",
            ),
        )
    for sub in subcommands:
        sub.name = f"{name}|{sub.name}"
        cmd.subcommands[sub.name] = sub
    return cmd


def table(*families: Iterable[Command]) -> dict[bytes, Command]:
    """The command table: lower-case name (bytes) -> spec. A name given twice is a bug."""
    out: dict[bytes, Command] = {}
    for family in families:
        for cmd in family:
            key = cmd.name.encode()
            if key in out:
                raise ValueError(f"command {cmd.name} is declared twice")
            out[key] = cmd
    return out


def help_reply(name: str, lines: list[str]) -> list[str]:
    head = f"{name.upper()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return [SimpleString(x) for x in [head, *lines, "HELP", "    Print this help."]]
