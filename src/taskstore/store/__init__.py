"""The task domain: records, the status state machine, configuration and the sharded store.

Pure and synchronous (no I/O, no asyncio); it never imports ``taskstore.server`` or
``taskstore.protocol``.
"""

from taskstore.store.config import SecurityConfig, StoreConfig, config_items
from taskstore.store.errors import (
    InvalidArgument,
    InvalidTransition,
    LimitExceeded,
    NotReady,
    TaskError,
    TaskExists,
    TaskExpired,
    TaskNotFound,
    TooLarge,
)
from taskstore.store.record import Interaction, TaskRecord, json_object, list_json, list_json_v2
from taskstore.store.status import TaskStatus, parse_status
from taskstore.store.store import Clock, Listener, TaskStore, answers_json

__all__ = [
    "Clock",
    "Interaction",
    "InvalidArgument",
    "InvalidTransition",
    "LimitExceeded",
    "Listener",
    "NotReady",
    "SecurityConfig",
    "StoreConfig",
    "TaskError",
    "TaskExists",
    "TaskExpired",
    "TaskNotFound",
    "TaskRecord",
    "TaskStatus",
    "TaskStore",
    "TooLarge",
    "answers_json",
    "config_items",
    "json_object",
    "list_json",
    "list_json_v2",
    "parse_status",
]
