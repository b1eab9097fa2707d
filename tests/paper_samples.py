"""Documents for paper.py: the demo's kind, a stress set (every field long, non-Latin
names, a 40-line order) and each well-known carrier's tracking-number shape.

`python tests/paper_samples.py DIR PREFIX` renders the samples' first pages as 100 dpi PNGs
(docs/paper/ holds them, before and after issue 17).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# One made-up number per carrier that domain/carriers.py knows, in that carrier's shape.
CARRIER_NUMBERS = {
    "UPS": "1Z999AA10123456784",  # 1Z + shipper + service + package + check digit
    "FedEx": "449044304137821",  # 12 or 15 digits
    "FedEx Ground 22": "9612019059803563050071",
    "USPS": "9400111899223197428490",  # 22 digits (IMpb)
    "DHL Express": "1234567890",  # 10 digits
    "DHL Paket": "JJD000390007756565443",  # JJD + 18 digits
    "DHL Paket 20": "00340434161094042557",  # 20-digit SSCC
    "Royal Mail": "AB123456789GB",  # S10: 2 letters, 9 digits, country
    "PostNL": "3SABCD1234567",  # 3S + customer code + serial
    "Canada Post": "1234567890123456",  # 16 digits
    "Australia Post": "33ABC1234567890123456",  # article id
    "La Poste / Colissimo": "6A12345678901",  # 13 characters
}


def sixty(stem: str) -> str:
    """`stem` repeated as words to exactly 60 characters."""
    text = " ".join([stem] * 30)[:60].rstrip()
    return (text + "Z" * 60)[:60]


STRESS_SHIP_TO = {
    "name": "Ζωή Παπαδοπούλου-Καραγιαννοπούλου Αλεξανδροπούλου Βασιλείου",
    "company": sixty("Großkopf"),
    "line1": "Straße des 17. Juni 135, 3. Obergeschoss, Hinterhaus links 5",
    "line2": sixty("am Königsplatz"),
    "city": sixty("Bayerisch"),
    "region": sixty("Oberbayern"),
    "postal_code": "D-80331-XYZ",
    "country": "DE",
    "phone": "+49 89 1234567 / +49 170 1234567 / +49 171 7654321 ext 99",
}
STRESS_SHIP_FROM_ADDRESS = {
    "name": "Дмитрий Соколов Складской Комплекс Восточный Терминал Nord",
    "company": "Łukasz Żółć Logistyka Spółka z ograniczoną odpowiedzialnością",
    "line1": sixty("Lagerstrasse"),
    "line2": sixty("Tor"),
    "city": sixty("Berlin"),
    "region": sixty("Brandenburg"),
    "postal_code": "10115",
    "country": "DE",
    "phone": "+49 30 1234567",
}
DEMO_SHIP_TO = {"name": "Rosalind Franklin", "line1": "12 St James Sq", "city": "London",
                "postal_code": "SW1Y 4JH", "country": "GB"}  # fmt: skip
DEMO_FROM = {"name": "Demo Shop GmbH", "line1": "Lagerstrasse 5", "city": "Berlin",
             "postal_code": "10115", "country": "DE", "phone": "+49 30 1234567"}  # fmt: skip


def sku(i: int) -> str:
    """40 characters; only the end tells one from the next."""
    return f"APPAREL-TSHIRT-ORGANIC-COTTON-RED-M-{i:04d}"


def product_name(i: int) -> str:
    """120 characters."""
    base = (f"Organic cotton T-shirt no. {i}, red, size M — Łódź edition, "
            "ζωή, Соколов, printed front and back, washed soft, boxed")  # fmt: skip
    return (base + " extra" * 30)[:120]


def shipment(lines: int = 1, stress: bool = False, carrier: str = "UPS",
             number: str = "1Z999AA10123456784") -> dict[str, Any]:  # fmt: skip
    items = [
        {"sku": sku(i) if stress else "HOODIE-M-GREY",
         "name": product_name(i) if stress else "Hoodie, grey, M", "quantity": 1 + i % 3}
        for i in range(lines)
    ]  # fmt: skip
    return {
        "id": "shp_01JF3W6ZK8Q4VX2N7TB5M9HC0D",
        "carrier": ("Deutsche Post DHL Paket International Express Premium" if stress else carrier),
        "service": (
            "Overnight delivery before 09:00, signature required, Saturday"
            if stress
            else "Standard"
        ),
        "tracking_number": number,
        "weight_grams": 12_345 if stress else 850,
        "order_number": 100234567 if stress else 1007,
        "status": "packed",
        "lines": items,
    }


def order(ship: dict[str, Any], stress: bool = False) -> dict[str, Any]:
    return {
        "number": ship["order_number"],
        "created_at": "2026-12-01T09:30:00+00:00",
        "shipping_address": STRESS_SHIP_TO if stress else DEMO_SHIP_TO,
        "lines": [
            {"quantity_reserved": x["quantity"], "quantity_backordered": 0} for x in ship["lines"]
        ],
    }


def location(stress: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    if stress:
        return {"name": sixty("Warehouse")}, STRESS_SHIP_FROM_ADDRESS
    return {"name": "Berlin warehouse"}, DEMO_FROM


def pick_listing(lines: int = 40) -> dict[str, Any]:
    return {
        "location_name": sixty("Warehouse"),
        "statuses": ["pending", "picking"],
        "generated_at": "2026-12-01T09:30:00+00:00",
        "items": [
            {"sku": sku(i), "name": product_name(i), "quantity": 3,
             "shipments": [{"shipment_id": f"shp_01JF3W6ZK8Q4VX2N7TB5M9HC{i % 10}{k}",
                            "order_number": 100234500 + k, "quantity": 1} for k in range(3)]}
            for i in range(lines)
        ],
    }  # fmt: skip


def pickup(parcels: int = 40) -> dict[str, Any]:
    numbers = list(CARRIER_NUMBERS.values())
    return {
        "id": "pck_01JF3W6ZK8Q4VX2N7TB5M9HC0D",
        "status": "ready",
        "carrier": "Deutsche Post DHL Paket International Express Premium",
        "ready_at": "2026-12-01T15:00:00+00:00",
        "note": sixty("Rampe") + " " + sixty("Hintereingang"),
        "shipments": [
            {"order_number": 100234500 + i, "tracking_number": numbers[i % len(numbers)],
             "weight_grams": 1000 + i}
            for i in range(parcels)
        ],
        "parcel_count": parcels,
        "total_weight_grams": sum(1000 + i for i in range(parcels)),
    }  # fmt: skip


def rma(lines: int = 40, stress: bool = True) -> dict[str, Any]:
    return {
        "number": "RMA-10001",
        "order_number": 100234567 if stress else 1007,
        "resolution": "refund",
        "lines": [
            {"sku": sku(i) if stress else "MUG-LOGO",
             "name": product_name(i) if stress else "Mug with logo",
             "quantity": 1, "reason": "changed_mind"}
            for i in range(lines)
        ],
    }  # fmt: skip


def documents() -> dict[str, bytes]:
    """Each sample document, by name."""
    from oms_api import paper

    demo_ship, stress_ship = shipment(), shipment(40, stress=True)
    demo_loc, stress_loc = location(), location(stress=True)
    return {
        "label-demo": paper.shipping_label(demo_ship, DEMO_SHIP_TO, *demo_loc),
        "label-stress": paper.shipping_label(stress_ship, STRESS_SHIP_TO, *stress_loc),
        "packing-slip-stress": paper.packing_slip(
            stress_ship, order(stress_ship, stress=True), *stress_loc
        ),
        "pick-list-stress": paper.pick_list(pick_listing()),
        "manifest-stress": paper.pickup_manifest(pickup(), *stress_loc),
        "return-slip-stress": paper.return_slip(rma(), *stress_loc),
    }


def main(out: Path, prefix: str) -> None:
    import pypdfium2 as pdfium

    out.mkdir(parents=True, exist_ok=True)
    for name, content in documents().items():
        page = pdfium.PdfDocument(content)[0]
        page.render(scale=100 / 72, grayscale=True).to_pil().convert("L").save(
            out / f"{prefix}-{name}.png", optimize=True
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
