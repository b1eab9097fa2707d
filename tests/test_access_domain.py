"""API key format, checksums and grants: pure rules, no database."""

from __future__ import annotations

import pytest

from oms_api.domain.access import (
    KEY_LENGTH,
    Principal,
    Scope,
    check_key_grant,
    display_prefix,
    generate_key,
    hash_key,
    is_well_formed,
)
from oms_api.ids import encode_ulid, new_id


def test_generated_keys_are_well_formed_and_distinct() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith("oms_")
        assert len(key) == KEY_LENGTH
        assert is_well_formed(key)


@pytest.mark.parametrize("position", [4, 10, 35, -1])
def test_a_single_changed_character_fails_the_checksum(position: int) -> None:
    key = generate_key()
    replacement = "A" if key[position] != "A" else "B"
    typo = key[:position] + replacement + (key[position + 1 :] if position != -1 else "")
    assert not is_well_formed(typo)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "oms_",
        "sk_" + "a" * 39,
        "oms_" + "!" * 38,
        "oms_" + "ä" * 38,
        "oms_" + "٣" * 38,
        "x" * 500,
    ],
)
def test_malformed_keys_are_refused(bad: str) -> None:
    assert not is_well_formed(bad)


def test_only_the_hash_and_a_short_prefix_identify_a_key() -> None:
    key = generate_key()
    assert len(hash_key(key)) == 32
    assert hash_key(key) != key.encode()
    assert display_prefix(key) == key[:12]


def test_grants() -> None:
    assert check_key_grant(frozenset(), None) == "a key needs at least one scope"
    assert check_key_grant(frozenset({Scope.ADMIN}), "ch_1") is not None
    assert check_key_grant(frozenset({Scope.ADMIN}), None) is None
    assert check_key_grant(frozenset({Scope.ORDERS_READ}), "ch_1") is None


@pytest.mark.parametrize("scope", list(Scope))
def test_admin_allows_every_scope_and_others_only_their_own(scope: Scope) -> None:
    assert Principal("k", frozenset({Scope.ADMIN}), None).allows(scope)
    holder = Principal("k", frozenset({scope}), None)
    assert holder.allows(scope)
    others = [s for s in Scope if s not in (scope, Scope.ADMIN)]
    if scope is Scope.ADMIN:
        assert all(holder.allows(s) for s in others)
    else:
        assert not any(holder.allows(s) for s in others)


def test_ulids_encode_time_then_randomness_in_crockford_base32() -> None:
    assert encode_ulid(0, bytes(10)) == "0" * 26
    assert encode_ulid(2**48 - 1, b"\xff" * 10) == "7" + "Z" * 25  # 2 leading zero bits
    assert encode_ulid(1, bytes(10)) == "0" * 9 + "1" + "0" * 16  # time: the first 10
    assert encode_ulid(0, bytes(9) + b"\x01") == "0" * 25 + "1"
    # the specification's example: 1469918176385 ms is 01ARYZ6S41
    assert encode_ulid(1469918176385, bytes(10)).startswith("01ARYZ6S41")
    ids = [new_id("ord") for _ in range(50)]
    assert all(len(i) == 30 and set(i[4:]) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    assert len(set(ids)) == 50
