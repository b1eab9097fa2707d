"""API keys, scopes and who is calling. Pure: no I/O.

A key looks like `oms_` + 32 random base62 characters + a 6-character base62 CRC-32 of
them, so secret scanners can recognise a real key and a typo is refused without a database
round trip. Only a SHA-256 of the whole key and its first 12 characters are stored.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from dataclasses import dataclass
from enum import StrEnum

KEY_PREFIX = "oms_"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LEN = 32
_CHECKSUM_LEN = 6
KEY_LENGTH = len(KEY_PREFIX) + _RANDOM_LEN + _CHECKSUM_LEN
DISPLAY_PREFIX_LENGTH = 12


class Scope(StrEnum):
    ADMIN = "admin"
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    INVENTORY_READ = "inventory:read"
    INVENTORY_WRITE = "inventory:write"
    FULFILLMENT_WRITE = "fulfillment:write"
    RETURNS_WRITE = "returns:write"
    WEBHOOKS_WRITE = "webhooks:write"
    REPORTS_READ = "reports:read"


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_BASE62[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_LEN)


def generate_key() -> str:
    body = "".join(secrets.choice(_BASE62) for _ in range(_RANDOM_LEN))
    return f"{KEY_PREFIX}{body}{_checksum(body)}"


def is_well_formed(key: str) -> bool:
    """True when `key` has our shape and its checksum matches."""
    if len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return False
    body = key[len(KEY_PREFIX) : len(KEY_PREFIX) + _RANDOM_LEN]
    if not (body.isascii() and body.isalnum()):  # ASCII letters and digits: base 62
        return False
    return secrets.compare_digest(key[-_CHECKSUM_LEN:], _checksum(body))


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]


def check_key_grant(scopes: frozenset[Scope], channel_id: str | None) -> str | None:
    """Why a key with these scopes and channel may not be created, or None if it may."""
    if not scopes:
        return "a key needs at least one scope"
    if channel_id is not None and Scope.ADMIN in scopes:
        return "a channel-bound key cannot hold the admin scope"
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request."""

    key_id: str  # "bootstrap" for OMS_ADMIN_API_KEY
    scopes: frozenset[Scope]
    channel_id: str | None

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes
