"""The webhook sender's HTTP client: every connection goes to an address that passed the SSRF check.

Checking a URL (`targets.check_target`) and then letting the HTTP client resolve the host again to connect
leaves a DNS-rebinding window: the name can answer a public address to the check and 127.0.0.1 to the
connect. Here the check is the client's resolver: aiohttp asks `PinningResolver` for the addresses of each
new connection, and it answers only addresses that passed `targets.checked_addresses` (refusing the host
otherwise), so the connection goes to exactly what was checked. The DNS cache is off, so every new
connection checks afresh; kept-alive connections are reused per endpoint, each to an address checked when
it opened. aiohttp does not ask a resolver about an IP literal: `refuse_before_connecting` checks those.

TLS is unchanged by the pinning: aiohttp gives the TLS handshake the URL's host as `server_hostname`
(`TCPConnector._create_direct_connection`: `server_hostname = (req.server_hostname or host)`, `host` being
the URL's), whatever address the TCP connection went to, so SNI and the certificate check are for the name.

aiohttp rather than httpx here: on the worker's two cores httpx's pool spent about four fifths of the
sender's CPU (anyio's event-loop sniffing and a liveness probe of every pooled connection on every request);
aiohttp's connector and C parser send the same requests for a fraction of that.
"""

from __future__ import annotations

import socket
import ssl

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from loyalty_api.webhooks.errors import TargetNotAllowed
from loyalty_api.webhooks.targets import (
    Resolver,
    check_url,
    checked_addresses,
    is_literal,
    refusal_reason,
    resolve_host,
)

_DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetRefused(OSError):
    """The webhook's host resolves to an address the sender may not connect to, or to none; no connection
    was made. `str()` is the reason targets.py gives ("the host resolves to a loopback address"), and
    `refusal` the TargetNotAllowed (or TargetUnresolvable) behind it."""

    def __init__(self, refusal: TargetNotAllowed) -> None:
        super().__init__(refusal_reason(refusal))
        self.refusal = refusal

    def __str__(self) -> str:
        return str(self.args[0])


class PinningResolver(AbstractResolver):
    """Resolves a host for a new connection and answers only if every address passes the target check."""

    def __init__(self, *, allow_private: bool, resolve: Resolver = resolve_host) -> None:
        self._allow_private = allow_private
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await checked_addresses(
                host, port, allow_private=self._allow_private, resolve=self._resolve
            )
        except TargetNotAllowed as refusal:  # TargetUnresolvable too
            raise TargetRefused(refusal) from refusal
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


async def refuse_before_connecting(url: str, *, allow_private: bool) -> None:
    """What the resolver cannot see: the URL's shape (TargetNotAllowed), and a host aiohttp takes for an IP
    literal, read as aiohttp reads it (yarl maps full-width digits and ideographic full stops to ASCII, so
    `１２７。０。０。１` is 127.0.0.1 to it)."""
    check_url(url)
    try:
        target = yarl.URL(url)
    except ValueError as exc:
        raise TargetNotAllowed("is not a valid URL") from exc
    host = target.raw_host or ""
    if is_literal(host):
        port = target.port or _DEFAULT_PORTS[target.scheme.lower()]
        await checked_addresses(host, port, allow_private=allow_private)
    elif ":" in host or host.replace(".", "").isdigit():
        # aiohttp takes this for an IP literal too and asks no resolver (before 3.14 it connected to 127.1 as
        # 127.0.0.1)
        raise TargetNotAllowed("must name its host by a name or a standard IP address")


def webhook_session(
    *,
    timeout: float,
    allow_private: bool,
    connections: int,
    resolve: Resolver = resolve_host,
    ssl_context: ssl.SSLContext | None = None,
) -> aiohttp.ClientSession:
    """A session whose connections go only to checked addresses (see the module docstring), without proxies
    or .netrc; each request is bounded by `timeout` as a whole. Make it inside the event loop that uses it.
    No limit per host: the sender's lease caps what is out to one endpoint, and endpoints sharing a host
    (several paths of one receiver) would otherwise wait for each other's connections, out of their time."""
    connector = aiohttp.TCPConnector(
        resolver=PinningResolver(allow_private=allow_private, resolve=resolve),
        use_dns_cache=False,
        limit=connections,
        limit_per_host=0,
        keepalive_timeout=30,
        ssl=ssl_context if ssl_context is not None else True,
    )
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout), trust_env=False
    )
