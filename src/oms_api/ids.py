"""Opaque identifiers: `<prefix>_<26 Crockford base32 chars>`.

`new_id` gives a ULID: sorting ids sorts by creation time (to the millisecond), which is
what keyset pagination orders by; the 80 random bits make them unguessable.
`random_id` gives the same shape with no time in it, for rows whose creation time is
itself something to keep from some readers (a customer shared by several channels).
"""

from __future__ import annotations

import functools
import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # every 10-bit value as 2 characters


def new_id(prefix: str) -> str:
    return f"{prefix}_{encode_ulid(time.time_ns() // 1_000_000, os.urandom(10))}"


def new_ids(prefix: str, n: int) -> list[str]:
    """`n` new ids that sort in the order given, even within one millisecond (the random
    part counts up from a random start, as monotonic ULIDs do)."""
    millis = time.time_ns() // 1_000_000
    start = int.from_bytes(os.urandom(10)) >> 1  # half the range: room to count up
    return [f"{prefix}_{encode_ulid(millis, (start + i).to_bytes(10))}" for i in range(n)]


def random_id(prefix: str) -> str:
    return f"{prefix}_{encode_ulid(int.from_bytes(os.urandom(6)), os.urandom(10))}"


def encode_ulid(millis: int, randomness: bytes) -> str:
    """48 bits of milliseconds, then 80 random bits: 26 characters, most significant first
    (the 128 bits with 2 zero bits in front): the time as 10 characters, the randomness
    as 16."""
    return _time_part(millis) + _random_part(int.from_bytes(randomness, "big"))


@functools.lru_cache(maxsize=4)
def _time_part(millis: int) -> str:
    """The 10 characters of a millisecond: ids made in the same one share them."""
    p = _PAIRS
    return "".join((
        p[millis >> 40 & 1023], p[millis >> 30 & 1023], p[millis >> 20 & 1023],
        p[millis >> 10 & 1023], p[millis & 1023],
    ))  # fmt: skip


def _random_part(r: int) -> str:
    """80 bits as 16 characters: 8 pairs, unrolled (a loop costs twice as much, and every
    order makes ~8 ids)."""
    p = _PAIRS
    return "".join((
        p[r >> 70 & 1023], p[r >> 60 & 1023], p[r >> 50 & 1023], p[r >> 40 & 1023],
        p[r >> 30 & 1023], p[r >> 20 & 1023], p[r >> 10 & 1023], p[r & 1023],
    ))  # fmt: skip
