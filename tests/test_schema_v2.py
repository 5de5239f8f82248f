"""tests/schema_v2.py validates against the ext-tasks draft schema, and is not vacuous.

Hand-written second-generation (io.modelcontextprotocol/tasks) payloads: the valid ones must pass,
and each invalid one must be rejected for the reason named. The "open object" tests pin what this
schema revision does NOT forbid, so a tighter revision shows up here first.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

import schema_v2

# The examples run against whichever validators judge (schema_v2.validator_backend()): the
# draft JSON Schema when a copy is present, else the npm package's, whose messages differ, so
# the exact reasons are checked with the schema file only. Tests about the file itself are
# marked requires_schema.
FILE = schema_v2.schema_available()

T0 = "2026-11-28T10:00:00.000Z"
DROP = object()

WORKING: dict[str, Any] = {
    "taskId": "t",
    "status": "working",
    "createdAt": T0,
    "lastUpdatedAt": T0,
    "ttlMs": 60000,
    "pollIntervalMs": 5000,
}

ELICIT_FORM = {
    "method": "elicitation/create",
    "params": {
        "message": "Which account?",
        "requestedSchema": {
            "type": "object",
            "properties": {"account": {"type": "string"}},
            "required": ["account"],
        },
    },
}
ELICIT_URL = {
    "method": "elicitation/create",
    "params": {"mode": "url", "message": "Sign in", "url": "https://example.com/login"},
}
SAMPLING = {
    "method": "sampling/createMessage",
    "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
        "maxTokens": 100,
    },
}
ROOTS = {"method": "roots/list", "params": {}}


def task(**changes: Any) -> dict[str, Any]:
    """WORKING with changes applied; a value of DROP removes the key."""
    obj = copy.deepcopy(WORKING)
    for key, value in changes.items():
        if value is DROP:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


def renamed(obj: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj[new] = obj.pop(old)
    return obj


INPUT_REQUIRED = task(
    status="input_required", statusMessage="waiting for the user", inputRequests={"k1": ELICIT_FORM}
)
COMPLETED = task(
    status="completed", result={"content": [{"type": "text", "text": "done"}], "isError": False}
)
FAILED = task(status="failed", error={"code": -32603, "message": "Internal error"})
CANCELLED = task(status="cancelled", statusMessage="cancelled by the client")

VALID_DETAILED = {
    "working": WORKING,
    "working-ttl-null": task(ttlMs=None),
    "working-no-poll-interval": task(pollIntervalMs=DROP),
    "working-status-message": task(statusMessage="step 2 of 3"),
    "working-zero-ttl": task(ttlMs=0, pollIntervalMs=0),
    "input_required-elicitation": INPUT_REQUIRED,
    "input_required-several": task(
        status="input_required",
        inputRequests={"e1": ELICIT_URL, "s1": SAMPLING, "r1": ROOTS, "e2": ELICIT_FORM},
    ),
    "input_required-roots-without-params": task(
        status="input_required", inputRequests={"r": {"method": "roots/list"}}
    ),
    "completed": COMPLETED,
    "completed-tool-error": task(
        status="completed", result={"content": [{"type": "text", "text": "no"}], "isError": True}
    ),
    "completed-empty-result": task(status="completed", result={}),
    "failed": FAILED,
    "failed-with-data": task(
        status="failed", error={"code": -32602, "message": "Invalid params", "data": {"x": [1]}}
    ),
    "cancelled": CANCELLED,
}


@pytest.mark.parametrize("obj", list(VALID_DETAILED.values()), ids=list(VALID_DETAILED))
def test_valid_detailed_tasks_pass_every_task_shape(obj: dict[str, Any]) -> None:
    schema_v2.validate_detailed_task(obj)
    schema_v2.validate_task(obj)
    schema_v2.validate_get_task_result({**obj, "resultType": "complete"})
    schema_v2.validate_task_status_notification_params(obj)


INVALID_DETAILED = {
    "missing-ttlMs": (task(ttlMs=DROP), "'ttlMs' is a required property"),
    "ttl-instead-of-ttlMs": (renamed(WORKING, "ttlMs", "ttl"), "'ttlMs' is a required property"),
    "missing-taskId": (task(taskId=DROP), "'taskId' is a required property"),
    "missing-status": (task(status=DROP), "not valid under any"),
    "missing-createdAt": (task(createdAt=DROP), "'createdAt' is a required property"),
    "missing-lastUpdatedAt": (task(lastUpdatedAt=DROP), "'lastUpdatedAt' is a required property"),
    "status-canceled": (task(status="canceled"), "status 'canceled' is none of the allowed"),
    "status-submitted": (task(status="submitted"), "status 'submitted' is none of the allowed"),
    "status-uppercase": (task(status="Working"), "status 'Working' is none of the allowed"),
    "status-v1-input-required": (
        task(status="input-required", inputRequests={}),
        "none of the allowed",
    ),
    "failed-without-error": (task(status="failed"), "'error' is a required property"),
    "completed-without-result": (task(status="completed"), "'result' is a required property"),
    "input_required-without-inputRequests": (
        task(status="input_required"),
        "'inputRequests' is a required property",
    ),
    "ttlMs-float": (task(ttlMs=1.5), "1.5 is not of type 'integer'"),
    "ttlMs-string": (task(ttlMs="60000"), "is not of type 'integer'"),
    "ttlMs-beyond-safe-integer": (task(ttlMs=2**53), "is greater than the maximum"),
    "pollIntervalMs-null": (task(pollIntervalMs=None), "None is not of type 'integer'"),
    "pollIntervalMs-float": (task(pollIntervalMs=2.5), "2.5 is not of type 'integer'"),
    "taskId-integer": (task(taskId=7), "7 is not of type 'string'"),
    "createdAt-number": (task(createdAt=1764324000000), "is not of type 'string'"),
    "statusMessage-number": (task(statusMessage=3), "3 is not of type 'string'"),
    "statusMessage-null": (task(statusMessage=None), "None is not of type 'string'"),
    "result-array": (task(status="completed", result=[1]), "[1] is not of type 'object'"),
    "error-without-message": (
        task(status="failed", error={"code": -32603}),
        "'message' is a required property",
    ),
    "error-code-string": (
        task(status="failed", error={"code": "E1", "message": "m"}),
        "'E1' is not of type 'integer'",
    ),
    "error-string": (task(status="failed", error="boom"), "'boom' is not of type 'object'"),
    "inputRequests-array": (
        task(status="input_required", inputRequests=[ELICIT_FORM]),
        "is not of type 'object'",
    ),
    "inputRequest-missing-params": (
        task(status="input_required", inputRequests={"k1": {"method": "elicitation/create"}}),
        "'params' is a required property",
    ),
    "inputRequest-unknown-method": (
        task(status="input_required", inputRequests={"k1": {"method": "tools/call", "params": {}}}),
        "method 'tools/call' is none of the allowed values",
    ),
    "elicitation-without-requestedSchema": (
        task(
            status="input_required",
            inputRequests={"k1": {"method": "elicitation/create", "params": {"message": "x"}}},
        ),
        "'requestedSchema' is a required property",
    ),
    "sampling-without-maxTokens": (
        task(
            status="input_required",
            inputRequests={"k1": {"method": "sampling/createMessage", "params": {"messages": []}}},
        ),
        "'maxTokens' is a required property",
    ),
    "not-an-object": ([WORKING], "is not of type 'object'"),
}


@pytest.mark.parametrize(
    ("obj", "reason"), list(INVALID_DETAILED.values()), ids=list(INVALID_DETAILED)
)
def test_invalid_detailed_tasks_are_rejected_for_the_right_reason(obj: Any, reason: str) -> None:
    with pytest.raises(jsonschema.ValidationError) as info:
        schema_v2.validate_detailed_task(obj)
    message = info.value.message
    assert "not a valid DetailedTask" in message
    assert reason in message or not FILE
    # The same payload is no valid tasks/get answer either.
    body = {**obj, "resultType": "complete"} if isinstance(obj, dict) else obj
    with pytest.raises(jsonschema.ValidationError):
        schema_v2.validate_get_task_result(body)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (task(ttlMs=DROP), "'ttlMs' is a required property"),
        (renamed(WORKING, "ttlMs", "ttl"), "'ttlMs' is a required property"),
        (renamed(WORKING, "pollIntervalMs", "pollInterval") | {"ttlMs": "x"}, "'x'"),
        (task(status="canceled"), "'canceled' is not valid under any of the given schemas"),
        (task(createdAt=DROP), "'createdAt' is a required property"),
    ],
    ids=["missing-ttlMs", "ttl-instead-of-ttlMs", "ttlMs-string", "bad-status", "no-createdAt"],
)
def test_invalid_tasks_are_rejected(obj: dict[str, Any], reason: str) -> None:
    with pytest.raises(jsonschema.ValidationError) as info:
        schema_v2.validate_task(obj)
    assert "not a valid Task" in info.value.message
    assert reason in info.value.message or not FILE


def test_task_carries_no_status_payload_requirement() -> None:
    # Task (and so CreateTaskResult) is the flat object: a terminal status without its payload
    # is a valid Task but not a valid DetailedTask.
    for status in ("completed", "failed", "input_required"):
        schema_v2.validate_task(task(status=status))
        schema_v2.validate_create_task_result(task(status=status, resultType="task"))
        with pytest.raises(jsonschema.ValidationError):
            schema_v2.validate_detailed_task(task(status=status))


def test_task_objects_are_open_in_this_schema_revision() -> None:
    # No arm of Task/DetailedTask sets additionalProperties: false (generated with Zod's
    # io: "input"), so unknown members are accepted: _meta, an old-style ttl, a resultType.
    extras = {
        "_meta": {"io.modelcontextprotocol/related-task": {"taskId": "t"}},
        "ttl": 60000,
        "pollInterval": 5000,
        "resultType": "complete",
        "somethingElse": [1, 2],
    }
    for obj in (WORKING, INPUT_REQUIRED, COMPLETED, FAILED, CANCELLED):
        schema_v2.validate_task({**obj, **extras})
        schema_v2.validate_detailed_task({**obj, **extras})
    # ...and a payload member of another status does not make a task invalid either.
    schema_v2.validate_detailed_task({**FAILED, "result": {"content": []}})
    schema_v2.validate_detailed_task({**WORKING, "inputRequests": {"k": ELICIT_FORM}})


def test_detailed_task_does_not_require_result_type() -> None:
    schema_v2.validate_detailed_task(WORKING)


@schema_v2.requires_schema
def test_detailed_task_has_no_result_type_in_the_file() -> None:
    assert (
        "resultType"
        not in schema_v2.load_schema()["$defs"]["DetailedTask"]["anyOf"][0]["properties"]
    )


def test_create_task_result() -> None:
    schema_v2.validate_create_task_result({**WORKING, "resultType": "task"})
    schema_v2.validate_create_task_result(
        {
            **WORKING,
            "ttlMs": None,
            "resultType": "task",
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "taskstore", "version": "1"}},
        }
    )
    bad = {
        "no-resultType": (WORKING, "'resultType' is a required property"),
        "resultType-complete": ({**WORKING, "resultType": "complete"}, "'task' was expected"),
        "no-ttlMs": (task(ttlMs=DROP, resultType="task"), "'ttlMs' is a required property"),
        "bad-status": (task(status="done", resultType="task"), "is not valid under any"),
        "serverInfo-without-version": (
            {**WORKING, "resultType": "task", "_meta": {"io.modelcontextprotocol/serverInfo": {}}},
            "is a required property",
        ),
    }
    if not FILE:
        # the npm package's Result does not look into _meta (the draft schema does)
        del bad["serverInfo-without-version"]
    for name, (obj, reason) in bad.items():
        with pytest.raises(jsonschema.ValidationError) as info:
            schema_v2.validate_create_task_result(obj)
        assert "not a valid CreateTaskResult" in info.value.message, name
        assert reason in info.value.message or not FILE, name


def test_get_task_result_needs_result_type_complete() -> None:
    schema_v2.validate_get_task_result({**COMPLETED, "resultType": "complete"})
    for obj, reason in [
        (COMPLETED, "'resultType' is a required property"),
        ({**COMPLETED, "resultType": "task"}, "'complete' was expected"),
        ({**COMPLETED, "resultType": None}, "None is not of type 'string'"),
    ]:
        with pytest.raises(jsonschema.ValidationError) as info:
            schema_v2.validate_get_task_result(obj)
        assert reason in info.value.message or not FILE


@schema_v2.requires_schema
def test_error_message_names_definition_path_and_keyword() -> None:
    with pytest.raises(jsonschema.ValidationError) as info:
        schema_v2.validate_detailed_task(task(status="failed", error={"code": "x", "message": "m"}))
    message = info.value.message
    assert message.startswith("not a valid DetailedTask (ext-tasks draft schema): at $.error.code:")
    assert "[schema: #/$defs/DetailedTask/anyOf/3/properties/error/properties/code/type]" in message
    assert list(info.value.absolute_path) == ["error", "code"]


@schema_v2.requires_schema
def test_schema_is_the_pinned_revision() -> None:
    assert schema_v2.schema_sha256() == schema_v2.SCHEMA_SHA256
    schema = schema_v2.load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "definitions" not in schema
    names = set(schema_v2.definition_names())
    assert {"Task", "DetailedTask", "CreateTaskResult", "GetTaskResult"} <= names
    assert {"TaskStatusNotificationParams", "InputRequests", "Error", "Result"} <= names
    assert isinstance(schema_v2.validator("Task"), jsonschema.Draft202012Validator)


def test_unknown_definition_is_an_error() -> None:
    with pytest.raises((KeyError, jsonschema.ValidationError), match="NoSuchThing"):
        schema_v2.validate("NoSuchThing", {})


def test_without_the_schema_file_the_npm_validators_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema_v2, "schema_available", lambda: False)
    assert "ext-tasks core/v2" in schema_v2.validator_backend()
    schema_v2.validate_detailed_task(INPUT_REQUIRED)
    with pytest.raises(jsonschema.ValidationError, match="ext-tasks core/v2"):
        schema_v2.validate_detailed_task(task(status="failed"))
