"""The client networks an API key may be used from: parsed when the key is loaded, matched per request."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> Network:
    """A network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`; a bare address is its own /32 or /128). Host
    bits set after the prefix (`10.1.2.3/8`) are refused rather than dropped: the writer meant something."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a network such as 10.0.0.0/8 ({exc})") from None


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    return tuple(parse_network(text) for text in texts)


def client_ip(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address as its own protocol writes it (None: unknown or unreadable). A dual-stack listener
    sees an IPv4 client as ::ffff:a.b.c.d: that client is its IPv4 address."""
    if host is None:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def contains(networks: tuple[Network, ...], host: str | None) -> bool:
    """Whether the client address `host` is in one of `networks`; an unknown or unreadable address is not."""
    address = client_ip(host)
    return address is not None and any(address in network for network in networks)
