"""The console in a real browser (headless chromium, Selenium): tasks changed through redis-cli
show up without a reload, the detail view, answering an input request from the page, who sees
what, bad credentials, foreign task URLs, script in task data, and 10,000 tasks."""

from __future__ import annotations

import json
import time

import redis

from console.browser import Browser
from console.conftest import PASSWORDS, Console

#: The issue's promise: a change shows up in the page within a second.
LIVE_S = 1.0
#: Loading the page itself (chromium start-up excluded).
LOAD_S = 10.0


def open_console(browser: Browser, console: Console, user: str | None, path: str = "/") -> None:
    browser.login(user, PASSWORDS.get(user or "", ""))
    browser.get(console.url + path)
    browser.wait(lambda: browser.text("#live") == "● live", LOAD_S, "the live feed connects")
    browser.wait(
        lambda: browser.js(
            "return !document.getElementById('empty').hidden || "
            "document.querySelectorAll('#rows tr').length > 0"
        ),
        LOAD_S,
        "the first page of tasks is shown",
    )
    browser.js("window.__loadedOnce = true")  # gone if the page ever reloads


def row(browser: Browser, task_id: str) -> dict[str, str] | None:
    return next((r for r in browser.rows() if r["id"] == task_id), None)


def assert_not_reloaded(browser: Browser) -> None:
    assert browser.js("return window.__loadedOnce === true"), "the page was reloaded"


def test_tasks_appear_and_change_live(console: Console, browser: Browser) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "old-1", user="alice")
    open_console(browser, console, "alice")
    assert [r["id"] for r in browser.rows()] == ["old-1"]

    start = time.monotonic()
    console.cli("TASK.CREATE", "tools/call", "ID", "job-1", user="alice")
    browser.wait(lambda: row(browser, "job-1"), LIVE_S, "a created task appears")
    assert time.monotonic() - start < LIVE_S + 0.5  # redis-cli's own start-up included
    assert [r["id"] for r in browser.rows()] == ["job-1", "old-1"]  # newest first

    console.cli("TASK.UPDATE", "job-1", "MESSAGE", "half way", user="alice")
    browser.wait(
        lambda: (row(browser, "job-1") or {}).get("message") == "half way",
        LIVE_S,
        "a new status message shows",
    )

    console.cli("TASK.UPDATE", "job-1", "input_required", "MESSAGE", "need a name", user="alice")
    browser.wait(
        lambda: (row(browser, "job-1") or {}).get("status") == "input_required",
        LIVE_S,
        "a status change shows",
    )

    console.cli("TASK.COMPLETE", "job-1", "completed", '{"content":[]}', user="alice")
    browser.wait(
        lambda: (row(browser, "job-1") or {}).get("status") == "completed",
        LIVE_S,
        "completion shows",
    )

    # counts per status follow
    browser.wait(
        lambda: browser.text("#status-filter [data-status='completed'] .count") == "1",
        LIVE_S,
        "the completed count",
    )
    assert browser.text("#status-filter [data-status=''] .count") == "2"

    console.cli("TASK.DEL", "old-1", user="alice")
    browser.wait(lambda: row(browser, "old-1") is None, LIVE_S, "a deleted task goes away")
    assert_not_reloaded(browser)


def test_status_filter_and_method_filter(console: Console, browser: Browser) -> None:
    for i in range(3):
        console.cli("TASK.CREATE", "tools/call", "ID", f"t{i}", user="alice")
    console.cli("TASK.CREATE", "sampling/createMessage", "ID", "s0", user="alice")
    console.cli("TASK.CANCEL", "t1", user="alice")
    open_console(browser, console, "alice")
    browser.js("document.querySelector(\"#status-filter [data-status='cancelled']\").click()")
    browser.wait(lambda: [r["id"] for r in browser.rows()] == ["t1"], LIVE_S, "only cancelled")
    # a task that starts to match shows up live, one that stops matching leaves
    console.cli("TASK.CANCEL", "t2", user="alice")
    browser.wait(
        lambda: [r["id"] for r in browser.rows()] == ["t2", "t1"],
        LIVE_S,
        "a newly cancelled task joins the filtered list in creation order",
    )
    browser.js("document.querySelector(\"#status-filter [data-status='cancelled']\").click()")
    browser.wait(lambda: len(browser.rows()) == 4, LIVE_S, "the filter is off again")
    box = browser.driver.find_element("id", "method-filter")
    box.send_keys("sampling")
    browser.wait(lambda: [r["id"] for r in browser.rows()] == ["s0"], 2.0, "method filter")
    assert_not_reloaded(browser)


def test_detail_view_and_answer_from_the_page(console: Console, browser: Browser) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "ask-1", user="alice")
    console.cli("TASK.SETVARS", "ask-1", '{"step":2,"city":"Oslo"}', user="alice")
    request = {"method": "elicitation/create", "params": {"message": "Your name?"}}
    console.cli(
        "TASK.ASK", "ask-1", "name", json.dumps(request), "MESSAGE", "waiting", user="alice"
    )

    # an admin looks at alice's tasks (owner chosen in the URL) and opens the task's URL
    open_console(browser, console, "ops", "/tasks/ask-1?owner=alice")
    browser.wait(lambda: browser.text("#detail h2") == "ask-1", LIVE_S, "the detail view opens")
    detail = browser.text("#detail")
    assert "waiting" in detail
    assert "elicitation/create" in detail
    assert '"city": "Oslo"' in detail  # variables, pretty-printed
    renderings = browser.js(
        "return Array.from(document.querySelectorAll('#detail details summary'))"
        ".map(s => s.textContent)"
    )
    assert any(s.startswith("2025-11-25 ") for s in renderings), renderings
    assert any(s.startswith("2026-07-28 ") for s in renderings), renderings
    first_gen = browser.js(
        "const d = Array.from(document.querySelectorAll('#detail details'))"
        ".find(d => d.querySelector('summary').textContent.startsWith('2025-11-25 '));"
        "return d.querySelector('pre').textContent;"
    )
    assert '"ttl": 3600000' in first_gen and '"city": "Oslo"' in first_gen  # _meta holds them
    ttl = browser.text("#detail-ttl")
    assert ttl.startswith("59:") or ttl.startswith("1:00:"), ttl

    area = browser.driver.find_element("css selector", "textarea.answer[data-key='name']")
    area.clear()
    area.send_keys('{"action": "accept", "content": {"name": "Ada"}}')
    browser.driver.find_element(
        "css selector", ".input-request[data-key='name'] .send-answer"
    ).click()
    browser.wait(
        lambda: (
            "accepted: 1" in (browser.text(".input-request .action-note") or "")
            or browser.text("#detail .st") == "working"
        ),
        LIVE_S,
        "the answer is accepted",
    )
    answers = json.loads(console.cli("TASK.ANSWERS", "ask-1", user="alice"))
    assert answers == {"name": {"action": "accept", "content": {"name": "Ada"}}}
    # answered: back to working, and the history the page saw says so
    browser.wait(lambda: browser.text("#detail .st") == "working", LIVE_S, "back to working")
    history = browser.js(
        "return Array.from(document.querySelectorAll('#detail .history li .st'))"
        ".map(s => s.textContent)"
    )
    assert history == ["input_required", "working"], history

    # cancellation request, then cancel, from the page
    browser.driver.find_element("id", "action-cancel-request").click()
    browser.wait(
        lambda: "cancel requested" in (browser.text("#detail dl") or ""),
        LIVE_S,
        "the cancellation request shows",
    )
    inspect = console.cli("TASK.INSPECT", "ask-1", user="alice")
    assert "cancel_requested_at" in inspect
    browser.driver.find_element("id", "action-cancel").click()
    browser.wait(lambda: browser.text("#detail .st") == "cancelled", LIVE_S, "cancelled")
    assert json.loads(console.cli("TASK.GET", "ask-1", user="alice"))["status"] == "cancelled"
    history = browser.js(
        "return Array.from(document.querySelectorAll('#detail .history li .st'))"
        ".map(s => s.textContent)"
    )
    assert history == ["input_required", "working", "cancelled"], history
    assert_not_reloaded(browser)


def test_each_user_sees_only_its_own_tasks(console: Console, browsers) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "a-1", user="alice")
    console.cli("TASK.CREATE", "tools/call", "ID", "b-1", user="bob")
    alice, bob = browsers(), browsers()
    open_console(alice, console, "alice")
    open_console(bob, console, "bob")
    assert [r["id"] for r in alice.rows()] == ["a-1"]
    assert [r["id"] for r in bob.rows()] == ["b-1"]
    console.cli("TASK.CREATE", "tools/call", "ID", "b-2", user="bob")
    console.cli("TASK.CREATE", "tools/call", "ID", "a-2", user="alice")
    alice.wait(lambda: row(alice, "a-2"), LIVE_S, "alice's new task")
    bob.wait(lambda: row(bob, "b-2"), LIVE_S, "bob's new task")
    time.sleep(0.3)  # two flushes: nothing else arrives
    assert [r["id"] for r in alice.rows()] == ["a-2", "a-1"]
    assert [r["id"] for r in bob.rows()] == ["b-2", "b-1"]
    assert "bob" not in alice.driver.page_source
    # alice may not look at bob's owner; the impersonator may
    alice.get(console.url + "/?owner=bob")
    assert "NOPERM User alice has no permissions to act as another owner" in alice.text("body")
    svc = browsers()
    open_console(svc, console, "svc", "/?owner=bob")
    assert [r["id"] for r in svc.rows()] == ["b-2", "b-1"]


def test_wrong_password_shows_nothing(console: Console, browser: Browser) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "secret-task", user="alice")
    console.cli("TASK.UPDATE", "secret-task", "MESSAGE", "secret message", user="alice")
    for user, password in (("alice", "wrong"), ("nobody", "alice-pw")):
        browser.login(user, password)
        for path in ("/", "/tasks/secret-task", "/api/tasks", "/api/task?id=secret-task"):
            browser.statuses()
            browser.get(console.url + path)
            assert browser.statuses().get(console.url + path) == 401
            source = browser.driver.page_source
            assert "secret" not in source, source
            assert browser.js("return document.getElementById('rows')") is None  # no page


def test_foreign_task_url_is_404_like_an_unknown_id(console: Console, browser: Browser) -> None:
    console.cli("TASK.CREATE", "tools/call", "ID", "bobs-task", user="bob")
    browser.login("alice", PASSWORDS["alice"])
    browser.get(console.url + "/tasks/bobs-task")
    foreign = browser.driver.page_source
    browser.get(console.url + "/tasks/no-such-task")
    unknown = browser.driver.page_source
    assert "404: task not found" in foreign
    assert foreign == unknown
    # the API answers the same for both
    f_status, _, f_body = console.http("/api/task?id=bobs-task", "alice")
    u_status, _, u_body = console.http("/api/task?id=no-such-task", "alice")
    assert (f_status, f_body) == (u_status, u_body) == (404, b'{"error":"task not found"}')


SCRIPT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def test_script_in_task_data_is_inert(console: Console, browser: Browser) -> None:
    console.cli("TASK.CREATE", "tools/call<b onmouseover=alert(1)>", "ID", "xss", user="alice")
    console.cli("TASK.UPDATE", "xss", "MESSAGE", SCRIPT, user="alice")
    variables = {"note": SCRIPT, "<img src=x onerror='window.__pwned=3'>": "<b>bold?</b>"}
    console.cli("TASK.SETVARS", "xss", json.dumps(variables), user="alice")
    request = {"method": "elicitation/create", "params": {"message": SCRIPT}}
    console.cli(
        "TASK.ASK", "xss", "k<script>", json.dumps(request), "MESSAGE", SCRIPT, user="alice"
    )
    open_console(browser, console, "alice", "/tasks/xss")
    browser.wait(lambda: browser.text("#detail h2") == "xss", LIVE_S, "the detail view opens")
    time.sleep(0.3)  # give any injected handler its chance
    assert browser.js("return window.__pwned") is None
    assert (
        browser.js("return document.querySelectorAll('#rows script, #detail script').length") == 0
    )
    assert (
        browser.js("return document.querySelectorAll('#rows img, #detail img, #rows b').length")
        == 0
    )
    assert row(browser, "xss")["message"] == SCRIPT  # the text, literally
    assert row(browser, "xss")["method"] == "tools/call<b onmouseover=alert(1)>"
    detail = browser.text("#detail")
    assert SCRIPT in detail  # the status message, as text
    assert "<img src=x onerror='window.__pwned=3'>" in detail  # a variable's key, as text
    assert "k<script>" in detail  # the input request's key
    # and it stays inert when it arrives through the live feed
    console.cli("TASK.UPDATE", "xss", "MESSAGE", SCRIPT.replace("1", "5"), user="alice")
    browser.wait(
        lambda: row(browser, "xss")["message"] == SCRIPT.replace("1", "5"),
        LIVE_S,
        "the new message",
    )
    time.sleep(0.3)
    assert browser.js("return window.__pwned") is None


def test_ten_thousand_tasks_stay_responsive(make_console, browser: Browser) -> None:
    console = make_console(max_tasks_per_owner=0)
    client = redis.Redis(port=console.port, username="alice", password=PASSWORDS["alice"])
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(10_000):
            pipe.execute_command("TASK.CREATE", "tools/call", "ID", f"bulk-{i:05d}")
            if i % 10 == 0:
                pipe.execute_command("TASK.CANCEL", f"bulk-{i:05d}")
        pipe.execute()
        big = json.dumps({"content": [{"type": "text", "text": "x" * (2 * 1024 * 1024)}]})
        client.execute_command("TASK.COMPLETE", "bulk-09999", "completed", big)

        start = time.monotonic()
        open_console(browser, console, "alice")
        loaded = time.monotonic() - start
        rows = browser.rows()
        assert len(rows) == 50  # one page, not 10,000
        assert rows[0]["id"] == "bulk-09999" and rows[-1]["id"] == "bulk-09950"
        assert loaded < LOAD_S
        browser.wait(
            lambda: browser.text("#status-filter [data-status=''] .count") == "10000",
            5.0,
            "the counts cover all 10,000",
        )
        assert browser.text("#status-filter [data-status='cancelled'] .count") == "1000"

        # paging like TASK.LIST: the next page follows on
        browser.driver.find_element("id", "more").click()
        browser.wait(lambda: len(browser.rows()) == 100, 5.0, "the second page")
        assert browser.rows()[-1]["id"] == "bulk-09900"

        # the large result is collapsed in the detail view and offered as a download
        browser.driver.find_element("css selector", "#rows tr[data-id='bulk-09999'] a").click()
        browser.wait(lambda: browser.text("#detail h2") == "bulk-09999", LIVE_S, "detail")
        summaries = browser.js(
            "return Array.from(document.querySelectorAll('#detail details'))"
            ".map(d => [d.querySelector('summary').textContent, d.open])"
        )
        result = next(s for s in summaries if s[0].startswith("result "))
        assert "large" in result[0] and result[1] is False, result
        assert browser.js("return document.querySelector('#detail').textContent.length") < 100_000

        # 1,000 changes a second for two seconds while the page watches: it keeps up and
        # answers at once
        lags = []
        for second in range(2):
            t0 = time.monotonic()
            for j in range(10):
                pipe = client.pipeline(transaction=False)
                for k in range(100):
                    pipe.execute_command(
                        "TASK.UPDATE", f"bulk-{9998 - k:05d}", "MESSAGE", f"m{second}-{j}-{k}"
                    )
                pipe.execute()
                s0 = time.monotonic()
                browser.js("return 1")
                lags.append(time.monotonic() - s0)
                time.sleep(max(0.0, t0 + (j + 1) / 10 - time.monotonic()))
        assert max(lags) < 0.5, lags
        browser.wait(
            lambda: row(browser, "bulk-09998")["message"] == "m1-9-0",
            LIVE_S,
            "the last change shows",
        )

        # filtering the 10,000 by status is one request
        browser.js("document.querySelector(\"#status-filter [data-status='cancelled']\").click()")
        browser.wait(
            lambda: (
                len(browser.rows()) == 50
                and all(r["status"] == "cancelled" for r in browser.rows())
            ),
            5.0,
            "the cancelled ones",
        )
        assert_not_reloaded(browser)
    finally:
        client.close()
