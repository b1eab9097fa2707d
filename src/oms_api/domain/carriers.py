"""Well-known carriers and where their parcels are tracked. Pure.

`carrier` on a shipment is free text; these are recognised whatever the case, spacing or
punctuation ("DHL Express", "dhl-express", "DHLExpress"), and give a `tracking_url`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Carrier:
    name: str
    tracking_url: str  # with {number}


CARRIERS: tuple[Carrier, ...] = (
    Carrier("UPS", "https://www.ups.com/track?tracknum={number}"),
    Carrier("FedEx", "https://www.fedex.com/fedextrack/?trknbr={number}"),
    Carrier("USPS", "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"),
    Carrier("DHL Express", "https://www.dhl.com/global-en/home/tracking.html?tracking-id={number}"),
    Carrier("DHL Paket", "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={number}"),
    Carrier("Royal Mail", "https://www.royalmail.com/track-your-item#/tracking-results/{number}"),
    Carrier("PostNL", "https://jouw.postnl.nl/track-and-trace/{number}"),
    Carrier("Canada Post", "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={number}"),
    Carrier("Australia Post", "https://auspost.com.au/mypost/track/details/{number}"),
    Carrier("La Poste / Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code={number}"),
)  # fmt: skip

_ALIASES: dict[str, str] = {
    "ups": "UPS", "unitedparcelservice": "UPS",
    "fedex": "FedEx", "federalexpress": "FedEx",
    "usps": "USPS", "unitedstatespostalservice": "USPS",
    "dhlexpress": "DHL Express", "dhl": "DHL Express",
    "dhlpaket": "DHL Paket", "dhlparcelde": "DHL Paket", "deutschepost": "DHL Paket",
    "royalmail": "Royal Mail",
    "postnl": "PostNL",
    "canadapost": "Canada Post", "postescanada": "Canada Post",
    "australiapost": "Australia Post", "auspost": "Australia Post",
    "laposte": "La Poste / Colissimo", "colissimo": "La Poste / Colissimo",
}  # fmt: skip
_BY_NAME = {c.name: c for c in CARRIERS}


def _key(carrier: str) -> str:
    return re.sub(r"[^a-z0-9]", "", carrier.casefold())


def known_carrier(carrier: str) -> Carrier | None:
    return _BY_NAME.get(_ALIASES.get(_key(carrier), ""))


def tracking_url(carrier: str | None, tracking_number: str | None) -> str | None:
    """The carrier's tracking page for `tracking_number`; None for a carrier not known
    here, or without a number."""
    if not carrier or not tracking_number:
        return None
    known = known_carrier(carrier)
    if known is None:
        return None
    return known.tracking_url.format(number=quote(tracking_number, safe=""))


def same_carrier(a: str, b: str) -> bool:
    """Two spellings name the same carrier (a pickup gathers its carrier's parcels)."""
    ka, kb = known_carrier(a), known_carrier(b)
    if ka is not None or kb is not None:
        return ka == kb
    return _key(a) == _key(b)


def carrier_key(carrier: str) -> str:
    """One key per carrier, whatever its spelling: its name if known, else its letters."""
    known = known_carrier(carrier)
    return _key(known.name if known else carrier)
