"""Customers: one record per email for the business, and each channel sees only what it gave.

Two channels, A and B, sell to the same person. A records a name, a phone and an address;
B knows only the email. Every way B can ask about that customer answers only what B gave.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from oms_api.webhooks.dispatcher import Dispatcher
from tests.factories import (
    Shop,
    bearer,
    create_key,
    create_product,
    order_body,
    place,
    stock,
    unique,
)
from tests.receiver import Receiver

ADDRESS = {"line1": "1 Navy Way", "city": "Arlington", "country": "US"}


def _secret_values() -> dict[str, str]:
    """Values only channel A gives: none may ever reach channel B."""
    tag = unique("a")
    return {
        "name": f"Ada Lovelace {tag}",
        "phone": f"+44 7700 {tag}",
        "line1": f"12 St James Sq {tag}",
        "address_name": f"Augusta Ada King {tag}",
    }


def _address(values: dict[str, str]) -> dict[str, Any]:
    return {"name": values["address_name"], "line1": values["line1"], "city": "London",
            "postal_code": "SW1Y 4JH", "country": "GB"}  # fmt: skip


async def _two_shops_one_product(admin: httpx.AsyncClient) -> tuple[Shop, Shop, str]:
    a = await Shop.open(admin)
    b = await Shop.open(admin)
    product = await create_product(admin)
    await stock(admin, product["sku"], a.locations[0]["id"], 100)
    await stock(admin, product["sku"], b.locations[0]["id"], 100)
    return a, b, product["sku"]


async def _order(client: httpx.AsyncClient, shop: Shop, sku: str, **fields: Any) -> dict[str, Any]:
    response = await place(client, order_body(None, [(sku, 1)], **fields), headers=shop.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_the_leak_of_issue_9_is_closed(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """As reported: A records a profile, B orders by the email and reads the customer."""
    a, b, sku = await _two_shops_one_product(admin)
    email = f"{unique('ada')}@example.com"
    secret = _secret_values()
    await _order(client, a, sku, customer={"email": email, "name": secret["name"],
                                           "phone": secret["phone"]},
                 shipping_address=_address(secret))  # fmt: skip
    theirs = await _order(client, b, sku, customer={"email": email})
    seen = await client.get(f"/v1/customers/{theirs['customer_id']}", headers=b.headers)
    assert seen.status_code == 200
    customer = seen.json()
    assert customer["email"] == email
    assert (customer["name"], customer["phone"], customer["addresses"]) == (None, None, [])
    assert [p["channel_id"] for p in customer["profiles"]] == [b.channel["id"]]


async def test_the_admin_sees_the_unified_record_and_every_channels_profile(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    a, b, sku = await _two_shops_one_product(admin)
    email = f"{unique('ada')}@example.com"
    first = await _order(client, a, sku, customer={"email": email, "name": "Ada A",
                                                   "phone": "+44 1"},
                         shipping_address=_address({"address_name": "Ada", "line1": "A street"}))  # fmt: skip
    second = await _order(client, b, sku, customer={"email": email.upper(), "name": "Ada B"},
                          billing_address=ADDRESS)  # fmt: skip
    assert first["customer_id"] == second["customer_id"]  # one customer per email

    record = (await admin.get(f"/v1/customers/{first['customer_id']}")).json()
    assert record["email"] == email
    assert record["name"] == "Ada B"  # the latest any channel gave
    assert record["phone"] == "+44 1"
    assert {a["line1"] for a in record["addresses"]} == {"A street", ADDRESS["line1"]}
    profiles = {p["channel_id"]: p for p in record["profiles"]}
    assert profiles.keys() == {a.channel["id"], b.channel["id"]}
    assert (profiles[a.channel["id"]]["name"], profiles[a.channel["id"]]["phone"]) == (
        "Ada A", "+44 1",
    )  # fmt: skip
    assert profiles[b.channel["id"]]["email"] == email.upper()  # as B spelt it
    assert profiles[b.channel["id"]]["phone"] is None

    history = (await admin.get(f"/v1/customers/{first['customer_id']}/orders")).json()["data"]
    assert [o["id"] for o in history] == [second["id"], first["id"]]
    as_a = (
        await client.get(f"/v1/customers/{first['customer_id']}/orders", headers=a.headers)
    ).json()
    assert [o["id"] for o in as_a["data"]] == [first["id"]]


async def test_a_channel_sees_what_it_gave_and_keeps_it_current(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    a, _, sku = await _two_shops_one_product(admin)
    email = f"{unique('grace')}@example.com"
    order = await _order(client, a, sku, customer={"email": email, "name": "Grace"},
                         shipping_address=ADDRESS)  # fmt: skip
    await _order(client, a, sku, customer={"email": email, "phone": "+1 555"})
    await _order(client, a, sku, customer={"email": email, "name": "Grace Hopper"},
                 shipping_address=ADDRESS | {"line1": "2 Navy Way"})  # fmt: skip
    customer = (await client.get(f"/v1/customers/{order['customer_id']}", headers=a.headers)).json()
    assert (customer["name"], customer["phone"]) == ("Grace Hopper", "+1 555")
    assert [x["line1"] for x in customer["addresses"]] == ["2 Navy Way", "1 Navy Way"]


async def test_placing_by_customer_id_needs_a_customer_the_channel_knows(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    a, b, sku = await _two_shops_one_product(admin)
    theirs = await _order(client, a, sku)
    by_id = {"customer_id": theirs["customer_id"], "lines": [{"sku": sku, "quantity": 1}]}
    refused = await place(client, by_id, headers=b.headers)
    assert refused.status_code == 404
    assert refused.json()["code"] == "not_found"
    # An invisible customer and a missing one answer alike.
    nowhere = await place(client, by_id | {"customer_id": "cus_nope"}, headers=b.headers)
    assert (nowhere.status_code, nowhere.json()["detail"]) == (404, "No customer with id cus_nope.")
    assert refused.json()["detail"] == f"No customer with id {theirs['customer_id']}."

    # Once B knows the email (an order by email), it may name the customer by id.
    await _order(client, b, sku, customer={"email": theirs["email"]})
    assert (await place(client, by_id, headers=b.headers)).status_code == 201
    # The admin may place for any customer, in any channel: that channel then knows them.
    c = await Shop.open(admin)
    await stock(admin, sku, c.locations[0]["id"], 5)
    by_admin = await place(admin, by_id | {"channel": c.channel["code"]})
    assert by_admin.status_code == 201, by_admin.text
    seen = await client.get(f"/v1/customers/{theirs['customer_id']}", headers=c.headers)
    assert seen.status_code == 200


async def test_a_channel_the_admin_places_for_knows_no_other_channels_spelling(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """B spells the email its way; the admin places an order in A by the customer's id: A
    now knows the customer, by the order's own (normalised) email — not by B's spelling,
    which only B and the admin may read."""
    a, b, sku = await _two_shops_one_product(admin)
    spelt_by_b = f"{unique('Shared')}@Example.COM"
    theirs = await _order(client, b, sku, customer={"email": spelt_by_b, "name": "Ada B",
                                                    "phone": "+44 2"})  # fmt: skip
    by_admin = await place(admin, {"channel": a.channel["code"], "customer_id":
                                   theirs["customer_id"], "lines": [{"sku": sku, "quantity": 1}]})  # fmt: skip
    assert by_admin.status_code == 201, by_admin.text
    seen = await client.get(f"/v1/customers/{theirs['customer_id']}", headers=a.headers)
    assert seen.status_code == 200
    assert seen.json()["email"] == spelt_by_b.lower()
    assert [p["email"] for p in seen.json()["profiles"]] == [spelt_by_b.lower()]
    for answer in (
        seen,
        await client.get(f"/v1/orders/{by_admin.json()['id']}", headers=a.headers),
    ):
        assert spelt_by_b.encode() not in answer.content
        assert b"Ada B" not in answer.content
        assert b"+44 2" not in answer.content


async def test_creating_a_customer_creates_the_channels_profile(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    a, b, _ = await _two_shops_one_product(admin)
    email = f"{unique('Grace')}@Example.org"
    created = await client.post(
        "/v1/customers",
        json={"email": email, "name": "Grace", "phone": "+1 1", "addresses": [ADDRESS]},
        headers=a.headers,
    )
    assert created.status_code == 201, created.text
    customer = created.json()
    assert (customer["name"], customer["addresses"][0]["line1"]) == ("Grace", ADDRESS["line1"])
    dup = await client.post("/v1/customers", json={"email": email.upper()}, headers=a.headers)
    assert (dup.status_code, dup.json()["code"]) == (409, "email_taken")
    assert (
        await client.post("/v1/customers", json={"email": "not-an-email"}, headers=a.headers)
    ).status_code == 422

    # B cannot see A's customer, by id or by email...
    assert (
        await client.get(f"/v1/customers/{customer['id']}", headers=b.headers)
    ).status_code == 404
    listed = await client.get("/v1/customers", params={"email": email}, headers=b.headers)
    assert listed.json()["data"] == []
    # ...and creating "its" customer with that email works as for a new one, without a hint.
    mine = await client.post("/v1/customers", json={"email": email.lower()}, headers=b.headers)
    assert mine.status_code == 201, mine.text
    assert mine.json()["id"] == customer["id"]
    assert (mine.json()["name"], mine.json()["phone"], mine.json()["addresses"]) == (None, None, [])
    assert mine.json()["created_at"] > customer["created_at"]  # when B first knew them
    # The admin knows the email: 409.
    taken = await admin.post("/v1/customers", json={"email": email})
    assert (taken.status_code, taken.json()["code"]) == (409, "email_taken")


async def test_customer_lists_page_newest_first_per_viewer(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    ids = []
    for _ in range(5):
        created = await client.post(
            "/v1/customers", json={"email": f"{unique('p')}@example.com"}, headers=shop.headers
        )
        ids.append(created.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/customers", params=params, headers=shop.headers)).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # only this channel's, newest first, none twice
    assert (
        await client.get("/v1/customers", params={"cursor": "bm9wZQ"}, headers=shop.headers)
    ).json()["code"] == "invalid_cursor"
    newest = (await admin.get("/v1/customers", params={"limit": 1})).json()["data"]
    assert newest[0]["id"] == ids[-1]


@pytest.fixture
async def dispatcher(app: FastAPI) -> Any:
    runner = Dispatcher(
        settings=app.state.settings, database=app.state.database,
        database_url=app.state.settings.database_url,
    )  # fmt: skip
    task = asyncio.create_task(runner.run())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_no_answer_to_another_channel_ever_contains_what_a_channel_recorded(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, dispatcher: None
) -> None:
    """A records values; B goes down every path a channel key has to a customer and its
    orders — customer reads and lists, orders, lists by email, the feed, webhooks to its
    endpoint, error bodies — and none of A's values appears anywhere in what B receives."""
    a, b, sku = await _two_shops_one_product(admin)
    email = f"{unique('ada')}@example.com"
    secret = _secret_values()
    receiver = Receiver().start()
    try:
        hook_key = await create_key(admin, ["webhooks:write"], b.channel["id"])
        registered = await client.post(
            "/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]},
            headers=bearer(hook_key["secret"]),
        )  # fmt: skip
        assert registered.status_code == 201
        created = await client.post(
            "/v1/customers",
            json={"email": email, "name": secret["name"], "phone": secret["phone"],
                  "addresses": [_address(secret)]},
            headers=a.headers,
        )  # fmt: skip
        customer_id = created.json()["id"]
        await _order(client, a, sku, customer={"email": email, "name": secret["name"],
                                               "phone": secret["phone"]},
                     shipping_address=_address(secret), billing_address=_address(secret))  # fmt: skip

        answers: list[httpx.Response] = []

        async def ask(method: str, path: str, **kw: Any) -> httpx.Response:
            response = await client.request(method, path, headers=b.headers, **kw)
            answers.append(response)
            return response

        # Before B knows the customer, and the error bodies B can provoke.
        await ask("GET", f"/v1/customers/{customer_id}")
        await ask("GET", f"/v1/customers/{customer_id}/orders")
        await ask("GET", "/v1/customers", params={"email": email})
        await ask("POST", "/v1/orders", json={"customer_id": customer_id,
                                              "lines": [{"sku": sku, "quantity": 1}]})  # fmt: skip
        # B links to the customer by email, by order and by creation, then reads every way.
        placed = await ask("POST", "/v1/orders", json=order_body(None, [(sku, 1)],
                                                                 customer={"email": email}))  # fmt: skip
        assert placed.status_code == 201
        order_id = placed.json()["id"]
        await ask("POST", "/v1/customers", json={"email": email})
        await ask("POST", "/v1/orders", json={"customer_id": customer_id,
                                              "lines": [{"sku": sku, "quantity": 1}]})  # fmt: skip
        await ask("GET", f"/v1/customers/{customer_id}")
        await ask("GET", f"/v1/customers/{customer_id}/orders")
        await ask("GET", "/v1/customers", params={"email": email})
        await ask("GET", "/v1/customers", params={"limit": 200})
        await ask("GET", f"/v1/orders/{order_id}")
        await ask("GET", f"/v1/orders/{order_id}/events")
        await ask("GET", "/v1/orders", params={"q": email, "limit": 200})
        await ask("GET", "/v1/orders", params={"customer_id": customer_id, "limit": 200})
        await ask("POST", f"/v1/orders/{order_id}/cancel", json={"reason": "test"})
        await ask("GET", "/v1/events", params={"limit": 200})
        assert all(r.status_code < 500 for r in answers)
        assert sum(r.status_code == 200 for r in answers) >= 10

        delivered = await receiver.wait_for(
            lambda events: any(e["type"] == "order.cancelled" for e in events)
        )
        everything = b"".join(r.content for r in answers) + orjson.dumps(delivered)
        for value in secret.values():
            assert value.encode() not in everything, f"{value!r} reached channel B"
        # The admin sees A's values (so the test would notice if they were never stored).
        record = (await admin.get(f"/v1/customers/{customer_id}")).content
        assert all(value.encode() in record for value in secret.values())
    finally:
        receiver.stop()


async def test_an_email_is_case_folded_once_by_the_database_everywhere(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """`İ` (U+0130) lower-cases to `i` in PostgreSQL but to `i̇` (two code points) in Python:
    an email holding it was stored under PostgreSQL's `lower()` and looked up under Python's,
    so a channel creating a customer the business knew by it answered 500 (found by an
    outside-in attack), and lists filtered by it found nothing."""
    a, b, sku = await _two_shops_one_product(admin)
    tag = unique("x")
    email = f"\u0130{tag}@example.com"  # İ…
    known = await client.post("/v1/customers", json={"email": email}, headers=b.headers)
    assert known.status_code == 201, known.text
    # A channel that does not know them yet: 201, the business's one record.
    mine = await client.post("/v1/customers", json={"email": email}, headers=a.headers)
    assert mine.status_code == 201, mine.text
    assert mine.json()["id"] == known.json()["id"]
    # The same person spelt as PostgreSQL folds it is the same record, as for any email.
    folded = f"i{tag}@example.com"
    taken = await client.post("/v1/customers", json={"email": folded}, headers=a.headers)
    assert (taken.status_code, taken.json()["code"]) == (409, "email_taken")
    listed = await client.get("/v1/customers", params={"email": email}, headers=a.headers)
    assert [c["id"] for c in listed.json()["data"]] == [known.json()["id"]]
    listed = await admin.get("/v1/customers", params={"email": email})
    assert [c["id"] for c in listed.json()["data"]] == [known.json()["id"]]
    placed = await _order(client, a, sku, customer={"email": email})
    assert placed["customer_id"] == known.json()["id"]
    found = await client.get("/v1/orders", params={"q": email}, headers=a.headers)
    assert [o["id"] for o in found.json()["data"]] == [placed["id"]]


async def test_patch_honours_if_match_at_the_version_the_caller_sees(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """SPEC: `PATCH` honours `If-Match`. The customer's PATCH ignored it (found by an
    outside-in tester). An admin key's `version` is the record's; a channel key's is its
    channel's view, which its own change moves on (and another's change of what it shows:
    the test below)."""
    a, b, sku = await _two_shops_one_product(admin)
    email = f"{unique('ada')}@example.com"
    customer_id = (await _order(client, a, sku, customer={"email": email}))["customer_id"]
    await _order(client, b, sku, customer={"email": email})
    path = f"/v1/customers/{customer_id}"

    async def seen(headers: dict[str, str]) -> int:
        return int((await client.get(path, headers=headers)).json()["version"])

    async def patch(headers: dict[str, str], version: int, accepts: bool) -> httpx.Response:
        return await client.patch(path, json={"accepts_follow_up": accepts},
                                  headers=headers | {"If-Match": f'"{version}"'})  # fmt: skip

    mine = await seen(a.headers)
    stale = await patch(a.headers, mine + 1, False)
    assert (stale.status_code, stale.json()["code"]) == (412, "version_mismatch")
    done = await patch(a.headers, mine, False)
    assert done.status_code == 200, done.text
    assert (done.json()["accepts_follow_up"], done.json()["version"]) == (False, mine + 1)
    assert (await patch(a.headers, mine, True)).status_code == 412  # A's own change moved it
    theirs = await seen(b.headers)  # B reads again: A's change moved B's view too
    assert (await patch(b.headers, theirs, True)).status_code == 200

    as_admin = dict(admin.headers)
    record = await seen(as_admin)
    assert (await patch(as_admin, record - 1, False)).status_code == 412
    changed = await patch(as_admin, record, False)
    assert (changed.status_code, changed.json()["version"]) == (200, record + 1)
    unconditional = await client.patch(path, json={"accepts_follow_up": True}, headers=a.headers)
    assert unconditional.status_code == 200  # without If-Match, as before


async def test_a_change_every_channel_sees_moves_every_channels_version(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """`accepts_follow_up` holds for every channel, so it is in every channel's view: when
    another channel (or the admin) changes it, the view a channel read is gone, and its
    `If-Match` of that view must be 412. It was 200 (found by an outside-in tester: channel
    A read version 1 with `accepts_follow_up: true`, B set it to false, A still saw version
    1 — now with false — and A's stale PATCH overwrote B's answer: the lost update If-Match
    exists to stop). A PATCH that changes nothing moves no other channel's version (it
    would tell them that someone else wrote)."""
    a, b, sku = await _two_shops_one_product(admin)
    email = f"{unique('ada')}@example.com"
    customer_id = (await _order(client, a, sku, customer={"email": email}))["customer_id"]
    await _order(client, b, sku, customer={"email": email})
    path = f"/v1/customers/{customer_id}"

    async def read(headers: dict[str, str]) -> dict[str, Any]:
        return dict((await client.get(path, headers=headers)).json())

    async def patch(headers: dict[str, str], version: int, accepts: bool) -> httpx.Response:
        return await client.patch(path, json={"accepts_follow_up": accepts},
                                  headers=headers | {"If-Match": f'"{version}"'})  # fmt: skip

    before = await read(a.headers)
    assert before["accepts_follow_up"] is True
    changed = await patch(b.headers, (await read(b.headers))["version"], False)
    assert changed.status_code == 200, changed.text
    after = await read(a.headers)
    assert after["accepts_follow_up"] is False
    assert after["version"] != before["version"]  # what A sees changed: so did its version
    stale = await patch(a.headers, before["version"], True)
    assert (stale.status_code, stale.json()["code"]) == (412, "version_mismatch")
    assert (await read(admin.headers))["accepts_follow_up"] is False  # B's answer stands

    unchanged = await patch(b.headers, (await read(b.headers))["version"], False)
    assert unchanged.status_code == 200, unchanged.text
    assert (await read(a.headers))["version"] == after["version"]  # nothing new to see

    record = (await read(admin.headers))["version"]
    assert (await patch(dict(admin.headers), record, True)).status_code == 200
    assert (await read(a.headers))["version"] != after["version"]
    assert (await patch(a.headers, after["version"], False)).status_code == 412


async def test_a_customer_is_sent_with_its_version_as_etag(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """docs/api-conventions.md: a resource that can be edited sends its `version` as `ETag`,
    the value `If-Match` takes. A customer's GET and PATCH sent none (found by an
    outside-in regression run), for the admin's version or a channel's view."""
    a, _b, sku = await _two_shops_one_product(admin)
    customer_id = (await _order(client, a, sku, customer={"email": f"{unique('e')}@x.com"}))[
        "customer_id"
    ]
    path = f"/v1/customers/{customer_id}"
    for headers in (dict(admin.headers), a.headers):
        read = await client.get(path, headers=headers)
        assert read.headers.get("etag") == f'"{read.json()["version"]}"'
        patched = await client.patch(
            path, json={"accepts_follow_up": False},
            headers=headers | {"If-Match": read.headers["etag"]},
        )  # fmt: skip
        assert patched.status_code == 200, patched.text
        assert patched.headers.get("etag") == f'"{patched.json()["version"]}"'
