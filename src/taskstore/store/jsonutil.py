"""JSON parsing, validation and compact encoding with the store's limits and error texts."""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from taskstore.store.errors import InvalidArgument, TooLarge

__all__ = [
    "check_variable_values",
    "dumps_compact",
    "json_string",
    "parse_object",
    "parse_result",
    "parse_variables",
    "to_utf8",
    "utf8_len",
]

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_COMPACT_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def dumps_compact(value: Any) -> bytes:
    """Compact UTF-8 JSON; strings holding lone surrogates fall back to ``\\u`` escapes."""
    try:
        return _COMPACT.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8; escaped they are still valid JSON text.
        return _COMPACT_ASCII.encode(value).encode("ascii")


def json_string(text: str) -> str:
    """A JSON string literal for ``text`` (quotes included)."""
    return encode_basestring(text)


def json_string_ascii(text: str) -> str:
    """A JSON string literal using only ASCII (used when UTF-8 encoding is impossible)."""
    return encode_basestring_ascii(text)


def utf8_len(text: str) -> int:
    """Length in UTF-8 bytes, without encoding in the common ASCII case."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def to_utf8(data: bytes | str, what: str) -> bytes:
    """Bytes of a JSON argument as it will be stored; a str must be encodable as UTF-8."""
    if isinstance(data, bytes):
        return data
    try:
        return data.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"invalid JSON: {what} is not valid UTF-8") from None


def _reject_constant(name: str) -> Any:
    # NaN / Infinity / -Infinity are Python extensions, not JSON.
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # Would be re-encoded as Infinity, which is not JSON.
        raise ValueError(f"number {text[:32]} is out of range")
    return value


def _loads(data: bytes | str, what: str, *, finite: bool) -> Any:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise InvalidArgument(f"invalid JSON: {what} is not valid UTF-8") from None
    try:
        if finite:
            return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise InvalidArgument(f"invalid JSON: {what} nests too deeply") from None
    except ValueError as exc:
        # Also covers ints beyond sys.get_int_max_str_digits().
        reason = " ".join(str(exc).split())[:200]
        raise InvalidArgument(f"invalid JSON: {reason}") from None


def parse_result(data: bytes | str, max_bytes: int) -> bytes:
    """Validate a result JSON text and return the bytes to store, exactly as given."""
    raw = to_utf8(data, "result")
    if len(raw) > max_bytes:
        raise TooLarge(f"result is {len(raw)} bytes (max {max_bytes})")
    # Only the syntax is checked: the text itself is what TASK.RESULT replies with.
    _loads(raw, "result", finite=False)
    return raw


def parse_object(data: bytes | str, what: str, max_bytes: int) -> dict[str, Any]:
    """Parse a JSON object argument (an input request, an answer, an error) of at most
    ``max_bytes``; anything else is ``ERR``."""
    raw = to_utf8(data, what)
    if len(raw) > max_bytes:
        raise TooLarge(f"{what} is {len(raw)} bytes (max {max_bytes})")
    value = _loads(raw, what, finite=True)
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid JSON: {what} must be a JSON object")
    return value


def parse_variables(data: bytes | str, max_depth: int) -> dict[str, Any]:
    """Parse a variables update, which must be a JSON object."""
    try:
        value = _loads(data, "variables", finite=True)
    except InvalidArgument as exc:
        if exc.message.endswith("nests too deeply"):
            raise TooLarge(f"variables nest too deeply (max {max_depth} levels)") from None
        raise
    if not isinstance(value, dict):
        raise InvalidArgument("invalid JSON: variables must be a JSON object")
    return value


def check_variable_values(update: dict[str, Any], max_depth: int, max_string: int) -> None:
    """Enforce depth and string-length limits on the keys and values a merge would add.

    Depth counts containers: the variables object itself is level 1, ``{"a": {"b": 1}}`` is 2.
    Existing variables already passed this check, so only the update needs walking (its
    non-null entries: a null deletes, so that key is not part of the merged object). The whole
    update is walked before reporting, so the depth in the message is the real one.
    """
    deepest = 1
    longest = 0
    stack: list[tuple[Any, int]] = []
    for key, value in update.items():
        if value is None:
            continue  # a deletion: the key will not be in the merged object
        n = utf8_len(key)
        if n > longest:
            longest = n
        stack.append((value, 2))
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            n = utf8_len(value)
            if n > longest:
                longest = n
        elif isinstance(value, dict):
            if depth > deepest:
                deepest = depth
            for key, child in value.items():
                n = utf8_len(key)
                if n > longest:
                    longest = n
                if isinstance(child, (dict, list, str)):
                    stack.append((child, depth + 1))
        elif isinstance(value, list):
            if depth > deepest:
                deepest = depth
            for child in value:
                if isinstance(child, (dict, list, str)):
                    stack.append((child, depth + 1))
    if deepest > max_depth:
        raise TooLarge(f"variables nest {deepest} levels deep (max {max_depth})")
    if longest > max_string:
        raise TooLarge(f"string of {longest} bytes exceeds max_string_length {max_string}")
