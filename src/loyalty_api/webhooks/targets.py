"""Which URLs a webhook may be sent to: the guard against server-side request forgery.

Pure of database access and cheap: the API checks a URL when it is saved, and the sender again when it
connects (`webhooks/transport.py` runs `checked_addresses` for each new connection and connects to exactly
the addresses it passed), because what a name resolves to can change after it was saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from loyalty_api.webhooks.errors import TargetNotAllowed, TargetUnresolvable

MAX_URL_LENGTH = 2000
RESOLVE_TIMEOUT_SECONDS = 5.0
_SCHEMES = {"http": 80, "https": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Special-purpose ranges (IANA's registries, RFC 6890 and after) refused whatever Python's `ipaddress` makes
# of them: its tables differ between versions, and 3.11 takes 192.0.0.8 (inside the IETF's protocol
# assignments), the 6to4 relay anycast and site-local IPv6 for global. Neither a receiver nor anything a
# webhook should reach lives there. The rest (private, loopback, link-local, multicast, reserved, ...) is
# left to the flags, which every version agrees on.
_SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "240.0.0.0/4",  # reserved, with the limited broadcast address
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, benchmarking, ORCHID, ...)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing (SRv6) identifiers
        "fec0::/10",  # site-local, deprecated but still routed inside some networks
    )
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host name, port) -> its addresses. Raises TargetUnresolvable (or returns none) for a name without any.
Resolver = Callable[[str, int], Awaitable[tuple[IPAddress, ...]]]


def check_url(url: str) -> None:
    """Refuse (TargetNotAllowed, 422) a URL that is not plain http(s) to a host and a port other than 0,
    carries credentials, is too long or holds spaces or control characters: the checks that need no DNS."""
    _parse(url)


async def check_target(url: str, *, allow_private: bool) -> None:
    """`check_url`, then refuse a URL whose host resolves to any address inside a private network
    (loopback, private, link-local, multicast, reserved, unspecified, shared, special-purpose, …) unless
    `allow_private`. A host without an address is refused with TargetUnresolvable, a subclass of
    TargetNotAllowed."""
    await resolve_target(url, allow_private=allow_private)


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """What `check_target` found for a URL, checked ahead of a unit of work: resolving a name may take
    seconds, and an open writing unit (on SQLite, the only writer turn) must not wait for it."""

    url: str
    refusal: TargetNotAllowed | None

    def confirm(self) -> None:
        """Raise the refusal, if the check found one."""
        if self.refusal is not None:
            raise self.refusal


async def check_in_advance(url: str, *, allow_private: bool) -> TargetCheck:
    """`check_target`, its refusal kept to be raised where the URL is used."""
    try:
        await check_target(url, allow_private=allow_private)
    except TargetNotAllowed as refusal:
        return TargetCheck(url, refusal)
    return TargetCheck(url, None)


async def resolve_target(url: str, *, allow_private: bool) -> tuple[IPAddress, ...]:
    """`check_target`, returning the addresses it checked (a sender may connect to exactly these)."""
    parts = _parse(url)
    host = parts.hostname
    assert host is not None  # _parse refuses a URL without one
    port = parts.port or _SCHEMES[parts.scheme.lower()]
    return await checked_addresses(host, port, allow_private=allow_private)


async def checked_addresses(
    host: str, port: int, *, allow_private: bool, resolve: Resolver | None = None
) -> tuple[IPAddress, ...]:
    """The addresses `host` stands for (itself if it is an IP literal, else what `resolve` answers, by
    default `resolve_host`), refusing them all (TargetNotAllowed) if any is internal, unless
    `allow_private`; TargetUnresolvable if there is none. The one check both the API and the sender's
    connections run."""
    literal = _literal(host)
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        addresses = await (resolve or resolve_host)(host, port)
    if not addresses:
        raise TargetUnresolvable(_UNRESOLVABLE)
    if not allow_private:
        for address in addresses:
            problem = _internal(address)
            if problem is not None:
                raise TargetNotAllowed(f"the host resolves to {problem} address")
    return addresses


def refusal_reason(refusal: TargetNotAllowed) -> str:
    """The bare reason of a refusal ("the host resolves to a loopback address"), without the problem
    detail's `url: ` prefix."""
    errors = refusal.extra.get("errors") or [{"message": refusal.detail}]
    return str(errors[0]["message"])


def _parse(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise TargetNotAllowed(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise TargetNotAllowed("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise TargetNotAllowed("is not a valid URL") from exc
    if port == 0:  # urlsplit takes it, but nothing can be reached there
        raise TargetNotAllowed("is not a valid URL")
    if parts.scheme.lower() not in _SCHEMES:
        raise TargetNotAllowed("must be an http or https URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetNotAllowed("must not contain a user name or password")
    if not parts.hostname:
        raise TargetNotAllowed("must name a host")
    return parts


_UNRESOLVABLE = "the host does not resolve to an address"


async def resolve_host(host: str, port: int) -> tuple[IPAddress, ...]:
    """What the system resolver answers for `host` (a name, not an IP literal), without repeats, within
    RESOLVE_TIMEOUT_SECONDS; TargetUnresolvable if nothing."""
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            # Shielded: a caller that gives up leaves the lookup to the others waiting for it.
            found = await asyncio.shield(_look_up(host, port))
    except (OSError, UnicodeError, TimeoutError) as exc:  # socket.gaierror is an OSError
        raise TargetUnresolvable(_UNRESOLVABLE) from exc
    addresses = []
    for _family, _type, _proto, _name, sockaddr in found:
        parsed = _literal(str(sockaddr[0]))
        if parsed is not None:
            addresses.append(parsed)
    if not addresses:
        raise TargetUnresolvable(_UNRESOLVABLE)
    return tuple(dict.fromkeys(addresses))


_AddressInfo = list[tuple[Any, ...]]  # what socket.getaddrinfo answers
_Lookups = dict[tuple[str, int], "asyncio.Future[_AddressInfo]"]
# The lookups under way in each event loop, by host and port.
_UNDER_WAY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lookups] = weakref.WeakKeyDictionary()


def _look_up(host: str, port: int) -> asyncio.Future[_AddressInfo]:
    """The system resolver's answer for `host` and `port`, from a lookup on a thread of its own, one at a
    time per name: a caller asking while one is under way shares it.

    Not the event loop's getaddrinfo: that runs on the loop's default executor, a few threads (the CPUs
    plus four) that the whole process shares, and a lookup whose name server does not answer holds its
    thread as long as the system resolver waits (its timeout, times its attempts, times the name servers:
    up to half a minute), well past the caller's RESOLVE_TIMEOUT_SECONDS. A few silent names, or one with a
    few sends waiting for it, took every thread, and every other lookup (another endpoint's new connection,
    the API checking a URL) queued behind them until it timed out. A daemon thread holds up no exit."""
    loop = asyncio.get_running_loop()
    under_way = _UNDER_WAY.setdefault(loop, {})
    key = (host, port)
    lookup = under_way.get(key)
    if lookup is None:
        lookup = loop.create_future()
        under_way[key] = lookup
        lookup.add_done_callback(functools.partial(_forget, under_way, key))
        threading.Thread(
            target=_system_lookup, args=(loop, lookup, host, port), name="webhook-lookup", daemon=True
        ).start()
    return lookup


def _system_lookup(
    loop: asyncio.AbstractEventLoop, lookup: asyncio.Future[_AddressInfo], host: str, port: int
) -> None:
    """On the lookup's thread: ask the system resolver, and hand its answer (or error) to the loop."""
    try:
        answer = functools.partial(lookup.set_result, socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except Exception as exc:  # socket.gaierror, UnicodeError for a name IDNA cannot encode, ...
        answer = functools.partial(lookup.set_exception, exc)
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for the answer
        loop.call_soon_threadsafe(answer)


def _forget(under_way: _Lookups, key: tuple[str, int], lookup: asyncio.Future[_AddressInfo]) -> None:
    """A lookup that ended: the next caller asks afresh. Its error is marked as seen, so one whose callers
    all gave up before it ended logs nothing."""
    if under_way.get(key) is lookup:
        del under_way[key]
    if not lookup.cancelled():
        lookup.exception()


def is_literal(host: str) -> bool:
    """Whether the host is an IP address rather than a name."""
    return _literal(host) is not None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _internal(address: IPAddress) -> str | None:
    """What kind of non-public address this is, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        translated = _translated_ipv4(address)
        if translated is not None:
            # The connection goes to the IPv4 address itself (through the host's own stack, or a NAT64
            # gateway behind a DNS64 resolver on an IPv6-only network): it alone decides.
            return _internal(translated)
        tunnelled = _tunnelled_ipv4(address)
        if tunnelled is not None:
            found = _internal(tunnelled)
            if found is not None:
                return found
    checks = (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved),
        ("a special-purpose", any(address in network for network in _SPECIAL_PURPOSE)),
        ("a non-public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _translated_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or a NAT64 (64:ff9b::/96) address is written for."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _tunnelled_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 or Teredo address tunnels to: its own IPv6 kind must pass too."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None
