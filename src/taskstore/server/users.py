"""Configured users (``[[users]]`` in the TOML file): who may authenticate, and with which rights.

Passwords are kept only as SHA-256 digests (a plain-text password in the file is hashed when it
is read) and compared in constant time, so a check takes the same time whatever the guess.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

#: Rights a configured user can hold.
PERMISSIONS = frozenset({"impersonate", "admin"})

_USER_KEYS = frozenset({"name", "password", "enabled", "permissions"})


class UserConfigError(ValueError):
    """A bad ``[[users]]`` entry; the message names it."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_sha256: bytes
    enabled: bool = True
    permissions: frozenset[str] = frozenset()

    @property
    def can_impersonate(self) -> bool:
        return "impersonate" in self.permissions

    @property
    def is_admin(self) -> bool:
        return "admin" in self.permissions

    def check(self, password: bytes) -> bool:
        digest = hashlib.sha256(password).digest()
        ok = hmac.compare_digest(digest, self.password_sha256)
        return ok and self.enabled


def valid_name(name: str) -> bool:
    """User names and owner ids: 1-256 printable ASCII characters, no spaces."""
    return 0 < len(name) <= 256 and all("!" <= ch <= "~" for ch in name)


def _digest(name: str, password: Any) -> bytes:
    if not isinstance(password, str) or not password:
        raise UserConfigError(f"user '{name}': password must be a non-empty string")
    if password.startswith("sha256:"):
        hexdigest = password[len("sha256:") :]
        try:
            digest = bytes.fromhex(hexdigest)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise UserConfigError(f"user '{name}': password 'sha256:<hex>' needs 64 hex digits")
        return digest
    return hashlib.sha256(password.encode("utf-8")).digest()


def parse_users(entries: Any) -> dict[str, User]:
    """The ``[[users]]`` tables of a config file, checked."""
    if not isinstance(entries, list):
        raise UserConfigError("users must be an array of tables ([[users]])")
    users: dict[str, User] = {}
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise UserConfigError(f"users entry {i} must be a table")
        unknown = set(entry) - _USER_KEYS
        if unknown:
            raise UserConfigError(f"users entry {i}: unknown key '{sorted(unknown)[0]}'")
        name = entry.get("name")
        if not isinstance(name, str) or not valid_name(name):
            raise UserConfigError(
                f"users entry {i}: name must be 1-256 printable ASCII characters without spaces"
            )
        if name == "default":
            raise UserConfigError(
                "users entry 'default': the default user's password is requirepass"
            )
        if name in users:
            raise UserConfigError(f"user '{name}' is defined twice")
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise UserConfigError(f"user '{name}': enabled must be true or false")
        perms = entry.get("permissions", [])
        if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
            raise UserConfigError(f"user '{name}': permissions must be a list of strings")
        bad = set(perms) - PERMISSIONS
        if bad:
            raise UserConfigError(
                f"user '{name}': unknown permission '{sorted(bad)[0]}' "
                f"(known: {', '.join(sorted(PERMISSIONS))})"
            )
        users[name] = User(name, _digest(name, entry.get("password")), enabled, frozenset(perms))
    return users
