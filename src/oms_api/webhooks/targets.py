"""Where a webhook may be sent: https to public addresses only (SSRF protection).

Checked at registration and again before every attempt, after DNS resolution; the
request then goes to the address that was checked (the hostname is kept for the Host
header and TLS), so a DNS answer that changes in between cannot redirect it. Both use
`is_public` for every address, literal or resolved, and `_parse` for the URL itself.
`OMS_WEBHOOK_ALLOW_PRIVATE_URLS` lifts the rules for development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
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

_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_NUMERIC = re.compile(r"[0-9]+|0x[0-9a-f]*")  # a last label like this is an IPv4 address
_HOST_PORT = re.compile(r"(\[[0-9a-f:.]+\]|[^\[\]:]+)(:[0-9]*)?")


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


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str  # ASCII, lower case, without a trailing dot; for the Host header and TLS
    lookup: str  # what is resolved: `host`, with the trailing dot if the URL had one
    port: int
    literal: IPAddress | None


def _parse(url: str, allow_private: bool) -> _Target:
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in url):
        raise UnsafeTarget("the URL contains spaces, control characters or backslashes")
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
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("credentials in the URL are not allowed")
    if port == 0:
        raise UnsafeTarget("port 0 is not a valid port")
    if _HOST_PORT.fullmatch(parts.netloc.lower()) is None:
        raise UnsafeTarget(f"{parts.netloc} is not a valid host and port")
    port = port or (443 if scheme == "https" else 80)
    literal = _literal(parts.hostname, bracketed=parts.netloc.startswith("["))
    if literal is not None:
        return _Target(scheme, str(literal), str(literal), port, literal)
    host = _host_name(parts.hostname)
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise UnsafeTarget("localhost is not a public address")
    lookup = host + "." if parts.hostname.endswith(".") else host
    return _Target(scheme, host, lookup, port, None)


def _literal(host: str, *, bracketed: bool) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        if bracketed:
            raise UnsafeTarget(f"[{host}] is not an IPv6 address") from None
        return None


def _host_name(hostname: str) -> str:
    """The host's ASCII name (IDNA, as the resolver would encode it), or UnsafeTarget."""
    name = hostname[:-1] if hostname.endswith(".") else hostname
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeTarget(f"{hostname} is not a valid host name") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeTarget(f"{hostname} is not a valid host name")
    if _NUMERIC.fullmatch(labels[-1]):
        raise UnsafeTarget(f"{hostname} is neither a valid IPv4 address nor a host name")
    return ascii_name


async def _resolve(host: str, port: int, seconds: float) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=seconds
    )
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def check_registration(
    url: str, *, allow_private: bool, resolve_seconds: float = 3.0
) -> None:
    """Refuse URLs that are malformed, or are or resolve to non-public addresses. A name
    that does not resolve now is accepted: it is checked again at every delivery."""
    target = _parse(url, allow_private)
    if allow_private:
        return
    if target.literal is not None:
        _refuse_private(target.host, [target.literal])
        return
    try:
        addresses = await _resolve(target.lookup, target.port, resolve_seconds)
    except (OSError, TimeoutError):
        return
    _refuse_private(target.host, addresses)


def _refuse_private(host: str, addresses: list[IPAddress]) -> None:
    bad = [a for a in addresses if not is_public(a)]
    if not bad:
        return
    if str(bad[0]) == host:
        raise UnsafeTarget(f"{host} is not a public address")
    raise UnsafeTarget(f"{host} resolves to {bad[0]}, which is not a public address")


async def pin(url: str, *, allow_private: bool, resolve_seconds: float) -> PinnedTarget:
    """Resolve and check the URL's host now; the request goes to the checked address."""
    target = _parse(url, allow_private)
    if target.literal is not None:
        addresses = [target.literal]
    else:
        try:
            addresses = await _resolve(target.lookup, target.port, resolve_seconds)
        except (OSError, TimeoutError) as exc:
            raise UnsafeTarget(
                f"cannot resolve {target.host}: {exc or type(exc).__name__}"
            ) from None
    if not allow_private:
        _refuse_private(target.host, addresses)
    address = addresses[0]
    netloc_host = f"[{address}]" if address.version == 6 else str(address)
    parts = urlsplit(url)
    default_port = 443 if target.scheme == "https" else 80
    on_default = target.port == default_port
    netloc = netloc_host if on_default else f"{netloc_host}:{target.port}"
    host_header = target.host if on_default else f"{target.host}:{target.port}"
    if target.literal is not None and target.literal.version == 6:
        host_header = f"[{target.host}]" if on_default else f"[{target.host}]:{target.port}"
    pinned = urlunsplit((target.scheme, netloc, parts.path or "/", parts.query, ""))
    sni = target.host if target.scheme == "https" and target.literal is None else None
    return PinnedTarget(pinned, host_header, sni)
