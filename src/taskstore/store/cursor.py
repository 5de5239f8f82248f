"""Opaque, owner-bound TASK.LIST cursors.

A cursor names a position in an owner's creation order (the sequence number of the last task
returned), not a task, so it survives deletions and ignores tasks created later. It is bound to
the owner and to this store instance with an HMAC under a random per-store secret: a forged,
altered or other owner's cursor fails verification and is reported as ``ERR invalid cursor``
(the MCP spec's -32602), never silently restarted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from taskstore.store.errors import InvalidArgument

__all__ = ["CursorCodec"]

_VERSION = 1
_MAC_BYTES = 12
_RAW_BYTES = 1 + 8 + _MAC_BYTES  # 21 bytes: base64 without padding, 28 characters
_TEXT_LEN = 28


class CursorCodec:
    """Encodes and verifies cursors under one secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def _mac(self, owner: str, body: bytes) -> bytes:
        owner_bytes = owner.encode("utf-8", "surrogatepass")
        message = len(owner_bytes).to_bytes(4, "big") + owner_bytes + body
        return hmac.digest(self._secret, message, hashlib.sha256)[:_MAC_BYTES]

    def encode(self, owner: str, seq: int) -> str:
        """A cursor meaning "tasks created before ``seq``" for ``owner``."""
        body = bytes((_VERSION,)) + seq.to_bytes(8, "big")
        raw = body + self._mac(owner, body)
        return base64.urlsafe_b64encode(raw).decode("ascii")

    def decode(self, owner: str, cursor: str) -> int:
        """The position a cursor names; ``InvalidArgument`` unless it is genuine and ``owner``'s."""
        if len(cursor) != _TEXT_LEN or not cursor.isascii():
            raise InvalidArgument("invalid cursor")
        try:
            raw = base64.urlsafe_b64decode(cursor)
        except (binascii.Error, ValueError):
            raise InvalidArgument("invalid cursor") from None
        # Decoding is lenient about the alphabet; only the canonical spelling is accepted.
        if len(raw) != _RAW_BYTES or base64.urlsafe_b64encode(raw).decode("ascii") != cursor:
            raise InvalidArgument("invalid cursor")
        body, mac = raw[:9], raw[9:]
        if body[0] != _VERSION or not hmac.compare_digest(mac, self._mac(owner, body)):
            raise InvalidArgument("invalid cursor")
        return int.from_bytes(body[1:], "big")
