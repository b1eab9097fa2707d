"""What a person reads: shipping labels, packing slips, pick lists, pickup manifests and
return slips, drawn as PDF with reportlab. Pure rendering: documents in, bytes out.

Text is set in DejaVu Sans, embedded in each PDF: Latin (with Latin Extended), Greek and
Cyrillic print. The TTFs come with a package that pyproject.toml depends on (matplotlib
ships DejaVu Sans; only the font files are read, matplotlib is never imported). A
character outside the font prints as U+FFFD (a visible replacement mark) and is logged
as a warning; control characters print as spaces. Right-to-left letters that the font has
(Hebrew, Arabic) print left to right and unshaped: that is logged too.

Text is laid out, never cut silently: a field wraps, then shrinks step by step to a
readable floor (6 pt); only what still does not fit is shortened, with "…", and logged.

Barcodes are Code 128 (reportlab's): the narrowest bar is a whole number of dots at
203 dpi (what 4 by 6 in label printers print) — two at least on a label: one-dot bars
do not scan, so the API refuses a tracking number too long for that
(`label_barcode_scans`) — the bars sit on that dot grid, a twentieth of a dot inside it,
and 10 modules or more on either side are clear of frame lines and text (the quiet zones).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch, mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import registerFontFamily, stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

log = logging.getLogger(__name__)

LABEL_SIZE = (4 * inch, 6 * inch)  # 288 x 432 pt, portrait
PRINTER_DPI = 203  # thermal label printers; module widths are whole dots at this
QUIET_MODULES = 10  # Code 128's quiet zone, each side
FLOOR = 6.0  # pt: text shrinks no further
REPLACEMENT = "\ufffd"


def font_dir() -> Path:
    """Where the installed DejaVu Sans TTFs are (inside matplotlib's package data)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib (which ships DejaVu Sans) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


REGULAR, BOLD = "OmsDejaVu", "OmsDejaVu-Bold"
pdfmetrics.registerFont(TTFont(REGULAR, str(font_dir() / "DejaVuSans.ttf")))
pdfmetrics.registerFont(TTFont(BOLD, str(font_dir() / "DejaVuSans-Bold.ttf")))
registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD, italic=REGULAR, boldItalic=BOLD)
_COVERED = frozenset(pdfmetrics.getFont(REGULAR).face.charToGlyph) & frozenset(
    pdfmetrics.getFont(BOLD).face.charToGlyph
)


def printable(text: object) -> str:
    """`text` as the fonts can print it: a character outside them becomes U+FFFD (and is
    logged), a control character a space."""
    out, missing, rtl = [], [], False
    for ch in str(text):
        category = unicodedata.category(ch)
        if category == "Cc" or ch in "\u2028\u2029":
            out.append(" ")
        elif ord(ch) not in _COVERED or category in ("Cs", "Co", "Cn"):
            missing.append(ch)
            out.append(REPLACEMENT)
        else:
            rtl = rtl or unicodedata.bidirectional(ch) in ("R", "AL")
            out.append(ch)
    if missing:
        log.warning(
            "paper: %d character(s) outside the font printed as U+FFFD: %s",
            len(missing), " ".join(f"U+{ord(ch):04X}" for ch in dict.fromkeys(missing)),
        )  # fmt: skip
    if rtl:
        log.warning("paper: right-to-left text printed left to right, unshaped: %r", text)
    return "".join(out)


_TEXT = ParagraphStyle("text", fontName=REGULAR, fontSize=9.5, leading=12)
_CELL = ParagraphStyle("cell", parent=_TEXT, fontSize=9, leading=11.5)
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


def counted(n: int, thing: str) -> str:
    """'1 parcel', '2 parcels', '1,000 units': a count a person reads."""
    return f"{n:,} {thing}" if n == 1 else f"{n:,} {thing}s"


def weight_text(grams: int | None) -> str:
    if not grams:
        return "—"
    return f"{grams / 1000:.2f} kg" if grams >= 1000 else f"{grams} g"


def _when(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")


def _escape(text: object) -> str:
    return printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _p(text: object, style: ParagraphStyle = _CELL) -> Paragraph:
    """One table cell or line: wraps in its column (a long word, a SKU, breaks too)."""
    return Paragraph(_escape(text), style)


def _para(lines: Sequence[str], style: ParagraphStyle = _TEXT) -> Paragraph:
    return Paragraph("<br/>".join(_escape(x) for x in lines) or "—", style)


def _block(heading: str, lines: Sequence[str]) -> Paragraph:
    """A labelled block: the heading in bold, then its lines."""
    body = "<br/>".join(_escape(x) for x in lines) or "—"
    return Paragraph(f"<b>{_escape(heading)}</b><br/>{body}", _TEXT)


# --- laying out text on the label ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    font: str
    size: float

    @property
    def leading(self) -> float:
        return self.size * 1.2


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """`text` in lines no wider than `width`: broken between words, and inside a word
    only where the word alone is wider."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if stringWidth(candidate, font, size) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while stringWidth(word, font, size) > width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and stringWidth(word[:cut], font, size) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def layout(
    items: Sequence[tuple[str, str, float]], width: float, height: float, floor: float = FLOOR
) -> list[Line]:
    """Items (text, font, size) as lines filling at most `width` by `height`: wrapped at
    their sizes, then all shrunk together in steps down to `floor`. What still does not fit
    is shortened with "…" and logged: the item with the most lines loses its last line, again
    and again, so every item keeps its first line (an address keeps its town and country
    below a name too long for the label); only when each is down to one line is the end cut.
    """
    scale = 1.0
    while True:
        groups = [
            [Line(part, font, max(size * scale, floor))
             for part in wrap(printable(text), font, max(size * scale, floor), width)]
            for text, font, size in items
        ]  # fmt: skip
        if sum(x.leading for group in groups for x in group) <= height:
            return [x for group in groups for x in group]
        if all(size * scale <= floor for _, _, size in items):
            break
        scale -= 0.05
    shortened = set()
    while sum(x.leading for group in groups for x in group) > height:
        most = max(range(len(groups)), key=lambda i: len(groups[i]))  # the first of the longest
        if len(groups[most]) <= 1:
            break
        groups[most].pop()
        shortened.add(most)
    for i in shortened:
        groups[i][-1] = _ellipsis(groups[i][-1], width)
    kept: list[Line] = []
    for line in (x for group in groups for x in group):
        if sum(x.leading for x in kept) + line.leading > height:
            break
        kept.append(line)
    if kept and len(kept) < sum(len(group) for group in groups):
        kept[-1] = _ellipsis(kept[-1], width)
    log.warning("paper: text shortened to fit %.0f x %.0f pt: %r", width, height,
                " / ".join(t for t, _, _ in items))  # fmt: skip
    return kept


def _ellipsis(line: Line, width: float) -> Line:
    """`line` ending in "…" (what came after it is not printed), within `width`."""
    text = line.text.removesuffix("…")
    while text and stringWidth(text + "…", line.font, line.size) > width:
        text = text[:-1]
    return Line(text + "…", line.font, line.size)


def draw_lines(canvas: Canvas, lines: Sequence[Line], x: float, top: float) -> float:
    """Each line below the last from `top` down; returns the bottom."""
    y = top
    for line in lines:
        y -= line.leading
        canvas.setFont(line.font, line.size)
        canvas.drawString(x, y + line.size * 0.3, line.text)
    return y


# --- barcodes -------------------------------------------------------------------------------


def dots(n: float) -> float:
    """`n` printer dots, in points."""
    return n * 72 / PRINTER_DPI


def snap(pt: float) -> float:
    """`pt` moved to the nearest printer dot."""
    return dots(round(pt * PRINTER_DPI / 72))


def code128_modules(value: str) -> int:
    """The symbol's width in modules, without quiet zones."""
    return round(float(Code128(value, barWidth=1.0, quiet=False).width))


def module_dots(value: str, room: float, most: int = 3) -> int:
    """The widest whole-dot module (at most `most` dots) for which the symbol and its quiet
    zones fit in `room` pt; 1 (logged) when none does."""
    modules = code128_modules(value) + 2 * QUIET_MODULES
    for n in range(most, 0, -1):
        if dots(modules * n) <= room:
            return n
    log.warning("paper: Code 128 of %r is wider than %.0f pt even at 1 dot", value, room)
    return 1


# Each bar is drawn this much narrower on either side than its whole dots (bar width
# reduction): a rasterizer that rounds a fill's edges outwards (pdfium does) or samples
# pixel centres (printers do) then fills exactly the bar's dots. Drawn exactly on the grid,
# an edge that the PDF's decimals put a hair past a dot took the next one: bars a dot too
# wide, and past ~18 characters the symbol no longer decoded at 203 dpi.
BAR_TRIM_DOTS = 0.05


class _TrimmedCode128(Code128):  # type: ignore[misc]
    def rect(self, x: float, y: float, w: float, h: float) -> None:
        trim = dots(BAR_TRIM_DOTS)
        super().rect(x + trim, y, w - 2 * trim, h)


def draw_code128(canvas: Canvas, value: str, x: float, y: float, module: int,
                 height: float) -> float:  # fmt: skip
    """`value` as Code 128 bars with `module` dots per module, the left bar at `x`
    (snapped to the dot grid); returns the symbol's width in pt."""
    code = _TrimmedCode128(value, barHeight=height, barWidth=dots(module), quiet=False)
    code.drawOn(canvas, snap(x), snap(y))
    return float(code.width)


class _Barcode(Flowable):  # type: ignore[misc]
    """A Code 128 barcode with its quiet zones inside the flowable, its value beneath."""

    def __init__(self, value: str, room: float, bar_height: float = 18 * mm) -> None:
        super().__init__()
        self.value = value
        self.module = module_dots(value, room)
        self.quiet = dots(QUIET_MODULES * self.module)
        self.symbol = dots(code128_modules(value) * self.module)
        self.width = self.symbol + 2 * self.quiet
        self.bar_height = bar_height
        self.text = layout([(value, BOLD, 13)], max(self.width, 120), 40)
        self.text_height = sum(x.leading for x in self.text)
        self.height = bar_height + 4 + self.text_height
        self.hAlign = "LEFT"

    def drawOn(self, canvas: Canvas, x: float, y: float, _sW: float = 0) -> None:
        super().drawOn(canvas, snap(x), snap(y), _sW)

    def draw(self) -> None:
        draw_code128(self.canv, self.value, self.quiet, self.text_height + 4, self.module,
                     self.bar_height)  # fmt: skip
        draw_lines(self.canv, self.text, self.quiet, self.text_height)


class _Checkbox(Flowable):  # type: ignore[misc]
    """An empty square to tick."""

    def __init__(self) -> None:
        super().__init__()
        self.width = self.height = 9

    def draw(self) -> None:
        self.canv.setLineWidth(0.7)
        self.canv.rect(0, 0, self.width, self.height)


# A row may run onto the next page, split between its lines, once this much of it fits
# (pt): a cell taller than a page (an address at the API's longest, a SKU in a hundred
# parcels) can never be placed whole, and reportlab fails the document for it.
SPLIT_ROW_AT = 24.0


def _table(rows: list[list[Any]], widths: Sequence[float], repeat_rows: int = 1) -> Table:
    """A table whose rows may run onto the next page, its header repeated there."""
    return Table(rows, colWidths=list(widths), repeatRows=repeat_rows, hAlign="LEFT",
                 splitInRow=SPLIT_ROW_AT)  # fmt: skip


def _pdf(title: str, story: list[Flowable], footer: str) -> bytes:
    """An A4 document; every page's foot names it (`footer`) and says "page n of m", so a
    page that slips out of a pile can be put back."""
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, title=printable(title), author="oms-api", leftMargin=18 * mm,
        rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=16 * mm,
    )  # fmt: skip
    doc.build(story, canvasmaker=_numbered(printable(footer)))
    return out.getvalue()


def _numbered(footer: str) -> type[Canvas]:
    """A canvas that holds its pages back until the last, to number them "n of m"."""

    class Numbered(Canvas):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            for number, page in enumerate(self._pages, 1):
                self.__dict__.update(page)
                self.setFont(REGULAR, 7.5)
                self.setFillColor(colors.grey)
                self.drawString(18 * mm, 9 * mm, footer)
                self.drawRightString(A4[0] - 18 * mm, 9 * mm,
                                     f"page {number} of {len(self._pages)}")  # fmt: skip
                super().showPage()
            super().save()

    return Numbered


def _two_columns(left: Flowable, right: Flowable, width: float) -> Table:
    table = _table([[left, right]], [width / 2, width / 2], repeat_rows=0)
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LEFTPADDING", (0, 0), (-1, -1), 0)]))  # fmt: skip
    return table


# --- the shipping label ----------------------------------------------------------------------

LABEL_MARGIN = 12.0  # pt: text starts here; the frame runs at half of it
LABEL_FRAME_WIDTH = 1.2  # pt
BAR_HEIGHT = 1.0 * inch  # tall enough to aim a hand scanner at
BARCODE_BAND = 136.0  # pt from the bottom: the bars, the number, the caption
# The tracking number's bars and quiet zones: between the frame's two vertical lines.
LABEL_BARCODE_ROOM = float(LABEL_SIZE[0] - LABEL_MARGIN - LABEL_FRAME_WIDTH - 2)
SCANNABLE_MODULE_DOTS = 2  # 0.25 mm (10 mil) at 203 dpi; 1-dot bars (0.125 mm) do not scan


def label_barcode_scans(tracking_number: str) -> bool:
    """Whether `tracking_number` fits on the shipping label as Code 128 with modules of
    two dots or more, quiet zones included: what a scanner reads at 203 dpi. Digits in pairs
    take half the room of letters (code set C), so how long a number may be depends on
    what it is made of: 29 characters of letters and digits mixed, 58 digits (55 if their
    count is odd: the last one takes a letter's room)."""
    modules = code128_modules(tracking_number) + 2 * QUIET_MODULES
    return dots(modules * SCANNABLE_MODULE_DOTS) <= LABEL_BARCODE_ROOM


def shipping_label(
    shipment: Mapping[str, Any], ship_to: Mapping[str, Any] | None,
    ship_from: Mapping[str, Any], ship_from_address: Mapping[str, Any] | None,
) -> bytes:  # fmt: skip
    """A 4 by 6 in label: carrier and service, ship-from, ship-to, weight, order number,
    and the tracking number as text and as Code 128."""
    out = io.BytesIO()
    width, height = LABEL_SIZE
    number = str(shipment["tracking_number"])
    c = Canvas(out, pagesize=LABEL_SIZE)
    c.setTitle(printable(f"Label {number}"))
    c.setAuthor("oms-api")
    m = LABEL_MARGIN
    text_width = width - 2 * m
    c.setLineWidth(LABEL_FRAME_WIDTH)
    c.rect(m / 2, m / 2, width - m, height - m)

    def divider(y: float) -> None:
        c.line(m / 2, y, width - m / 2, y)

    # Carrier band: the weight at the right.
    top = height - m
    weight = weight_text(shipment["weight_grams"])
    weight_width = stringWidth(weight, BOLD, 12)
    c.setFont(BOLD, 12)
    c.drawRightString(width - m, top - 14, weight)
    band = layout(
        [(str(shipment["carrier"] or ""), BOLD, 18), (str(shipment["service"] or ""), REGULAR, 10)],
        text_width - weight_width - 10, 44,
    )  # fmt: skip
    draw_lines(c, band, m, top)
    y = top - 48
    divider(y)

    # Ship from: small; 92 pt at most unless the ship-to leaves more room.
    order_top = BARCODE_BAND + 38
    sender = [str(ship_from.get("name", "")), *address_lines(ship_from_address)]
    items = [("FROM", BOLD, 7.0)] + [(x, REGULAR, 8.0) for x in sender]
    recipient = address_lines(ship_to) or ["(no shipping address on the order)"]
    to_items = [("SHIP TO", BOLD, 8.0), (recipient[0], BOLD, 14.0)]
    to_items += [(x, REGULAR, 12.0) for x in recipient[1:]]
    natural = sum(x.leading for x in layout(items, text_width, 10_000))
    to_natural = sum(x.leading for x in layout(to_items, text_width - 8, 10_000))
    room = min(natural, max(92.0, y - 18 - order_top - to_natural))
    y = draw_lines(c, layout(items, text_width, room), m, y - 4) - 4
    divider(y)

    # Ship to: what the courier reads first; all the room that is left.
    draw_lines(c, layout(to_items, text_width - 8, y - 6 - order_top - 4), m + 8, y - 6)
    divider(order_top)

    # Order and parcel.
    order = layout(
        [(f"Order #{shipment['order_number']}", BOLD, 12), (f"Shipment {shipment['id']}", REGULAR, 7)],
        text_width, 34,
    )  # fmt: skip
    draw_lines(c, order, m, order_top - 2)
    divider(BARCODE_BAND)

    # Tracking number: bars between quiet zones clear of the frame, the text beneath.
    module = module_dots(number, LABEL_BARCODE_ROOM)
    symbol = dots(code128_modules(number) * module)
    bars_bottom = BARCODE_BAND - 10 - BAR_HEIGHT
    draw_code128(c, number, (width - symbol) / 2, bars_bottom, module, BAR_HEIGHT)
    caption = layout([(number, BOLD, 11)], text_width, bars_bottom - 6 - 22)
    drawn = [(line, stringWidth(line.text, line.font, line.size)) for line in caption]
    y = bars_bottom - 6
    for line, line_width in drawn:
        y -= line.leading
        c.setFont(line.font, line.size)
        c.drawString((width - line_width) / 2, y + line.size * 0.3, line.text)
    c.setFont(REGULAR, 7)
    c.drawCentredString(width / 2, m + 1, "TRACKING NUMBER")
    c.showPage()
    c.save()
    return out.getvalue()


# --- the packing slip --------------------------------------------------------------------------


def packing_slip(
    shipment: Mapping[str, Any], order: Mapping[str, Any], ship_from: Mapping[str, Any],
    ship_from_address: Mapping[str, Any] | None,
) -> bytes:  # fmt: skip
    width = A4[0] - 36 * mm
    rows: list[list[Any]] = [["SKU", "Item", "Quantity"]] + [
        [_p(line["sku"]), _p(line["name"]), str(line["quantity"])] for line in shipment["lines"]
    ]
    items = _table(rows, [width * 0.3, width * 0.55, width * 0.15])
    items.setStyle(_TABLE)
    units = sum(line["quantity"] for line in shipment["lines"])
    story: list[Flowable] = [
        Paragraph("Packing slip", _TITLE),
        _p(f"Order #{order['number']}", _HEADING),
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
    return _pdf(f"Packing slip, order {order['number']}", story,
                f"Packing slip · order #{order['number']} · shipment {shipment['id']}")  # fmt: skip


# --- the pick list -------------------------------------------------------------------------------


def picked_for(shipments: Sequence[Mapping[str, Any]]) -> str:
    """Whom a pick list's row is for: "#1007 x 2, #1008 x 1" (a multiplication sign on
    paper); an order with several shipments in the row names each by the end of its id
    ("#1007 (…M9HC0D) x 1"), which its packing slip prints whole."""
    times = "\u00d7"  # the multiplication sign, on paper
    numbers = [s["order_number"] for s in shipments]
    parts = []
    for s in shipments:
        which = f" (…{s['shipment_id'][-6:]})" if numbers.count(s["order_number"]) > 1 else ""
        parts.append(f"#{s['order_number']}{which} {times} {s['quantity']}")
    return ", ".join(parts)


def pick_list(listing: Mapping[str, Any]) -> bytes:
    width = A4[0] - 36 * mm
    rows: list[list[Any]] = [["", "SKU", "Item", "Qty", "For"]]
    for item in listing["items"]:
        detail = picked_for(item["shipments"])
        rows.append([_Checkbox(), _p(item["sku"]), _p(item["name"]), str(item["quantity"]),
                     _p(detail, _SMALL)])  # fmt: skip
    # The quantity is one number, never wrapped: its column is as wide as the widest one
    # (a SKU in several orders of a million units), taken from the item's.
    quantities = ["Qty", *(str(item["quantity"]) for item in listing["items"])]
    qty = max(width * 0.07, max(stringWidth(q, BOLD, 9) for q in quantities) + 2 * 6 + 1)
    widths = [width * 0.05, width * 0.27, width * 0.42 - qty, qty, width * 0.26]
    table = _table(rows, widths)
    table.setStyle(_TABLE)
    units = sum(i["quantity"] for i in listing["items"])
    story: list[Flowable] = [
        _p(f"Pick list — {listing['location_name']}", _TITLE),
        _para(
            [
                f"Shipments {', '.join(listing['statuses'])}; generated {_when(listing['generated_at'])}",
                f"{counted(len(listing['items']), 'SKU')}, {counted(units, 'unit')}",
            ],
            _SMALL,
        ),
        Spacer(1, 6 * mm),
        table if listing["items"] else Paragraph("Nothing to pick.", _TEXT),
    ]
    return _pdf(f"Pick list {listing['location_name']}", story,
                f"Pick list · generated {_when(listing['generated_at'])}")  # fmt: skip


# --- the pickup manifest -------------------------------------------------------------------------


def pickup_manifest(
    pickup: Mapping[str, Any], location: Mapping[str, Any], location_address: Mapping[str, Any] | None
) -> bytes:  # fmt: skip
    width = A4[0] - 36 * mm
    rows: list[list[Any]] = [["#", "Order", "Tracking number", "Weight"]]
    for i, parcel in enumerate(pickup["shipments"], 1):
        rows.append([str(i), _p(f"#{parcel['order_number']}"), _p(parcel["tracking_number"] or "—"),
                     weight_text(parcel["weight_grams"])])  # fmt: skip
    count = pickup["parcel_count"]
    parcels = counted(count, "parcel")
    rows.append(["", "", parcels, weight_text(pickup["total_weight_grams"])])
    table = _table(rows, [width * x for x in (0.08, 0.2, 0.52, 0.2)])
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
        _p(f"Pickup manifest — {pickup['carrier']}", _TITLE),
        _para(
            [f"Pickup {pickup['id']} ({pickup['status']})", f"Ready {_when(pickup['ready_at'])}"],
            _SMALL,
        ),
        Spacer(1, 5 * mm),
        _block("Collect from", [str(location.get("name", "")), *address_lines(location_address)]),
        Spacer(1, 6 * mm),
        table,
        Spacer(1, 4 * mm),
        # The lines to sign stay on the page that says what was handed over.
        KeepTogether([
            Paragraph(
                f"The carrier received {parcels}, "
                f"{weight_text(pickup['total_weight_grams'])} in all.",
                _HEADING,
            ),
            _para([f"Pickup {pickup['id']}, {pickup['carrier']}, ready {_when(pickup['ready_at'])}"],
                  _SMALL),
            Spacer(1, 10 * mm),
            signatures,
        ]),
    ]  # fmt: skip
    if pickup.get("note"):
        story[4:4] = [_p(f"Note: {pickup['note']}", _TEXT), Spacer(1, 3 * mm)]
    return _pdf(f"Pickup manifest {pickup['id']}", story, f"Pickup manifest · {pickup['id']}")


# --- the return slip -----------------------------------------------------------------------


def return_slip(
    rma: Mapping[str, Any], location: Mapping[str, Any], location_address: Mapping[str, Any] | None
) -> bytes:  # fmt: skip
    """For the parcel going back: the RMA number as text and Code 128, the order, the
    lines, and where to send it."""
    width = A4[0] - 36 * mm
    rows: list[list[Any]] = [["SKU", "Item", "Quantity", "Reason"]]
    for line in rma["lines"]:
        rows.append([_p(line["sku"]), _p(line["name"]), str(line["quantity"]),
                     _p(line["reason"].replace("_", " "))])  # fmt: skip
    table = _table(rows, [width * x for x in (0.3, 0.4, 0.12, 0.18)])
    table.setStyle(_TABLE)
    story: list[Flowable] = [
        Paragraph("Return slip", _TITLE),
        _p(f"Return {rma['number']} for order #{rma['order_number']}", _HEADING),
        Spacer(1, 4 * mm),
        _Barcode(str(rma["number"]), width),
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
    return _pdf(f"Return slip {rma['number']}", story,
                f"Return slip {rma['number']} · order #{rma['order_number']}")  # fmt: skip
