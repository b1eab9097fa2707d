"""Reading paper as a machine does: barcodes decoded from a raster (pypdfium2 renders,
zxing-cpp reads) and word boxes (pdfplumber)."""

from __future__ import annotations

import io
import itertools
from typing import Any

import numpy as np
import pdfplumber
import pypdfium2 as pdfium
import zxingcpp


def raster(content: bytes, dpi: int, page: int = 0) -> np.ndarray[Any, Any]:
    """One page as 8-bit grey at `dpi`."""
    document = pdfium.PdfDocument(content)
    image = document[page].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    return np.asarray(image)


def barcodes(content: bytes, dpi: int, page: int = 0) -> list[str]:
    """The text of every Code 128 barcode found on the page."""
    found = zxingcpp.read_barcodes(
        raster(content, dpi, page), formats=zxingcpp.BarcodeFormat.Code128
    )
    return [x.text for x in found]


Box = tuple[float, float, float, float]  # x0, top, x1, bottom


def words(content: bytes) -> list[tuple[int, str, Box, Box]]:
    """Every word: (page index, text, box, the page's box)."""
    out = []
    with pdfplumber.open(io.BytesIO(content)) as pdf:
        for i, page in enumerate(pdf.pages):
            for w in page.extract_words(keep_blank_chars=False, use_text_flow=False):
                out.append((i, w["text"], (w["x0"], w["top"], w["x1"], w["bottom"]),
                            (0.0, 0.0, float(page.width), float(page.height))))  # fmt: skip
    return out


def bar_areas(content: bytes) -> list[tuple[int, Box, float]]:
    """Each page's barcode: the box around its bars (filled rectangles taller than wide,
    side by side) and its module (the narrowest bar or space), in pt."""
    out = []
    with pdfplumber.open(io.BytesIO(content)) as pdf:
        for i, page in enumerate(pdf.pages):
            bars = sorted(
                (r for r in page.rects if r["fill"] and r["height"] > 20 and r["width"] < 6),
                key=lambda r: r["x0"],
            )
            if bars:
                gaps = [b["x0"] - a["x1"] for a, b in itertools.pairwise(bars)]
                module = min([r["width"] for r in bars] + gaps)
                box = (bars[0]["x0"], min(r["top"] for r in bars), bars[-1]["x1"],
                       max(r["bottom"] for r in bars))  # fmt: skip
                out.append((i, box, module))
    return out


def overlap(a: Box, b: Box, slack: float = 0.2) -> bool:
    return (a[0] < b[2] - slack and b[0] < a[2] - slack
            and a[1] < b[3] - slack and b[1] < a[3] - slack)  # fmt: skip


def overlapping_words(found: list[tuple[int, str, Box, Box]]) -> list[tuple[str, str]]:
    """Pairs of words on one page whose boxes overlap (a sweep along x)."""
    pairs = []
    by_page: dict[int, list[tuple[str, Box]]] = {}
    for page, text, box, _ in found:
        by_page.setdefault(page, []).append((text, box))
    for items in by_page.values():
        items.sort(key=lambda x: x[1][0])
        for k, (text, box) in enumerate(items):
            for other, other_box in items[k + 1 :]:
                if other_box[0] >= box[2]:
                    break
                if overlap(box, other_box):
                    pairs.append((text, other))
    return pairs


def squashed(text: str) -> str:
    return "".join(text.split())


def flowed_text(found: list[tuple[int, str, Box, Box]]) -> str:
    """The words as text that runs down each column: words on a line join into segments
    (gaps narrower than 7 pt), and a segment continues with the one starting at the same x
    on the next line. A field wrapped in a table cell reads whole here."""
    segments: list[tuple[int, str, Box]] = []
    for page, text, box, _ in sorted(found, key=lambda w: (w[0], round(w[2][1]), w[2][0])):
        if segments:
            last_page, last_text, last = segments[-1]
            if last_page == page and abs(last[1] - box[1]) < 1 and 0 <= box[0] - last[2] < 7:
                segments[-1] = (page, f"{last_text} {text}", (last[0], last[1], box[2], box[3]))
                continue
        segments.append((page, text, box))
    chains: list[list[tuple[int, str, Box]]] = []
    for segment in sorted(segments, key=lambda s: (s[0], s[2][1])):
        page, _, box = segment
        for chain in chains:
            end_page, _, end = chain[-1]
            height = end[3] - end[1]
            if end_page == page and abs(end[0] - box[0]) < 0.5 and 0 <= box[1] - end[3] < height:
                chain.append(segment)
                break
        else:
            chains.append([segment])
    return "\n".join(" ".join(s[1] for s in chain) for chain in chains)
