"""docs/mcp.md's SDK 2.x example: the page shows docs/examples/mcp2_tasks_server.py exactly,
and the file runs: its tool, called by the SDK 2.x client with the extension declared, becomes
a task that asks for input, takes the answer and completes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.mcp2.test_extension import TERMINAL, Tasks, _text, run, stop

from helpers import free_port
from taskstore.server.app import ServerThread

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "mcp2_tasks_server.py"
DOC = ROOT / "docs" / "mcp.md"


def test_doc_shows_the_example_verbatim() -> None:
    block = "```python\n" + EXAMPLE.read_text() + "```\n"
    assert block in DOC.read_text(), (
        "docs/mcp.md must contain docs/examples/mcp2_tasks_server.py verbatim in a "
        "```python block: copy the file into the page again"
    )


def test_example_runs_against_a_real_server() -> None:
    with ServerThread(port=0) as store:
        port = free_port()
        env = {**os.environ, "TASKSTORE_URL": store.url, "PORT": str(port)}
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("greeter on http://127.0.0.1:")
            deadline = time.monotonic() + 15
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the example never listened"
                    time.sleep(0.05)

            async def body(tasks: Tasks) -> None:
                created = await tasks.call("greet", {})
                waiting = await tasks.poll(
                    created.task_id, lambda t: t["status"] == "input_required"
                )
                [(key, request)] = waiting["inputRequests"].items()
                assert request["params"]["message"] == "Who are you?"
                await tasks.update(
                    created.task_id, {key: {"action": "accept", "content": {"name": "Ada"}}}
                )
                done = await tasks.poll(created.task_id, lambda t: t["status"] in TERMINAL)
                assert done["status"] == "completed", done
                assert _text(done["result"]) == "hello Ada"

            run(f"http://127.0.0.1:{port}/mcp", body)
        finally:
            stop(proc)
