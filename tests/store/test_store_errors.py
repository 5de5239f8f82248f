"""Error classes, reply texts and MCP codes; configuration validation and TASK.CONFIG items."""

from __future__ import annotations

import dataclasses

import pytest
from store_helpers import FakeClock

from taskstore.store import (
    InvalidArgument,
    InvalidTransition,
    LimitExceeded,
    NotReady,
    SecurityConfig,
    StoreConfig,
    TaskError,
    TaskExists,
    TaskExpired,
    TaskNotFound,
    TaskStatus,
    TaskStore,
    TooLarge,
    config_items,
)


def test_error_codes_and_mcp_codes() -> None:
    table = {
        TaskNotFound: ("NOTFOUND", -32602),
        TaskExpired: ("EXPIRED", -32602),
        InvalidTransition: ("INVALIDTRANSITION", -32602),
        NotReady: ("NOTREADY", -32602),
        TooLarge: ("TOOLARGE", -32602),
        LimitExceeded: ("LIMIT", -32603),
        TaskExists: ("EXISTS", -32602),
        InvalidArgument: ("ERR", -32602),
    }
    for cls, (code, mcp) in table.items():
        assert issubclass(cls, TaskError)
        assert (cls.code, cls.mcp_code) == (code, mcp)


def test_error_texts() -> None:
    assert str(TaskNotFound("t1")) == "NOTFOUND task not found: t1"
    assert str(TaskExpired("t1")) == "EXPIRED task expired: t1"
    assert str(InvalidTransition("t1", "completed", "working")) == (
        "INVALIDTRANSITION invalid transition from completed to working for task t1"
    )
    assert str(NotReady("t1", "working")) == "NOTREADY task t1 is working; no result yet"
    assert str(TooLarge("result is 5 bytes (max 4)")) == "TOOLARGE result is 5 bytes (max 4)"
    assert str(LimitExceeded(3, 3)) == (
        "LIMIT owner has 3 tasks (max 3): cancel or wait for existing tasks to expire"
    )
    assert str(TaskExists("t1")) == "EXISTS task already exists: t1"
    assert str(InvalidArgument("ERR invalid cursor")) == "ERR invalid cursor"
    assert str(InvalidArgument("invalid cursor")) == "ERR invalid cursor"
    err = TaskNotFound("t1")
    assert err.message == str(err)
    assert err.detail == "task not found: t1"
    assert err.task_id == "t1"


def test_errors_from_operations(store: TaskStore, clock: FakeClock) -> None:
    with pytest.raises(TaskNotFound, match=r"^NOTFOUND task not found: nope$"):
        store.get("o", "nope")
    task_id = store.create("o", "tools/call", 1000).task_id
    with pytest.raises(NotReady) as ready:
        store.get_result("o", task_id)
    assert str(ready.value) == f"NOTREADY task {task_id} is working; no result yet"
    store.update_status("o", task_id, TaskStatus.COMPLETED, None, set_message=False)
    with pytest.raises(NotReady) as ready:
        store.get_result("o", task_id)  # terminal, but no result stored
    assert str(ready.value) == f"NOTREADY task {task_id} is completed; no result yet"
    clock.advance(1000)
    with pytest.raises(TaskExpired) as expired:
        store.set_result("o", task_id, b"{}")
    assert str(expired.value) == f"EXPIRED task expired: {task_id}"


def test_other_owner_is_not_found(store: TaskStore) -> None:
    task_id = store.create("alice", "tools/call").task_id
    for op in (
        lambda: store.get("bob", task_id),
        lambda: store.get_result("bob", task_id),
        lambda: store.cancel("bob", task_id, None),
        lambda: store.set_variables("bob", task_id, b"{}"),
        lambda: store.set_result("bob", task_id, b"{}"),
        lambda: store.update_status("bob", task_id, None, "x", set_message=True),
        lambda: store.complete_with_result("bob", task_id, TaskStatus.COMPLETED, b"{}", None),
    ):
        with pytest.raises(TaskNotFound) as info:
            op()
        assert str(info.value) == f"NOTFOUND task not found: {task_id}"
    assert store.delete("bob", task_id) is False
    assert store.get("alice", task_id).status is TaskStatus.WORKING


def test_store_config_defaults() -> None:
    cfg = StoreConfig()
    assert dataclasses.asdict(cfg) == {
        "default_ttl_ms": 3_600_000,
        "max_ttl_ms": 86_400_000,
        "max_tasks_per_owner": 100,
        "max_variable_size_bytes": 1_048_576,
        "max_variable_depth": 10,
        "max_string_length": 65_536,
        "max_result_bytes": 16_777_216,
        "max_input_bytes": 1_048_576,
        "default_poll_interval_ms": 5000,
        "list_default_limit": 50,
        "list_max_limit": 1000,
        "expired_retention_ms": 60_000,
        "shards": 16,
    }
    sec = SecurityConfig()
    assert (sec.allow_anonymous, sec.default_owner) == (True, "local")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.shards = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"shards": 3}, "shards must be a power of two between 1 and 1024"),
        ({"shards": 0}, "shards must be a power of two between 1 and 1024"),
        ({"shards": 2048}, "shards must be a power of two between 1 and 1024"),
        ({"default_ttl_ms": 0}, "default_ttl_ms must be between 1 and"),
        ({"max_ttl_ms": -1}, "max_ttl_ms must be between 0 and"),
        ({"default_ttl_ms": 10, "max_ttl_ms": 5}, "default_ttl_ms (10) must not exceed max_ttl_ms"),
        ({"max_tasks_per_owner": -1}, "max_tasks_per_owner must be between 0 and"),
        ({"max_variable_depth": 0}, "max_variable_depth must be between 1 and"),
        ({"max_string_length": 0}, "max_string_length must be between 1 and"),
        ({"max_result_bytes": 0}, "max_result_bytes must be between 1 and"),
        ({"default_poll_interval_ms": 0}, "default_poll_interval_ms must be between 1 and"),
        ({"list_max_limit": 0}, "list_max_limit must be between 1 and"),
        ({"list_default_limit": 60, "list_max_limit": 50}, "list_default_limit (60) must not"),
        ({"expired_retention_ms": -1}, "expired_retention_ms must be between 0 and"),
        ({"max_variable_size_bytes": "big"}, "max_variable_size_bytes must be an integer"),
        ({"list_default_limit": True}, "list_default_limit must be an integer"),
    ],
)
def test_store_config_validation(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        StoreConfig(**settings)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_store_config_accepts_edges() -> None:
    for shards in (1, 2, 1024):
        assert StoreConfig(shards=shards).shards == shards
    # No maximum: any default works, and retention 0 / unlimited tasks are allowed.
    StoreConfig(max_ttl_ms=0, default_ttl_ms=10**12, max_tasks_per_owner=0, expired_retention_ms=0)


def test_security_config_validation() -> None:
    with pytest.raises(ValueError, match="default_owner"):
        SecurityConfig(default_owner="")
    with pytest.raises(ValueError, match="allow_anonymous"):
        SecurityConfig(allow_anonymous="yes")  # type: ignore[arg-type]


def test_config_items() -> None:
    items = config_items(StoreConfig(shards=4), SecurityConfig(allow_anonymous=False))
    assert items[0] == ("default_ttl_ms", 3_600_000)
    assert ("shards", 4) in items
    assert items[-2:] == [("allow_anonymous", False), ("default_owner", "local")]
    assert [name for name, _ in items] == [
        *(f.name for f in dataclasses.fields(StoreConfig)),
        "allow_anonymous",
        "default_owner",
    ]
    store = TaskStore(StoreConfig(shards=4), SecurityConfig(allow_anonymous=False))
    assert store.config_items() == items


def test_reconfigure(store: TaskStore) -> None:
    store.reconfigure(StoreConfig(max_ttl_ms=1000, default_ttl_ms=500))
    with pytest.raises(InvalidArgument, match=r"^ERR TTL 1001ms exceeds maximum allowed 1000ms$"):
        store.create("o", "m", 1001)
    with pytest.raises(ValueError, match="shards"):
        store.reconfigure(StoreConfig(shards=2))
    store.reconfigure(security_config=SecurityConfig(default_owner="me"))
    assert ("default_owner", "me") in store.config_items()
