"""The paper as the API prints it for the orders a warehouse meets: every field at the
longest the API takes, a SKU in a hundred parcels, quantities in the millions, a slip of
several pages. Read as a machine reads it (pdfplumber's words and characters)."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pdfplumber

from tests.factories import Shop, order_body, place
from tests.paper_reading import flowed_text, overlapping_words, squashed, words

PAID = {"method": "card", "status": "paid"}


def longest(stem: str, length: int) -> str:
    """`stem` repeated as words to exactly `length` characters."""
    return " ".join([stem] * length)[:length].rstrip().ljust(length, "Z")


# Every field of an address at the longest the API takes.
LONGEST_ADDRESS = {
    "name": longest("Maximilian Alexander von Hohenzollern", 500),
    "company": longest("Aktiengesellschaft für Lagerlogistik", 500),
    "line1": longest("Hauptstraße 1", 500),
    "line2": longest("Hinterhof", 500),
    "city": longest("Garmisch-Partenkirchen", 200),
    "region": longest("Oberbayern", 500),
    "postal_code": "8" * 32,
    "country": "DE",
    "phone": "+" + "4" * 63,
}


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _order(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, shop: Shop,
    lines: list[tuple[str, int]], **fields: Any,
) -> dict[str, Any]:  # fmt: skip
    body = order_body(None, lines, payment=PAID, **fields)
    order = await _ok(await place(client, body, headers=shop.headers), 201)
    if order["status"] == "on_hold":  # a large order is held by the risk rules
        order = await _ok(await admin.post(f"/v1/orders/{order['id']}/release"))
    assert order["status"] == "confirmed", order
    return dict(order)


async def test_a_packing_slip_with_every_address_field_at_its_longest_prints(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found through the API: the packing slip of an order whose address fields were as long
    as the API takes was a 500 (reportlab's LayoutError: the ship-to and from columns, one
    table row, were taller than a page and could not be split)."""
    shop = await Shop.open(admin)
    location = shop.locations[0]
    await _ok(await admin.patch(f"/v1/locations/{location['id']}",
                                json={"address": LONGEST_ADDRESS}))  # fmt: skip
    product = await shop.product(admin, 5)
    order = await _order(admin, client, shop, [(product["sku"], 1)],
                         shipping_address=LONGEST_ADDRESS)  # fmt: skip
    shipment = (await _ok(await admin.post(f"/v1/orders/{order['id']}/allocate"), 201))["data"][0]
    slip = await admin.get(f"/v1/shipments/{shipment['id']}/packing-slip")
    assert slip.status_code == 200, slip.text
    found = words(slip.content)
    assert overlapping_words(found) == []
    printed = squashed(" ".join(t for _, t, _, _ in found))
    for field in ("city", "postal_code", "phone"):
        assert squashed(LONGEST_ADDRESS[field]) in printed, field


async def test_a_pick_list_of_a_sku_in_a_hundred_and_fifty_parcels_prints(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found through the API: the pick list's PDF was a 500 once one SKU went into so many
    shipments that the row naming them all was taller than a page."""
    shop = await Shop.open(admin)
    location = shop.locations[0]
    product = await shop.product(admin, 200)
    order = await _order(admin, client, shop, [(product["sku"], 150)])
    line = order["lines"][0]["id"]
    for _ in range(150):
        await _ok(await admin.post(f"/v1/orders/{order['id']}/shipments", json={
            "location_id": location["id"], "lines": [{"line_id": line, "quantity": 1}]}), 201)  # fmt: skip
    printed = await admin.get(f"/v1/locations/{location['id']}/pick-list.pdf")
    assert printed.status_code == 200, printed.text
    found = words(printed.content)
    assert overlapping_words(found) == []
    listing = await _ok(await admin.get(f"/v1/locations/{location['id']}/pick-list"))
    text = squashed(flowed_text(found))
    for shipment in listing["items"][0]["shipments"]:
        assert shipment["shipment_id"][-6:] in text


def _chars_by_word(content: bytes) -> list[tuple[str, float, float]]:
    """(word, x0, x1) of each run of characters with no gap between them, on the first page:
    two texts printed one over the other make one run."""
    with pdfplumber.open(io.BytesIO(content)) as pdf:
        found = pdf.pages[0].extract_words(x_tolerance=0.5)
    return [(w["text"], w["x0"], w["x1"]) for w in found]


async def test_a_pick_list_quantity_in_the_millions_keeps_to_its_column(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found through the API: two orders of a million units each made a pick-list row of
    2000000, printed across the order numbers beside it ("2000000#1006")."""
    shop = await Shop.open(admin)
    location = shop.locations[0]
    product = await shop.product(admin, 3_000_000)
    numbers = []
    for _ in range(2):
        order = await _order(admin, client, shop, [(product["sku"], 1_000_000)])
        numbers.append(order["number"])
        await _ok(await admin.post(f"/v1/orders/{order['id']}/allocate"), 201)
    printed = await admin.get(f"/v1/locations/{location['id']}/pick-list.pdf")
    assert printed.status_code == 200, printed.text
    runs = _chars_by_word(printed.content)
    quantity = max((r for r in runs if r[0] == "2000000"), key=lambda r: r[1])  # the table's
    [first_for] = [r for r in runs if r[0].startswith(f"#{numbers[0]}")]
    assert quantity[2] < first_for[1], (quantity, first_for)
    assert overlapping_words(words(printed.content)) == []
