"""Make the screenshots of docs/console.md and the README with the real browser:

    python tests/console/screenshots.py          # writes docs/console-list.png, -detail.png

A server with the console on a free loopback port, some tasks in every status made through
redis-py, a little traffic so the charts have something to show, then headless chromium
(tests/console/browser.py) takes the list and one task's detail view.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from console.browser import Browser, missing  # noqa: E402
from helpers import free_port  # noqa: E402
from taskstore.server.app import ServerThread  # noqa: E402

METHODS = ["tools/call", "tools/call", "tools/call", "sampling/createMessage", "prompts/get"]
WORK = [
    "indexing repository: 412 of 1,280 files",
    "calling the weather API",
    "rendering report.pdf (page 3 of 9)",
    "waiting for the build to finish",
    "summarising 18 documents",
    "uploading artefacts",
]


def populate(client: redis.Redis) -> str:
    """Tasks in every status; returns the id of the one the detail shot shows."""
    rng = random.Random(17)
    ids = []
    for i in range(26):
        task_id = (
            f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
            f"a{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}"
        )
        client.execute_command("TASK.CREATE", METHODS[i % len(METHODS)], "ID", task_id)
        ids.append(task_id)
        kind = i % 6
        if kind in (0, 1):
            client.execute_command("TASK.UPDATE", task_id, "MESSAGE", WORK[i % len(WORK)])
        elif kind == 2:
            result = {"content": [{"type": "text", "text": f"done: {i * 7} items"}]}
            client.execute_command("TASK.COMPLETE", task_id, "completed", json.dumps(result))
        elif kind == 3:
            error = {"code": -32603, "message": "upstream timed out", "data": {"after_ms": 30000}}
            client.execute_command("TASK.FAIL", task_id, json.dumps(error), "MESSAGE", "timed out")
        elif kind == 4:
            client.execute_command("TASK.CANCEL", task_id, "MESSAGE", "cancelled by the user")
        else:
            client.execute_command("TASK.UPDATE", task_id, "MESSAGE", "step 2 of 5")
    shown = ids[-2]
    client.execute_command(
        "TASK.SETVARS",
        shown,
        json.dumps({"repo": "acme/web", "branch": "main", "files": 1280, "done": 412}),
    )
    request = {
        "method": "elicitation/create",
        "params": {
            "message": "Deploy acme/web@main to production?",
            "requestedSchema": {
                "type": "object",
                "properties": {"confirm": {"type": "boolean"}, "note": {"type": "string"}},
                "required": ["confirm"],
            },
        },
    }
    client.execute_command(
        "TASK.ASK",
        shown,
        "confirm-deploy",
        json.dumps(request),
        "MESSAGE",
        "waiting for the user to confirm the deploy",
    )
    return shown


def traffic(port: int, task_id: str, stop: threading.Event) -> None:
    """A few hundred TASK.GETs a second, rising and falling, for the charts."""
    with redis.Redis(port=port) as client:
        start = time.monotonic()
        while not stop.is_set():
            phase = (time.monotonic() - start) % 6
            n = int(40 + 30 * abs(3 - phase))
            pipe = client.pipeline(transaction=False)
            for _ in range(n):
                pipe.execute_command("TASK.GET", task_id)
            pipe.execute()
            time.sleep(0.1)


def main() -> int:
    reason = missing()
    if reason is not None:
        print(reason, file=sys.stderr)
        return 1
    docs = ROOT / "docs"
    console_port = free_port()
    with ServerThread(port=0, console_port=console_port, mcp_version="2026-07-28") as server:
        client = redis.Redis(port=server.port)
        shown = populate(client)
        stop = threading.Event()
        load = threading.Thread(target=traffic, args=(server.port, shown, stop), daemon=True)
        load.start()
        browser = Browser(width=1400, height=1000)
        try:
            browser.get(f"http://127.0.0.1:{console_port}/")
            browser.wait(lambda: len(browser.rows()) >= 20, 10, "the list")
            time.sleep(12)  # a dozen stats samples for the charts
            browser.screenshot(str(docs / "console-list.png"))
            browser.js(
                "document.querySelector(arguments[0]).click()",
                f"#rows tr[data-id='{shown}'] a",
            )
            browser.wait(lambda: browser.text("#detail h2") == shown, 5, "the detail view")
            time.sleep(1)
            browser.screenshot(str(docs / "console-detail.png"))
        finally:
            stop.set()
            load.join(5)
            browser.quit()
            client.close()
    print(f"wrote {docs / 'console-list.png'} and {docs / 'console-detail.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
