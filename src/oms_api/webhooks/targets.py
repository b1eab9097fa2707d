"""Where a webhook may be sent: https to public addresses only (SSRF protection).

Checked at registration and again before every attempt, after DNS resolution; the
request then goes to the address that was checked (the hostname is kept for the Host
header and TLS), so a DNS answer that changes in between cannot redirect it. Both use
`is_public` for every address, literal or resolved.
`OMS_WEBHOOK_ALLOW_PRIVATE_URLS` lifts the rules for development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 addresses that are an IPv4 address in another form (besides ::ffff:0:0/96, which
# `ipv4_mapped` knows): a packet to one ends up at the IPv4 address, by the host's own
# stack or a translator. Public when that IPv4 address is.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291, deprecated (holds :: and ::1)
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052, the well-known prefix
# RFC 8215: a NAT64 prefix local to the network, refused whatever it holds (the IPv4
# address sits at a position the network chooses).
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_FORMS = (_IPV4_COMPATIBLE, _IPV4_TRANSLATED, _NAT64)


class UnsafeTarget(ValueError):
    """The URL may not be used as a webhook target."""


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    url: str  # with the checked address in place of the host name
    host_header: str
    sni_hostname: str | None


def _as_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address this IPv6 address only stands for (mapped, compatible, translated,
    NAT64's well-known prefix): the host's own stack or a translator goes there."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in network for network in _IPV4_FORMS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _tunnelled_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a relay sends this address's packets on to (6to4, Teredo, ISATAP)."""
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)  # server, client (un-inverted); 2001::/32 isn't global
    if (int(address) >> 32) & 0xFCFFFFFF == 0x5EFE:  # ISATAP interface identifier
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def is_public(address: IPAddress) -> bool:
    """Whether a webhook may go to this address: the one rule for literal addresses in
    URLs and for what DNS answers, at registration and before every delivery. An IPv6
    address holding an IPv4 address is refused when that IPv4 address would be."""
    if isinstance(address, ipaddress.IPv4Address):
        return address.is_global and not address.is_multicast
    as_ipv4 = _as_ipv4(address)
    if as_ipv4 is not None:
        return is_public(as_ipv4)
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved  # unassigned space (NAT64's local prefix lies in it)
        and address not in _NAT64_LOCAL
        and not address.scope_id
        and all(is_public(v4) for v4 in _tunnelled_ipv4(address))
    )


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
