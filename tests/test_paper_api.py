"""The paper as the API prints it for the orders a warehouse meets: every field at the
longest the API takes, a SKU in a hundred parcels, quantities in the millions, a slip of
several pages. Read as a machine reads it (pdfplumber's words and characters)."""

from __future__ import annotations

import io
import re
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


async def test_a_label_prints_the_whole_sender_when_the_recipient_leaves_room(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found through the API: a warehouse with a long name and address printed its sender
    block cut at 92 pt ("GB…", no phone) above a ship-to that used a third of its room."""
    shop = await Shop.open(admin)
    location = shop.locations[0]
    sender = {
        "name": "Ζωή Παπαδοπούλου – Дмитрий Соколов – Łukasz Żółć Versandlager GmbH & Co. KG <Lager>",  # noqa: RUF001
        "company": "Ελληνικά Εμπορικά Καταστήματα Α.Ε. / ООО «Северная торговая компания»",  # noqa: RUF001
        "line1": "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetzstraße 123456789",
        "line2": "Hinterhaus, 4. Obergeschoss, Tor 17 — bitte über die Laderampe Nord anliefern",
        "city": "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch",
        "region": "Ynys Môn / Isle of Anglesey", "postal_code": "LL61 5UJ", "country": "GB",
        "phone": "+44 1248 000000 ext. 12345",
    }  # fmt: skip
    name = longest("Zentrallager Nord – Центральный склад – Κεντρική αποθήκη", 200)  # noqa: RUF001
    await _ok(await admin.patch(f"/v1/locations/{location['id']}",
                                json={"name": name, "address": sender}))  # fmt: skip
    product = await shop.product(admin, 5)
    ship_to = {"name": "Ada Lovelace", "line1": "12 St James Sq", "city": "London",
               "postal_code": "SW1Y 4JH", "country": "GB"}  # fmt: skip
    order = await _order(admin, client, shop, [(product["sku"], 1)], shipping_address=ship_to)
    shipment = (await _ok(await admin.post(f"/v1/orders/{order['id']}/allocate"), 201))["data"][0]
    await _ok(await admin.post(f"/v1/shipments/{shipment['id']}/pick"))
    await _ok(await admin.post(f"/v1/shipments/{shipment['id']}/pack",
                               json={"carrier": "DHL Express", "tracking_number": "1234567890"}))  # fmt: skip
    label = await admin.get(f"/v1/shipments/{shipment['id']}/label")
    assert label.status_code == 200, label.text
    found = words(label.content)
    assert overlapping_words(found) == []
    printed = squashed(" ".join(t for _, t, _, _ in found))
    assert "…" not in printed
    for value in sender.values():
        assert squashed(value) in printed, value


async def test_a_label_too_small_for_the_address_keeps_every_line_of_it(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found through the API: a ship-to with every field at its longest was cut at the end,
    so the label lost the town, the postal code and the country — what a courier needs most
    — after eight lines of the name. What does not fit is shortened field by field, longest
    first: each field keeps its first line."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    order = await _order(admin, client, shop, [(product["sku"], 1)],
                         shipping_address=LONGEST_ADDRESS)  # fmt: skip
    shipment = (await _ok(await admin.post(f"/v1/orders/{order['id']}/allocate"), 201))["data"][0]
    await _ok(await admin.post(f"/v1/shipments/{shipment['id']}/pick"))
    await _ok(await admin.post(f"/v1/shipments/{shipment['id']}/pack",
                               json={"carrier": "DHL", "tracking_number": "1234567890"}))  # fmt: skip
    label = (await admin.get(f"/v1/shipments/{shipment['id']}/label")).content
    found = words(label)
    assert overlapping_words(found) == []
    printed = " ".join(t for _, t, _, _ in found)
    for start in ("Maximilian", "Aktiengesellschaft", "Hauptstraße", "Hinterhof", "Oberbayern",
                  "8" * 32, "DE", "+" + "4" * 63):  # fmt: skip
        assert start in printed, start


async def test_every_page_of_a_long_packing_slip_says_whose_it_is(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found through the API: a 60-line packing slip ran to four pages, and pages 2 to 4
    named no order (nor the return slip's pages its RMA): a page that slipped out of the
    pile could not be put back. Every page names its document and says "page n of m"."""
    shop = await Shop.open(admin)
    products = [await shop.product(admin, 2000, name=f"Woollen jumper, navy, no. {i}")
                for i in range(60)]  # fmt: skip
    order = await _order(
        admin, client, shop, [(p["sku"], 1000 + i) for i, p in enumerate(products)]
    )
    shipment = (await _ok(await admin.post(f"/v1/orders/{order['id']}/allocate"), 201))["data"][0]
    slip = (await admin.get(f"/v1/shipments/{shipment['id']}/packing-slip")).content
    found = words(slip)
    pages: dict[int, str] = {}
    for page, text, _, _ in found:
        pages[page] = pages.get(page, "") + " " + text
    assert len(pages) >= 2
    for page, text in pages.items():
        assert f"#{order['number']}" in text, page
        assert re.search(rf"page {page + 1} of {len(pages)}\b", text), (page, text[-200:])
    assert overlapping_words(found) == []
