"""Opaque, time-ordered identifiers: `<prefix>_<26 Crockford base32 chars>` (a ULID).

Sorting ids sorts by creation time (to the millisecond), which is what keyset pagination
orders by; the 80 random bits make them unguessable.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
