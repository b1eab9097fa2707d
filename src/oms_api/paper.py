"""What a person reads: shipping labels, packing slips, pick lists, pickup manifests and
return slips, drawn as PDF with reportlab. Pure rendering: documents in, bytes out.

Text is set in Bitstream Vera (shipped inside reportlab and embedded in each PDF), which
covers Western European scripts; barcodes are Code 128, drawn by reportlab itself.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import reportlab
from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch, mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import registerFontFamily
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

LABEL_SIZE = (4 * inch, 6 * inch)  # 288 x 432 pt, portrait
REGULAR, BOLD = "OmsVera", "OmsVera-Bold"
_FONTS = Path(reportlab.__file__).parent / "fonts"
pdfmetrics.registerFont(TTFont(REGULAR, str(_FONTS / "Vera.ttf")))
pdfmetrics.registerFont(TTFont(BOLD, str(_FONTS / "VeraBd.ttf")))
registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD, italic=REGULAR, boldItalic=BOLD)

_TEXT = ParagraphStyle("text", fontName=REGULAR, fontSize=9.5, leading=12)
_SMALL = ParagraphStyle("small", parent=_TEXT, fontSize=8, leading=10, textColor=colors.grey)
_TITLE = ParagraphStyle("title", parent=_TEXT, fontName=BOLD, fontSize=18, leading=22)
_HEADING = ParagraphStyle("heading", parent=_TEXT, fontName=BOLD, fontSize=10.5, leading=14)
_TABLE = TableStyle([
    ("FONT", (0, 0), (-1, -1), REGULAR, 9),
    ("FONT", (0, 0), (-1, 0), BOLD, 9),
    ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
    ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("TOPPADDING", (0, 0), (-1, -1), 4),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
])  # fmt: skip


# Countries whose addresses put the town before the postal code.
CITY_FIRST = frozenset({"GB", "IE", "US", "CA", "AU", "NZ", "JP", "KR", "BR", "IN"})


def address_lines(address: Mapping[str, Any] | None) -> list[str]:
    """An address as the lines a courier reads, top to bottom."""
    if not address:
        return []
    postal, city, region = address.get("postal_code"), address.get("city"), address.get("region")
    if address.get("country") in CITY_FIRST:  # "London SW1Y 4JH", "Boston MA 02110"
        town = " ".join(x for x in (city, region, postal) if x)
    else:  # "10115 Berlin"
        town = ", ".join(x for x in (" ".join(x for x in (postal, city) if x), region) if x)
    lines = [address.get("name"), address.get("company"), address.get("line1"),
             address.get("line2"), town, address.get("country"), address.get("phone")]  # fmt: skip
    return [str(x) for x in lines if x]


def weight_text(grams: int | None) -> str:
    if not grams:
        return "—"
    return f"{grams / 1000:.2f} kg" if grams >= 1000 else f"{grams} g"


def _when(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _para(lines: Sequence[str], style: ParagraphStyle = _TEXT) -> Paragraph:
    return Paragraph("<br/>".join(_escape(x) for x in lines) or "—", style)


def _block(heading: str, lines: Sequence[str]) -> Paragraph:
    """A labelled block: the heading in bold, then its lines."""
    body = "<br/>".join(_escape(x) for x in lines) or "—"
    return Paragraph(f"<b>{_escape(heading)}</b><br/>{body}", _TEXT)


class _Barcode(Flowable):  # type: ignore[misc]
    """A Code 128 barcode scaled to a width, its value printed beneath."""

    def __init__(self, value: str, width: float, height: float = 16 * mm) -> None:
        super().__init__()
        self.value, self.width, self.bar_height = value, width, height
        self.height = height + 7 * mm
        self.hAlign = "LEFT"

    def draw(self) -> None:
        draw_code128(self.canv, self.value, 0, 7 * mm, self.width, self.bar_height)
        self.canv.setFont(BOLD, 13)
        self.canv.drawCentredString(self.width / 2, 0, self.value)


class _Checkbox(Flowable):  # type: ignore[misc]
    """An empty square to tick."""

    def __init__(self) -> None:
        super().__init__()
        self.width = self.height = 9

    def draw(self) -> None:
        self.canv.setLineWidth(0.7)
        self.canv.rect(0, 0, self.width, self.height)


def draw_code128(
    canvas: Canvas, value: str, x: float, y: float, width: float, height: float
) -> None:
    """`value` as Code 128 bars filling `width` (narrowest bar at most 1.5 pt)."""
    probe = Code128(value, barHeight=height, barWidth=1.0, quiet=False)
    bar = min(width / probe.width, 1.5)
    code = Code128(value, barHeight=height, barWidth=bar, quiet=False)
    code.drawOn(canvas, x + (width - code.width) / 2, y)


def _pdf(title: str, story: list[Flowable]) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, title=title, author="oms-api", leftMargin=18 * mm,
        rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=16 * mm,
    )  # fmt: skip
    doc.build(story)
    return out.getvalue()


def _two_columns(left: Flowable, right: Flowable, width: float) -> Table:
    table = Table([[left, right]], colWidths=[width / 2, width / 2], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LEFTPADDING", (0, 0), (-1, -1), 0)]))  # fmt: skip
    return table


# --- the shipping label ----------------------------------------------------------------------


def shipping_label(
    shipment: Mapping[str, Any], ship_to: Mapping[str, Any] | None,
    ship_from: Mapping[str, Any], ship_from_address: Mapping[str, Any] | None,
) -> bytes:  # fmt: skip
    """A 4 by 6 in label: carrier and service, ship-from, ship-to, weight, order number,
    and the tracking number as text and as Code 128."""
    out = io.BytesIO()
    width, height = LABEL_SIZE
    c = Canvas(out, pagesize=LABEL_SIZE)
    c.setTitle(f"Label {shipment['tracking_number']}")
    c.setAuthor("oms-api")
    m = 12  # margin, pt
    c.setLineWidth(1.2)
    c.rect(m / 2, m / 2, width - m, height - m)

    # Carrier band.
    y = height - m - 22
    carrier = str(shipment["carrier"] or "")[:40]
    room = width - 2 * m - 70  # the weight sits at the right
    c.setFont(BOLD, min(20.0, 20 * room / max(pdfmetrics.stringWidth(carrier, BOLD, 20), 1)))
    c.drawString(m, y, carrier)
    c.setFont(REGULAR, 10)
    c.drawString(m, y - 14, str(shipment["service"] or "")[:40])
    c.setFont(BOLD, 12)
    c.drawRightString(width - m, y, weight_text(shipment["weight_grams"]))
    y -= 24
    c.line(m / 2, y, width - m / 2, y)

    # Ship from.
    y -= 12
    c.setFont(BOLD, 7)
    c.drawString(m, y, "FROM")
    c.setFont(REGULAR, 8)
    for line in [str(ship_from.get("name", "")), *address_lines(ship_from_address)]:
        y -= 10
        c.drawString(m, y, line[:60])
    y -= 8
    c.line(m / 2, y, width - m / 2, y)

    # Ship to: what the courier reads first.
    y -= 16
    c.setFont(BOLD, 8)
    c.drawString(m, y, "SHIP TO")
    for i, line in enumerate(address_lines(ship_to) or ["(no shipping address on the order)"]):
        y -= 17 if i == 0 else 15
        c.setFont(BOLD if i == 0 else REGULAR, 14 if i == 0 else 12)
        c.drawString(m + 8, y, line[:34])
    y -= 12
    c.line(m / 2, y, width - m / 2, y)

    # Order and parcel.
    y -= 18
    c.setFont(BOLD, 12)
    c.drawString(m, y, f"Order #{shipment['order_number']}")
    c.setFont(REGULAR, 7)
    c.drawString(m, y - 11, f"Shipment {shipment['id']}")

    # Tracking number: bars and text.
    number = str(shipment["tracking_number"])
    draw_code128(c, number, m, 58, width - 2 * m, 70)
    c.setFont(BOLD, 11)
    c.drawCentredString(width / 2, 42, number)
    c.setFont(REGULAR, 7)
    c.drawCentredString(width / 2, 28, "TRACKING NUMBER")
    c.showPage()
    c.save()
    return out.getvalue()


# --- the packing slip --------------------------------------------------------------------------


def packing_slip(
    shipment: Mapping[str, Any], order: Mapping[str, Any], ship_from: Mapping[str, Any],
    ship_from_address: Mapping[str, Any] | None,
) -> bytes:  # fmt: skip
    width = A4[0] - 36 * mm
    rows = [["SKU", "Item", "Quantity"]] + [
        [line["sku"], Paragraph(_escape(line["name"]), _TEXT), str(line["quantity"])]
        for line in shipment["lines"]
    ]
    items = Table(
        rows, colWidths=[width * 0.25, width * 0.6, width * 0.15], repeatRows=1, hAlign="LEFT"
    )
    items.setStyle(_TABLE)
    units = sum(line["quantity"] for line in shipment["lines"])
    story: list[Flowable] = [
        Paragraph("Packing slip", _TITLE),
        Paragraph(f"Order #{order['number']}", _HEADING),
        _para([f"Shipment {shipment['id']}", f"Placed {_when(order['created_at'])}"], _SMALL),
        Spacer(1, 6 * mm),
        _two_columns(
            _block("Ship to", address_lines(order["shipping_address"])),
            _block("From", [str(ship_from.get("name", "")), *address_lines(ship_from_address)]),
            width,
        ),
        Spacer(1, 8 * mm),
        items,
        Spacer(1, 4 * mm),
        Paragraph(f"{units} unit{'s' if units != 1 else ''} in this parcel.", _TEXT),
    ]
    outstanding = sum(x["quantity_reserved"] + x["quantity_backordered"] for x in order["lines"])
    if shipment["status"] in ("pending", "picking", "packed"):  # this parcel's are still reserved
        outstanding -= units
    if outstanding > 0:
        story += [Spacer(1, 3 * mm), Paragraph(
            "More of this order follows in another parcel.", _SMALL
        )]  # fmt: skip
    return _pdf(f"Packing slip, order {order['number']}", story)


# --- the pick list -------------------------------------------------------------------------------


def pick_list(listing: Mapping[str, Any]) -> bytes:
    width = A4[0] - 36 * mm
    rows: list[list[Any]] = [["", "SKU", "Item", "Qty", "For"]]
    for item in listing["items"]:
        times = "\u00d7"  # the multiplication sign, on paper
        detail = ", ".join(
            f"#{s['order_number']} {times} {s['quantity']}" for s in item["shipments"]
        )
        rows.append([_Checkbox(), item["sku"], Paragraph(_escape(item["name"]), _TEXT),
                     str(item["quantity"]), Paragraph(_escape(detail), _SMALL)])  # fmt: skip
    table = Table(
        rows, colWidths=[width * x for x in (0.05, 0.2, 0.35, 0.08, 0.32)], repeatRows=1,
        hAlign="LEFT",
    )  # fmt: skip
    table.setStyle(_TABLE)
    units = sum(i["quantity"] for i in listing["items"])
    story: list[Flowable] = [
        Paragraph(f"Pick list — {_escape(listing['location_name'])}", _TITLE),
        _para(
            [
                f"Shipments {', '.join(listing['statuses'])}; generated {_when(listing['generated_at'])}",
                f"{len(listing['items'])} SKUs, {units} units",
            ],
            _SMALL,
        ),
        Spacer(1, 6 * mm),
        table if listing["items"] else Paragraph("Nothing to pick.", _TEXT),
    ]
    return _pdf(f"Pick list {listing['location_name']}", story)


# --- the pickup manifest -------------------------------------------------------------------------


def pickup_manifest(
    pickup: Mapping[str, Any], location: Mapping[str, Any], location_address: Mapping[str, Any] | None
) -> bytes:  # fmt: skip
    width = A4[0] - 36 * mm
    rows: list[list[Any]] = [["#", "Order", "Tracking number", "Weight"]]
    for i, parcel in enumerate(pickup["shipments"], 1):
        rows.append([str(i), f"#{parcel['order_number']}", parcel["tracking_number"] or "—",
                     weight_text(parcel["weight_grams"])])  # fmt: skip
    rows.append(
        ["", "", f"{pickup['parcel_count']} parcels", weight_text(pickup["total_weight_grams"])]
    )
    table = Table(
        rows, colWidths=[width * x for x in (0.08, 0.2, 0.52, 0.2)], repeatRows=1, hAlign="LEFT"
    )
    table.setStyle(_TABLE)
    table.setStyle(TableStyle([("FONT", (0, -1), (-1, -1), BOLD, 9),
                               ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black)]))  # fmt: skip
    signatures = Table(
        [["Driver (name)", "Signature", "Date and time"], ["", "", ""],
         ["Handed over by", "Signature", ""], ["", "", ""]],
        colWidths=[width / 3] * 3, rowHeights=[12, 28, 12, 28], hAlign="LEFT",
    )  # fmt: skip
    signatures.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), REGULAR, 8), ("TEXTCOLOR", (0, 0), (-1, -1), colors.grey),
        ("LINEBELOW", (0, 1), (-1, 1), 0.6, colors.black),
        ("LINEBELOW", (0, 3), (1, 3), 0.6, colors.black),
    ]))  # fmt: skip
    story: list[Flowable] = [
        Paragraph(f"Pickup manifest — {_escape(pickup['carrier'])}", _TITLE),
        _para(
            [f"Pickup {pickup['id']} ({pickup['status']})", f"Ready {_when(pickup['ready_at'])}"],
            _SMALL,
        ),
        Spacer(1, 5 * mm),
        _block("Collect from", [str(location.get("name", "")), *address_lines(location_address)]),
        Spacer(1, 6 * mm),
        table,
        Spacer(1, 4 * mm),
        Paragraph(
            f"The carrier received {pickup['parcel_count']} parcels, "
            f"{weight_text(pickup['total_weight_grams'])} in all.",
            _HEADING,
        ),
        Spacer(1, 10 * mm),
        signatures,
    ]
    if pickup.get("note"):
        story[4:4] = [Paragraph(f"Note: {_escape(pickup['note'])}", _TEXT), Spacer(1, 3 * mm)]
    return _pdf(f"Pickup manifest {pickup['id']}", story)


# --- the return slip -----------------------------------------------------------------------


def return_slip(
    rma: Mapping[str, Any], location: Mapping[str, Any], location_address: Mapping[str, Any] | None
) -> bytes:  # fmt: skip
    """For the parcel going back: the RMA number as text and Code 128, the order, the
    lines, and where to send it."""
    width = A4[0] - 36 * mm
    rows: list[list[Any]] = [["SKU", "Item", "Quantity", "Reason"]]
    for line in rma["lines"]:
        rows.append([line["sku"], Paragraph(_escape(line["name"]), _TEXT), str(line["quantity"]),
                     line["reason"].replace("_", " ")])  # fmt: skip
    table = Table(
        rows, colWidths=[width * x for x in (0.22, 0.43, 0.12, 0.23)], repeatRows=1, hAlign="LEFT"
    )
    table.setStyle(_TABLE)
    story: list[Flowable] = [
        Paragraph("Return slip", _TITLE),
        Paragraph(f"Return {_escape(rma['number'])} for order #{rma['order_number']}", _HEADING),
        Spacer(1, 4 * mm),
        _Barcode(str(rma["number"]), width * 0.55),
        Spacer(1, 6 * mm),
        _block(
            "Send the parcel to", [str(location.get("name", "")), *address_lines(location_address)]
        ),
        Spacer(1, 6 * mm),
        table,
        Spacer(1, 6 * mm),
        Paragraph(
            f"Put this slip in the parcel and write {_escape(rma['number'])} on the outside. "
            "Resellable items are put back in stock when they arrive; your "
            + ("refund" if rma["resolution"] == "refund" else "exchange")
            + " follows once every item is in.",
            _TEXT,
        ),
    ]
    return _pdf(f"Return slip {rma['number']}", story)
