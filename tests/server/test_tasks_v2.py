"""Second-generation tasks over the wire (MCP 2026-07-28, design.md §5b), with redis-py on
RESP2 and RESP3: input requests and answers, inline results and errors, cooperative
cancellation, the per-connection generation, and every error of the new commands.

Every 2026-07-28 task JSON the tests see is validated against the extension's own draft
schema (tests/schema_v2.py, data from modelcontextprotocol/experimental-ext-tasks).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import schema_v2

V1 = "2025-11-25"
V2 = "2026-07-28"
ELICIT = {
    "method": "elicitation/create",
    "params": {
        "message": "name?",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
}
SAMPLE = {"method": "sampling/createMessage", "params": {"messages": [], "maxTokens": 10}}


def j(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class V2Client:
    """redis-py with every 2026-07-28 task reply checked against the draft schema."""

    def __init__(self, url: str, protocol: int) -> None:
        self.r = redis.Redis.from_url(url, protocol=protocol, decode_responses=True)

    def call(self, *args: Any) -> Any:
        return self.r.execute_command(*args)

    def task(self, *args: Any) -> dict[str, Any]:
        """A command that replies a task: parsed and validated as a DetailedTask."""
        task = json.loads(self.call(*args))
        schema_v2.validate_detailed_task(task)
        return task

    def get(self, task_id: str) -> dict[str, Any]:
        return self.task("TASK.GET", task_id)

    def error(self, *args: Any) -> str:
        with pytest.raises(redis.ResponseError) as e:
            self.call(*args)
        return str(e.value)

    def inspect(self, task_id: str) -> dict[str, Any]:
        raw = self.call("TASK.INSPECT", task_id)
        if isinstance(raw, list):  # RESP2: a flat array
            raw = dict(zip(raw[::2], raw[1::2], strict=True))
        return raw


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def c(make_server, request: pytest.FixtureRequest) -> Iterator[V2Client]:
    srv = make_server(mcp_version=V2)
    client = V2Client(srv.url, request.param)
    yield client
    client.r.close()


def test_full_input_round_trip(c: V2Client) -> None:
    task = c.task("TASK.CREATE", "tools/call", "ID", "job-1", "TTL", 60000)
    assert task["status"] == "working" and task["ttlMs"] == 60000
    assert "ttl" not in task and "_meta" not in task and task["pollIntervalMs"] == 5000
    asked = c.task("TASK.ASK", "job-1", "name", j(ELICIT), "MESSAGE", "need a name")
    assert asked["status"] == "input_required"
    assert asked["statusMessage"] == "need a name"
    assert asked["inputRequests"] == {"name": ELICIT}
    assert c.get("job-1") == asked  # TASK.GET is the whole tasks/get payload
    assert c.call("TASK.ANSWER", "job-1", "name", j({"action": "accept", "content": {"n": 1}})) == 1
    back = c.get("job-1")
    assert back["status"] == "working" and "inputRequests" not in back
    assert "statusMessage" not in back  # a status change without MESSAGE clears it
    done = c.task("TASK.COMPLETE", "job-1", "completed", j({"content": [], "isError": False}))
    assert done["status"] == "completed"
    assert c.get("job-1")["result"] == {"content": [], "isError": False}
    assert json.loads(c.call("TASK.ANSWERS", "job-1")) == {
        "name": {"action": "accept", "content": {"n": 1}}
    }


def test_partial_answers_keep_the_task_waiting(c: V2Client) -> None:
    c.call("TASK.CREATE", "tools/call", "ID", "p")
    c.task("TASK.ASK", "p", "a", j(ELICIT), "b", j(SAMPLE))
    assert c.call("TASK.ANSWER", "p", "a", j({"action": "decline"})) == 1
    task = c.get("p")
    assert task["status"] == "input_required"
    assert task["inputRequests"] == {"b": SAMPLE}  # only the outstanding one
    # more asked while some are outstanding: the order is the asking order
    c.task("TASK.ASK", "p", "c", j(ELICIT))
    assert list(c.get("p")["inputRequests"]) == ["b", "c"]
    assert c.call("TASK.ANSWER", "p", "c", "{}", "b", j({"role": "assistant"})) == 2
    assert c.get("p")["status"] == "working"
    assert list(json.loads(c.call("TASK.ANSWERS", "p"))) == ["a", "c", "b"]


def test_answers_for_unknown_or_answered_keys_are_ignored(c: V2Client) -> None:
    c.call("TASK.CREATE", "tools/call", "ID", "i")
    c.task("TASK.ASK", "i", "k1", j(ELICIT), "k2", j(ELICIT))
    assert c.call("TASK.ANSWER", "i", "never-asked", "{}") == 0
    assert c.call("TASK.ANSWER", "i", "k1", j({"x": 1})) == 1
    assert c.call("TASK.ANSWER", "i", "k1", j({"x": 2})) == 0  # already answered
    assert json.loads(c.call("TASK.ANSWERS", "i")) == {"k1": {"x": 1}}
    # a duplicate key in one call counts once, the first answer wins
    assert c.call("TASK.ANSWER", "i", "k2", j({"y": 1}), "k2", j({"y": 2})) == 1
    assert json.loads(c.call("TASK.ANSWERS", "i"))["k2"] == {"y": 1}
    # terminal task: answers ignored, 0; unknown task: NOTFOUND (an MCP server acks anyway)
    c.task("TASK.CANCEL", "i")
    assert c.call("TASK.ANSWER", "i", "k9", "{}") == 0
    assert c.error("TASK.ANSWER", "nope", "k", "{}") == "NOTFOUND task not found: nope"


def test_keys_are_unique_over_the_task_life(c: V2Client) -> None:
    c.call("TASK.CREATE", "tools/call", "ID", "u")
    c.task("TASK.ASK", "u", "k", j(ELICIT))
    c.call("TASK.ANSWER", "u", "k", "{}")
    before = c.inspect("u")
    assert c.error("TASK.ASK", "u", "k", j(ELICIT)) == "EXISTS input request key already used: k"
    assert c.error("TASK.ASK", "u", "new", j(ELICIT), "k", j(ELICIT)).endswith(": k")
    assert c.inspect("u") == before  # nothing changed, not even the new key
    assert c.error("TASK.ASK", "u", "x", j(ELICIT), "x", j(ELICIT)).endswith(": x")
    assert c.inspect("u") == before
    assert sorted(before["issued_keys"]) == ["k"]


def test_cooperative_cancellation_wakes_waiters(c: V2Client, make_server) -> None:
    c.call("TASK.CREATE", "tools/call", "ID", "cc")
    c.task("TASK.ASK", "cc", "k", j(ELICIT))
    url = c.r.get_connection_kwargs()
    port = url["port"]
    woken: dict[str, Any] = {}

    def wait(kind: str, *args: Any) -> None:
        r = redis.Redis(port=port, decode_responses=True)
        r.execute_command("TASK.VERSION", V2)
        woken[kind] = r.execute_command(*args)
        r.close()

    threads = [
        threading.Thread(target=wait, args=("wait", "TASK.WAIT", "cc", "BLOCK", 10000)),
        threading.Thread(target=wait, args=("answers", "TASK.ANSWERS", "cc", "BLOCK", 10000)),
    ]
    for t in threads:
        t.start()
    _until(lambda: int(c.r.info("clients")["blocked_clients"]) == 2)
    requested = c.task("TASK.CANCEL", "cc", "REQUEST", "MESSAGE", "user pressed stop")
    assert requested["status"] == "input_required"  # the status does not change
    assert requested["statusMessage"] == "user pressed stop"
    for t in threads:
        t.join(10)
    assert json.loads(woken["wait"]) == requested
    assert json.loads(woken["answers"]) == {}
    assert c.inspect("cc")["cancel_requested_at"] is not None
    # a second request is a no-op, and so is one for a terminal task
    assert c.task("TASK.CANCEL", "cc", "REQUEST") == requested
    cancelled = c.task("TASK.CANCEL", "cc")
    assert cancelled["status"] == "cancelled"
    assert c.task("TASK.CANCEL", "cc", "REQUEST") == cancelled


def test_fail_puts_the_error_inline(c: V2Client) -> None:
    c.call("TASK.CREATE", "tools/call", "ID", "f")
    error = {"code": -32000, "message": "backend down", "data": {"retry": True}}
    failed = c.task("TASK.FAIL", "f", j(error), "MESSAGE", "gave up")
    assert failed["status"] == "failed" and failed["error"] == error
    assert failed["statusMessage"] == "gave up"
    # the first generation's TASK.RESULT answers {"error": …}
    c.call("TASK.VERSION", V1)
    assert json.loads(c.call("TASK.RESULT", "f")) == {"error": error}
    c.call("TASK.VERSION", V2)
    assert c.error("TASK.FAIL", "f", j(error)).startswith("INVALIDTRANSITION")
    # failed the first-generation way: an error object is made up from the message
    c.call("TASK.CREATE", "tools/call", "ID", "f1")
    old = c.task("TASK.COMPLETE", "f1", "failed", j({"content": []}), "MESSAGE", "it broke")
    assert old["error"] == {"code": -32603, "message": "it broke"}
    c.call("TASK.CREATE", "tools/call", "ID", "f2")
    c.call("TASK.UPDATE", "f2", "failed")
    assert c.get("f2")["error"] == {"code": -32603, "message": "Task failed"}


def test_list_items_are_plain_tasks(c: V2Client) -> None:
    c.call("TASK.CREATE", "tools/call", "ID", "l1")
    c.task("TASK.ASK", "l1", "k", j(ELICIT))
    c.call("TASK.CREATE", "tools/call", "ID", "l2")
    c.task("TASK.COMPLETE", "l2", "completed", j({"content": []}))
    page = json.loads(c.call("TASK.LIST"))
    assert [t["taskId"] for t in page["tasks"]] == ["l2", "l1"]
    for t in page["tasks"]:
        schema_v2.validate_task(t)
        assert not {"inputRequests", "result", "error", "ttl", "_meta"} & t.keys()


def test_the_generation_is_per_connection(c: V2Client, make_server) -> None:
    assert c.call("TASK.VERSION") == V2
    c.call("TASK.CREATE", "tools/call", "ID", "g")
    c.call("TASK.SETVARS", "g", j({"step": 2}))
    assert "ttlMs" in json.loads(c.call("TASK.GET", "g"))
    assert c.call("TASK.VERSION", V1) == "OK"
    first = json.loads(c.call("TASK.GET", "g"))
    assert first["ttl"] == 3600000 and first["_meta"] == {"step": 2} and "ttlMs" not in first
    assert c.error("TASK.VERSION", "2027-01-01") == (
        "unsupported MCP version '2027-01-01' (supported: 2025-11-25, 2026-07-28)"
    )
    assert c.call("TASK.VERSION") == V1  # unchanged by the error
    c.call("RESET")
    assert c.call("TASK.VERSION") == V2  # RESET: back to the server's setting
    # the setting, as every setting: CONFIG GET/SET (new connections), TOML, flag
    assert c.call("CONFIG", "GET", "mcp_version") in ({"mcp_version": V2}, ["mcp_version", V2])
    c.call("CONFIG", "SET", "mcp_version", V1)
    assert c.call("TASK.VERSION") == V2  # this connection keeps what it had
    fresh = redis.Redis(port=c.r.get_connection_kwargs()["port"], decode_responses=True)
    assert fresh.execute_command("TASK.VERSION") == V1
    fresh.close()
    err = c.error("CONFIG", "SET", "mcp_version", "1999")
    assert "mcp_version" in err and "unsupported MCP version" in err


def test_inspect_shows_the_whole_record(c: V2Client) -> None:
    c.call("TASK.CREATE", "tools/call", "ID", "in", "TTL", 60000)
    c.call("TASK.SETVARS", "in", j({"a": 1}))
    c.task("TASK.ASK", "in", "k1", j(ELICIT), "k2", j(SAMPLE))
    c.call("TASK.ANSWER", "in", "k1", j({"ok": True}))
    rec = c.inspect("in")
    assert json.loads(rec["task"]) == c.get("in")
    assert rec["owner"] == "local" and rec["method"] == "tools/call"
    assert json.loads(rec["variables"]) == {"a": 1}
    assert json.loads(rec["input_requests"]) == {"k2": SAMPLE}
    assert sorted(rec["issued_keys"]) == ["k1", "k2"]
    assert json.loads(rec["answers"]) == {"k1": {"ok": True}}
    assert rec["error"] is None and rec["cancel_requested_at"] is None
    assert rec["expires_at"].endswith("Z")


BAD_INPUT = [
    # (command args after the task id, expected error text)
    (["k", "[1]"], "ERR invalid JSON: request 'k' must be a JSON object"),
    (["k", "{nope"], "ERR invalid JSON: Expecting property name enclosed in double quotes"),
    (["k", j({"params": {}})], "must be a JSON object with a string method and an object params"),
    (["k", j({"method": 1, "params": {}})], "with a string method and an object params"),
    (["k", j({"method": "m", "params": []})], "with a string method and an object params"),
    (["k", j({"method": "m"})], "with a string method and an object params"),
    (["", j(ELICIT)], "ERR invalid input request key"),
    (["a b", j(ELICIT)], "ERR invalid input request key"),
    (["k" * 257, j(ELICIT)], "ERR invalid input request key"),
    (["k\x01", j(ELICIT)], "ERR invalid input request key"),
    (["k", j(ELICIT), "lonely"], "ERR syntax error: every key needs a JSON value"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUT)
def test_ask_bad_input_changes_nothing(c: V2Client, args: list[str], expected: str) -> None:
    c.call("TASK.CREATE", "tools/call", "ID", "b")
    c.task("TASK.ASK", "b", "first", j(ELICIT))
    before = c.inspect("b")
    with pytest.raises(redis.ResponseError) as e:
        c.call("TASK.ASK", "b", *args)
    assert expected.removeprefix("ERR ") in str(e.value)
    assert c.inspect("b") == before


def test_answer_fail_and_size_errors_change_nothing(make_server) -> None:
    srv = make_server(mcp_version=V2, max_input_bytes=300)
    c = V2Client(srv.url, 3)
    c.call("TASK.CREATE", "tools/call", "ID", "s")
    c.task("TASK.ASK", "s", "k", j(ELICIT))
    before = c.inspect("s")
    assert "response 'k' must be a JSON object" in c.error("TASK.ANSWER", "s", "k", "[]")
    assert "invalid JSON" in c.error("TASK.ANSWER", "s", "k", "{")
    assert "every key needs a JSON value" in c.error("TASK.ANSWER", "s", "k", "{}", "odd")
    assert "wrong number of arguments" in c.error("TASK.ANSWER", "s", "k")
    assert c.error("TASK.ANSWER", "s", "k", j({"x": "y" * 400})).startswith(
        "TOOLARGE response 'k' is"
    )
    big = {"method": "m", "params": {"p": "q" * 200}}
    assert c.error("TASK.ASK", "s", "k2", j(big), "k3", j(big)).startswith(
        "TOOLARGE input requests and answers are"
    )
    for bad in (
        "{}",
        j({"code": "1", "message": "m"}),
        j({"code": 1}),
        j({"code": True, "message": "m"}),
        "[]",
    ):
        assert "error" in c.error("TASK.FAIL", "s", bad)
    assert c.inspect("s") == before
    # ASK on a terminal task, and on an expired one
    c.task("TASK.COMPLETE", "s", "completed", "{}")
    assert c.error("TASK.ASK", "s", "z", j(ELICIT)) == (
        "INVALIDTRANSITION invalid transition from completed to input_required for task s"
    )
    c.call("TASK.CREATE", "tools/call", "ID", "e", "TTL", 1)
    time.sleep(0.01)
    assert c.error("TASK.ASK", "e", "z", j(ELICIT)) == "EXPIRED task expired: e"
    assert c.call("TASK.ANSWER", "e", "z", "{}") == 0
    assert c.error("TASK.CANCEL", "e", "REQUEST") == "EXPIRED task expired: e"
    c.r.close()


def test_other_clients_unaffected_by_errors(c: V2Client) -> None:
    other = redis.Redis(port=c.r.get_connection_kwargs()["port"], decode_responses=True)
    for _ in range(20):
        c.error("TASK.ASK", "nope", "k", "{")
        assert other.ping()
    other.close()


def test_pubsub_messages_reach_each_subscriber_in_its_generation(make_server) -> None:
    srv = make_server(mcp_version=V2)
    subs = {}
    for version in (V1, V2):
        r = redis.Redis.from_url(srv.url, decode_responses=True)
        r.execute_command("TASK.VERSION", version)
        ps = r.pubsub()
        ps.subscribe("tasks:local")
        assert ps.get_message(timeout=5)["type"] == "subscribe"
        subs[version] = (r, ps)
    c = V2Client(srv.url, 3)
    c.call("TASK.CREATE", "tools/call", "ID", "ps")
    c.task("TASK.ASK", "ps", "k", j(ELICIT))
    for version, (r, ps) in subs.items():
        created = json.loads(ps.get_message(timeout=5)["data"])
        asked = json.loads(ps.get_message(timeout=5)["data"])
        if version == V2:
            schema_v2.validate_detailed_task(asked)
            assert asked["inputRequests"] == {"k": ELICIT} and "ttlMs" in created
        else:
            assert "ttl" in created and "inputRequests" not in asked
        ps.close()
        r.close()
    c.r.close()


WORKER = r"""
import sys, time, redis
port, n = int(sys.argv[1]), int(sys.argv[2])
r = redis.Redis(port=port, decode_responses=True)
for i in range(n):
    task = sys.stdin.readline().strip()
    answers = r.execute_command("TASK.ANSWERS", task, "BLOCK", 0)
    print(time.time(), answers, flush=True)
"""


def test_a_worker_process_wakes_when_a_client_process_answers(make_server) -> None:
    srv = make_server(mcp_version=V2)
    c = V2Client(srv.url, 2)
    rounds = 20
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(srv.port), str(rounds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    latencies = []
    try:
        assert worker.stdin is not None and worker.stdout is not None
        for i in range(rounds):
            task = f"w{i}"
            c.call("TASK.CREATE", "tools/call", "ID", task)
            c.task("TASK.ASK", task, "k", j(ELICIT))
            worker.stdin.write(task + "\n")
            worker.stdin.flush()
            _until(lambda: int(c.r.info("clients")["blocked_clients"]) == 1)
            sent = time.time()  # this process is the answering client
            assert c.call("TASK.ANSWER", task, "k", '{"n":%d}' % i) == 1
            woke_at, answers = worker.stdout.readline().split(" ", 1)
            assert json.loads(answers) == {"k": {"n": i}}
            latencies.append((float(woke_at) - sent) * 1000)
    finally:
        worker.kill()
        worker.wait()
    print(
        f"\n  TASK.ANSWERS BLOCK 0 in a worker process woken by TASK.ANSWER from another "
        f"process, {rounds} round trips: p50 {statistics.median(latencies):.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )
    c.r.close()


def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def test_fail_after_a_stored_result_reads_the_error_in_both_generations(c: V2Client) -> None:
    c.call("TASK.CREATE", "tools/call", "ID", "fr")
    c.call("TASK.SETRESULT", "fr", j({"content": [], "isError": False}))
    error = {"code": -32000, "message": "boom"}
    assert c.task("TASK.FAIL", "fr", j(error))["error"] == error
    c.call("TASK.VERSION", V1)
    assert json.loads(c.call("TASK.RESULT", "fr")) == {"error": error}
    assert json.loads(c.call("TASK.RESULT", "fr", "ANY")) == {"error": error}
