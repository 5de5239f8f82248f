"""taskstore.mcp.tasks (io.modelcontextprotocol/tasks on the MCP Python SDK 2.x), end to end:
the demo server (``python -m taskstore.mcp.demo``) in a subprocess, a taskstore in this
process, and the SDK 2.x's own client over Streamable HTTP (2026-07-28 framing).

Runs in the SDK 2.x environment (.venv-mcp2). With ``$TASKSTORE_MCP2_PAYLOADS`` set, every
CreateTaskResult and tasks/get result seen is appended there (JSON lines) for the main suite
to validate against the extension's schema (tests/client/test_mcp2_env.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

import anyio
import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import Field, TypeAdapter

from taskstore.functions import load
from taskstore.server.app import ServerThread

EXTENSION_ID = "io.modelcontextprotocol/tasks"
PAYLOADS_ENV = "TASKSTORE_MCP2_PAYLOADS"
TERMINAL = {"completed", "failed", "cancelled"}
_ANY = TypeAdapter(dict[str, Any])


# -- the requester side of the extension, as a test client needs it --------------------------


class CreateTaskResult(Result):
    """``Result & Task`` with ``resultType: "task"``: the answer to a task-augmented call."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None


async def _no_resolve(result: CreateTaskResult, ctx: ClaimContext) -> CallToolResult:
    raise AssertionError("these tests drive tasks themselves (session.call_tool allow_claimed)")


class TasksRequester(ClientExtension):
    """Declares the extension on every request and claims ``resultType: "task"``."""

    identifier = EXTENSION_ID

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=_no_resolve)]


class TaskIdParams(RequestParams):
    task_id: Any = Field(alias="taskId")


class UpdateParams(TaskIdParams):
    input_responses: Any = Field(alias="inputResponses")


class GetTask(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"


class UpdateTask(Request[UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"


class CancelTask(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"


class ListTasks(Request[RequestParams, Literal["tasks/list"]]):
    method: Literal["tasks/list"] = "tasks/list"


def _record(kind: str, payload: dict[str, Any]) -> None:
    path = os.environ.get(PAYLOADS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"kind": kind, "payload": payload}) + "\n")


class Tasks:
    """The requester's side of the extension over one SDK ``Client``."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.session = client.session

    async def call(self, tool: str, arguments: dict[str, Any]) -> CreateTaskResult:
        result = await self.session.call_tool(tool, arguments, allow_claimed=True)
        assert isinstance(result, CreateTaskResult), result
        _record(
            "CreateTaskResult",
            result.model_dump(by_alias=True, mode="json", exclude_unset=True),
        )
        return result

    async def get(self, task_id: Any) -> dict[str, Any]:
        got = await self.session.send_request(GetTask(params=TaskIdParams(taskId=task_id)), _ANY)
        _record("GetTaskResult", got)
        return got

    async def update(self, task_id: Any, responses: Any) -> dict[str, Any]:
        params = UpdateParams(taskId=task_id, inputResponses=responses)
        return await self.session.send_request(UpdateTask(params=params), _ANY)

    async def cancel(self, task_id: Any) -> dict[str, Any]:
        return await self.session.send_request(
            CancelTask(params=TaskIdParams(taskId=task_id)), _ANY
        )

    async def poll(
        self,
        task_id: str,
        until: Callable[[dict[str, Any]], bool],
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = await self.get(task_id)
            if until(task):
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"task never got there: {task}")
            await anyio.sleep(0.02)


def run(url: str, body: Callable[[Tasks], Awaitable[None]], *, declare: bool = True) -> None:
    """``body`` with a 2026-07-28 SDK client of the demo (declaring the extension or not)."""

    async def main() -> None:
        extensions = [TasksRequester()] if declare else []
        async with Client(url, mode="2026-07-28", extensions=extensions) as client:
            await body(Tasks(client))

    anyio.run(main)


def _text(result: dict[str, Any]) -> str:
    return "".join(c.get("text", "") for c in result["content"])


# -- servers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["taskstore", "redis"])
def taskstore_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Where the tasks live: a taskstore in this process (its own thread and loop), or a
    redis-server (Debian's package) with the taskstore Functions library loaded: the same
    demo, unchanged, on both (docs/production.md). Free loopback ports."""
    if request.param == "taskstore":
        with ServerThread(port=0) as srv:
            yield f"redis://127.0.0.1:{srv.port}"
        return
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.01)
        load(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def start_demo(taskstore: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m taskstore.mcp.demo --port 0``; its one startup line names its URL."""
    proc, url, _ = start_demo_line(taskstore)
    return proc, url


def start_demo_line(taskstore: str) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskstore.mcp.demo", "--port", "0", "--taskstore", taskstore],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/mcp)", line)
    if match is None:
        proc.kill()
        err = proc.communicate()[1]
        raise AssertionError(f"no startup line: {line!r} {err}")
    return proc, match.group(1), line


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture(scope="module")
def demo(taskstore_url: str) -> Iterator[str]:
    proc, url = start_demo(taskstore_url)
    try:
        yield url
    finally:
        stop(proc)
        assert proc.returncode is not None


# -- the tests --------------------------------------------------------------------------------


def test_startup_line(taskstore_url: str) -> None:
    """One line, naming where it serves and which taskstore it uses; then it serves."""
    proc, url, line = start_demo_line(taskstore_url)
    try:
        assert line == f"taskstore MCP demo on {url} (tasks in {taskstore_url})\n"
        run(url, lambda tasks: tasks.client.list_tools())  # type: ignore[arg-type,return-value]
    finally:
        stop(proc)
    assert proc.returncode is not None


def test_server_advertises_the_extension(demo: str) -> None:
    async def main() -> None:
        async with Client(demo, mode="auto") as client:
            capabilities = client.server_capabilities
            assert capabilities.extensions is not None
            assert EXTENSION_ID in capabilities.extensions
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"count_to", "ask_name", "fail_with"} <= tools

    anyio.run(main)


def test_call_without_the_extension_is_an_ordinary_call(demo: str) -> None:
    async def body(tasks: Tasks) -> None:
        result = await tasks.client.call_tool("count_to", {"n": 3, "delay_ms": 1})
        assert isinstance(result, CallToolResult)
        assert not result.is_error
        assert result.content[0].text == "counted to 3"  # type: ignore[union-attr]

    run(demo, body, declare=False)


def test_count_to_as_a_task(demo: str) -> None:
    async def body(tasks: Tasks) -> None:
        created = await tasks.call("count_to", {"n": 3, "delay_ms": 50})
        assert created.result_type == "task"
        assert created.status == "working"
        # created before the answer: tasks/get resolves at once
        first = await tasks.get(created.task_id)
        assert first["taskId"] == created.task_id
        assert first["resultType"] == "complete"
        seen: set[str] = set()

        def done(task: dict[str, Any]) -> bool:
            if task.get("statusMessage"):
                seen.add(task["statusMessage"])
            return task["status"] in TERMINAL

        final = await tasks.poll(created.task_id, done)
        assert final["status"] == "completed", final
        assert _text(final["result"]) == "counted to 3"
        assert final["result"].get("isError") is not True
        assert seen <= {f"counted {i} of 3" for i in range(1, 4)}, seen

    run(demo, body)


def test_ask_name_asks_for_input_and_continues(demo: str) -> None:
    async def body(tasks: Tasks) -> None:
        created = await tasks.call("ask_name", {})
        waiting = await tasks.poll(created.task_id, lambda t: t["status"] != "working")
        assert waiting["status"] == "input_required", waiting
        [(key, request)] = waiting["inputRequests"].items()
        assert request["method"] == "elicitation/create"
        assert request["params"]["message"] == "What is your name?"
        assert "name" in request["params"]["requestedSchema"]["properties"]
        ack = await tasks.update(
            created.task_id, {key: {"action": "accept", "content": {"name": "Ada"}}}
        )
        assert ack.get("resultType") == "complete"
        final = await tasks.poll(created.task_id, lambda t: t["status"] in TERMINAL)
        assert final["status"] == "completed", final
        assert _text(final["result"]) == "hello Ada"
        # the answered request is gone; answering it again changes nothing
        assert "inputRequests" not in final
        await tasks.update(created.task_id, {key: {"action": "accept", "content": {"name": "B"}}})
        assert _text((await tasks.get(created.task_id))["result"]) == "hello Ada"

    run(demo, body)


def test_fail_with_ends_failed_with_that_error(demo: str) -> None:
    async def body(tasks: Tasks) -> None:
        created = await tasks.call("fail_with", {"code": -32042, "message": "no luck"})
        final = await tasks.poll(created.task_id, lambda t: t["status"] in TERMINAL)
        assert final["status"] == "failed", final
        assert final["error"] == {"code": -32042, "message": "no luck"}
        assert "result" not in final

    run(demo, body)


def test_cancel_a_long_count(demo: str) -> None:
    async def body(tasks: Tasks) -> None:
        created = await tasks.call("count_to", {"n": 10_000, "delay_ms": 20})
        await tasks.poll(created.task_id, lambda t: bool(t.get("statusMessage")))
        ack = await tasks.cancel(created.task_id)
        assert ack.get("resultType") == "complete"
        final = await tasks.poll(created.task_id, lambda t: t["status"] in TERMINAL, timeout=10)
        assert final["status"] == "cancelled", final
        # the tool stopped: nothing changes any more
        await anyio.sleep(0.2)
        later = await tasks.get(created.task_id)
        assert (later["status"], later["lastUpdatedAt"]) == ("cancelled", final["lastUpdatedAt"])

    run(demo, body)


def test_cancel_while_waiting_for_input(demo: str) -> None:
    async def body(tasks: Tasks) -> None:
        created = await tasks.call("ask_name", {})
        await tasks.poll(created.task_id, lambda t: t["status"] == "input_required")
        await tasks.cancel(created.task_id)
        final = await tasks.poll(created.task_id, lambda t: t["status"] in TERMINAL, timeout=10)
        assert final["status"] == "cancelled", final

    run(demo, body)


def test_unknown_ids(demo: str) -> None:
    async def body(tasks: Tasks) -> None:
        # tasks/update and tasks/cancel acknowledge unknown ids (the spec); tasks/get refuses
        assert (await tasks.update("no-such-task", {"k": {"action": "cancel"}}))["resultType"]
        assert (await tasks.cancel("no-such-task"))["resultType"] == "complete"
        with pytest.raises(MCPError) as info:
            await tasks.get("no-such-task")
        assert info.value.code == -32602

    run(demo, body)


@pytest.mark.parametrize("task_id", [None, 42, ["x"]])
def test_task_id_must_be_a_string(demo: str, task_id: Any) -> None:
    async def body(tasks: Tasks) -> None:
        for call in (tasks.get, tasks.cancel):
            with pytest.raises(MCPError) as info:
                await call(task_id)
            assert info.value.code == -32602

    run(demo, body)


def test_removed_methods_are_not_found(demo: str) -> None:
    async def body(tasks: Tasks) -> None:
        with pytest.raises(MCPError) as info:
            await tasks.session.send_request(ListTasks(params=RequestParams()), _ANY)
        assert info.value.code == -32601

    run(demo, body)


def test_elicitation_outside_a_task_is_the_sdks_error(demo: str) -> None:
    """2026-07-28 forbids server-to-client requests: without the extension, ask_name's
    ctx.elicit fails as the SDK fails it (only a task can carry the question)."""

    async def body(tasks: Tasks) -> None:
        with pytest.raises(MCPError) as info:
            await tasks.client.call_tool("ask_name", {})
        assert info.value.code == -32600, info.value

    run(demo, body, declare=False)


@pytest.mark.parametrize("responses", [{"k": "yes"}, ["k"], None])
def test_update_with_malformed_responses_is_invalid_params(demo: str, responses: Any) -> None:
    async def body(tasks: Tasks) -> None:
        created = await tasks.call("ask_name", {})
        waiting = await tasks.poll(created.task_id, lambda t: t["status"] == "input_required")
        with pytest.raises(MCPError) as info:
            await tasks.update(created.task_id, responses)
        assert info.value.code == -32602
        assert (await tasks.get(created.task_id))["inputRequests"] == waiting["inputRequests"]
        await tasks.cancel(created.task_id)

    run(demo, body)
