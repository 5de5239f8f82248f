"""taskstore.mcp.tasks: bad input and owner isolation (issue 13, "Bad input"), for real.

A small MCPServer with bearer-token auth (a static ``TokenVerifier``: ``alice-token`` and
``bob-token`` are two principals of one OAuth client and issuer) and a ``TasksExtension`` whose
taskstore user ``svc`` has the ``impersonate`` permission, served over Streamable HTTP (uvicorn
in a thread of this process) and driven with the SDK 2.x client (2026-07-28 framing). What
taskstore holds is checked directly with redis-py (TASK.INSPECT/TASK.GET with OWNER) before and
after each bad request: nothing changes.

The taskstore here has ``max_input_bytes = 4096``, so "huge" ``inputResponses`` are a few KiB.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx2
import pytest
import redis
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, Request
from pydantic import BaseModel
from tests.mcp2.test_extension import (
    _ANY,
    TERMINAL,
    TaskIdParams,
    Tasks,
    TasksRequester,
    UpdateParams,
    UpdateTask,
)

from taskstore.mcp.tasks import TasksExtension
from taskstore.server.app import ServerThread

ISSUER = "https://auth.example"
CLIENT_ID = "test-app"
TOKENS = {"alice-token": "alice", "bob-token": "bob"}
MAX_INPUT_BYTES = 4096
SVC = {"name": "svc", "password": "svc-pw", "permissions": ["impersonate"]}


def owner_of(subject: str) -> str:
    """The taskstore owner TasksExtension maps a principal to (principal_owner): ``mcp-`` and
    40 hex digits of the SHA-256 of the SDK's principal (client id, issuer, subject)."""
    principal = json.dumps([CLIENT_ID, ISSUER, subject], separators=(",", ":"))
    return "mcp-" + hashlib.sha256(principal.encode()).hexdigest()[:40]


class StaticVerifier:
    async def verify_token(self, token: str) -> AccessToken | None:
        subject = TOKENS.get(token)
        if subject is None:
            return None
        return AccessToken(
            token=token,
            client_id=CLIENT_ID,
            scopes=[],
            subject=subject,
            claims={"iss": ISSUER},
        )


class NameForm(BaseModel):
    name: str


class ResultParams(TaskIdParams):
    pass


class TaskResult(Request[ResultParams, Any]):
    method: str = "tasks/result"


# -- servers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taskstore() -> Iterator[ServerThread]:
    with ServerThread(port=0, users=[SVC], max_input_bytes=MAX_INPUT_BYTES) as srv:
        yield srv


@pytest.fixture(scope="module")
def store(taskstore: ServerThread) -> Iterator[redis.Redis]:
    """redis-py as ``svc`` (impersonate), 2026-07-28 rendering."""
    r = redis.Redis(
        port=taskstore.port,
        username="svc",
        password="svc-pw",
        decode_responses=True,
        single_connection_client=True,
    )
    r.execute_command("TASK.VERSION", "2026-07-28")
    yield r
    r.close()


def build_server(taskstore_url: str, resource_url: str) -> MCPServer:
    tasks = TasksExtension(url=taskstore_url, lease_ms=3_000)

    @tasks.tool()
    async def ask_name(ctx: Context) -> str:
        answer = await ctx.elicit("What is your name?", NameForm)
        if answer.action != "accept":
            return f"no name ({answer.action})"
        return f"hello {answer.data.name}"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # validate_token_resource unset: the verifier decides
        server = MCPServer(
            "authed",
            extensions=[tasks],
            auth=AuthSettings(issuer_url=ISSUER, resource_server_url=resource_url),
            token_verifier=StaticVerifier(),
            log_level="WARNING",
        )

    @server.tool()  # not task-capable: always the ordinary call
    async def echo(text: str) -> str:
        return f"echo {text}"

    return server


@pytest.fixture(scope="module")
def mcp_url(taskstore: ServerThread) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    taskstore_url = f"redis://svc:svc-pw@127.0.0.1:{taskstore.port}"
    server = build_server(taskstore_url, url)
    app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "the MCP server did not start"
        time.sleep(0.01)
    try:
        yield url
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


def as_principal(
    url: str, token: str | None, body: Callable[[Tasks], Awaitable[None]], declare: bool = True
) -> None:
    async def main() -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(url, http_client=http)
            extensions = [TasksRequester()] if declare else []
            async with Client(transport, mode="2026-07-28", extensions=extensions) as client:
                await body(Tasks(client))

    anyio.run(main)


def inspect(store: redis.Redis, task_id: str, owner: str) -> dict[str, Any]:
    """TASK.INSPECT without the lease's expiry (the worker renews it)."""
    record = store.execute_command("TASK.INSPECT", task_id, "OWNER", owner)
    record.pop("lease_expires_at", None)
    return record


async def waiting_task(tasks: Tasks) -> tuple[str, str]:
    """An ask_name task waiting for input: (task id, the input request's key)."""
    created = await tasks.call("ask_name", {})
    waiting = await tasks.poll(created.task_id, lambda t: t["status"] != "working")
    assert waiting["status"] == "input_required", waiting
    [key] = waiting["inputRequests"]
    return created.task_id, key


# -- owners -----------------------------------------------------------------------------------


def test_unauthenticated_requests_are_refused(mcp_url: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - 401 before any MCP exchange
        as_principal(mcp_url, None, lambda tasks: tasks.client.list_tools())  # type: ignore[arg-type,return-value]


def test_a_task_belongs_to_its_principal(mcp_url: str, store: redis.Redis) -> None:
    """The task is kept under the principal's owner (OWNER through the impersonating user
    svc); no other owner (svc's own, bob's) finds it in taskstore."""
    alice, bob = owner_of("alice"), owner_of("bob")

    async def body(tasks: Tasks) -> None:
        task_id, key = await waiting_task(tasks)
        record = inspect(store, task_id, alice)
        assert record["owner"] == alice
        assert record["lease_holder"]  # the worker holds it, as alice's
        for other in (["OWNER", bob], []):
            with pytest.raises(redis.ResponseError, match="NOTFOUND"):
                store.execute_command("TASK.GET", task_id, *other)
        await tasks.update(task_id, {key: {"action": "accept", "content": {"name": "Ada"}}})
        final = await tasks.poll(task_id, lambda t: t["status"] in TERMINAL)
        assert final["status"] == "completed"
        assert (
            json.loads(store.execute_command("TASK.GET", task_id, "OWNER", alice))["status"]
            == "completed"
        )

    as_principal(mcp_url, "alice-token", body)


def test_a_foreign_principals_task_is_an_unknown_id(mcp_url: str, store: redis.Redis) -> None:
    """bob with alice's task id: tasks/get is the unknown-id error (same code, same message
    but for the id), tasks/update and tasks/cancel the ack; alice's task is untouched and
    still answers alice."""
    alice = owner_of("alice")
    found: dict[str, Any] = {}

    async def start(tasks: Tasks) -> None:
        found["id"], found["key"] = await waiting_task(tasks)

    as_principal(mcp_url, "alice-token", start)
    task_id, key = found["id"], found["key"]
    before = inspect(store, task_id, alice)
    unknown = str(uuid.uuid4())

    async def intrude(tasks: Tasks) -> None:
        errors = []
        for tid in (task_id, unknown):
            with pytest.raises(MCPError) as info:
                await tasks.get(tid)
            errors.append((info.value.code, info.value.error.message.replace(tid, "<id>")))
        assert errors[0] == errors[1]
        assert errors[0][0] == -32602
        for tid in (task_id, unknown):
            eve = {key: {"action": "accept", "content": {"name": "Eve"}}}
            for ack in (await tasks.update(tid, eve), await tasks.cancel(tid)):
                assert ack.get("resultType") == "complete" and set(ack) <= {"resultType", "_meta"}

    as_principal(mcp_url, "bob-token", intrude)
    time.sleep(0.1)  # had anything reached the worker, it would have acted by now
    assert inspect(store, task_id, alice) == before

    async def finish(tasks: Tasks) -> None:
        got = await tasks.get(task_id)
        assert got["status"] == "input_required"
        await tasks.update(task_id, {key: {"action": "accept", "content": {"name": "Ada"}}})
        final = await tasks.poll(task_id, lambda t: t["status"] in TERMINAL)
        assert final["result"]["content"][0]["text"] == "hello Ada"

    as_principal(mcp_url, "alice-token", finish)


# -- bad input --------------------------------------------------------------------------------


def test_huge_input_responses_are_invalid_params(mcp_url: str, store: redis.Redis) -> None:
    """An answer over taskstore's max_input_bytes: -32602 and nothing changes. The refusal
    depends on the request alone (taskstore checks the size before it looks the task up), so
    an unknown or foreign id gets the same error: it tells nothing about the task."""
    alice = owner_of("alice")
    huge = {"action": "accept", "content": {"name": "x" * (MAX_INPUT_BYTES + 1)}}
    found: dict[str, Any] = {}

    async def own(tasks: Tasks) -> None:
        task_id, key = await waiting_task(tasks)
        found["id"], found["key"] = task_id, key
        before = inspect(store, task_id, alice)
        messages = []
        for tid in (task_id, str(uuid.uuid4())):
            with pytest.raises(MCPError) as info:
                await tasks.update(tid, {key: huge})
            assert info.value.code == -32602
            messages.append(info.value.error.message)
        assert messages[0] == messages[1]
        assert str(MAX_INPUT_BYTES) in messages[0]
        await anyio.sleep(0.1)
        assert inspect(store, task_id, alice) == before

    async def foreign(tasks: Tasks) -> None:
        with pytest.raises(MCPError) as info:
            await tasks.update(found["id"], {found["key"]: huge})
        assert info.value.code == -32602

    as_principal(mcp_url, "alice-token", own)
    before = inspect(store, found["id"], alice)
    as_principal(mcp_url, "bob-token", foreign)
    assert inspect(store, found["id"], alice) == before

    async def finish(tasks: Tasks) -> None:
        await tasks.cancel(found["id"])
        final = await tasks.poll(found["id"], lambda t: t["status"] in TERMINAL)
        assert final["status"] == "cancelled"

    as_principal(mcp_url, "alice-token", finish)


def test_answers_for_keys_never_issued_are_acked_and_ignored(
    mcp_url: str, store: redis.Redis
) -> None:
    alice = owner_of("alice")

    async def body(tasks: Tasks) -> None:
        task_id, key = await waiting_task(tasks)
        before = inspect(store, task_id, alice)
        for responses in (
            {"never-issued": {"action": "accept", "content": {"name": "Eve"}}},
            {"elicitation-0000": {"action": "decline"}, "has space": {"action": "cancel"}},
            {"OWNER": {"action": "cancel"}, "MESSAGE": {"action": "cancel"}},
        ):
            ack = await tasks.update(task_id, responses)
            assert ack.get("resultType") == "complete" and set(ack) <= {"resultType", "_meta"}
        await anyio.sleep(0.1)
        assert inspect(store, task_id, alice) == before
        # the real key, answered later, still works
        await tasks.update(task_id, {key: {"action": "accept", "content": {"name": "Ada"}}})
        final = await tasks.poll(task_id, lambda t: t["status"] in TERMINAL)
        assert final["result"]["content"][0]["text"] == "hello Ada"
        # the worker releases its lease right after ending the task: wait for that first
        deadline = time.monotonic() + 10
        while (done := inspect(store, task_id, alice))["lease_holder"] is not None:
            assert time.monotonic() < deadline, done
            await anyio.sleep(0.01)
        # and a terminal task takes no answers: ack, unchanged
        await tasks.update(task_id, {key: {"action": "decline"}, "x": {"action": "decline"}})
        assert inspect(store, task_id, alice) == done

    as_principal(mcp_url, "alice-token", body)


def test_extension_declared_on_a_tool_that_is_not_task_capable(
    mcp_url: str, store: redis.Redis
) -> None:
    """The server alone decides per request: a tool that is not task-capable answers the
    ordinary CallToolResult even when the request declares the extension; no task is made."""
    alice = owner_of("alice")
    listed = store.execute_command("TASK.LIST", "OWNER", alice)

    async def body(tasks: Tasks) -> None:
        result = await tasks.session.call_tool("echo", {"text": "hi"}, allow_claimed=True)
        assert isinstance(result, CallToolResult), result
        assert not result.is_error
        assert result.content[0].text == "echo hi"  # type: ignore[union-attr]

    as_principal(mcp_url, "alice-token", body)
    assert store.execute_command("TASK.LIST", "OWNER", alice) == listed


def test_tasks_result_is_method_not_found(mcp_url: str) -> None:
    async def body(tasks: Tasks) -> None:
        with pytest.raises(MCPError) as info:
            await tasks.session.send_request(
                TaskResult(params=ResultParams(taskId=str(uuid.uuid4()))), _ANY
            )
        assert info.value.code == -32601

    as_principal(mcp_url, "alice-token", body)


@pytest.mark.parametrize("task_id", [None, 42, ["x"], {"id": "x"}])
def test_update_with_a_bad_task_id_is_invalid_params(mcp_url: str, task_id: Any) -> None:
    async def body(tasks: Tasks) -> None:
        params = UpdateParams(taskId=task_id, inputResponses={"k": {"action": "cancel"}})
        with pytest.raises(MCPError) as info:
            await tasks.session.send_request(UpdateTask(params=params), _ANY)
        assert info.value.code == -32602

    as_principal(mcp_url, "alice-token", body)
