"""Property (hypothesis), over the wire: several users and impersonated owners issue random
TASK commands; no reply ever carries another owner's task, TASK.LIST never shows one, and the
reply for another owner's task id is byte-identical to the reply for an id that never existed.

TASKSTORE_LONG=1 runs many more examples.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawclient import RawClient, bulk, pack
from taskstore.server.app import ServerThread

USERS = [
    {"name": "alice", "password": "a"},
    {"name": "bob", "password": "b"},
    {"name": "mcp", "password": "m", "permissions": ["impersonate"]},
]
# (label, login, OWNER option) -> the owner each actor acts for
ACTORS = {
    "alice": (("alice", "a"), None),
    "bob": (("bob", "b"), None),
    "ext-1": (("mcp", "m"), "ext-1"),
    "ext-2": (("mcp", "m"), "ext-2"),
    "local": (None, None),
}
IDS = ["t1", "t2", "t3", "shared"]  # caller-chosen ids, deliberately shared between owners
COMMANDS = [
    "create",
    "get",
    "update",
    "setvars",
    "setresult",
    "complete",
    "cancel",
    "result",
    "del",
    "list",
]
LONG = os.environ.get("TASKSTORE_LONG") == "1"

op = st.tuples(
    st.sampled_from(sorted(ACTORS)),
    st.sampled_from(COMMANDS),
    st.sampled_from(IDS),
    st.sampled_from(["working", "input_required", "completed", "failed"]),
)


class Actor:
    def __init__(self, port: int, label: str) -> None:
        self.label = label
        login, self.owner_opt = ACTORS[label]
        self.c = RawClient(port)
        if login:
            assert self.c.call("AUTH", *login) == b"OK"

    def raw(self, *args: str) -> bytes:
        """Send one command and return the raw reply bytes."""
        extra = ("OWNER", self.owner_opt) if self.owner_opt else ()
        self.c.send(pack(*args, *extra))
        reply = self.c.reply()
        # re-encode exactly what came back: a bulk or an error line is all TASK commands send
        if isinstance(reply, bytes):
            return bulk(reply)
        if isinstance(reply, int):
            return b":%d\r\n" % reply
        return b"-%s\r\n" % str(reply).encode()


def command_args(cmd: str, tid: str, status: str, owner: str) -> tuple[str, ...]:
    mark = json.dumps({"owner": owner})
    return {
        "create": ("TASK.CREATE", "tools/call", "ID", tid),
        "get": ("TASK.GET", tid),
        "update": ("TASK.UPDATE", tid, status),
        "setvars": ("TASK.SETVARS", tid, mark),
        "setresult": ("TASK.SETRESULT", tid, mark),
        "complete": ("TASK.COMPLETE", tid, "completed", mark),
        "cancel": ("TASK.CANCEL", tid),
        "result": ("TASK.RESULT", tid),
        "del": ("TASK.DEL", tid),
        "list": ("TASK.LIST", "LIMIT", "100"),
    }[cmd]


def check_reply(owner: str, reply: bytes, mine: set[str]) -> None:
    """Nothing in a reply may belong to another owner."""
    if not reply.startswith(b"$") or reply == b"$2\r\nOK\r\n":  # +OK comes back as b"OK"
        return
    body = json.loads(reply.split(b"\r\n", 1)[1][:-2])
    tasks = body["tasks"] if isinstance(body, dict) and "tasks" in body else [body]
    for t in tasks:
        if isinstance(t, dict) and "taskId" in t:
            assert t["taskId"] in mine, f"{owner} saw a task it does not hold: {t}"
            meta = t.get("_meta")
            if meta:
                assert meta == {"owner": owner}, f"{owner} saw {meta}"
        elif isinstance(t, dict) and "owner" in t:  # a result
            assert t == {"owner": owner}, f"{owner} read another owner's result {t}"


@settings(
    max_examples=1000 if LONG else 100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(op, min_size=5, max_size=120 if LONG else 60))
def test_owners_never_see_each_other(ops) -> None:
    first = "2025-11-25"  # the first MCP task generation's JSON
    with (
        ServerThread(port=0, users=USERS, mcp_version=first) as srv,
        ServerThread(port=0, users=USERS, mcp_version=first) as empty,
    ):
        actors = {label: Actor(srv.port, label) for label in ACTORS}
        witnesses = {label: Actor(empty.port, label) for label in ACTORS}
        held: dict[str, set[str]] = {label: set() for label in ACTORS}
        try:
            for label, cmd, tid, status in ops:
                actor = actors[label]
                args = command_args(cmd, tid, status, label)
                was_mine = tid in held[label]
                reply = actor.raw(*args)
                if cmd == "create" and reply.startswith(b"$"):
                    held[label].add(tid)
                if cmd == "del" and reply == b":1\r\n":
                    held[label].discard(tid)
                check_reply(label, reply, held[label])
                foreign = any(tid in ids for other, ids in held.items() if other != label)
                if cmd not in ("create", "list") and not was_mine and foreign:
                    # another owner holds this id: the answer must be the never-existed answer
                    assert reply == witnesses[label].raw(*args), (label, cmd, tid)
            for label, actor in actors.items():
                listed = json.loads(
                    actor.raw("TASK.LIST", "LIMIT", "1000").split(b"\r\n", 1)[1][:-2]
                )
                assert {t["taskId"] for t in listed["tasks"]} == held[label], label
        finally:
            for a in (*actors.values(), *witnesses.values()):
                a.c.close()
