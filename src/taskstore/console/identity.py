"""Who is asking: HTTP Basic credentials checked exactly as AUTH checks them (docs/security.md).

- No ``Authorization`` header: the anonymous ``default`` user, only while anonymous access is
  on (it acts as owner ``local`` and, as over the wire, holds every right).
- ``default`` with a password: the ``requirepass`` password; without a ``requirepass`` any
  password is accepted but acts only while anonymous access is on (AUTH's rule).
- A configured user: its password, and it must be enabled.

Every failure is the same ``None``, whatever was wrong, so the response cannot tell an unknown
user from a wrong password; the comparison costs the same hash for both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskstore.server.users import User, valid_name

if TYPE_CHECKING:
    from taskstore.server.app import Server

__all__ = ["Identity", "OwnerRefused", "authenticate", "choose_owner"]

_NOBODY = User("", hashlib.sha256(b"\x00 no such user").digest(), enabled=False)


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated console visitor."""

    user: str
    #: the owner its TASK commands would act for
    owner: str
    admin: bool
    impersonate: bool
    #: the anonymous default user: its right to act ends when anonymous access is turned off
    anonymous: bool

    @property
    def may_choose_owner(self) -> bool:
        """Impersonators and admins may look at any owner's tasks (the issue's rule)."""
        return self.impersonate or self.admin

    def still_valid(self, server: Server) -> bool:
        """Checked again at every delivery, as the ``tasks:<owner>`` channels are: turning
        anonymous access off (or setting ``requirepass``) ends anonymous streams."""
        return not self.anonymous or server.security.allow_anonymous


def _anonymous(server: Server) -> Identity | None:
    security = server.security
    if not security.allow_anonymous:
        return None
    return Identity("default", security.default_owner, True, False, True)


def authenticate(server: Server, header: str | None) -> Identity | None:
    """The identity of an ``Authorization`` header value (None: refuse with 401)."""
    if header is None:
        return _anonymous(server)
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    name_bytes, colon, password = raw.partition(b":")
    if not colon:
        return None
    name = name_bytes.decode("utf-8", "surrogateescape")
    cfg = server.config
    if name == "default":
        required = cfg.requirepass
        if not required:
            # AUTH default <anything> without requirepass: accepted, but acts only while
            # anonymous access is on
            return _anonymous(server)
        ok = hmac.compare_digest(
            hashlib.sha256(password).digest(),
            hashlib.sha256(required.encode("utf-8", "surrogateescape")).digest(),
        )
        if not ok:
            server.stats["auth_failures"] += 1
            return None
        return Identity("default", server.security.default_owner, True, False, False)
    account = cfg.users.get(name)
    # an unknown user costs the same hash and comparison as a known one
    ok = (account or _NOBODY).check(password) and account is not None
    if not ok or account is None:
        server.stats["auth_failures"] += 1
        return None
    return Identity(name, name, account.is_admin, account.can_impersonate, False)


class OwnerRefused(Exception):
    """An ``owner`` query parameter this identity may not use; ``str()`` is the reason,
    ``status`` the HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def choose_owner(identity: Identity, requested: str | None) -> str:
    """The owner whose tasks this request shows: the identity's own, or (impersonators and
    admins) the one asked for."""
    if requested is None or requested == "" or requested == identity.owner:
        return identity.owner
    if not valid_name(requested):
        raise OwnerRefused(400, "ERR OWNER must be 1-256 printable ASCII characters without spaces")
    if not identity.may_choose_owner:
        raise OwnerRefused(
            403, f"NOPERM User {identity.user} has no permissions to act as another owner"
        )
    return requested
