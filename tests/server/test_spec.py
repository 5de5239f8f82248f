"""The grammar TASK commands are parsed by (commands/spec.py): made from the same `Arg`
trees COMMAND DOCS shows, so each rule here is a rule of the documented grammar."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskstore.server.commands import TABLE, tasks
from taskstore.server.commands.spec import Arg, CommandError, Grammar


def words(*w: str) -> list[bytes]:
    return [b"CMD", *(x.encode() for x in w)]


OPTS = Grammar(
    (
        Arg("id"),
        Arg("ttl", "integer", token="TTL", optional=True, value=int),
        Arg("any", "pure-token", token="ANY", optional=True),
        Arg("owner", token="OWNER", optional=True),
    ),
    default=bytes.decode,
)


def test_positionals_then_options_in_any_order_and_case() -> None:
    assert OPTS.slots == ["id", "ttl", "any", "owner"]
    assert OPTS.parse(words("t1")) == ["t1", None, None, None]
    assert OPTS.parse(words("t1", "owner", "o", "ANY", "ttl", "5")) == ["t1", 5, True, "o"]
    # an id may be any word, an option name included
    assert OPTS.parse(words("TTL", "TTL", "7")) == ["TTL", 7, None, None]


@pytest.mark.parametrize(
    "bad", [("t1", "TTL"), ("t1", "BOGUS"), ("t1", "ANY", "x"), ("t1", "OWNER")]
)
def test_unknown_words_and_options_without_a_value_are_syntax_errors(bad: tuple[str]) -> None:
    with pytest.raises(CommandError, match=r"^ERR syntax error$"):
        OPTS.parse(words(*bad))


def test_words_are_split_before_any_is_converted() -> None:
    # "x" is no integer, but the unknown option after it is reported first
    with pytest.raises(CommandError, match="syntax error"):
        OPTS.parse(words("t1", "TTL", "x", "BOGUS"))
    values = OPTS.split(words("t1", "TTL", "x"))
    assert values == [b"t1", b"x", None, None]  # unconverted words
    with pytest.raises(ValueError):
        OPTS.convert(values)


PAIRS = Grammar(
    (
        Arg("id"),
        Arg(
            "pair",
            "block",
            multiple=True,
            arguments=(Arg("key", value=bytes.decode), Arg("json")),
            incomplete="ERR syntax error: every key needs a JSON value",
        ),
        Arg("text", token="MESSAGE", optional=True),
    ),
    stops=frozenset({b"OWNER"}),
)


def test_a_repeated_block_runs_until_an_option_or_a_reserved_word() -> None:
    assert PAIRS.parse(words("t", "a", "1", "b", "2")) == [b"t", [("a", b"1"), ("b", b"2")], None]
    assert PAIRS.parse(words("t", "a", "1", "message", "m")) == [b"t", [("a", b"1")], b"m"]
    # none at all is the handler's to refuse (in its own words)
    assert PAIRS.parse(words("t", "MESSAGE", "m")) == [b"t", [], b"m"]
    with pytest.raises(CommandError, match="every key needs a JSON value"):
        PAIRS.parse(words("t", "a", "1", "b"))
    with pytest.raises(CommandError, match=r"^ERR syntax error$"):
        PAIRS.parse(words("t", "a", "1", "OWNER", "o"))  # reserved, and no option here


CHANGE = Grammar(
    (
        Arg("id"),
        Arg(
            "change",
            "oneof",
            arguments=(
                Arg(
                    "status-change",
                    "block",
                    arguments=(
                        Arg(
                            "status",
                            "oneof",
                            arguments=(
                                Arg("a", "pure-token", token="a"),
                                Arg("b", "pure-token", token="b"),
                            ),
                        ),
                        Arg("text", token="MESSAGE", optional=True, dest="message"),
                    ),
                ),
                Arg("text", token="MESSAGE", dest="message"),
            ),
        ),
    )
)


def test_a_oneof_of_a_block_and_an_option() -> None:
    assert CHANGE.slots == ["id", "status", "message"]
    assert CHANGE.parse(words("t", "A")) == [b"t", "a", None]
    assert CHANGE.parse(words("t", "b", "MESSAGE", "m")) == [b"t", "b", b"m"]
    assert CHANGE.parse(words("t", "MESSAGE", "m")) == [b"t", None, b"m"]
    with pytest.raises(CommandError, match="syntax error"):
        CHANGE.parse(words("t", "c"))  # not one of the documented tokens


def test_plain_requests_skip_the_parser_only_when_every_positional_is_one_word() -> None:
    words, converters, check = OPTS.plain()
    assert (words, len(converters), check) == (2, 1, -1)
    assert PAIRS.plain()[0] == -1  # a repeated block
    # TASK.UPDATE's shape: <id> [status], the status one word that must not be MESSAGE
    words, converters, check = CHANGE.plain()
    assert (words, check) == (3, 2)


def test_every_task_command_is_parsed_by_its_documented_arguments() -> None:
    """The spec COMMAND DOCS renders is the one the parser was made from: a TASK command's
    documented arguments end with OWNER, and its handler is the grammar's."""
    tasks = {name: cmd for name, cmd in TABLE.items() if name.startswith(b"task.")}
    assert len(tasks) == 20
    for name, cmd in tasks.items():
        if name == b"task.version":
            continue  # no OWNER: the connection's own setting
        assert cmd.arguments[-1].token == "OWNER", name
        # made by task_command from these arguments: its grammar is theirs
        assert cmd.grammar is not None, name
        assert cmd.handler.__module__ == "taskstore.server.commands.tasks", name
        documented = [a.docs() for a in cmd.arguments]
        assert [a.docs() for a in (*cmd.grammar.positional, *_options(cmd))] == documented


def _options(cmd: object) -> list[Arg]:
    """The top-level token arguments, in documented order."""
    return [a for a in cmd.arguments if a.token is not None]  # type: ignore[attr-defined]


class _Conn:
    """What a TASK command's parser asks of its connection."""

    def __init__(self, admin: bool) -> None:
        self.is_admin = admin

    def task_owner(self) -> str:
        return "me"

    def impersonate(self, owner: str) -> str:
        if owner == "nobody":
            raise CommandError("NOPERM User u has no permissions to act as another owner")
        return "as:" + owner


_VOCABULARY = [
    b"t1", b"x", b"working", b"Completed", b"60000", b"-1", b"NONE", b"{}", b"\xff", b"",
    b"nobody", b"someone", b"TTL", b"ttl", b"ID", b"POLLINTERVAL", b"MESSAGE", b"message",
    b"OWNER", b"owner", b"ANY", b"REQUEST", b"BLOCK", b"STATUS", b"CURSOR", b"LIMIT", b"BOGUS",
]  # fmt: skip


def _outcome(handler: object, conn: _Conn, words: list[bytes]) -> object:
    try:
        return handler(conn, words)  # type: ignore[operator]
    except Exception as e:  # the error is the outcome compared
        return (type(e).__name__, str(e))


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_parser_written_out_for_a_command_is_the_grammar(data: st.DataObject) -> None:
    """Each TASK command whose grammar is single words and options gets its parser written
    out as Python (tasks._specialized); on any words it must do what the generic parser
    (Grammar.split, then the owner, the conversions and the call) does."""
    specialized = {name: cmd for name, cmd in TABLE.items() if cmd.grammar is not None}
    name = data.draw(st.sampled_from(sorted(specialized)))
    cmd = specialized[name]
    grammar = cmd.grammar
    assert grammar is not None
    owner_slot = len(grammar.slots) - 1
    every_owner = name == b"task.cleanup"
    calls = lambda conn, *values: values  # noqa: E731  # the handler: what it was given
    written = tasks._specialized(name.decode(), grammar, calls, owner_slot, every_owner)
    if written is None:
        return  # repeated arguments: the generic parser is the only one
    generic = tasks._generic(grammar, calls, owner_slot, every_owner)
    words = [name.upper(), *data.draw(st.lists(st.sampled_from(_VOCABULARY), max_size=7))]
    conn = _Conn(admin=data.draw(st.booleans()))
    assert _outcome(written, conn, words) == _outcome(generic, conn, words), words
