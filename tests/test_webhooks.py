"""Webhooks, with a real HTTP receiver on loopback and the real dispatcher."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook

from oms_api.main import create_app
from oms_api.webhooks.dispatcher import Dispatcher
from oms_api.webhooks.signing import new_secret
from tests.conftest import make_settings
from tests.factories import Shop, bearer, create_channel, create_key, order_body, place
from tests.receiver import Receiver


@pytest.fixture(autouse=True)
async def dispatcher(app: FastAPI) -> AsyncIterator[None]:
    """The real dispatcher, running beside the session's app while these tests run."""
    runner = Dispatcher(
        settings=app.state.settings, database=app.state.database,
        database_url=app.state.settings.database_url,
    )  # fmt: skip
    task = asyncio.create_task(runner.run())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def receiver() -> Any:
    r = Receiver().start()
    yield r
    r.stop()


async def register(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    events: list[str] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-endpoints", json={"url": url, "events": events or ["*"], **kw}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _until_disabled(admin: httpx.AsyncClient, endpoint_id: str) -> dict[str, Any]:
    for _ in range(40):
        current = dict((await admin.get(f"/v1/webhook-endpoints/{endpoint_id}")).json())
        if current["status"] == "disabled":
            break
        await asyncio.sleep(0.1)
    assert current["status"] == "disabled"
    return current


def _for_order(order_id: str) -> Any:
    return lambda events: [e for e in events if e["data"].get("id") == order_id]


async def test_signed_deliveries_verify_with_standard_webhooks(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    shop = await Shop.open(admin)
    hook_key = await create_key(admin, ["webhooks:write"], shop.channel["id"])
    endpoint = await register(client, receiver.url, bearer(hook_key["secret"]))
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["channel_id"] == shop.channel["id"]
    product = await shop.product(admin, 5)
    order = (
        await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    ).json()
    await client.post(f"/v1/orders/{order['id']}/cancel", headers=shop.headers)

    events = await receiver.wait_for(lambda ev: len(_for_order(order["id"])(ev)) >= 2)
    mine = [r for r in receiver.received if r.json["data"].get("id") == order["id"]]
    for request in mine:
        payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert set(payload) == {"id", "type", "created_at", "sequence", "data"}
        assert request.headers["webhook-id"] == payload["id"]
    by_type = {e["type"]: e for e in _for_order(order["id"])(events)}
    assert by_type["order.created"]["sequence"] == 1
    assert by_type["order.cancelled"]["sequence"] == 2
    assert by_type["order.cancelled"]["data"]["status"] == "cancelled"
    timeline = (await client.get(f"/v1/orders/{order['id']}/events", headers=shop.headers)).json()[
        "data"
    ]
    assert [t["id"] for t in timeline] == [
        by_type["order.created"]["id"],
        by_type["order.cancelled"]["id"],
    ]


async def test_event_filters_and_channel_isolation(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    mine, theirs = await Shop.open(admin), await Shop.open(admin)
    await register(admin, receiver.url, {}, ["order.cancelled"], channel_id=mine.channel["id"])
    product = await mine.product(admin, 10)
    other = await theirs.product(admin, 10)
    a = (await place(client, order_body(None, [(product["sku"], 1)]), headers=mine.headers)).json()
    b = (await place(client, order_body(None, [(other["sku"], 1)]), headers=theirs.headers)).json()
    await client.post(f"/v1/orders/{b['id']}/cancel", headers=theirs.headers)
    await client.post(f"/v1/orders/{a['id']}/cancel", headers=mine.headers)
    events = await receiver.wait_for(_for_order(a["id"]))
    await asyncio.sleep(0.5)
    events = receiver.events()
    assert [e["type"] for e in events] == ["order.cancelled"]
    assert all(e["data"]["channel_id"] == mine.channel["id"] for e in events)


async def test_failing_receiver_gets_the_event_on_a_retry(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    shop = await Shop.open(admin)
    receiver.statuses = [500, 503]
    endpoint = await register(
        admin, receiver.url, {}, ["order.created"], channel_id=shop.channel["id"]
    )
    product = await shop.product(admin, 5)
    order = (
        await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    ).json()
    await receiver.wait_for(lambda ev: len(ev) >= 3, seconds=30)
    assert len({e["id"] for e in receiver.events()}) == 1  # the same event, retried
    assert {r.headers["webhook-id"] for r in receiver.received} == {receiver.events()[0]["id"]}
    assert receiver.events()[0]["data"]["id"] == order["id"]
    await asyncio.sleep(0.3)
    listed = (
        await admin.get("/v1/webhook-deliveries", params={"endpoint_id": endpoint["id"]})
    ).json()["data"]
    assert len(listed) == 1
    assert (listed[0]["status"], listed[0]["attempts"], listed[0]["last_status_code"]) == (
        "succeeded",
        3,
        200,
    )
    detail = (await admin.get(f"/v1/webhook-deliveries/{listed[0]['id']}")).json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 503, 200]
    assert all(a["latency_ms"] >= 0 for a in detail["attempt_log"])
    succeeded = (
        await admin.get(
            "/v1/webhook-deliveries", params={"endpoint_id": endpoint["id"], "status": "succeeded"}
        )
    ).json()
    assert len(succeeded["data"]) == 1

    retried = await admin.post(f"/v1/webhook-deliveries/{listed[0]['id']}/retry")
    assert retried.json()["status"] == "pending"
    await receiver.wait_for(lambda ev: len(ev) >= 4)


async def test_retry_after_is_honoured(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    shop = await Shop.open(admin)
    receiver.statuses = [429]
    receiver.extra_headers = {"Retry-After": "120"}
    endpoint = await register(
        admin, receiver.url, {}, ["order.created"], channel_id=shop.channel["id"]
    )
    product = await shop.product(admin, 5)
    await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    await receiver.wait_for(lambda ev: len(ev) == 1)
    await asyncio.sleep(0.3)
    delivery = (
        await admin.get("/v1/webhook-deliveries", params={"endpoint_id": endpoint["id"]})
    ).json()["data"][0]
    assert delivery["status"] == "pending"
    wait = datetime.fromisoformat(delivery["next_attempt_at"]) - datetime.now(UTC)
    assert wait.total_seconds() > 100  # not the 1 s schedule: the receiver asked for 120


async def _answered_gone(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> dict[str, Any]:
    """An endpoint whose receiver answers its first delivery 410: disabled for it."""
    shop = await Shop.open(admin)
    receiver.statuses = [410]
    endpoint = await register(admin, receiver.url, {}, channel_id=shop.channel["id"])
    product = await shop.product(admin, 5)
    await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    await receiver.wait_for(lambda ev: len(ev) == 1)
    current = await _until_disabled(admin, endpoint["id"])
    assert "410" in current["disabled_reason"]
    return endpoint


async def test_gone_disables_the_endpoint_at_once(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await _answered_gone(admin, client, receiver)
    feed = (
        await admin.get("/v1/events", params={"type": "webhook_endpoint.disabled", "limit": 200})
    ).json()["data"]
    assert endpoint["id"] in {e["data"]["id"] for e in feed}


async def test_endpoint_disabled_carries_the_endpoint_as_get_returns_it(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """`webhook_endpoint.disabled`'s data is "the endpoint" (docs/webhooks.md): it lacked
    `description`, `events`, `failing_since` and `created_at`, so it did not validate
    against WebhookEndpointPublic (found by an integrator validating payloads against the
    OpenAPI document)."""
    endpoint = await _answered_gone(admin, client, receiver)
    feed = (
        await admin.get("/v1/events", params={"type": "webhook_endpoint.disabled", "limit": 200})
    ).json()["data"]
    (event,) = [e for e in feed if e["data"]["id"] == endpoint["id"]]
    current = (await admin.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert event["data"] == current


async def test_a_retry_after_of_digits_python_cannot_read_loses_no_answer(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """`Retry-After: ²` passed `str.isdigit()` and failed `float()`: the receiver's answer
    (here a 410) was recorded as the dispatcher's own internal error, and the endpoint was
    never disabled (found by an outside-in attack with a hostile receiver)."""
    receiver.extra_headers = {"Retry-After": "\u00b2"}
    await _answered_gone(admin, client, receiver)


async def test_an_endpoint_failing_for_days_is_disabled(
    database_url: str, admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    shop = await Shop.open(admin)
    receiver.statuses = [500] * 10
    endpoint = await register(admin, receiver.url, {}, channel_id=shop.channel["id"])
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE webhook_endpoints SET failing_since = now() - interval '4 days' WHERE id = $1",
            endpoint["id"],
        )
    finally:
        await conn.close()
    product = await shop.product(admin, 5)
    await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    await receiver.wait_for(lambda ev: len(ev) >= 1)
    current = await _until_disabled(admin, endpoint["id"])
    assert "failed continuously" in current["disabled_reason"]


async def test_secret_rotation_signs_with_both_for_a_while(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    shop = await Shop.open(admin)
    endpoint = await register(
        admin, receiver.url, {}, ["order.created"], channel_id=shop.channel["id"]
    )
    rotated = (await admin.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")).json()
    assert rotated["secret"] != endpoint["secret"]
    assert "secret" not in (await admin.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    product = await shop.product(admin, 5)
    await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    await receiver.wait_for(lambda ev: len(ev) == 1)
    request = receiver.received[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(endpoint["secret"]).verify(request.body, request.headers)
    Webhook(rotated["secret"]).verify(request.body, request.headers)


async def test_a_slow_endpoint_never_delays_others(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    release = threading.Event()
    slow, fast = Receiver(hold=release).start(), Receiver().start()
    try:
        await register(admin, slow.url, {}, ["order.created"], channel_id=shop.channel["id"])
        await register(admin, fast.url, {}, ["order.created"], channel_id=shop.channel["id"])
        product = await shop.product(admin, 5)
        placed = await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
        assert placed.status_code == 201  # placement never waits for delivery
        await slow.wait_for(lambda ev: len(ev) == 1)  # called, and now holding the request...
        await fast.wait_for(lambda ev: len(ev) == 1)  # ...while the other is delivered
        assert not release.is_set()
    finally:
        release.set()
        slow.stop()
        fast.stop()


async def test_deleted_endpoints_get_nothing_and_channels_see_only_theirs(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    shop, other = await Shop.open(admin), await Shop.open(admin)
    key = await create_key(admin, ["webhooks:write"], shop.channel["id"])
    other_key = await create_key(admin, ["webhooks:write"], other.channel["id"])
    endpoint = await register(client, receiver.url, bearer(key["secret"]))
    assert (
        await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(other_key["secret"])
        )
    ).status_code == 404
    assert endpoint["id"] not in {
        e["id"]
        for e in (
            await client.get("/v1/webhook-endpoints", headers=bearer(other_key["secret"]))
        ).json()["data"]
    }
    mismatch = await client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url, "events": ["*"], "channel_id": other.channel["id"]},
        headers=bearer(key["secret"]),
    )
    assert mismatch.status_code == 422
    deleted = await client.delete(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(key["secret"])
    )
    assert deleted.json()["status"] == "deleted"
    again = await client.delete(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(key["secret"])
    )
    assert again.status_code == 404  # deleted once: a second delete finds nothing
    product = await shop.product(admin, 5)
    await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    await asyncio.sleep(0.6)
    assert receiver.received == []
    assert (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(key["secret"]))
    ).status_code == 404


@pytest.fixture
async def strict_app(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app with the production rule: https to public addresses only."""
    app = create_app(make_settings(database_url, webhook_allow_private_urls=False))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        yield app, c


# IPv6 addresses that stand for, or are relayed to, an IPv4 address that would be refused.
EMBEDDED_PRIVATE_IPV4 = [
    "64:ff9b::a9fe:a9fe",  # NAT64 (well-known prefix) of 169.254.169.254, cloud metadata
    "64:ff9b::7f00:1", "64:ff9b::a00:1",  # NAT64 of 127.0.0.1, 10.0.0.1
    "64:ff9b:1::808:808",  # local-use NAT64 prefix: refused whatever it holds
    "2002:7f00:1::", "2002:a9fe:a9fe::",  # 6to4 of 127.0.0.1, 169.254.169.254
    "::127.0.0.1", "::a9fe:a9fe",  # IPv4-compatible
    "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1 (bits inverted)
    "2a00:1450:1::5efe:a9fe:a9fe", "2606:4700:1::200:5efe:a00:1",  # ISATAP
]  # fmt: skip
MALFORMED = [
    "https://" + "a" * 64 + ".com/x",  # a label over 63 characters
    "https://" + "a." * 126 + "com/x",  # a name over 253 characters
    "https://exa mple.com/x", "https://exa\tmple.com/x", "https://hooks.example.com/a b",
    "https://a..b.com/x", "https://.example.com/x", "https://example.com../x",
    "https://ex%61mple.com/x", "https://1.2.3.4.5/x", "https://0x7f000001/x",
    "https://example.com:0/x", "https://example.com:65536/x", "https://example.com:+443/x",
    "https://localhost./x", "https://LOCALHOST./x", "https://foo.localhost./x",
    "https://[v1.x]/x", "https://[2606:4700::1111]x/x", "https://[2606:4700::1111%25eth0]/x",
]  # fmt: skip
PUBLIC_ADDRESS = "93.184.216.34"


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names under .test resolve to what the test puts here (else a public address);
    every other name resolves as usual."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = (host.decode() if isinstance(host, bytes) else str(host)).rstrip(".")
        if not name.endswith(".test"):
            return real(host, port, *args, **kwargs)
        address = answers.get(name, PUBLIC_ADDRESS)
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.fixture
async def strict_callers(
    strict_app: tuple[FastAPI, httpx.AsyncClient],
) -> tuple[httpx.AsyncClient, list[dict[str, str]]]:
    """The strict app's client, and the headers of its admin and of a channel-bound key."""
    from tests.conftest import ADMIN_KEY

    _, c = strict_app
    c.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    channel = await create_channel(c)
    key = await create_key(c, ["webhooks:write"], channel["id"])
    return c, [bearer(ADMIN_KEY), bearer(key["secret"])]


async def _refused(c: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    response = await c.post(
        "/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_webhook_url"


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x", "https://127.0.0.1/x", "https://10.1.2.3/x", "https://192.168.0.9/x",
        "https://172.16.0.1/x", "https://169.254.169.254/latest", "https://[::1]/x", "https://0.0.0.0/x",
        "https://localhost/x", "https://user:pw@hooks.example.com/x", "ftp://hooks.example.com/x",
        "https://[::ffff:127.0.0.1]/x", "https://100.64.0.1/x", "not a url at all",
    ],
)  # fmt: skip
async def test_private_and_insecure_targets_are_refused_at_registration(
    strict_app: tuple[FastAPI, httpx.AsyncClient], url: str
) -> None:
    from tests.conftest import ADMIN_KEY

    _, c = strict_app
    response = await c.post(
        "/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=bearer(ADMIN_KEY)
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("invalid_webhook_url", "validation_error")


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE_IPV4)
async def test_ipv6_forms_of_private_ipv4_addresses_are_refused_at_registration(
    strict_callers: tuple[httpx.AsyncClient, list[dict[str, str]]],
    dns: dict[str, str],
    address: str,
) -> None:
    """Written in the URL, or what the URL's name resolves to, for admin and channel keys."""
    c, callers = strict_callers
    dns["embedded.hooks.test"] = address
    for headers in callers:
        await _refused(c, f"https://[{address}]/latest/meta-data/", headers)
        await _refused(c, "https://embedded.hooks.test/x", headers)


@pytest.mark.parametrize("url", MALFORMED)
async def test_malformed_urls_are_refused_at_registration(
    strict_callers: tuple[httpx.AsyncClient, list[dict[str, str]]], dns: dict[str, str], url: str
) -> None:
    c, callers = strict_callers
    for headers in callers:
        await _refused(c, url, headers)


@pytest.mark.parametrize(
    "url",
    [
        "https://[64:ff9b::808:808]/x", "https://[2002:808:808::]/x", "https://[::ffff:8.8.8.8]/x",
        "https://[2606:4700::1111]:8443/x", "https://hooks.example.test./x",
        "https://my_hooks.example.test/x", "https://bücher.example.test/x",
        "https://" + "a" * 63 + ".example.test:8443/x?q=1",
    ],
)  # fmt: skip
async def test_public_targets_in_unusual_forms_are_accepted(
    strict_callers: tuple[httpx.AsyncClient, list[dict[str, str]]], dns: dict[str, str], url: str
) -> None:
    """IPv6 forms of public IPv4 addresses, a trailing dot, an underscore, an IDN."""
    c, (_, channel_key) = strict_callers
    response = await c.post(
        "/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=channel_key
    )
    assert response.status_code == 201, response.text
    assert response.json()["url"] == url
    deleted = await c.delete(f"/v1/webhook-endpoints/{response.json()['id']}", headers=channel_key)
    assert deleted.status_code == 200


async def _send_one(app: FastAPI, url: str) -> Any:
    """One attempt of a made-up delivery to `url`, as the dispatcher sends it."""
    dispatcher = Dispatcher(
        settings=app.state.settings, database=app.state.database, database_url=""
    )
    dispatcher._http = httpx.AsyncClient()
    row = {
        "id": "whd_test", "event_id": "evt_test", "type": "order.created", "sequence": 1,
        "created_at": datetime.now(UTC), "data": {}, "secret": new_secret(),
        "previous_secret": None, "previous_secret_valid": False, "url": url,
    }  # fmt: skip
    try:
        return await dispatcher._send(row)
    finally:
        await dispatcher._http.aclose()


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1", "localhost", "localhost.", "[64:ff9b::7f00:1]", "[2002:a9fe:a9fe::]",
        "nat64.hooks.test", "sixtofour.hooks.test", "compatible.hooks.test",
        "a" * 64 + ".com", "exa mple.com", "a..b.com",
    ],
)  # fmt: skip
async def test_private_targets_are_refused_again_at_delivery(
    strict_app: tuple[FastAPI, httpx.AsyncClient],
    receiver: Receiver,
    dns: dict[str, str],
    host: str,
) -> None:
    """An endpoint whose name resolves to a private address by the time of delivery (DNS
    answers change), or whose URL is stored from before a rule, is refused on the
    dispatcher's real send path: a recorded failure, not an exception."""
    dns.update({
        "nat64.hooks.test": "64:ff9b::a9fe:a9fe", "sixtofour.hooks.test": "2002:7f00:1::",
        "compatible.hooks.test": "::127.0.0.1",
    })  # fmt: skip
    app, _ = strict_app
    outcome = await _send_one(app, f"https://{host}:{receiver.port}/hook")
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("refused:")
    assert receiver.received == []


async def test_an_internationalised_host_name_is_delivered_to(
    app: FastAPI, receiver: Receiver, dns: dict[str, str]
) -> None:
    """The name is resolved and sent (Host header) in its ASCII form."""
    dns["xn--bcher-kva.hooks.test"] = "127.0.0.1"
    outcome = await _send_one(app, f"http://Bücher.hooks.test:{receiver.port}/hook")
    assert (outcome.status_code, outcome.error) == (200, None)
    assert receiver.received[0].headers["host"] == f"xn--bcher-kva.hooks.test:{receiver.port}"


def _sequences(receiver: Receiver, order_id: str) -> list[int]:
    return [
        e["sequence"]
        for e in receiver.events()
        if order_id in (e["data"].get("id"), e["data"].get("order_id"))
    ]


async def test_an_orders_deliveries_go_one_at_a_time_in_sequence_order(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """While an endpoint holds sequence 1, its order's later events wait for it; one that
    fails is retried before any later one is sent. Two dispatchers claim, as two
    processes would."""
    shop = await Shop.open(admin)
    release = threading.Event()
    receiver = Receiver(hold=release).start()
    second = asyncio.create_task(
        Dispatcher(
            settings=app.state.settings, database=app.state.database,
            database_url=app.state.settings.database_url,
        ).run()
    )  # fmt: skip
    try:
        await register(admin, receiver.url, {}, channel_id=shop.channel["id"])
        product = await shop.product(admin, 5)
        order = (
            await place(
                client, order_body(None, [(product["sku"], 1)],
                                   payment={"method": "card", "status": "pending"}),
                headers=shop.headers,
            )
        ).json()  # fmt: skip
        await receiver.wait_for(lambda ev: len(ev) == 1)  # order.created, held...
        paid = await client.post(  # ...while one transaction records three more events
            f"/v1/orders/{order['id']}/payments",
            headers=shop.headers,
            json={"kind": "authorization", "amount": order["totals"]["total"]},
        )
        assert paid.json()["status"] == "confirmed"
        await client.post(f"/v1/orders/{order['id']}/cancel", headers=shop.headers)
        await asyncio.sleep(0.8)
        assert _sequences(receiver, order["id"]) == [1]  # nothing overtakes the head
        receiver.statuses = [500]  # the held one succeeds, the next fails once
        release.set()
        timeline = (await admin.get(f"/v1/orders/{order['id']}/events")).json()["data"]
        count = len(timeline)
        assert count >= 4
        await receiver.wait_for(lambda ev: len(_sequences(receiver, order["id"])) == count + 1)
        expected = list(range(1, count + 1))
        assert _sequences(receiver, order["id"]) == [1, 2, *expected[1:]]  # 2 failed, retried
    finally:
        release.set()
        receiver.stop()
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)


async def test_a_slow_endpoints_backlog_never_delays_a_healthy_one(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Several times more deliveries for an endpoint that holds every request (until the
    dispatcher's timeout) than a dispatcher sends at once: another endpoint's delivery
    still goes at once, not after that backlog."""
    shop = await Shop.open(admin)
    release = threading.Event()
    slow, fast = Receiver(hold=release).start(), Receiver().start()
    try:
        await register(admin, slow.url, {}, channel_id=shop.channel["id"])
        product = await shop.product(admin, 100)
        for _ in range(app.state.settings.webhook_concurrency + 8):  # 3 events each
            await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
        await slow.wait_for(lambda ev: len(ev) >= 1)
        await register(admin, fast.url, {}, ["order.created"], channel_id=shop.channel["id"])
        order = (
            await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
        ).json()
        await fast.wait_for(_for_order(order["id"]), seconds=2)
        assert not release.is_set()
    finally:
        release.set()
        slow.stop()
        fast.stop()


async def test_a_channel_has_a_limited_number_of_endpoints(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Found by an outside-in attacker: a channel key registered 100 endpoints, and every
    event of the channel became 100 deliveries to store and send. Registered at once, as
    many as the limit succeed and the rest are 409; a deleted one frees its place."""
    shop = await Shop.open(admin)
    key = await create_key(admin, ["webhooks:write"], shop.channel["id"])
    most = app.state.settings.webhook_endpoints_per_channel

    async def one() -> httpx.Response:
        return await client.post("/v1/webhook-endpoints", headers=bearer(key["secret"]),
                                 json={"url": receiver.url, "events": ["order.created"]})  # fmt: skip

    answers = await asyncio.gather(*(one() for _ in range(most + 3)))
    assert sorted(a.status_code for a in answers) == [201] * most + [409] * 3
    refused = next(a for a in answers if a.status_code == 409).json()
    assert (refused["code"], refused["limit"]) == ("webhook_endpoint_limit", most)
    other = await Shop.open(admin)  # another channel's count is its own
    assert (await register(admin, receiver.url, {}, channel_id=other.channel["id"])).get("id")
    first = next(a for a in answers if a.status_code == 201).json()
    await client.delete(f"/v1/webhook-endpoints/{first['id']}", headers=bearer(key["secret"]))
    assert (await one()).status_code == 201


async def test_a_fast_endpoint_may_hold_more_than_its_share(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """An endpoint seen answering fast is not held to `webhook_endpoint_concurrency`: a busy
    shop's one endpoint drains as fast as the process can send (capped at 8, the chaos run
    left a quarter of its events undelivered a minute after the load stopped)."""
    shop = await Shop.open(admin)
    receiver = Receiver().start()
    try:
        await register(admin, receiver.url, {}, ["order.created"], channel_id=shop.channel["id"])
        product = await shop.product(admin, 100)
        first = await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
        await receiver.wait_for(_for_order(first.json()["id"]))  # answered at once: fast
        receiver.hold = release = threading.Event()  # from now on every request waits
        share = app.state.settings.webhook_endpoint_concurrency
        for _ in range(share + 4):
            await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
        # All of them in flight at once: more than the share, none answered yet (sooner
        # than the dispatcher's timeout, 3 s here, would free a slot).
        await receiver.wait_for(lambda events: len(events) >= 1 + share + 4, seconds=2.5)
        assert not release.is_set()
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        receiver.stop()


async def _metric(admin: httpx.AsyncClient, name: str) -> float:
    text = (await admin.get("/metrics")).text
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


async def test_deleting_an_endpoint_drops_its_pending_deliveries(
    database_url: str, admin: httpx.AsyncClient, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """No longer pending (listed, or counted by the queue's metrics); the history stays."""
    shop = await Shop.open(admin)
    receiver.statuses = [500] * 30
    endpoint = await register(admin, receiver.url, {}, channel_id=shop.channel["id"])
    product = await shop.product(admin, 5)
    await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    await receiver.wait_for(lambda ev: len(ev) >= 1)
    conn = await asyncpg.connect(database_url)
    try:  # ten days old: the oldest pending delivery of this test database
        await conn.execute(
            """UPDATE webhook_deliveries SET created_at = now() - interval '10 days'
               WHERE endpoint_id = $1""",
            endpoint["id"],
        )
    finally:
        await conn.close()
    ten_days = 10 * 86400
    assert await _metric(admin, "oms_webhook_oldest_pending_seconds") >= ten_days
    depth = await _metric(admin, "oms_webhook_queue_depth")
    pending = {"endpoint_id": endpoint["id"], "status": "pending"}
    listed = (await admin.get("/v1/webhook-deliveries", params=pending)).json()["data"]
    assert len(listed) >= 1

    assert (await admin.delete(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 200
    assert (await admin.get("/v1/webhook-deliveries", params=pending)).json()["data"] == []
    assert await _metric(admin, "oms_webhook_oldest_pending_seconds") < ten_days
    assert await _metric(admin, "oms_webhook_queue_depth") <= depth - len(listed)
    await asyncio.sleep(1.5)  # an attempt in flight at the delete does not bring one back
    history = (
        await admin.get("/v1/webhook-deliveries", params={"endpoint_id": endpoint["id"]})
    ).json()["data"]
    assert [d["status"] for d in history] == ["dropped"] * len(listed)
    retried = await admin.post(f"/v1/webhook-deliveries/{history[0]['id']}/retry")
    assert (retried.status_code, retried.json()["code"]) == (409, "webhook_endpoint_not_enabled")
