"""The console's HTTP API without a browser: authentication, who may see and do what, the
404 that does not tell another owner's task from none, paging and filters, payloads, the
event stream, and the browser-side defences (custom action header, Host check, CSP)."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from typing import Any

import redis

from console.conftest import PASSWORDS, USERS, Console
from helpers import free_port
from taskstore.console.views import PAYLOAD_INLINE_BYTES
from taskstore.server.app import ServerThread


def pipeline(console: Console, user: str | None, commands: list[tuple[str, ...]]) -> None:
    """Send commands in one pipeline (one read for the server, one flush for the feed)."""
    auth = {} if user is None else {"username": user, "password": PASSWORDS[user]}
    with redis.Redis(port=console.port, **auth) as client:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        pipe.execute()


def without_date(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != "date"}


# -- authentication ------------------------------------------------------------------------


def test_no_credentials_without_anonymous_access(make_console) -> None:
    console = make_console(allow_anonymous=False)
    for path in ("/", "/api/me", "/api/tasks", "/api/events", "/static/console.js"):
        status, headers, body = console.http(path)
        assert status == 401, path
        assert headers["WWW-Authenticate"] == 'Basic realm="taskstore", charset="UTF-8"'
        assert body == b"401 Unauthorized\n"


def test_wrong_password_and_unknown_user_look_the_same(console: Console) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "t1", user="alice")
    wrong = console.http("/api/tasks", "alice", "not-it")
    unknown = console.http("/api/tasks", "mallory", "alice-pw")
    disabled_scheme = console.http("/api/tasks", headers={"Authorization": "Bearer x"})
    garbage = console.http("/api/tasks", headers={"Authorization": "Basic %%%"})
    for status, headers, body in (wrong, unknown, disabled_scheme, garbage):
        assert status == 401
        assert body == b"401 Unauthorized\n"
        assert without_date(headers) == without_date(wrong[1])
    info = console.cli("INFO", "stats")
    assert "auth_failures:2" in info  # a failed console login counts as AUTH's do


def test_identities(make_console) -> None:
    console = make_console(requirepass="sekret")
    assert console.http("/api/me")[0] == 401  # requirepass: anonymous access is off
    assert console.http("/api/me", "default", "wrong")[0] == 401
    me = console.json("/api/me", "default", password="sekret")
    assert (me["user"], me["owner"], me["admin"], me["anonymous"]) == (
        "default",
        "local",
        True,
        False,
    )
    me = console.json("/api/me", "alice")
    assert (me["user"], me["owner"], me["admin"], me["mayChooseOwner"]) == (
        "alice",
        "alice",
        False,
        False,
    )
    me = console.json("/api/me", "svc")
    assert (me["impersonate"], me["mayChooseOwner"]) == (True, True)
    me = console.json("/api/me", "ops")
    assert (me["admin"], me["mayChooseOwner"]) == (True, True)


def test_anonymous_default_user(console: Console) -> None:
    me = console.json("/api/me")
    assert (me["user"], me["owner"], me["anonymous"], me["admin"]) == (
        "default",
        "local",
        True,
        True,
    )
    # without requirepass, AUTH default accepts any password and acts as anonymous does
    assert console.json("/api/me", "default", password="anything")["anonymous"] is True


# -- who sees what -------------------------------------------------------------------------


def test_foreign_unknown_and_malformed_ids_answer_the_same_404(console: Console) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "bobs", user="bob")
    console.cli("TASK.CREATE", "tools/call", "ID", "alices", user="alice")
    for path in (
        "/api/task?id={}",
        "/api/task/payload?id={}&name=task-2026-07-28",
        "/tasks/{}",
    ):
        answers = {
            task_id: console.http(path.format(task_id), "alice")
            for task_id in ("bobs", "never-created", "bad%20id", "%00")
        }
        first = answers["bobs"]
        assert first[0] == 404, path
        for task_id, (status, headers, body) in answers.items():
            assert (status, body) == (first[0], first[2]), (path, task_id)
            assert without_date(headers) == without_date(first[1]), (path, task_id)
        assert console.http(path.format("alices"), "alice")[0] == 200
    # an admin acting on alice's tasks cannot reach bob's either
    for action in ("cancel", "cancel-request"):
        foreign = console.http(f"/api/task/{action}?id=bobs&owner=alice", "ops", body={})
        unknown = console.http(f"/api/task/{action}?id=nope&owner=alice", "ops", body={})
        assert foreign[0] == unknown[0] == 404
        assert foreign[2] == unknown[2] == b'{"error":"task not found"}'
    assert json.loads(console.cli("TASK.GET", "bobs", user="bob"))["status"] == "working"


def test_owner_parameter(console: Console) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "b1", user="bob")
    status, _, body = console.http("/api/tasks?owner=bob", "alice")
    assert status == 403
    assert json.loads(body) == {
        "error": "NOPERM User alice has no permissions to act as another owner"
    }
    assert console.http("/api/events?owner=bob", "alice")[0] == 403
    assert console.http("/?owner=bob", "alice")[0] == 403
    assert console.http("/api/tasks?owner=alice", "alice")[0] == 200  # its own: fine
    for user in ("svc", "ops"):
        tasks = console.json("/api/tasks?owner=bob", user)["tasks"]
        assert [t["taskId"] for t in tasks] == ["b1"]
    status, _, body = console.http("/api/tasks?owner=bad%20owner", "svc")
    assert status == 400
    assert json.loads(body)["error"] == (
        "ERR OWNER must be 1-256 printable ASCII characters without spaces"
    )


# -- actions ---------------------------------------------------------------------------------


def test_actions(console: Console) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "t1", user="alice")
    path = "/api/task/cancel?id=t1&owner=alice"
    # only admins act
    status, _, body = console.http("/api/task/cancel?id=t1", "alice", body={})
    assert (status, json.loads(body)) == (
        403,
        {"error": "NOPERM User alice has no permissions to run the 'cancel' action"},
    )
    # a page of another origin cannot send the custom header without a preflight
    status, _, body = console.http(
        path, "ops", body=b"{}", headers={"Content-Type": "text/plain", "X-Taskstore-Console": ""}
    )
    assert (status, json.loads(body)) == (
        403,
        {"error": "actions need the header X-Taskstore-Console: 1"},
    )
    status, _, body = console.http(path, "ops", body=b"{not json")
    assert (status, json.loads(body)["error"]) == (
        400,
        "ERR invalid JSON: the body must be a JSON object",
    )
    status, _, body = console.http(path, "ops", body={"message": 5})
    assert (status, json.loads(body)["error"]) == (400, "ERR message must be a string")

    out = console.json(
        "/api/task/cancel-request?id=t1&owner=alice", "ops", body={"message": "stop"}
    )
    assert out["task"]["cancelRequestedAt"] is not None
    assert out["task"]["statusMessage"] == "stop"
    out = console.json(path, "ops", body={"message": "by ops"})
    assert (out["task"]["status"], out["task"]["statusMessage"]) == ("cancelled", "by ops")
    assert json.loads(console.cli("TASK.GET", "t1", user="alice"))["status"] == "cancelled"
    status, _, body = console.http(path, "ops", body={})
    assert (status, json.loads(body)["error"]) == (
        409,
        "INVALIDTRANSITION invalid transition from cancelled to cancelled for task t1",
    )


def test_answer(console: Console) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "t1")  # the anonymous default user: local
    request = {"method": "elicitation/create", "params": {"message": "name?"}}
    console.cli("TASK.ASK", "t1", "a", json.dumps(request), "b", json.dumps(request))
    path = "/api/task/answer?id=t1"
    for body, error in (
        ({}, "ERR answers must be a JSON object of key -> response"),
        ({"answers": []}, "ERR answers must be a JSON object of key -> response"),
        ({"answers": {"a": 5}}, "ERR invalid JSON: response 'a' must be a JSON object"),
    ):
        status, _, raw = console.http(path, body=body)
        assert (status, json.loads(raw)["error"]) == (400, error)
    assert console.json(path, body={"answers": {"zzz": {}}})["accepted"] == 0
    out = console.json(path, body={"answers": {"a": {"action": "decline"}}})
    assert out["accepted"] == 1
    assert out["task"]["status"] == "input_required"
    assert list(out["task"]["inputRequests"]) == ["b"]
    out = console.json(path, body={"answers": {"b": {"action": "accept", "content": {}}}})
    assert out["task"]["status"] == "working"
    assert json.loads(console.cli("TASK.ANSWERS", "t1")) == {
        "a": {"action": "decline"},
        "b": {"action": "accept", "content": {}},
    }


def test_actions_are_journaled(make_console, tmp_path) -> None:
    settings = dict(appendonly=True, dir=tmp_path, users=USERS, console_port=free_port())
    with ServerThread(port=0, **settings) as server:
        console = Console(server)
        console.cli("TASK.CREATE", "tools/call", "ID", "t1", user="alice")
        console.json("/api/task/cancel?id=t1&owner=alice", "ops", body={})
    again = make_console(appendonly=True, dir=tmp_path)  # loads what the first one wrote
    assert json.loads(again.cli("TASK.GET", "t1", user="alice"))["status"] == "cancelled"


# -- the list ----------------------------------------------------------------------------------


def test_paging_newest_first_and_stable(make_console) -> None:
    console = make_console(max_tasks_per_owner=0)
    pipeline(
        console, "alice", [("TASK.CREATE", "tools/call", "ID", f"t{i:03d}") for i in range(120)]
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "/api/tasks?limit=50" + (f"&cursor={cursor}" if cursor else "")
        page = console.json(query, "alice")
        seen += [t["taskId"] for t in page["tasks"]]
        pages += 1
        if pages == 1:
            # deletions and creations between pages move nothing
            console.cli("TASK.DEL", "t119", user="alice")
            console.cli("TASK.DEL", "t050", user="alice")
            console.cli("TASK.CREATE", "tools/call", "ID", "new", user="alice")
        cursor = page["nextCursor"]
        if cursor is None:
            break
    expected = [f"t{i:03d}" for i in range(119, -1, -1)]
    expected.remove("t050")
    assert seen == expected
    assert pages == 3


def test_filters(make_console) -> None:
    console = make_console(max_tasks_per_owner=0)
    commands: list[tuple[str, ...]] = []
    for i in range(300):
        method = "sampling/createMessage" if i % 3 else "tools/call"
        commands.append(("TASK.CREATE", method, "ID", f"t{i}"))
        if i % 7 == 0:
            commands.append(("TASK.CANCEL", f"t{i}"))
    pipeline(console, "alice", commands)
    page = console.json("/api/tasks?status=cancelled&limit=1000", "alice")
    assert [t["taskId"] for t in page["tasks"]] == [
        f"t{i}" for i in range(299, -1, -1) if i % 7 == 0
    ]
    page = console.json("/api/tasks?method=tools&status=cancelled&limit=1000", "alice")
    assert [t["taskId"] for t in page["tasks"]] == [
        f"t{i}" for i in range(299, -1, -1) if i % 21 == 0
    ]
    # a filtered list pages too
    ids: list[str] = []
    cursor = ""
    while cursor is not None:
        page = console.json(f"/api/tasks?status=cancelled&limit=7&cursor={cursor}", "alice")
        ids += [t["taskId"] for t in page["tasks"]]
        cursor = page["nextCursor"]
    assert ids == [f"t{i}" for i in range(299, -1, -1) if i % 7 == 0]


def test_list_errors(console: Console) -> None:
    console.cli("TASK.CREATE", "tools/call", user="alice")
    for query, error in (
        (
            "status=done",
            "ERR invalid status 'done': expected working, input_required, completed, failed "
            "or cancelled",
        ),
        ("cursor=nonsense", "ERR invalid cursor"),
        ("cursor=abc~12", "ERR invalid cursor"),
        ("limit=0", "ERR LIMIT must be between 1 and 1000"),
        ("limit=1001", "ERR LIMIT must be between 1 and 1000"),
        ("limit=x", "ERR LIMIT must be between 1 and 1000"),
    ):
        status, _, body = console.http(f"/api/tasks?{query}", "alice")
        assert (status, json.loads(body)) == (400, {"error": error}), query
    # a cursor is bound to its owner, as TASK.LIST's are
    console.cli("TASK.CREATE", "tools/call", user="alice")
    cursor = console.json("/api/tasks?limit=1", "alice")["nextCursor"]
    assert cursor
    status, _, body = console.http(f"/api/tasks?limit=1&cursor={cursor}", "bob")
    assert (status, json.loads(body)) == (400, {"error": "ERR invalid cursor"})


def test_summary_and_detail(console: Console) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "t1", "TTL", "60000", user="alice")
    console.cli("TASK.SETVARS", "t1", '{"a":1}', user="alice")
    (summary,) = console.json("/api/tasks", "alice")["tasks"]
    assert summary["taskId"] == "t1"
    assert summary["ttlMs"] == 60000
    assert summary["expiresAt"] == summary["createdAt"] + 60000
    detail = console.json("/api/task?id=t1", "alice")
    assert detail["variables"] == {"bytes": 7, "json": '{"a":1}'}
    v1 = json.loads(detail["renderings"]["2025-11-25"]["json"])
    v2 = json.loads(detail["renderings"]["2026-07-28"]["json"])
    assert v1["ttl"] == 60000 and v1["_meta"] == {"a": 1}
    assert v2["ttlMs"] == 60000 and "_meta" not in v2


def test_large_payloads_are_cut_and_downloadable(console: Console) -> None:
    big = json.dumps({"text": "x" * (PAYLOAD_INLINE_BYTES + 10)})
    console.cli("TASK.CREATE", "tools/call", "ID", "t1", user="alice")
    pipeline(console, "alice", [("TASK.COMPLETE", "t1", "completed", big)])  # too long for argv
    detail = console.json("/api/task?id=t1", "alice")
    result = detail["result"]
    assert result["truncated"] is True
    assert result["bytes"] == len(big)
    assert len(result["preview"]) == 4096
    assert detail["renderings"]["2026-07-28"]["truncated"] is True
    status, headers, body = console.http("/api/task/payload?id=t1&name=result", "alice")
    assert status == 200 and body == big.encode()
    assert headers["Content-Type"].startswith("application/json")
    status, _, body = console.http("/api/task/payload?id=t1&name=error", "alice")
    assert (status, json.loads(body)) == (404, {"error": "the task has no error"})
    status, _, body = console.http("/api/task/payload?id=t1&name=x", "alice")
    assert status == 400


# -- browser-side defences -------------------------------------------------------------------


def test_loopback_host_names_only(console: Console) -> None:
    status, _, body = console.http("/api/me", "alice", headers={"Host": "evil.example"})
    assert (status, json.loads(body)) == (
        421,
        {"error": "this console answers loopback names only"},
    )
    port = console.server.console.port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert console.http("/api/me", "alice", headers={"Host": host})[0] == 200, host


def test_security_headers(console: Console) -> None:
    for path in ("/", "/api/me", "/static/console.js", "/tasks/none"):
        _, headers, _ = console.http(path, "alice")
        assert "script-src 'self'" in headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
    _, headers, body = console.http("/static/console.js", "alice")
    assert headers["Content-Type"].startswith("text/javascript")
    assert b"innerHTML" not in body  # data goes in as text only
    assert console.http("/static/../web.py", "alice")[0] == 404


# -- the event stream ---------------------------------------------------------------------------


class Events:
    """A server-sent event stream read with http.client."""

    def __init__(self, console: Console, user: str | None, query: str = "") -> None:
        port = console.server.console.port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        headers = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self.conn.request("GET", "/api/events" + query, headers=headers)
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.headers["Content-Type"].startswith("text/event-stream")

    def next(self, kind: str | None = None, timeout: float = 3.0) -> tuple[str, Any]:
        """The next event (of ``kind``), as (event, data)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event, data = "", ""
            while True:
                line = self.response.readline().decode()
                if line == "":
                    raise EOFError("the stream ended")
                if line == "\n":
                    break
                if line.startswith("event: "):
                    event = line[7:].strip()
                elif line.startswith("data: "):
                    data = line[6:].strip()
            if event and (kind is None or event == kind):
                return event, json.loads(data)
        raise TimeoutError(kind)

    def close(self) -> None:
        self.conn.close()


def test_event_stream(console: Console) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "old", user="alice")
    events = Events(console, "alice")
    try:
        assert events.next()[0] == "hello"
        _, counts = events.next("counts")
        assert counts["counts"]["working"] == 1
        start = time.monotonic()
        console.cli("TASK.CREATE", "tools/call", "ID", "new", user="alice")
        console.cli("TASK.CREATE", "tools/call", "ID", "bobs", user="bob")  # not alice's
        _, data = events.next("tasks")
        assert time.monotonic() - start < 1.0
        assert [t["taskId"] for t in data["tasks"]] == ["new"]
        assert data["tasks"][0]["transitions"] == [["working", data["tasks"][0]["createdAt"]]]
        assert data["counts"]["working"] == 2

        # changes in one window are sent once, with the statuses they went through
        burst = [
            ("TASK.UPDATE", "old", "MESSAGE", "first"),
            ("TASK.UPDATE", "old", "input_required"),
            ("TASK.UPDATE", "old", "working"),
        ]
        pipeline(
            console,
            "alice",
            burst + [("TASK.UPDATE", "old", "MESSAGE", f"step {i}") for i in range(50)],
        )
        _, data = events.next("tasks")
        (item,) = data["tasks"]
        assert item["taskId"] == "old"
        assert item["statusMessage"] == "step 49"
        assert [s for s, _ in item["transitions"]] == ["input_required", "working"]
        console.cli("TASK.DEL", "new", user="alice")
        _, data = events.next("tasks")
        assert data["tasks"] == [{"taskId": "new", "removed": True}]
        assert data["counts"]["working"] == 1
        _, stats = events.next("stats")
        assert stats["scope"] == "owner" and stats["tasks"]["working"] == 1
        assert stats["clients"] >= 0 and stats["memory"] > 0
    finally:
        events.close()


def test_under_steady_changes_the_stats_ride_with_the_changes(console: Console) -> None:
    """While changes keep coming a flush is always on its way: the stats sample waits for it
    and goes in the same write, so a busy page is woken about once per flush, not twice."""
    console.cli("TASK.CREATE", "tools/call", "ID", "busy", user="alice")
    stop = threading.Event()

    def keep_changing() -> None:
        auth = {"username": "alice", "password": PASSWORDS["alice"]}
        with redis.Redis(port=console.port, **auth) as client:
            i = 0
            while not stop.is_set():
                client.execute_command("TASK.UPDATE", "busy", "MESSAGE", f"step {i}")
                i += 1
                time.sleep(0.01)

    events = Events(console, "alice")
    changer = threading.Thread(target=keep_changing)
    try:
        assert events.next()[0] == "hello"
        changer.start()
        events.next("tasks")  # changes are flowing
        seen: list[tuple[str, float]] = []  # (event, when it was read)
        start = time.monotonic()
        while time.monotonic() - start < 4.5:
            seen.append((events.next()[0], time.monotonic()))
        stats = [i for i, (kind, _) in enumerate(seen) if kind == "stats"]
        assert len(stats) >= 2, seen  # still about every second or so
        assert sum(kind == "tasks" for kind, _ in seen) >= 4, seen
        # right behind a batch of changes, in the same write (one may come alone, if its
        # tick fell just after a flush, before the next change: a slow machine)
        riding = [
            i for i in stats if seen[i - 1][0] == "tasks" and seen[i][1] - seen[i - 1][1] < 0.05
        ]
        assert len(riding) >= 2 and len(riding) >= len(stats) - 1, seen
    finally:
        stop.set()
        if changer.is_alive():
            changer.join()
        events.close()


def test_admin_stats_cover_every_owner(console: Console) -> None:
    console.cli("TASK.CREATE", "tools/call", user="bob")
    console.cli("TASK.CREATE", "tools/call", user="alice")
    events = Events(console, "ops")
    try:
        _, stats = events.next("stats")
        assert stats["scope"] == "server"
        assert stats["tasks"]["working"] == 2
    finally:
        events.close()


def test_anonymous_stream_ends_when_anonymous_access_goes(console: Console) -> None:
    events = Events(console, None)
    try:
        assert events.next()[0] == "hello"
        console.cli("CONFIG", "SET", "allow_anonymous", "no")
        start = time.monotonic()
        try:
            while True:
                events.next(timeout=5)
        except EOFError:
            pass
        assert time.monotonic() - start < 3
        assert console.http("/api/me")[0] == 401
    finally:
        events.close()


def test_a_page_that_does_not_read_is_cut_off(make_console, monkeypatch) -> None:
    import taskstore.console.feed as feed

    monkeypatch.setattr(feed, "STREAM_BACKLOG_BYTES", 64 * 1024)
    console = make_console(max_tasks_per_owner=0)
    port = console.server.console.port
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        deadline = time.monotonic() + 5
        while console.server.console.feed.streams == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # each flush carries every one of 5,000 tasks (~1.7 MB): the kernel's buffers, then
        # aiohttp's, then the stream's backlog fill up
        pipeline(console, None, [("TASK.CREATE", "tools/call", "ID", f"t{i}") for i in range(5000)])
        deadline = time.monotonic() + 20
        round_ = 0
        while console.server.console.feed.streams:
            assert time.monotonic() < deadline, "the stream was not cut off"
            round_ += 1
            pipeline(
                console,
                None,
                [("TASK.UPDATE", f"t{i}", "MESSAGE", f"r{round_}") for i in range(5000)],
            )
            time.sleep(0.15)
    finally:
        sock.close()
