"""The paper read as a machine reads it: every barcode decodes at 203 and 300 dpi, with
whole-dot modules and clear quiet zones; in the stress set no two words overlap, every word
is on its page and clear of the bars, and every field is printed whole."""

from __future__ import annotations

import io
import itertools
import logging

import pdfplumber
import pytest

from oms_api import paper
from tests import paper_samples as samples
from tests.paper_reading import (
    bar_areas,
    barcodes,
    flowed_text,
    overlap,
    overlapping_words,
    squashed,
    words,
)


@pytest.mark.parametrize("carrier", list(samples.CARRIER_NUMBERS))
def test_each_carriers_label_decodes_at_203_and_300_dpi(carrier: str) -> None:
    number = samples.CARRIER_NUMBERS[carrier]
    label = paper.shipping_label(
        samples.shipment(carrier=carrier, number=number), samples.STRESS_SHIP_TO,
        *samples.location(stress=True),
    )  # fmt: skip
    for dpi in (203, 300):
        assert barcodes(label, dpi) == [number], (carrier, dpi)


@pytest.mark.parametrize(
    "number",
    [
        "1Z999AA10123456784",
        "9400111899223197428490",
        "1234567890",
        "ABCDEFGHIJKLMNOPQRST",  # 20: past ~18 characters untrimmed bars stopped decoding
        "AB1" * 9 + "AB",  # 29 characters mixed: the longest the API takes
        "12" * 29,  # 58 digits, in pairs (code set C)
    ],
)
def test_label_bars_are_whole_dots_with_quiet_zones_clear_of_the_frame(number: str) -> None:
    label = paper.shipping_label(samples.shipment(number=number), samples.DEMO_SHIP_TO,
                                 *samples.location())  # fmt: skip
    with pdfplumber.open(io.BytesIO(label)) as pdf:
        page = pdf.pages[0]
        bars = sorted(
            (r for r in page.rects if r["fill"] and r["height"] > 20), key=lambda r: r["x0"]
        )
        [frame] = [r for r in page.rects if r["stroke"] and not r["fill"]]
    assert len(bar_areas(label)) == 1
    assert bars[0]["height"] >= 72  # an inch of bars: a hand scanner finds them
    in_dots = [(r["x0"] * 203 / 72, r["x1"] * 203 / 72) for r in bars]
    trim = paper.BAR_TRIM_DOTS
    for x0, x1 in in_dots:  # every edge on the printer's dot grid, the bar trimmed inside it
        assert abs(x0 - trim - round(x0)) < 0.01, x0
        assert abs(x1 + trim - round(x1)) < 0.01, x1
    widths = [round(x1 - x0) for x0, x1 in in_dots]
    gaps = [round(b[0] - a[1]) for a, b in itertools.pairwise(in_dots)]
    module = min(widths + gaps)
    assert module >= 2  # 2 dots at 203 dpi is 0.25 mm (10 mil), what scanners read
    assert all(w % module == 0 for w in widths + gaps)
    # Quiet zones: 10 modules from the outer bars to the frame's lines (their inner edges).
    frame_left = (frame["x0"] + frame["linewidth"] / 2) * 203 / 72
    frame_right = (frame["x1"] - frame["linewidth"] / 2) * 203 / 72
    assert in_dots[0][0] - frame_left >= 10 * module
    assert frame_right - in_dots[-1][1] >= 10 * module
    assert barcodes(label, 203) == [number]
    assert barcodes(label, 300) == [number]


def test_a_label_prints_scannable_bars_for_every_number_the_api_takes() -> None:
    """`label_barcode_scans` (what /pack and /ship accept) against what decodes: the longest
    accepted numbers decode, the next character is refused."""
    for accepted, refused in (("AB1" * 9 + "AB", "AB1" * 10), ("12" * 29, "12" * 29 + "1")):
        assert paper.label_barcode_scans(accepted)
        assert not paper.label_barcode_scans(refused)


def test_the_return_slips_rma_decodes_at_203_and_300_dpi() -> None:
    slip = paper.return_slip(samples.rma(), *samples.location(stress=True))
    for dpi in (203, 300):
        assert barcodes(slip, dpi) == ["RMA-10001"], dpi


STRESS = samples.documents()


def _fields(name: str) -> list[str]:
    ship, (loc, loc_address) = samples.shipment(40, stress=True), samples.location(stress=True)
    addresses = [*paper.address_lines(loc_address), loc["name"]]
    if name == "label-stress":
        return [*paper.address_lines(samples.STRESS_SHIP_TO), *addresses, ship["carrier"],
                ship["service"], ship["tracking_number"], ship["id"], str(ship["order_number"])]  # fmt: skip
    if name == "packing-slip-stress":
        return [*paper.address_lines(samples.STRESS_SHIP_TO), *addresses,
                *(x["sku"] for x in ship["lines"]), *(x["name"] for x in ship["lines"])]  # fmt: skip
    if name == "pick-list-stress":
        listing = samples.pick_listing()
        return [listing["location_name"], *(x["sku"] for x in listing["items"]),
                *(x["name"] for x in listing["items"])]  # fmt: skip
    if name == "manifest-stress":
        pickup = samples.pickup()
        return [pickup["carrier"], pickup["note"], *addresses,
                *(x["tracking_number"] for x in pickup["shipments"])]  # fmt: skip
    rma = samples.rma()
    return [rma["number"], *addresses, *(x["sku"] for x in rma["lines"]),
            *(x["name"] for x in rma["lines"])]  # fmt: skip


@pytest.mark.parametrize("name", [k for k in STRESS if k.endswith("-stress")])
def test_stress_set_words_apart_on_the_page_clear_of_bars_and_whole(name: str) -> None:
    content = STRESS[name]
    found = words(content)
    assert found
    assert overlapping_words(found) == []
    for _, text, box, page in found:
        assert page[0] <= box[0] <= box[2] <= page[2], text
        assert page[1] <= box[1] <= box[3] <= page[3], text
    areas = bar_areas(content)
    assert len(areas) == (1 if name in ("label-stress", "return-slip-stress") else 0)
    for page_index, (x0, top, x1, bottom), module in areas:
        assert module >= paper.dots(2) - 0.01
        zone = (x0 - 10 * module, top - 2, x1 + 10 * module, bottom + 2)
        hits = [t for p, t, box, _ in found if p == page_index and overlap(box, zone, 0)]
        assert hits == []
    printed = squashed(flowed_text(found))
    assert "\x00" not in printed
    assert paper.REPLACEMENT not in printed
    for field in _fields(name):
        assert squashed(field) in printed, field
    if name.endswith("list-stress") or name.startswith(("packing", "return", "manifest")):
        assert max(p for p, _, _, _ in found) >= 1  # 40 lines run onto a second page


def test_greek_cyrillic_and_polish_names_print_whole() -> None:
    names = ["Ζωή Παπαδοπούλου", "Дмитрий Соколов", "Łukasz Żółć"]
    for name in names:
        label = paper.shipping_label(samples.shipment(), samples.DEMO_SHIP_TO | {"name": name},
                                     *samples.location())  # fmt: skip
        printed = " ".join(t for _, t, _, _ in words(label))
        assert name in printed


def test_a_character_outside_the_font_prints_a_replacement_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="oms_api.paper"):
        label = paper.shipping_label(
            samples.shipment(),
            samples.DEMO_SHIP_TO | {"name": "山田 太郎 Yamada"},
            *samples.location(),
        )
    printed = " ".join(t for _, t, _, _ in words(label))
    assert "\ufffd\ufffd \ufffd\ufffd Yamada" in printed
    assert "\x00" not in printed
    assert "U+5C71" in caplog.text


def test_text_that_cannot_fit_is_shortened_visibly_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="oms_api.paper"):
        lines = paper.layout([("word " * 200, paper.REGULAR, 12)], 100, 30)
    assert lines[-1].text.endswith("…")
    assert sum(x.leading for x in lines) <= 30
    assert all(x.size == paper.FLOOR for x in lines)
    assert "shortened" in caplog.text


def test_right_to_left_text_prints_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="oms_api.paper"):
        assert paper.printable("שלום Shalom") == "שלום Shalom"  # the font has the letters
    assert "right-to-left" in caplog.text


def test_the_manifest_is_signed_on_the_page_that_counts_the_parcels() -> None:
    """With 60 parcels (seen through the API) the signature lines were alone on a third
    page: the driver signed a sheet that named no pickup, no count and no weight. Whatever
    the count, the lines to sign share a page with the total, and one parcel is "1 parcel"."""
    location = samples.location(stress=True)
    for parcels in (1, *range(20, 80, 3)):
        found = words(paper.pickup_manifest(samples.pickup(parcels), *location))
        pages: dict[int, list[str]] = {}
        for page, text, _, _ in found:
            pages.setdefault(page, []).append(text)
        signed = [p for p, texts in pages.items() if "Driver" in texts]
        assert len(signed) == 1, parcels
        text = " ".join(pages[signed[0]])
        expected = "1 parcel," if parcels == 1 else f"{parcels} parcels,"
        assert f"The carrier received {expected}" in text, (parcels, text)
        assert "Pickup pck_01JF3W6ZK8Q4VX2N7TB5M9HC0D, Deutsche" in text.split("received")[-1]
        if parcels == 1:
            assert "1 parcels" not in " ".join(t for texts in pages.values() for t in texts)


def test_a_pick_list_tells_one_orders_shipments_apart() -> None:
    """Found by an outside-in tester: two shipments of one order at one location printed
    as two identical "#1007 x 1"; the packer could not tell which parcel a unit goes in."""
    listing = samples.pick_listing(1)
    listing["items"][0]["shipments"] = [
        {"shipment_id": "shp_01JF3W6ZK8Q4VX2N7TB5AAAAAA", "order_number": 1007, "quantity": 1},
        {"shipment_id": "shp_01JF3W6ZK8Q4VX2N7TB5BBBBBB", "order_number": 1007, "quantity": 1},
        {"shipment_id": "shp_01JF3W6ZK8Q4VX2N7TB5CCCCCC", "order_number": 1008, "quantity": 2},
    ]
    text = flowed_text(words(paper.pick_list(listing)))
    times = "\u00d7"
    expected = f"#1007 (…AAAAAA) {times} 1, #1007 (…BBBBBB) {times} 1, #1008 {times} 2"
    assert squashed(expected) in squashed(text)


@pytest.mark.parametrize(
    ("skus", "quantity", "said"),
    [(1, 1, "1 SKU, 1 unit"), (1, 2500, "1 SKU, 2,500 units"), (3, 3, "3 SKUs, 9 units")],
)
def test_a_pick_list_counts_in_words_a_person_reads(skus: int, quantity: int, said: str) -> None:
    """Found by a warehouse supervisor: a pick list of one SKU said "1 SKUs"."""
    listing = samples.pick_listing(skus)
    for item in listing["items"]:
        item["quantity"] = quantity
    text = flowed_text(words(paper.pick_list(listing)))
    assert squashed(said) in squashed(text), text[:300]
