"""A Python client generated from the committed document (openapi-python-client, pinned in
pyproject's test extra) drives an order's whole life against a live `oms-api serve`,
through the generated functions and models only: no hand-written request, no JSON."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, ROOT
from tests.factories import unique

PACKAGE = "oms_api_client"


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[ModuleType]:
    """The generated package, importable as `oms_api_client` for this test only."""
    config = tmp_path / "config.yaml"
    config.write_text("post_hooks: []\n")  # no ruff run over the generated code
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"), "generate",
            "--path", str(ROOT / "openapi" / "openapi.json"),
            "--output-path", str(tmp_path / PACKAGE), "--meta", "none",
            "--config", str(config),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation and response is generated: nothing the generator had to leave out.
    assert "WARNING" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _call(package: str, name: str) -> Any:
    """`oms_api_client.api.<package>.<name>.sync`."""
    return importlib.import_module(f"{PACKAGE}.api.{package}.{name}").sync


def test_an_order_s_whole_life_through_the_generated_client(
    generated: ModuleType, live_servers: Any
) -> None:
    (server,) = live_servers(1)
    m = importlib.import_module(f"{PACKAGE}.models")
    File = importlib.import_module(f"{PACKAGE}.types").File

    def ok(result: Any, model: type) -> Any:
        assert isinstance(result, model), result
        return result

    admin = generated.AuthenticatedClient(base_url=server.url, token=ADMIN_KEY)
    ship_from = m.Address(
        name="Oms Shop GmbH", line1="Lagerstr. 5", city="Berlin", postal_code="10115",
        country="DE",
    )  # fmt: skip
    location = ok(
        _call("locations", "create_location")(client=admin, body=m.LocationCreate(
            code=unique("loc"), name="Berlin warehouse", address=ship_from,
        )),
        m.LocationPublic,
    )  # fmt: skip
    assert isinstance(location.address, m.AddressPublic)
    assert (location.address.line1, location.address.country) == ("Lagerstr. 5", "DE")

    product = ok(
        _call("products", "create_product")(client=admin, body=m.ProductCreate(
            sku=unique("SHIRT").upper(), name="T-shirt", unit_price=1500, currency="EUR",
            weight_grams=180,
        )),
        m.ProductPublic,
    )  # fmt: skip
    ok(
        _call("inventory", "create_inventory_adjustment")(client=admin, body=m.AdjustmentCreate(
            sku=product.sku, location_id=location.id, delta=10,
            reason=m.AdjustmentCreateReason.RECEIVED,
        )),
        m.AdjustmentResult,
    )  # fmt: skip
    channel = ok(
        _call("channels", "create_channel")(client=admin, body=m.ChannelCreate(
            code=unique("web"), name="Web store", location_ids=[location.id],
        )),
        m.ChannelPublic,
    )  # fmt: skip
    scopes = m.ApiKeyCreateScopesItem
    key = ok(
        _call("api_keys", "create_api_key")(client=admin, body=m.ApiKeyCreate(
            name=unique("key"), channel_id=channel.id,
            scopes=[scopes.ORDERSREAD, scopes.ORDERSWRITE, scopes.FULFILLMENTWRITE,
                    scopes.RETURNSWRITE],
        )),
        m.ApiKeyCreated,
    )  # fmt: skip
    shop = generated.AuthenticatedClient(base_url=server.url, token=key.secret)

    ship_to = m.Address(
        name="Ada Lovelace", line1="12 St James's Sq", city="London", postal_code="SW1Y 4JH",
        country="GB",
    )  # fmt: skip
    order = ok(
        _call("orders", "create_order")(client=shop, idempotency_key=unique("idem"), body=m.OrderCreate(
            lines=[m.OrderLineCreate(sku=product.sku, quantity=2)],
            customer=m.CustomerInline(email=f"{unique('ada')}@example.com", name="Ada Lovelace"),
            shipping_address=ship_to, shipping_price=490,
        )),
        m.OrderPublic,
    )  # fmt: skip
    assert isinstance(order.shipping_address, m.AddressPublic)
    assert order.shipping_address.city == "London"
    assert order.billing_address is None
    pay = _call("orders", "record_order_payment")
    for kind in (m.PaymentCreateKind.AUTHORIZATION, m.PaymentCreateKind.CAPTURE):
        order = ok(
            pay(order.id, client=shop, body=m.PaymentCreate(kind=kind, amount=2 * 1500 + 490)),
            m.OrderPublic,
        )
    assert (order.status, order.payment_status) == ("confirmed", "paid")
    # Commands whose body is optional, called without one.
    assert (
        ok(_call("orders", "hold_order")(order.id, client=shop), m.OrderPublic).status == "on_hold"
    )
    assert ok(_call("orders", "release_order")(order.id, client=shop), m.OrderPublic).status == "confirmed"  # fmt: skip

    (shipment,) = ok(
        _call("shipments", "allocate_order")(order.id, client=shop), m.ShipmentsCreated
    ).data
    shipment = ok(_call("shipments", "pick_shipment")(shipment.id, client=shop), m.ShipmentPublic)
    assert shipment.status == "picking"
    picks = _call("shipments", "get_pick_list_pdf")(
        shipment.location_id, client=shop, status="picking"
    )
    assert ok(picks, File).payload.read().startswith(b"%PDF")
    shipment = ok(
        _call("shipments", "pack_shipment")(shipment.id, client=shop, body=m.ParcelBody(
            carrier="UPS", service="Ground", tracking_number="1Z999AA10123456784",
        )),
        m.ShipmentPublic,
    )  # fmt: skip
    assert shipment.status == "packed"
    label = ok(_call("shipments", "get_shipping_label")(shipment.id, client=shop), File)
    assert label.payload.read().startswith(b"%PDF")
    slip = ok(_call("shipments", "get_packing_slip")(shipment.id, client=shop), File)
    assert slip.payload.read().startswith(b"%PDF")
    shipment = ok(_call("shipments", "ship_shipment")(shipment.id, client=shop), m.ShipmentPublic)
    assert shipment.status == "shipped"
    ok(
        _call("shipments", "add_tracking")(shipment.id, client=shop, body=m.TrackingCreate(
            status=m.TrackingCreateStatus.IN_TRANSIT, occurred_at=datetime.now(UTC),
            description="Departed facility", location="Leipzig, DE",
        )),
        m.ShipmentTracking,
    )  # fmt: skip
    tracking = ok(_call("shipments", "get_order_tracking")(order.id, client=shop), m.OrderTracking)
    assert tracking.shipments[0].tracking_number == "1Z999AA10123456784"
    shipment = ok(
        _call("shipments", "deliver_shipment")(shipment.id, client=shop), m.ShipmentPublic
    )
    assert shipment.status == "delivered"
    assert ok(_call("orders", "get_order")(order.id, client=shop), m.OrderPublic).status == "delivered"  # fmt: skip

    line = order.lines[0]
    rma = ok(
        _call("returns", "open_return")(client=shop, body=m.ReturnCreate(
            order_id=order.id, resolution=m.ReturnCreateResolution.REFUND,
            lines=[m.ReturnLineCreate(line_id=line.id, quantity=2,
                                      reason=m.ReturnLineCreateReason.SIZE_OR_FIT)],
        )),
        m.ReturnPublic,
    )  # fmt: skip
    rma = ok(_call("returns", "approve_return")(rma.id, client=shop), m.ReturnPublic)
    return_slip = ok(_call("returns", "get_return_slip")(rma.id, client=shop), File)
    assert return_slip.payload.read().startswith(b"%PDF")
    rma = ok(
        _call("returns", "receive_return")(rma.id, client=shop, body=m.ReceiveBody(
            location_id=location.id,
            lines=[m.ReceiveLine(line_id=line.id, quantity=2,
                                 condition=m.ReceiveLineCondition.RESELLABLE)],
        )),
        m.ReturnPublic,
    )  # fmt: skip
    assert rma.status == "received"
    rma = ok(
        _call("returns", "complete_return")(
            rma.id, client=shop, body=m.CompleteBody(refund_shipping=True)
        ),
        m.ReturnPublic,
    )
    assert (rma.status, rma.refund_amount) == ("completed", 2 * 1500 + 490)
    refunded = ok(_call("orders", "get_order")(order.id, client=shop), m.OrderPublic)
    assert (refunded.payment_status, refunded.payment_amounts.refunded) == ("refunded", 3490)
    assert refunded.payments[-1].kind == "refund"

    # Another optional body left out: a second order, cancelled.
    other = ok(
        _call("orders", "create_order")(client=shop, body=m.OrderCreate(
            lines=[m.OrderLineCreate(sku=product.sku, quantity=1)],
            customer=m.CustomerInline(email=f"{unique('bob')}@example.com"),
        )),
        m.OrderPublic,
    )  # fmt: skip
    cancelled = ok(_call("orders", "cancel_order")(other.id, client=shop), m.OrderPublic)
    assert cancelled.status == "cancelled"


def test_the_readme_s_generate_command_runs_as_written(tmp_path: Path) -> None:
    """The README's command line, run by bash from a clone's root (here: a directory with
    the clone's `openapi/` and this virtualenv as `.venv`), with the generator's own
    post-hooks (ruff): it once put `.venv/bin` on PATH as a relative path, which the
    generator's hooks, run inside the output directory, could not find ("ruff: not
    found", no client)."""
    readme = (ROOT / "README.md").read_text().split("## Generating a client", 1)[1]
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    command = next(line for line in block.splitlines() if "openapi-python-client generate" in line)
    (tmp_path / "openapi").symlink_to(ROOT / "openapi")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    result = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "oms-api-client" / PACKAGE / "client.py").is_file(), result.stdout
