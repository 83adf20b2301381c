"""The client networks an API key may be used from: parsed when the key is loaded, matched per request."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> Network:
    """A network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`; a bare address is its own /32 or /128). Host
    bits set after the prefix (`10.1.2.3/8`) are refused rather than dropped: the writer meant something.
    IPv4 written as IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`, as a dual-stack listener shows its clients) is
    that IPv4 network (`10.0.0.0/8`): the client's address is matched as IPv4 (client_ip), so the mapped form
    would match no one."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a network such as 10.0.0.0/8 ({exc})") from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.IPv4Network((mapped, network.prefixlen - _MAPPED.prefixlen))
    return network


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


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


def within(inner: Iterable[Network], outer: Iterable[Network]) -> bool:
    """Whether every address of `inner` is in `outer`: each inner network lies inside an outer one."""
    outer = tuple(outer)
    return all(any(_nests(network, around) for around in outer) for network in inner)


def shared(one: Iterable[Network], other: Iterable[Network]) -> tuple[Network, ...]:
    """The addresses in both, as networks. Two CIDR blocks either nest or do not meet, so each pair gives the
    smaller of the two or nothing."""
    other = tuple(other)
    found: dict[Network, None] = {}
    for a in one:
        for b in other:
            if _nests(a, b):
                found[a] = None
            elif _nests(b, a):
                found[b] = None
    return tuple(found)


def _nests(inner: Network, outer: Network) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]
