"""Every TASK command's documented grammar (what COMMAND DOCS tells redis-cli and client
generators) and its parser agree.

From each command's COMMAND DOCS argument tree, as the server reports it, this builds every
invocation the grammar allows (each optional argument present or absent, each ``oneof``
alternative, a ``multiple`` block once and twice, token options in the documented order and
reversed) and checks the server parses each of them: the reply may be any error of meaning
(NOTFOUND, INVALIDTRANSITION, invalid JSON, …) but never a syntax or arity error. Then it checks
invocations the grammar does not allow (an unknown token added, a token option without its
value, a required argument left out) get one. A change to a parser that the documentation does
not follow, or the other way round, fails here.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterable, Iterator
from typing import Any

import hiredis
import pytest

from taskstore.server.app import Server, ServerThread

SYNTAX = ("ERR syntax error", "ERR wrong number of arguments")

# A value for each argument name the TASK commands document (names, not types, decide: an
# ``id`` must name an existing task, a ``json`` must be JSON, and so on).
VALUES: dict[str, str] = {
    "method": "tools/call",
    "ttl": "60000",
    "poll-interval": "100",
    "json": "{}",
    "json-object": '{"k":1}',
    "error-json": '{"code":-32000,"message":"boom"}',
    "request-json": '{"method":"elicitation/create","params":{}}',
    "response-json": '{"action":"accept"}',
    "key": "k1",
    "text": "a message",
    "owner": "someone",
    "timeout": "1",  # ms: blocking forms return at once
    "status": "working",
    "cursor": "not-a-cursor",
    "count": "5",
    "worker": "w1",
    "ms": "1000",
}


#: The reply of a command that blocked (TASK.WAIT without BLOCK waits for ever): it parsed.
BLOCKED = object()


class Wire:
    """A RESP2 client that returns error replies as values (hiredis parses); a command that
    blocks gives :data:`BLOCKED`, and the connection is opened again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connect()

    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        self.reader = hiredis.Reader()
        assert self.call("AUTH", "svc", "pw") == b"OK"

    def call(self, *args: str) -> Any:
        out = b"*%d\r\n" % len(args)
        for a in args:
            data = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(out)
        try:
            while (reply := self.reader.gets()) is False:
                self.reader.feed(self.sock.recv(65536))
        except TimeoutError:
            self.close()
            self.connect()
            return BLOCKED
        return reply

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    users = [{"name": "svc", "password": "pw", "permissions": ["impersonate", "admin"]}]
    with ServerThread(port=0, users=users, max_tasks_per_owner=0) as srv:
        yield srv


@pytest.fixture
def wire(server: Server) -> Iterator[Wire]:
    w = Wire(server.port)
    yield w
    w.close()


def _docs(wire: Wire) -> dict[str, dict[str, Any]]:
    """COMMAND DOCS as the server sends it (RESP2: flat key/value arrays)."""
    raw = wire.call("COMMAND", "DOCS")
    return {raw[i].decode(): _as_dict(raw[i + 1]) for i in range(0, len(raw), 2)}


def _as_dict(flat: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(flat), 2):
        key = flat[i].decode()
        value = flat[i + 1]
        if key == "arguments":
            value = [_as_dict(a) for a in value]
        elif key == "flags":
            value = [f.decode() for f in value]
        elif isinstance(value, bytes):
            value = value.decode()
        out[key] = value
    return out


def _forms(arg: dict[str, Any]) -> list[list[str]]:
    """Every way to write one argument (without regard to ``optional``)."""
    kind = arg["type"]
    token = [arg["token"]] if "token" in arg else []
    if kind == "pure-token":
        return [token]
    if kind == "oneof":
        return [form for child in arg["arguments"] for form in _forms(child)]
    if kind == "block":
        once = [token + seq for seq in _sequences(arg["arguments"])]
        if "multiple" in arg.get("flags", []):
            twice = [a + b for a, b in zip(once, reversed(once), strict=True)]
            return once + twice
        return once
    value = VALUES[arg["name"]]
    return [[*token, value]]


def _join(parts: Iterable[list[str]]) -> list[str]:
    return list(itertools.chain.from_iterable(parts))


def _sequences(args: list[dict[str, Any]]) -> list[list[str]]:
    """Every invocation of an argument list: each optional one present or absent."""
    choices: list[list[list[str]]] = []
    for arg in args:
        forms = _forms(arg)
        choices.append(([[]] if "optional" in arg.get("flags", []) else []) + forms)
    return [_join(combo) for combo in itertools.product(*choices)]


def _reordered(args: list[dict[str, Any]]) -> list[list[str]]:
    """The invocations with every optional token option present, those options reversed
    (taskstore, like Redis's own commands with options, takes them in any order)."""
    fixed = [a for a in args if not ("optional" in a.get("flags", []) and "token" in a)]
    options = [a for a in args if "optional" in a.get("flags", []) and "token" in a]
    if len(options) < 2:
        return []
    out = []
    for head in _sequences(fixed):
        tail = _join(_forms(a)[0] for a in reversed(options))
        out.append(head + tail)
    return out


def _is_syntax_error(reply: Any) -> bool:
    return isinstance(reply, hiredis.ReplyError) and str(reply).startswith(SYNTAX)


def _run(wire: Wire, name: str, invocation: list[str]) -> Any:
    """One invocation against a fresh task: ``id`` arguments name it."""
    created = wire.call("TASK.CREATE", "tools/call")
    task_id = created.decode().split('"taskId":"')[1].split('"')[0]
    args = [task_id if a == "<id>" else a for a in invocation]
    reply = wire.call(name, *args)
    wire.call("TASK.VERSION", "2026-07-28")  # TASK.VERSION may have changed it
    return reply


def _task_commands(wire: Wire) -> dict[str, dict[str, Any]]:
    docs = _docs(wire)
    tasks = {name: doc for name, doc in docs.items() if name.startswith("task.")}
    assert len(tasks) == 20, sorted(tasks)
    return tasks


def test_every_documented_form_parses(wire: Wire) -> None:
    VALUES["id"] = "<id>"
    checked = 0
    for name, doc in sorted(_task_commands(wire).items()):
        args = doc.get("arguments", [])
        for invocation in _sequences(args) + _reordered(args):
            reply = _run(wire, name, invocation)
            assert not _is_syntax_error(reply), (name, invocation, reply)
            checked += 1
    assert checked >= 128  # the forms of 20 commands


def test_forms_outside_the_grammar_are_refused(wire: Wire) -> None:
    VALUES["id"] = "<id>"
    checked = 0
    for name, doc in sorted(_task_commands(wire).items()):
        args = doc.get("arguments", [])
        fullest = max(_sequences(args), key=len)
        # an unknown word where an option could be
        bad = [[*fullest, "BOGUS"], [*fullest, "BOGUS", "value"]]
        # a token option without its value
        for arg in args:
            if "token" in arg and arg["type"] not in ("pure-token", "oneof", "block"):
                bad.append([*min(_sequences(args), key=len), arg["token"]])
        # a required argument left out (documented arity too)
        required = [a for a in args if "optional" not in a.get("flags", [])]
        if required:
            bad.append(_join(_forms(a)[0] for a in required[:-1]))
        for invocation in bad:
            if name == "task.version" and invocation and invocation[0] == "BOGUS":
                continue  # TASK.VERSION's one argument is a version: see below
            reply = _run(wire, name, invocation)
            assert _is_syntax_error(reply), (name, invocation, reply)
            checked += 1
    assert checked > 60
    # TASK.VERSION takes one word, refused with its own text (not one of the listed versions)
    reply = wire.call("TASK.VERSION", "BOGUS")
    assert str(reply).startswith("ERR unsupported MCP version")
