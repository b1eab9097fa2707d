"""Every payment limit of `domain.payments`, against rules written out apart from the code.

The rules, as docs/orders.md "Payments" states them (`open` = what is authorized and neither
captured nor voided, which the test keeps by itself, transaction by transaction, as a card
processor would: an authorization opens its amount, a capture or void with some open takes
from it, a capture with none open is a sale and leaves none open):
- authorization: open + amount <= total - captured (what is authorized and open never
  exceeds what is still owed); else `amount_exceeds_order_total`.
- capture: with some open, amount <= open; with none open (a sale), any amount; either way
  captured + amount <= total; else `capture_exceeds_authorized`. A sale adds its amount to
  `authorized` as well as to `captured`.
- refund: refunded + amount <= captured; else `refund_exceeds_captured`.
- void: amount <= open; else `void_exceeds_authorized`.
Every state reachable from nothing is walked, with every kind and every amount from 1 to
past the total: each transaction is taken or refused as the rules say, a refusal names its
limit and the amounts, every state's `authorized - captured - voided` is exactly what is
open, what is derived from the sums (`payment_status`, `is_settled`, `payment_in_force`) is
what the rules say of the transactions, and every state keeps `captured <= total`,
`authorized - voided <= total`, `refunded <= captured` (so `total - refunded`, what lifetime
value sums, is >= 0).
"""

from __future__ import annotations

from typing import Any

import pytest

from oms_api.domain.errors import DomainError
from oms_api.domain.payments import PaymentKind as K
from oms_api.domain.payments import PaymentStatus as P
from oms_api.domain.payments import (
    PaymentTotals,
    apply_payment,
    is_settled,
    payment_in_force,
    payment_limit,
    payment_status,
    replay,
)

CODES = {
    K.AUTHORIZATION: ("amount_exceeds_order_total", "authorizable"),
    K.CAPTURE: ("capture_exceeds_authorized", "capturable"),
    K.REFUND: ("refund_exceeds_captured", "refundable"),
    K.VOID: ("void_exceeds_authorized", "voidable"),
}


def _allowed(t: PaymentTotals, open_: int, kind: K, amount: int, total: int) -> bool:
    """The rules above, written out from the docs, not from the code."""
    c, r = t.captured, t.refunded
    if kind is K.AUTHORIZATION:
        return open_ + amount <= total - c
    if kind is K.CAPTURE:
        return (amount <= open_ if open_ > 0 else True) and c + amount <= total
    if kind is K.REFUND:
        return r + amount <= c
    return amount <= open_


def _after(t: PaymentTotals, open_: int, kind: K, amount: int) -> tuple[PaymentTotals, int]:
    """The sums and what is open after a transaction the rules allow."""
    a, c, r, v = t.authorized, t.captured, t.refunded, t.voided
    sale = open_ == 0
    return {
        K.AUTHORIZATION: (PaymentTotals(a + amount, c, r, v), open_ + amount),
        K.CAPTURE: (PaymentTotals(a + amount if sale else a, c + amount, r, v),
                    0 if sale else open_ - amount),
        K.REFUND: (PaymentTotals(a, c, r + amount, v), open_),
        K.VOID: (PaymentTotals(a, c, r, v + amount), open_ - amount),
    }[kind]  # fmt: skip


def _reachable(total: int) -> set[tuple[PaymentTotals, int]]:
    """Every state reachable from nothing with amounts 1..total, with what is open, up to
    two authorizations' worth of the total (voids and new authorizations could go on for
    ever)."""
    seen = {(PaymentTotals(), 0)}
    todo = [(PaymentTotals(), 0)]
    while todo:
        state, open_ = todo.pop()
        for kind in K:
            for amount in range(1, total + 1):
                if not _allowed(state, open_, kind, amount, total):
                    continue
                after = _after(state, open_, kind, amount)
                if after not in seen and after[0].authorized <= 2 * total:
                    seen.add(after)
                    todo.append(after)
    return seen


@pytest.mark.parametrize("total", [0, 1, 2, 5])
def test_every_transaction_from_every_reachable_state_follows_the_rules(total: int) -> None:
    states = _reachable(total)
    assert len(states) > (1 if total else 0)
    for state, open_ in states:
        for kind in K:
            for amount in range(1, total + 3):
                allowed = _allowed(state, open_, kind, amount, total)
                if allowed:
                    assert (
                        apply_payment(state, kind, amount, total)
                        == _after(state, open_, kind, amount)[0]
                    ), (state, kind, amount)
                    continue
                with pytest.raises(DomainError) as caught:
                    apply_payment(state, kind, amount, total)
                code, limit_name = CODES[kind]
                refusal = caught.value
                assert (refusal.code, refusal.kind) == (code, "conflict"), (state, kind, amount)
                limit = refusal.extra[limit_name]
                assert limit == payment_limit(state, kind, total) < amount
                assert _allowed(state, open_, kind, limit, total) or limit == 0  # exact
                assert refusal.extra == {
                    "requested": amount, "total": total, "authorized": state.authorized,
                    "captured": state.captured, "refunded": state.refunded,
                    "voided": state.voided, limit_name: limit,
                }  # fmt: skip


@pytest.mark.parametrize("total", [1, 2, 5])
def test_what_the_sums_say_is_what_the_transactions_did(total: int) -> None:
    """The open authorization, the status, settlement and expiry read from the sums are
    those of the transactions: an authorization taken after a sale is open."""
    for s, open_ in _reachable(total):
        assert s.open_authorization == open_ == s.authorized - s.captured - s.voided, s
        if s.refunded:
            status = P.REFUNDED if s.refunded == s.captured else P.PARTIALLY_REFUNDED
        else:
            status = P.PAID if s.captured else P.AUTHORIZED if open_ else P.VOIDED if s.voided else P.UNPAID  # fmt: skip
        assert payment_status(s) is status, s
        assert is_settled(s, total, "card") is (s.captured + open_ >= total), s
        assert payment_in_force(s) is (open_ > 0 or s.captured > s.refunded), s


@pytest.mark.parametrize("total", [0, 1, 2, 5])
def test_every_reachable_state_keeps_within_the_total(total: int) -> None:
    for s, _ in _reachable(total):
        assert 0 <= s.captured <= total, s
        assert 0 <= s.voided <= s.authorized - s.captured, s
        assert s.authorized - s.voided <= total, s
        assert 0 <= s.refunded <= s.captured, s
        assert total - s.refunded >= 0, s


def _run(*steps: tuple[K, int], total: int = 1000, start: PaymentTotals | None = None) -> Any:
    totals = start or PaymentTotals()
    for kind, amount in steps:
        totals = apply_payment(totals, kind, amount, total)
    return totals


@pytest.mark.parametrize(
    ("steps", "kind", "limit"),
    [
        # The outside-in tester's sequence on a 1000 order: nothing is authorized, so the
        # whole total may be; nothing is captured, so nothing may be refunded.
        ((), K.AUTHORIZATION, 1000),
        ((), K.CAPTURE, 1000),
        ((), K.REFUND, 0),
        ((), K.VOID, 0),
        (((K.AUTHORIZATION, 600),), K.AUTHORIZATION, 400),
        (((K.AUTHORIZATION, 1000),), K.AUTHORIZATION, 0),
        (((K.AUTHORIZATION, 1000),), K.CAPTURE, 1000),
        (((K.AUTHORIZATION, 600),), K.CAPTURE, 600),
        (((K.AUTHORIZATION, 1000), (K.CAPTURE, 400)), K.AUTHORIZATION, 0),
        (((K.AUTHORIZATION, 1000), (K.CAPTURE, 400)), K.CAPTURE, 600),
        (((K.AUTHORIZATION, 1000), (K.CAPTURE, 400)), K.VOID, 600),
        # a void frees its amount for a new authorization (an expired one, re-authorized)
        (((K.AUTHORIZATION, 1000), (K.VOID, 1000)), K.AUTHORIZATION, 1000),
        (((K.AUTHORIZATION, 1000), (K.CAPTURE, 300), (K.VOID, 700)), K.AUTHORIZATION, 700),
        # with nothing open a capture is a sale, after an authorization as before one
        (((K.AUTHORIZATION, 1000), (K.CAPTURE, 300), (K.VOID, 700)), K.CAPTURE, 700),
        (((K.AUTHORIZATION, 600), (K.CAPTURE, 600)), K.CAPTURE, 400),
        # a refund does not: what was refunded is not owed again
        (((K.CAPTURE, 1000), (K.REFUND, 1000)), K.AUTHORIZATION, 0),
        (((K.CAPTURE, 1000), (K.REFUND, 1000)), K.CAPTURE, 0),
        (((K.CAPTURE, 1000), (K.REFUND, 400)), K.REFUND, 600),
        (((K.CAPTURE, 400),), K.CAPTURE, 600),
        (((K.CAPTURE, 400),), K.AUTHORIZATION, 600),
        (((K.CAPTURE, 400),), K.VOID, 0),
        # the rest authorized after a sale (an exchange's credit) is open: voidable,
        # capturable, and not authorized twice
        (((K.CAPTURE, 800), (K.AUTHORIZATION, 200)), K.AUTHORIZATION, 0),
        (((K.CAPTURE, 800), (K.AUTHORIZATION, 200)), K.VOID, 200),
        (((K.CAPTURE, 800), (K.AUTHORIZATION, 200)), K.CAPTURE, 200),
        (((K.CAPTURE, 800), (K.AUTHORIZATION, 100)), K.CAPTURE, 100),
        (((K.CAPTURE, 800), (K.AUTHORIZATION, 200), (K.VOID, 200)), K.AUTHORIZATION, 200),
        (((K.CAPTURE, 800), (K.AUTHORIZATION, 200), (K.VOID, 200)), K.CAPTURE, 200),
        (((K.CAPTURE, 500), (K.REFUND, 500), (K.AUTHORIZATION, 200)), K.VOID, 200),
    ],
)
def test_limits_worked_out_by_hand(steps: tuple[tuple[K, int], ...], kind: K, limit: int) -> None:
    totals = _run(*steps)
    assert payment_limit(totals, kind, 1000) == limit
    if limit:
        apply_payment(totals, kind, limit, 1000)  # exactly the limit is taken
    with pytest.raises(DomainError) as caught:
        apply_payment(totals, kind, limit + 1, 1000)  # one more is not
    assert caught.value.extra[CODES[kind][1]] == limit


def test_a_sale_authorizes_what_it_captures() -> None:
    """Sums an exchange's order keeps: 800 of credit captured, the rest authorized, then
    captured; every step's open authorization, status and settlement."""
    credit = _run((K.CAPTURE, 800))
    assert credit == PaymentTotals(authorized=800, captured=800)
    assert (credit.open_authorization, payment_status(credit)) == (0, P.PAID)
    assert not is_settled(credit, 1000, "exchange_credit")
    rest = apply_payment(credit, K.AUTHORIZATION, 200, 1000)
    assert (rest, rest.open_authorization) == (PaymentTotals(1000, 800), 200)
    assert is_settled(rest, 1000, "exchange_credit")
    assert payment_in_force(apply_payment(_run((K.CAPTURE, 500), (K.REFUND, 500)),
                                          K.AUTHORIZATION, 200, 1000))  # fmt: skip
    assert apply_payment(rest, K.CAPTURE, 200, 1000) == PaymentTotals(1000, 1000)
    assert apply_payment(rest, K.VOID, 200, 1000) == PaymentTotals(1000, 800, 0, 200)


def test_the_testers_sequence_is_refused_at_its_first_step() -> None:
    with pytest.raises(DomainError) as caught:
        _run((K.AUTHORIZATION, 50000))
    assert caught.value.code == "amount_exceeds_order_total"
    assert caught.value.extra == {
        "requested": 50000, "total": 1000, "authorized": 0, "captured": 0, "refunded": 0,
        "voided": 0, "authorizable": 1000,
    }  # fmt: skip
    for kind in (K.AUTHORIZATION, K.CAPTURE):
        with pytest.raises(DomainError):
            _run((kind, 10**11))


def test_an_order_over_authorized_before_the_limit_still_captures_no_more_than_its_total() -> None:
    """Orders recorded before the limit existed may hold more authorized than their total:
    they take no new authorization, and captures stop at the total."""
    legacy = PaymentTotals(authorized=50000)
    assert payment_limit(legacy, K.AUTHORIZATION, 1000) == 0
    assert payment_limit(legacy, K.CAPTURE, 1000) == 1000
    paid = apply_payment(legacy, K.CAPTURE, 1000, 1000)
    assert payment_limit(paid, K.CAPTURE, 1000) == 0
    assert payment_limit(paid, K.VOID, 1000) == 49000  # the rest can still be released
    assert payment_status(apply_payment(paid, K.VOID, 49000, 1000)) is P.PAID


def test_an_order_of_nothing_takes_no_money() -> None:
    for kind in K:
        assert payment_limit(PaymentTotals(), kind, 0) == 0
        with pytest.raises(DomainError):
            apply_payment(PaymentTotals(), kind, 1, 0)


def _legacy_allowed(t: PaymentTotals, kind: K, amount: int, total: int) -> bool:
    """The rules before a sale counted as an authorization: a capture was limited by the
    open authorization once anything was ever authorized (`authorized > 0`)."""
    a, c, r, v = t.authorized, t.captured, t.refunded, t.voided
    open_ = max(a - c - v, 0)
    if kind is K.AUTHORIZATION:
        return open_ + amount <= total - c
    if kind is K.CAPTURE:
        return (amount <= open_ if a > 0 else True) and c + amount <= total
    if kind is K.REFUND:
        return r + amount <= c
    return amount <= open_


@pytest.mark.parametrize("total", [2, 3, 5])
def test_replaying_sums_recorded_before_sales_counted_gives_what_is_open(total: int) -> None:
    """Every history the rules before this one took (their sums added each transaction to
    its own sum only), replayed from its transactions (`replay`, which the data migration
    runs over the `payments` rows): the replayed sums leave open exactly what the
    transactions left open, captured, refunded and voided are unchanged, and from there the
    rules above apply as to any order."""
    start = (PaymentTotals(), 0, PaymentTotals())  # legacy sums, what is open, replayed
    seen: dict[tuple[PaymentTotals, int, PaymentTotals], tuple[tuple[K, int], ...]]
    seen, todo = {start: ()}, [start]
    stale = 0
    while todo:
        legacy, open_, replayed = todo.pop()
        history = seen[legacy, open_, replayed]
        assert open_ >= 0
        assert replayed.open_authorization == open_, (legacy, replayed)
        assert (replayed.captured, replayed.refunded, replayed.voided) == (
            legacy.captured, legacy.refunded, legacy.voided,
        )  # fmt: skip
        stale += legacy.open_authorization != open_
        for kind in K:
            for amount in range(1, total + 1):
                if not _legacy_allowed(legacy, kind, amount, total):
                    continue
                a, c, r, v = legacy.authorized, legacy.captured, legacy.refunded, legacy.voided
                next_legacy, next_open = {
                    K.AUTHORIZATION: (PaymentTotals(a + amount, c, r, v), open_ + amount),
                    # against an authorization once one was ever taken; else a sale
                    K.CAPTURE: (PaymentTotals(a, c + amount, r, v), open_ - amount if a else 0),
                    K.REFUND: (PaymentTotals(a, c, r + amount, v), open_),
                    K.VOID: (PaymentTotals(a, c, r, v + amount), open_ - amount),
                }[kind]  # fmt: skip
                longer = (*history, (kind, amount))
                node = (next_legacy, next_open, replay(longer))
                if node not in seen and next_legacy.authorized <= 2 * total:
                    seen[node] = longer
                    todo.append(node)
    assert stale > 0  # some legacy sums did misread what was open (a sale, then more)


@pytest.mark.parametrize("credited", [0, 1, 400, 600, 1000])
def test_what_paid_an_exchange_is_not_refunded_as_well(credited: int) -> None:
    """Captured money that paid an exchange's order (its credit) is spent there: a refund
    here may take only the rest (an accountant refunded it on both orders)."""
    totals = PaymentTotals(authorized=1000, captured=1000, refunded=400)
    refundable = max(600 - credited, 0)
    assert payment_limit(totals, K.REFUND, 1000, credited=credited) == refundable
    if refundable:
        after = apply_payment(totals, K.REFUND, refundable, 1000, credited=credited)
        assert after.refunded == 400 + refundable
    with pytest.raises(DomainError) as over:
        apply_payment(totals, K.REFUND, refundable + 1, 1000, credited=credited)
    assert over.value.code == "refund_exceeds_captured"
    assert over.value.extra["refundable"] == refundable
    for kind in (K.AUTHORIZATION, K.CAPTURE, K.VOID):  # only refunds are concerned
        assert payment_limit(totals, kind, 1000, credited=credited) == payment_limit(
            totals, kind, 1000
        )
