"""Store and security settings, named exactly as the config file, flags and CONFIG GET name them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["SecurityConfig", "StoreConfig", "config_items"]

# Integers clients see in JSON stay exact in JavaScript below 2**53.
MAX_SAFE_INT = 2**53 - 1


def _require_int(name: str, value: object, minimum: int) -> None:
    # bool is an int subclass; a config value of True is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    if value < minimum or value > MAX_SAFE_INT:
        raise ValueError(f"{name} must be between {minimum} and {MAX_SAFE_INT}")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Limits of the task store (docs/commands.md §5); validated on construction."""

    default_ttl_ms: int = 3_600_000
    max_ttl_ms: int = 86_400_000
    max_tasks_per_owner: int = 100
    max_variable_size_bytes: int = 1_048_576
    max_variable_depth: int = 10
    max_string_length: int = 65_536
    max_result_bytes: int = 16_777_216
    max_input_bytes: int = 1_048_576
    default_poll_interval_ms: int = 5000
    list_default_limit: int = 50
    list_max_limit: int = 1000
    expired_retention_ms: int = 60_000
    shards: int = 16

    def __post_init__(self) -> None:
        _require_int("default_ttl_ms", self.default_ttl_ms, 1)
        _require_int("max_ttl_ms", self.max_ttl_ms, 0)
        _require_int("max_tasks_per_owner", self.max_tasks_per_owner, 0)
        _require_int("max_variable_size_bytes", self.max_variable_size_bytes, 2)
        _require_int("max_variable_depth", self.max_variable_depth, 1)
        _require_int("max_string_length", self.max_string_length, 1)
        _require_int("max_result_bytes", self.max_result_bytes, 1)
        _require_int("max_input_bytes", self.max_input_bytes, 1)
        _require_int("default_poll_interval_ms", self.default_poll_interval_ms, 1)
        _require_int("list_default_limit", self.list_default_limit, 1)
        _require_int("list_max_limit", self.list_max_limit, 1)
        _require_int("expired_retention_ms", self.expired_retention_ms, 0)
        if self.max_ttl_ms and self.default_ttl_ms > self.max_ttl_ms:
            # Otherwise every create without TTL would be rejected.
            raise ValueError(
                f"default_ttl_ms ({self.default_ttl_ms}) must not exceed "
                f"max_ttl_ms ({self.max_ttl_ms})"
            )
        if self.list_default_limit > self.list_max_limit:
            raise ValueError(
                f"list_default_limit ({self.list_default_limit}) must not exceed "
                f"list_max_limit ({self.list_max_limit})"
            )
        shards = self.shards
        if (
            not isinstance(shards, int)
            or isinstance(shards, bool)
            or not 1 <= shards <= 1024
            or shards & (shards - 1)
        ):
            raise ValueError("shards must be a power of two between 1 and 1024")


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """Anonymous access policy; enforced by the server, carried here so TASK.CONFIG shows it."""

    allow_anonymous: bool = True
    default_owner: str = "local"

    def __post_init__(self) -> None:
        if not isinstance(self.allow_anonymous, bool):
            raise ValueError("allow_anonymous must be a boolean")
        if not isinstance(self.default_owner, str) or not self.default_owner:
            raise ValueError("default_owner must be a non-empty string")


def config_items(
    store_cfg: StoreConfig, security_cfg: SecurityConfig
) -> list[tuple[str, str | int | bool]]:
    """Setting name/value pairs in declaration order, for TASK.CONFIG and CONFIG GET."""
    items: list[tuple[str, str | int | bool]] = []
    for cfg in (store_cfg, security_cfg):
        for field in dataclasses.fields(cfg):
            items.append((field.name, getattr(cfg, field.name)))
    return items
