"""Validate second-generation task JSON against the extension's own draft JSON Schema.

Second generation = the ``io.modelcontextprotocol/tasks`` extension (SEP-2663, MCP 2026-07-28).
The schema is ``schema/draft/schema.json`` of modelcontextprotocol/experimental-ext-tasks at
commit e61f822a925ff451880a2e966fb145203d7406f6. The file is third-party data and is not committed
here: it is read from the steering repository's shared/ folder (or $TASKSTORE_EXT_TASKS_SCHEMA);
tests/data/README.md has its provenance, licence and the exact places looked at. It declares
JSON Schema draft 2020-12 and keys its definitions under ``$defs``; every ``$ref`` in it is a local
``#/$defs/<Name>``, so a definition is validated by wrapping the whole document with a root
``$ref`` (no network, no registry needed).

Usage from a test::

    import schema_v2

    schema_v2.validate_detailed_task(obj)       # what tasks/get and notifications carry
    schema_v2.validate_get_task_result(obj)     # DetailedTask + Result, resultType "complete"
    schema_v2.validate_create_task_result(obj)  # Task + Result, resultType "task"

Each raises ``jsonschema.ValidationError`` naming the definition, the JSON path and the failing
keyword. When no copy of the schema can be found the validators call ``pytest.skip`` (the reason
says where to put the file); ``requires_schema`` marks whole tests or modules the same way.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import ValidationError, best_match, relevance
from jsonschema.validators import validator_for

SCHEMA_FILE_NAME = "ext-tasks-draft-schema.json"
SCHEMA_ENV = "TASKSTORE_EXT_TASKS_SCHEMA"
SCHEMA_SOURCE = (
    "modelcontextprotocol/experimental-ext-tasks, schema/draft/schema.json "
    "at e61f822a925ff451880a2e966fb145203d7406f6"
)
# SHA-256 of the file's bytes (99,181 bytes, UTF-8, trailing newline): the revision the facts in
# tests/test_schema_v2.py were read from. A different file fails test_schema_is_the_pinned_revision.
SCHEMA_SHA256 = "10933a5003097bbccb03d964e6a5f7a2819cc4d7a1d07e27c6765cbf5da35c5c"

_TESTS_DIR = Path(__file__).resolve().parent
# The steering repository's shared/ folder sits beside the project checkout, both here
# (/work/shared next to /work/main) and in CI (a copy of shared/ beside the fresh clone).
_SHARED_DIR = _TESTS_DIR.parent.parent / "shared"


class SchemaUnavailable(RuntimeError):
    """No copy of the extension's draft schema was found."""


def schema_candidates() -> list[Path]:
    """Where the schema is looked for, first match wins."""
    paths = []
    env = os.environ.get(SCHEMA_ENV)
    if env:
        paths.append(Path(env))
    paths += [
        _SHARED_DIR / "reference" / SCHEMA_FILE_NAME,
        _SHARED_DIR / "data" / SCHEMA_FILE_NAME,
        _SHARED_DIR / SCHEMA_FILE_NAME,
    ]
    return paths


def find_schema() -> Path | None:
    for path in schema_candidates():
        if path.is_file():
            return path
    return None


def schema_available() -> bool:
    return find_schema() is not None


def unavailable_reason() -> str:
    where = ", ".join(str(p) for p in schema_candidates())
    return (
        f"the io.modelcontextprotocol/tasks draft schema ({SCHEMA_SOURCE}) is not present; "
        f"put it at one of: {where} (or point ${SCHEMA_ENV} at it)"
    )


requires_schema = pytest.mark.skipif(not schema_available(), reason=unavailable_reason())


@cache
def schema_bytes() -> bytes:
    path = find_schema()
    if path is None:
        raise SchemaUnavailable(unavailable_reason())
    return path.read_bytes()


def schema_sha256() -> str:
    return hashlib.sha256(schema_bytes()).hexdigest()


@cache
def load_schema() -> dict[str, Any]:
    """The whole schema document (raises SchemaUnavailable if there is no copy)."""
    schema = json.loads(schema_bytes().decode("utf-8"))
    assert isinstance(schema, dict)
    return schema


def definition_names() -> list[str]:
    return sorted(load_schema()["$defs"])


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for ``#/$defs/<name>`` of the schema, with the file's own ``$schema`` dialect."""
    schema = load_schema()
    if name not in schema["$defs"]:
        raise KeyError(f"the ext-tasks draft schema has no definition {name!r}")
    cls = validator_for(schema)
    cls.check_schema(schema)
    # The document root holds only $schema/$id/title/description/$defs, so adding a root $ref
    # validates exactly the named definition, with every #/$defs/... resolved inside the file.
    return cls({**schema, "$ref": f"#/$defs/{name}"})


def _discriminate(error: ValidationError) -> list[ValidationError] | str | None:
    """Follow an anyOf/oneOf whose arms are told apart by a ``const`` member (status, method).

    Returns the errors of the one arm whose discriminator matches, or a message when no arm's
    does, or None when the arms are not discriminated that way.
    """
    by_arm: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        by_arm.setdefault(sub.relative_schema_path[0], []).append(sub)

    def discriminator_errors(errs: list[ValidationError]) -> list[ValidationError]:
        return [e for e in errs if e.validator == "const" and len(e.relative_path) == 1]

    rejected = {arm for arm, errs in by_arm.items() if discriminator_errors(errs)}
    if not rejected:
        return None
    remaining = [errs for arm, errs in by_arm.items() if arm not in rejected]
    if len(remaining) == 1:
        return remaining[0]
    if remaining:
        return None
    first = discriminator_errors(next(iter(by_arm.values())))[0]
    field = first.relative_path[0]
    allowed = [discriminator_errors(errs)[0].validator_value for errs in by_arm.values()]
    value = error.instance.get(field) if isinstance(error.instance, dict) else None
    return f"{field} {value!r} is none of the allowed values {allowed}"


def _most_useful(errors: list[ValidationError]) -> ValidationError:
    error = max(errors, key=relevance)
    for _ in range(64):
        if error.validator not in ("anyOf", "oneOf") or not error.context:
            return error
        sub = _discriminate(error)
        if isinstance(sub, str):
            error.message = sub
            return error
        if sub is not None:
            error = max(sub, key=relevance)
            continue
        if all(not e.relative_path for e in error.context):
            # Every alternative fails at this very value: say what each one wanted.
            wanted = list(dict.fromkeys(e.message for e in error.context))
            error.message += " (" + "; ".join(w[:200] for w in wanted[:8]) + ")"
            return error
        error = best_match(error.context)
    return error


def validate(name: str, obj: Any) -> None:
    """Validate ``obj`` against ``#/$defs/<name>``; raise ValidationError with a clear message.

    Without a copy of the draft schema (developers may not commit it: tests/data/README.md),
    the official validators of the npm package ``@modelcontextprotocol/ext-tasks`` (core/v2,
    pinned in tests/compat/package.json and installed by scripts/test.sh) judge instead.
    Never a skip: a payload is always checked by one of the two.
    """
    if not schema_available():
        _node_validate(name, obj)
        return
    v = validator(name)
    errors = list(v.iter_errors(obj))
    if not errors:
        return
    error = _most_useful(errors)
    keyword = "/".join(str(p) for p in error.absolute_schema_path)
    error.message = (
        f"not a valid {name} (ext-tasks draft schema): at {error.json_path}: {error.message}"
        f" [schema: #/$defs/{name}/{keyword}]"
    )
    if len(errors) > 1:
        error.message += f" (and {len(errors) - 1} other error(s))"
    raise error


_NODE_SCRIPT = _TESTS_DIR / "compat" / "node" / "validate_v2.mjs"


@cache
def _node() -> subprocess.Popen[str]:
    """One long-lived Node process running the ext-tasks validators (ended at exit)."""
    node = shutil.which("node")
    modules = _TESTS_DIR / "compat" / "node_modules" / "@modelcontextprotocol" / "ext-tasks"
    if node is None or not modules.is_dir():
        pytest.fail(
            "validating 2026-07-28 tasks needs the ext-tasks draft schema or Node.js with "
            "tests/compat's npm packages (scripts/test.sh installs them: npm ci --prefix "
            "tests/compat)"
        )
    proc = subprocess.Popen(
        [node, str(_NODE_SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=_NODE_SCRIPT.parent,
    )
    assert proc.stdout is not None
    hello = json.loads(proc.stdout.readline())
    assert hello.get("ready"), hello
    atexit.register(proc.kill)
    return proc


def validator_backend() -> str:
    """Which validators judge: the draft JSON Schema file, or the npm package's."""
    if schema_available():
        return f"jsonschema: {SCHEMA_SOURCE}"
    return "@modelcontextprotocol/ext-tasks core/v2 (npm, Zod schemas)"


def _node_validate(name: str, obj: Any) -> None:
    proc = _node()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"def": name, "value": obj}) + "\n")
    proc.stdin.flush()
    reply = json.loads(proc.stdout.readline())
    if not reply["ok"]:
        raise ValidationError(
            f"not a valid {name} (@modelcontextprotocol/ext-tasks core/v2): {reply['error']}"
        )


def is_valid(name: str, obj: Any) -> bool:
    try:
        validate(name, obj)
    except ValidationError:
        return False
    return True


def validate_task(obj: Any) -> None:
    """The flat Task object (any status, no status payload required)."""
    validate("Task", obj)


def validate_detailed_task(obj: Any) -> None:
    """Task plus its status payload: inputRequests / result / error (tasks/get, notifications)."""
    validate("DetailedTask", obj)


def validate_create_task_result(obj: Any) -> None:
    """Result & Task with resultType "task" (the answer to a task-augmented tools/call)."""
    validate("CreateTaskResult", obj)


def validate_get_task_result(obj: Any) -> None:
    """Result & DetailedTask with resultType "complete" (the answer to tasks/get)."""
    validate("GetTaskResult", obj)


def validate_task_status_notification_params(obj: Any) -> None:
    """NotificationParams & DetailedTask (params of the task status notification)."""
    validate("TaskStatusNotificationParams", obj)
