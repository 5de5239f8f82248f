"""Sans-IO parts of the client's Functions backend: server detection, the TASK → FCALL
translation (the owner found by type, never by position), URL redaction, the config argument."""

from __future__ import annotations

import pytest

from taskstore.client import _commands as cmd
from taskstore.client._functions import (
    OwnerTag,
    is_cluster_info,
    is_taskstore,
    parse_call,
    redact,
)
from taskstore.functions import CONFIG_FIELDS, config_arg, library_code, library_version
from taskstore.store.config import StoreConfig


def test_detection() -> None:
    assert is_taskstore({"taskstore_version": "0.2.0", "redis_version": "7.4.0"})
    assert not is_taskstore({"redis_version": "7.0.15", "redis_mode": "standalone"})
    assert is_cluster_info({"redis_mode": "cluster"})  # Redis
    assert is_cluster_info({"server_mode": "cluster", "redis_version": "7.2.4"})  # Valkey 8
    assert not is_cluster_info({"redis_mode": "standalone"})
    assert not is_cluster_info({"server_mode": "standalone"})


def test_owner_is_found_by_type() -> None:
    # a task whose id is "OWNER", a status argument that follows it: no owner option here
    call = parse_call(cmd.update_args("OWNER", "working", None, None), "2025-11-25", "c", "local")
    assert call.key == "ts:{local}:" and call.rest == ["OWNER", "working"]
    call = parse_call(
        cmd.update_args("OWNER", "working", None, OwnerTag("alice")), "2025-11-25", "c", "local"
    )
    assert call.key == "ts:{alice}:" and call.rest == ["OWNER", "working"]
    assert call.channel == "tasks:{alice}"
    assert call.args()[:6] == ["FCALL", "ts_update", 1, "ts:{alice}:", "2025-11-25", "c"]


def test_create_gets_random_bytes() -> None:
    a = parse_call(cmd.create_args("m", None, None, None, None), "2026-07-28", "c", "o")
    b = parse_call(cmd.create_args("m", None, None, None, None), "2026-07-28", "c", "o")
    assert len(a.head[2]) == 32 and int(a.head[2], 16) >= 0
    assert a.head[2] != b.head[2]


@pytest.mark.parametrize(
    ("args", "blocking", "timeout"),
    [
        (cmd.result_args("t", None, False, None), None, 0),
        (cmd.result_args("t", 250, True, None), "result", 250),
        (cmd.result_args("t", -1, False, None), None, 0),  # the function says: negative
        (cmd.answers_args("t", 0, None), "answers", 0),
        (cmd.answers_args("t", None, None), None, 0),
        (cmd.wait_args("t", None, None, None), "wait", 0),
        (cmd.wait_args("t", "working", 10, None), "wait", 10),
        (cmd.wait_args("t", None, -3, None), None, 0),
    ],
)
def test_blocking_calls(args: cmd.Args, blocking: str | None, timeout: int) -> None:
    call = parse_call(args, "2025-11-25", "c", "o")
    assert (call.blocking, call.timeout_ms) == (blocking, timeout)
    assert call.task_id == "t"


def test_notification_filter() -> None:
    call = parse_call(cmd.wait_args("a-1", None, None, None), "2025-11-25", "c", "o")
    assert call.matches(b'{"taskId":"a-1","status":"working"}')
    assert call.matches('{"taskId":"a-1","status":"working"}')
    assert not call.matches(b'{"taskId":"a-10","status":"working"}')
    assert not call.matches(b'{"taskId":"b","status":"working"}')


def test_redact() -> None:
    assert redact("redis://u:secret@h:6379/0") == "redis://u:***@h:6379/0"
    assert redact("redis://:secret@h:6379") == "redis://:***@h:6379"
    assert redact("redis://h:6379") == "redis://h:6379"


def test_config_arg() -> None:
    assert (
        config_arg() == "3600000,86400000,100,1048576,10,65536,16777216,1048576,5000,50,1000,60000"
    )
    cfg = StoreConfig(max_tasks_per_owner=7, expired_retention_ms=0)
    values = config_arg(cfg).split(",")
    assert dict(zip(CONFIG_FIELDS, values, strict=True))["max_tasks_per_owner"] == "7"
    assert values[-1] == "0"
    # the library's own list of names is the same, in the same order
    assert "'" + "', '".join(CONFIG_FIELDS) + "'" in " ".join(library_code().split())


def test_library_header() -> None:
    code = library_code()
    assert code.startswith("#!lua name=taskstore\n")
    assert f"local VERSION = '{library_version()}'" in code
