"""Where a webhook may be sent: https to public addresses only (SSRF protection).

Checked at registration and again before every attempt, after DNS resolution; the
request then goes to the address that was checked (the hostname is kept for the Host
header and TLS), so a DNS answer that changes in between cannot redirect it.
`OMS_WEBHOOK_ALLOW_PRIVATE_URLS` lifts the rules for development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """The URL may not be used as a webhook target."""


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    url: str  # with the checked address in place of the host name
    host_header: str
    sni_hostname: str | None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _parse(url: str, allow_private: bool) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not allow_private):
        raise UnsafeTarget("the URL must use https")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeTarget("credentials in the URL are not allowed")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _resolve(host: str, port: int, seconds: float) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=seconds
    )
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def check_registration(
    url: str, *, allow_private: bool, resolve_seconds: float = 3.0
) -> None:
    """Refuse URLs that are, or resolve to, non-public addresses. A name that does not
    resolve now is accepted: it is checked again at every delivery."""
    _, host, port = _parse(url, allow_private)
    if allow_private:
        return
    literal = _literal(host)
    if literal is not None:
        if not is_public(literal):
            raise UnsafeTarget(f"{literal} is not a public address")
        return
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise UnsafeTarget("localhost is not a public address")
    try:
        addresses = await _resolve(host, port, resolve_seconds)
    except (OSError, TimeoutError):
        return
    bad = [a for a in addresses if not is_public(a)]
    if bad:
        raise UnsafeTarget(f"{host} resolves to {bad[0]}, which is not a public address")


async def pin(url: str, *, allow_private: bool, resolve_seconds: float) -> PinnedTarget:
    """Resolve and check the URL's host now; the request goes to the checked address."""
    scheme, host, port = _parse(url, allow_private)
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await _resolve(host, port, resolve_seconds)
        except (OSError, TimeoutError) as exc:
            raise UnsafeTarget(f"cannot resolve {host}: {exc or type(exc).__name__}") from None
    if not allow_private:
        bad = [a for a in addresses if not is_public(a)]
        if bad:
            raise UnsafeTarget(f"{host} resolves to {bad[0]}, which is not a public address")
    address = addresses[0]
    netloc_host = f"[{address}]" if address.version == 6 else str(address)
    parts = urlsplit(url)
    default_port = 443 if scheme == "https" else 80
    netloc = netloc_host if port == default_port else f"{netloc_host}:{port}"
    host_header = host if port == default_port else f"{host}:{port}"
    pinned = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    return PinnedTarget(
        pinned, host_header, host if scheme == "https" and literal is None else None
    )
