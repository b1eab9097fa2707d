"""`oms-api demo`: a small shop to try the API on — seeded through the real app.

A warehouse and a store (with addresses), six products with stock, two channels (web,
pos) each with its own key, an admin key, a few orders in different states, and paid
orders left at every step of fulfilment — a pending shipment, picking, packed (label
printable), shipped with tracking, delivered, partially shipped, cancelled — and a
return in each state (requested, approved, received, refunded, rejected, cancelled, and an
exchange with its new order), a product below its reorder point with its open
replenishment request, and a backordered order filled by stock that arrived. Running it again reuses what exists and issues fresh keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from oms_api.domain.access import Scope
from oms_api.notifications.mail import Transport
from oms_api.services import access

# (sku, name, price in cents, units in the warehouse, weight in grams: labels print it)
PRODUCTS = [
    ("TSHIRT-M-RED", "T-shirt, red, M", 1999, 40, 180),
    ("TSHIRT-L-RED", "T-shirt, red, L", 1999, 25, 200),
    ("HOODIE-M-GREY", "Hoodie, grey, M", 4999, 12, 650),
    ("MUG-LOGO", "Mug with logo", 1299, 100, 350),
    ("CAP-BLACK", "Cap, black", 1499, 3, 90),
    ("BEANIE-WOOL", "Beanie, wool", 1799, 6, 80),
]
# Reordering: every product is reordered (20 units) when its stock falls to 5; the beanie
# (reordered at 3) may be backordered, and the demo's orders take it below its point.
REORDER = {"reorder_point": 5, "reorder_quantity": 20}
BEANIE = {"reorder_point": 3, "reorder_quantity": 24, "allow_backorder": True}


async def seed_demo(app: FastAPI) -> dict[str, Any]:
    """Seed through `app` (its lifespan must be running); returns keys and ids."""
    async with app.state.database.session() as session:
        _, admin_secret = await access.create_key(
            session, name="demo admin", scopes=[Scope.ADMIN], channel_id=None
        )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://demo",
        headers={"Authorization": f"Bearer {admin_secret}"},
    ) as http:
        for code, name, kind, priority in (
            ("demo-berlin", "Berlin warehouse", "warehouse", 10),
            ("demo-store", "Flagship store", "store", 20),
        ):
            created = await http.post(
                "/v1/locations",
                json={"code": code, "name": name, "kind": kind, "priority": priority},
            )
            if created.status_code not in (201, 409):
                raise RuntimeError(f"creating location {code}: {created.text}")
        locations = {
            x["code"]: x["id"]
            for x in (await http.get("/v1/locations", params={"limit": 200})).json()["data"]
        }
        warehouse_id, store_id = locations["demo-berlin"], locations["demo-store"]
        for location_id, address in ((warehouse_id, WAREHOUSE_ADDRESS), (store_id, STORE_ADDRESS)):
            await http.patch(f"/v1/locations/{location_id}", json={"address": address})
        fresh = False
        for sku, name, price, units, grams in PRODUCTS:
            created = await http.post(
                "/v1/products",
                json={
                    "sku": sku,
                    "name": name,
                    "unit_price": price,
                    "currency": "EUR",
                    "weight_grams": grams,
                    **(BEANIE if sku == "BEANIE-WOOL" else REORDER),
                },
            )
            if created.status_code == 201:
                fresh = True
                await http.post(
                    "/v1/inventory/adjustments",
                    json={
                        "sku": sku,
                        "location_id": warehouse_id,
                        "delta": units,
                        "reason": "received",
                    },
                )
                await http.post(
                    "/v1/inventory/adjustments",
                    json={
                        "sku": sku,
                        "location_id": store_id,
                        "delta": max(units // 5, 1),
                        "reason": "received",
                    },
                )
        channels = {}
        for code, name, location_ids in (
            ("web", "Web store", [warehouse_id]),
            ("pos", "Flagship store till", [store_id]),
        ):
            response = await http.post(
                "/v1/channels", json={"code": code, "name": name, "location_ids": location_ids}
            )
            if response.status_code == 409:
                listed = (await http.get("/v1/channels", params={"limit": 200})).json()["data"]
                channels[code] = await _selling_from(
                    http, next(c for c in listed if c["code"] == code), location_ids
                )
            else:
                channels[code] = response.json()
        keys = {}
        for code in ("web", "pos"):
            key = (await http.post("/v1/api-keys", json={
                "name": f"demo {code}", "channel_id": channels[code]["id"],
                "scopes": ["orders:read", "orders:write", "inventory:read", "webhooks:write"],
            })).json()  # fmt: skip
            keys[code] = key["secret"]
        orders = []
        if fresh:
            web = {"Authorization": f"Bearer {keys['web']}"}
            address = {
                "name": "Ada Lovelace",
                "line1": "12 St James Sq",
                "city": "London",
                "postal_code": "SW1Y 4JH",
                "country": "GB",
            }
            placements = [
                {"customer": {"email": "ada@example.com", "name": "Ada Lovelace"}, "shipping_address": address,
                 "lines": [{"sku": "TSHIRT-M-RED", "quantity": 2}], "shipping_price": 490,
                 "payment": {"method": "card", "status": "authorized", "reference": "pi_demo_1"}},
                {"customer": {"email": "grace@example.com", "name": "Grace Hopper"}, "shipping_address": address | {"name": "Grace Hopper"},
                 "lines": [{"sku": "HOODIE-M-GREY", "quantity": 1}, {"sku": "MUG-LOGO", "quantity": 2}]},
                {"customer": {"email": "alan@example.com"}, "lines": [{"sku": "CAP-BLACK", "quantity": 1}],
                 "payment": {"method": "invoice"}},
            ]  # fmt: skip
            for body in placements:
                orders.append(_created(await http.post("/v1/orders", json=body, headers=web)))
            await http.post(
                f"/v1/orders/{orders[1]['id']}/hold",
                json={"reason": "demo: address check"},
                headers=web,
            )
            orders += await _fulfilment_states(http, web, address)
            orders += await _return_states(http, web, address)
            orders += await _automation(http, web, address, warehouse_id)
        packed = (await http.get("/v1/shipments", params={"status": "packed", "limit": 1})).json()
        backordered = (await http.get("/v1/orders", params={"q": "beanie@example.com"})).json()
    return {
        "admin": admin_secret,
        "web": keys["web"],
        "pos": keys["pos"],
        "orders": [o["id"] for o in orders],
        "warehouse": warehouse_id,
        "packed_shipment": packed["data"][0]["id"] if packed["data"] else "SHIPMENT_ID",
        "backorder_filled": backordered["data"][0]["id"] if backordered["data"] else "ORDER_ID",
    }


WAREHOUSE_ADDRESS = {"name": "Demo Shop GmbH", "line1": "Lagerstrasse 5", "city": "Berlin",
                     "postal_code": "10115", "country": "DE", "phone": "+49 30 1234567"}  # fmt: skip
STORE_ADDRESS = {"name": "Demo Shop Flagship", "line1": "Friedrichstrasse 100", "city": "Berlin",
                 "postal_code": "10117", "country": "DE"}  # fmt: skip

# Orders the demo takes through fulfilment, each left at one step: (who, what, steps).
FULFILMENT = [
    ("marie@example.com", "Marie Curie", [("MUG-LOGO", 1)], ["allocate"]),
    ("nikola@example.com", "Nikola Tesla", [("TSHIRT-L-RED", 1)], ["allocate", "pick"]),
    ("rosalind@example.com", "Rosalind Franklin", [("HOODIE-M-GREY", 1)], ["allocate", "pick", "pack"]),
    ("emmy@example.com", "Emmy Noether", [("MUG-LOGO", 2)], ["allocate", "pick", "pack", "ship"]),
    ("alan@example.com", "Alan Turing", [("TSHIRT-M-RED", 1)],
     ["allocate", "pick", "pack", "ship", "deliver"]),
    ("hedy@example.com", "Hedy Lamarr", [("MUG-LOGO", 1), ("TSHIRT-L-RED", 2)],
     ["part", "pick", "pack", "ship"]),
    ("katherine@example.com", "Katherine Johnson", [("CAP-BLACK", 1)], ["allocate", "cancel"]),
]  # fmt: skip


async def _fulfilment_states(
    http: httpx.AsyncClient, web: dict[str, str], address: dict[str, Any]
) -> list[dict[str, Any]]:
    """Paid orders left at every step of fulfilment: a pending shipment, picking, packed
    (its label printable), shipped and tracked, delivered, partially shipped, cancelled."""
    placed = []
    for n, (email, name, lines, steps) in enumerate(FULFILMENT, 1):
        order = (await http.post("/v1/orders", headers=web, json={
            "customer": {"email": email, "name": name},
            "shipping_address": address | {"name": name},
            "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
            "payment": {"method": "card", "status": "paid", "reference": f"pi_demo_f{n}"},
        })).json()  # fmt: skip
        placed.append(order)
        if steps[0] == "part":  # the first line only: the order ships in two parcels
            made = await http.post(f"/v1/orders/{order['id']}/shipments", json={
                "location_id": order["allocations"][0]["location_id"],
                "lines": [{"line_id": order["lines"][0]["id"], "quantity": order["lines"][0]["quantity"]}],
            })  # fmt: skip
        else:
            made = await http.post(f"/v1/orders/{order['id']}/allocate")
        shipment = made.json()["data"][0]
        for step in steps[1:]:
            body = {
                "carrier": "DHL Paket",
                "service": "Paket",
                "tracking_number": f"00340434{n:012d}",
            }
            await http.post(f"/v1/shipments/{shipment['id']}/{step}",
                            json=body if step == "pack" else None)  # fmt: skip
            if step == "ship":
                await http.post(f"/v1/shipments/{shipment['id']}/tracking", json={
                    "status": "in_transit", "description": "Parcel handed over to DHL",
                    "location": "Berlin", "occurred_at": datetime.now(UTC).isoformat(),
                })  # fmt: skip
    return placed


# Delivered orders the demo takes back, each return left in one state.
RETURNS = ["requested", "approved", "received", "completed", "rejected", "cancelled", "exchanged"]


async def _return_states(
    http: httpx.AsyncClient, web: dict[str, str], address: dict[str, Any]
) -> list[dict[str, Any]]:
    """A delivered order per return state: requested, approved, received, completed with a
    refund, rejected, cancelled, and an exchange completed (its new order placed)."""
    placed = []
    for n, state in enumerate(RETURNS, 1):
        sku = "TSHIRT-M-RED" if state == "exchanged" else "MUG-LOGO"
        order = (await http.post("/v1/orders", headers=web, json={
            "customer": {"email": f"returns-{n}@example.com", "name": f"Returning customer {n}"},
            "shipping_address": address | {"name": f"Returning customer {n}"},
            "lines": [{"sku": sku, "quantity": 1}],
            "payment": {"method": "card", "status": "paid", "reference": f"pi_demo_r{n}"},
        })).json()  # fmt: skip
        placed.append(order)
        shipment = (await http.post(f"/v1/orders/{order['id']}/allocate")).json()["data"][0]
        for step in ("pick", "pack", "ship", "deliver"):
            body = (
                {"carrier": "UPS", "tracking_number": f"1ZDEMO{n:010d}"} if step == "pack" else None
            )
            await http.post(f"/v1/shipments/{shipment['id']}/{step}", json=body)
        exchange = state == "exchanged"
        rma = (await http.post("/v1/returns", headers=web, json={
            "order_id": order["id"], "resolution": "exchange" if exchange else "refund",
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1,
                       "reason": "size_or_fit" if exchange else "no_longer_needed"}],
            "exchange_lines": [{"sku": "TSHIRT-L-RED", "quantity": 1}] if exchange else [],
        })).json()  # fmt: skip
        steps = {"requested": [], "approved": ["approve"], "received": ["approve", "receive"],
                 "completed": ["approve", "receive", "complete"], "rejected": ["reject"],
                 "cancelled": ["cancel"], "exchanged": ["approve", "receive", "complete"]}[state]  # fmt: skip
        receipt: dict[str, Any] = {"location_id": rma["location_id"], "lines": [
            {"line_id": order["lines"][0]["id"], "quantity": 1, "condition": "resellable"}]}  # fmt: skip
        bodies: dict[str, Any] = {"receive": receipt, "reject": {"reason": "demo"},
                                  "cancel": {"reason": "demo"}}  # fmt: skip
        for step in steps:
            await http.post(f"/v1/returns/{rma['id']}/{step}", json=bodies.get(step))
    return placed


async def _automation(
    http: httpx.AsyncClient, web: dict[str, str], address: dict[str, Any], warehouse_id: str
) -> list[dict[str, Any]]:
    """The beanie falls below its reorder point (a replenishment request opens), a second
    order backorders what is left, and a delivery fills that backorder."""
    placed = []
    for n, (email, quantity) in enumerate((("hats@example.com", 5), ("beanie@example.com", 3)), 1):
        placed.append(_created(await http.post("/v1/orders", headers=web, json={
            "customer": {"email": email, "name": f"Beanie buyer {n}"},
            "shipping_address": address | {"name": f"Beanie buyer {n}"},
            "lines": [{"sku": "BEANIE-WOOL", "quantity": quantity}],
            "payment": {"method": "card", "status": "paid", "reference": f"pi_demo_b{n}"},
        })))  # fmt: skip
    _created(await http.post("/v1/inventory/adjustments", json={
        "sku": "BEANIE-WOOL", "location_id": warehouse_id, "delta": 2, "reason": "received",
        "note": "demo: two found in the returns bin",
    }))  # fmt: skip
    return placed


def instructions(seeded: dict[str, Any], base_url: str, *, mail: Transport | None = None) -> str:
    return f"""
Demo shop ready.

  admin key : {seeded["admin"]}
  web key   : {seeded["web"]}      (channel "web", ships from the Berlin warehouse)
  pos key   : {seeded["pos"]}      (channel "pos", sells from the flagship store)

These keys are shown once. Try:

  export WEB='Authorization: Bearer {seeded["web"]}'
  curl -s {base_url}/v1/orders -H "$WEB"
  curl -s {base_url}/v1/inventory/TSHIRT-M-RED -H "$WEB"
  curl -s -X POST {base_url}/v1/orders -H "$WEB" -H 'Content-Type: application/json' \\
    -d '{{"customer": {{"email": "you@example.com"}}, "lines": [{{"sku": "MUG-LOGO", "quantity": 1}}]}}'
  curl -s {base_url}/v1/events -H "$WEB"

Fulfilment (admin key): shipments in every state, a pick list, a label:
  export ADMIN='Authorization: Bearer {seeded["admin"]}'
  curl -s "{base_url}/v1/shipments?status=packed" -H "$ADMIN"
  curl -s {base_url}/v1/locations/{seeded["warehouse"]}/pick-list -H "$ADMIN"
  curl -s {base_url}/v1/shipments/{seeded["packed_shipment"]}/label -H "$ADMIN" -o label.pdf
  curl -s "{base_url}/v1/returns?status=received" -H "$ADMIN"

Automation (admin key): the beanie and the cap fell to their reorder points, their
replenishment requests are open; a backordered beanie order was filled when two arrived:
  curl -s "{base_url}/v1/replenishments?status=open" -H "$ADMIN"
  curl -s {base_url}/v1/orders/{seeded["backorder_filled"]}/events -H "$ADMIN"
{_mail_lines(mail, base_url)}
API docs: {base_url}/docs
"""


def _mail_lines(mail: Transport | None, base_url: str) -> str:
    """Where the demo customers' emails went, and how to read them."""
    if mail is None:
        return "\nCustomer emails are recorded, not sent (no OMS_SMTP_URL):\n" + (
            f'  curl -s "{base_url}/v1/notifications" -H "$ADMIN"\n'
        )
    if mail.directory is not None:
        count = len(list(mail.directory.glob("*.eml"))) if mail.directory.is_dir() else 0
        where = f"{count} .eml file(s) in {mail.directory} (open one in a mail program)"
    else:
        where = mail.description
    return (
        f"\nCustomer emails (receipts, shipping, returns) went to {where}:\n"
        f'  curl -s "{base_url}/v1/notifications" -H "$ADMIN"\n'
    )


async def _selling_from(
    http: httpx.AsyncClient, channel: dict[str, Any], location_ids: list[str]
) -> dict[str, Any]:
    """An existing channel (made before, perhaps by hand) that also sells from the demo's
    locations, so the demo's orders find the demo's stock."""
    current = list(channel["location_ids"])
    if not current or all(x in current for x in location_ids):
        return channel  # an empty list sells from everywhere
    patched = await http.patch(
        f"/v1/channels/{channel['id']}", json={"location_ids": current + location_ids}
    )
    return _created(patched)


def _created(response: httpx.Response) -> dict[str, Any]:
    """The resource the demo asked for, or a clear error naming what the API answered."""
    if response.status_code not in (200, 201):
        raise RuntimeError(
            f"demo: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text}"
        )
    return dict(response.json())
