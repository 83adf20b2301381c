"""The webhook sender connects to exactly the address it checked: one resolution per new connection, kept
for the connection's life; refused addresses get no connection; TLS stays checked against the URL's host.

The receivers are plain asyncio servers on loopback addresses (Linux routes all of 127.0.0.0/8 to loopback),
so a test can count the TCP connections each one gets; the resolver is a stub that says what it was asked.
The sessions are `webhook_session`'s, the aiohttp session the sender uses.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohappyeyeballs
import aiohttp
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

from loyalty_api.clock import SystemClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.webhooks import delivery
from loyalty_api.webhooks.delivery import dispatch_events, send_due
from loyalty_api.webhooks.errors import TargetNotAllowed, TargetUnresolvable
from loyalty_api.webhooks.targets import IPAddress, resolve_host
from loyalty_api.webhooks.targets import Resolver as ResolverFunction
from loyalty_api.webhooks.transport import TargetRefused, refuse_before_connecting, webhook_session
from tests.builders import enrol
from tests.inspect_db import rows
from tests.points.helpers import earn, set_program
from tests.webhooks.endpoint_helpers import add_endpoint
from tests.webhooks.receiver import running_receiver


@dataclass
class Resolver:
    """Answers each lookup with the next of `answers` (the last one again once they run out)."""

    answers: list[tuple[str, ...]]
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> tuple[IPAddress, ...]:
        self.asked.append((host, port))
        answer = self.answers[min(len(self.asked), len(self.answers)) - 1]
        return tuple(ipaddress.ip_address(a) for a in answer)


@dataclass
class Listener:
    """An HTTP/1.1 server that keeps connections alive and answers every request 200 "ok"."""

    address: str
    connections: int = 0
    hosts: list[str] = field(default_factory=list)  # the Host header of each request
    bodies: list[bytes] = field(default_factory=list)
    close_after: int | None = None  # answer the request with this number with `connection: close`

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                headers = dict(line.lower().split(": ", 1) for line in head[1:] if line)
                self.bodies.append(await reader.readexactly(int(headers.get("content-length", "0"))))
                self.hosts.append(headers["host"])
                closing = len(self.hosts) == self.close_after
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"
                    + (b"connection: close\r\n" if closing else b"")
                    + b"\r\nok"
                )
                await writer.drain()
                if closing:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client went away
        finally:
            writer.close()


@asynccontextmanager
async def listening(
    *addresses: str, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, list[Listener]]]:
    """Listeners on these loopback addresses, all on one free port; yields the port and them."""
    listeners = [Listener(a) for a in addresses]
    servers: list[asyncio.Server] = []
    port = 0
    try:
        for listener in listeners:
            server = await asyncio.start_server(listener.serve, listener.address, port, ssl=ssl_context)
            servers.append(server)
            port = server.sockets[0].getsockname()[1]
        yield port, listeners
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


@asynccontextmanager
async def session(
    *,
    allow_private: bool,
    resolve: ResolverFunction = resolve_host,
    ssl_context: ssl.SSLContext | None = None,
    seconds: float = 5,
) -> AsyncIterator[aiohttp.ClientSession]:
    async with webhook_session(
        timeout=seconds,
        allow_private=allow_private,
        connections=10,
        resolve=resolve,
        ssl_context=ssl_context,
    ) as opened:
        yield opened


async def post(http: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, str]:
    """Send as the sender does (no redirects) and read the whole answer, so the connection goes back to the
    pool."""
    async with http.post(url, data=body, allow_redirects=False) as response:
        return response.status, await response.text()


async def send_as_the_sender(http: aiohttp.ClientSession, url: str, *, allow_private: bool) -> str:
    """What the sender's `_attempt` does, `refuse_before_connecting` and then the POST; how it went."""
    try:
        await refuse_before_connecting(url, allow_private=allow_private)
    except TargetNotAllowed as refusal:
        return f"refused before sending: {refusal.detail}"
    try:
        status, _ = await post(http, url, b"x")
    except aiohttp.ClientError as error:
        return f"failed: {type(error).__name__}: {getattr(error, 'os_error', None) or error}"
    return f"sent: HTTP {status}"


def refusal_of(error: aiohttp.ClientConnectorError) -> TargetRefused:
    """The TargetRefused behind a connector error, as the sender's `_attempt` takes it out."""
    assert isinstance(error.os_error, TargetRefused), repr(error.os_error)
    return error.os_error


class TestPinning:
    async def test_a_kept_alive_connection_stays_on_the_address_that_was_checked(self) -> None:
        resolver = Resolver([("127.0.0.1",), ("127.0.0.2",)])
        async with (
            listening("127.0.0.1", "127.0.0.2") as (port, (first, second)),
            session(allow_private=True, resolve=resolver) as http,
        ):
            url = f"http://pinned.test:{port}/hooks"
            one = await post(http, url, b"one")
            two = await post(http, url, b"two")

        assert (one, two) == ((200, "ok"), (200, "ok"))
        assert first.bodies == [b"one", b"two"]
        assert first.connections == 1
        assert first.hosts == [f"pinned.test:{port}"] * 2  # the request still names the host
        assert (second.connections, second.bodies) == (0, [])
        assert resolver.asked == [("pinned.test", port)]

    async def test_a_new_connection_resolves_and_checks_again(self) -> None:
        resolver = Resolver([("127.0.0.1",), ("127.0.0.2",)])
        async with listening("127.0.0.1", "127.0.0.2") as (port, (first, second)):
            first.close_after = 2  # the receiver ends the kept-alive connection after its second answer
            url = f"http://pinned.test:{port}/hooks"
            async with session(allow_private=True, resolve=resolver) as http:
                for body in (b"one", b"two", b"three"):
                    assert await post(http, url, body) == (200, "ok")
            assert resolver.asked == [("pinned.test", port)] * 2
            assert (first.connections, first.bodies) == (1, [b"one", b"two"])
            assert (second.connections, second.bodies) == (1, [b"three"])

            # A fresh session has no connection to reuse: it resolves again (the stub now answers 127.0.0.2).
            async with session(allow_private=True, resolve=resolver) as http:
                assert await post(http, url, b"four") == (200, "ok")
            assert len(resolver.asked) == 3
            assert (second.connections, second.bodies) == (2, [b"three", b"four"])

    async def test_the_addresses_are_tried_in_order_until_one_connects(self) -> None:
        async with listening("127.0.0.1") as (port, (listener,)):
            # Nothing listens on 127.0.0.3: that connect is refused at once and the next address is tried.
            resolver = Resolver([("127.0.0.3", "127.0.0.1")])
            async with session(allow_private=True, resolve=resolver) as http:
                answer = await post(http, f"http://pinned.test:{port}/", b"x")
        assert answer == (200, "ok")
        assert listener.bodies == [b"x"]
        assert resolver.asked == [("pinned.test", port)]

    async def test_a_literal_address_is_not_resolved(self) -> None:
        resolver = Resolver([("127.0.0.2",)])
        async with (
            listening("127.0.0.1") as (port, (listener,)),
            session(allow_private=True, resolve=resolver) as http,
        ):
            answer = await post(http, f"http://127.0.0.1:{port}/", b"x")
        assert answer == (200, "ok")
        assert listener.bodies == [b"x"]
        assert resolver.asked == []


class TestRefusal:
    @pytest.mark.parametrize(
        ("answer", "reason"),
        [
            (("127.0.0.1",), "the host resolves to a loopback address"),
            (("10.1.2.3",), "the host resolves to a private address"),
            (("93.184.216.34", "127.0.0.1"), "the host resolves to a loopback address"),
            ((), "the host does not resolve to an address"),
        ],
    )
    async def test_a_refused_host_gets_no_connection_and_a_readable_error(
        self, answer: tuple[str, ...], reason: str
    ) -> None:
        async with (
            listening("127.0.0.1") as (port, (listener,)),
            session(allow_private=False, resolve=Resolver([answer])) as http,
        ):
            with pytest.raises(aiohttp.ClientConnectorError) as refused:
                await post(http, f"http://pinned.test:{port}/hooks", b"x")

        # The sender records "TargetRefused: <this>".
        assert str(refusal_of(refused.value)) == reason
        assert listener.connections == 0

    @pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"])
    async def test_a_literal_loopback_address_is_refused_before_connecting(self, host: str) -> None:
        # aiohttp asks no resolver about an IP literal: the sender checks it before it sends.
        url = f"http://{host}:8080/hooks"
        with pytest.raises(TargetNotAllowed) as refused:
            await refuse_before_connecting(url, allow_private=False)
        assert refused.value.detail == "url: the host resolves to a loopback address"
        await refuse_before_connecting(url, allow_private=True)  # allowed where private targets are

    async def test_a_name_is_left_to_the_resolver(self) -> None:
        # No lookup here: `nowhere.invalid` resolves to nothing, which the resolver refuses as it connects.
        await refuse_before_connecting("https://nowhere.invalid/hooks", allow_private=False)
        with pytest.raises(TargetNotAllowed, match="must be an http or https URL"):
            await refuse_before_connecting("ftp://nowhere.invalid/", allow_private=False)

    @pytest.mark.parametrize(
        "host",
        [
            # aiohttp takes these for IP literals, asking no resolver; since 3.14 (aio-libs/aiohttp#12827) it
            # refuses them as not canonical, where before it handed them to the socket, read as 127.0.0.1.
            "127.1",
            "2130706433",
            "017700000001",
            "127.0.0.1.",
            "0x7f000001",  # a name to aiohttp: the resolver refuses what getaddrinfo reads (no DNS asked)
            # yarl (hence aiohttp) maps these onto 127.0.0.1, a literal, so no resolver is asked; but
            # refuse_before_connecting checks urlsplit's host, which is not a literal, and lets them by.
            "１２７.０.０.１",
            "127。0。0。1",
        ],
    )
    async def test_another_spelling_of_loopback_gets_no_connection(self, host: str) -> None:
        """Each spelling either is refused before sending or fails without a connection (aiohttp refuses
        the non-canonical numeric forms; the resolver refuses what the system reads as 127.0.0.1)."""
        async with (
            listening("127.0.0.1") as (port, (listener,)),
            session(allow_private=False) as http,
        ):
            outcome = await send_as_the_sender(http, f"http://{host}:{port}/hooks", allow_private=False)
        assert outcome.startswith(("refused", "failed")), outcome
        assert listener.connections == 0

    async def test_resolving_counts_against_the_timeout(self) -> None:
        cancelled = asyncio.Event()

        async def never(host: str, port: int) -> tuple[IPAddress, ...]:
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.set()
            raise AssertionError("unreachable")

        # The guard turns a hang into a failure: if it expires, the request is cancelled, not timed out.
        async with (
            asyncio.timeout(5) as guard,
            session(allow_private=True, resolve=never, seconds=0.05) as http,
        ):
            with pytest.raises(TimeoutError):
                await post(http, "http://slow.test/", b"x")
        assert not guard.expired()
        assert cancelled.is_set()  # the lookup does not linger

    async def test_a_resolver_that_finds_nothing_is_refused_as_unresolvable(self) -> None:
        async def nothing(host: str, port: int) -> tuple[IPAddress, ...]:
            raise TargetUnresolvable("the host does not resolve to an address")

        async with session(allow_private=True, resolve=nothing) as http:
            with pytest.raises(aiohttp.ClientConnectorError) as refused:
                await post(http, "http://nowhere.test/", b"x")
        refusal = refusal_of(refused.value)
        assert str(refusal) == "the host does not resolve to an address"
        assert refusal.refusal.code == "webhook_target_unresolvable"

    async def test_a_name_rebound_to_loopback_is_refused_on_the_next_connection(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The rebinding attack itself: public to the first lookup, loopback to the next. The connection
        aiohttp opens to the public address is diverted to a local listener (the test stays offline), and
        the addresses aiohttp was told to connect to are recorded."""
        connected: list[list[str]] = []
        loop = asyncio.get_running_loop()

        async def divert(addr_infos: Sequence[tuple[Any, ...]], **_: Any) -> socket.socket:
            connected.append([str(info[4][0]) for info in addr_infos])
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            return sock

        monkeypatch.setattr(aiohappyeyeballs, "start_connection", divert)
        resolver = Resolver([("93.184.216.34",), ("127.0.0.1",)])
        async with (
            listening("127.0.0.1") as (port, (listener,)),
            session(allow_private=False, resolve=resolver) as http,
        ):
            listener.close_after = 1  # the next send needs a new connection
            url = f"http://rebind.test:{port}/hooks"
            assert await post(http, url, b"one") == (200, "ok")
            with pytest.raises(aiohttp.ClientConnectorError) as refused:
                await post(http, url, b"two")

        assert str(refusal_of(refused.value)) == "the host resolves to a loopback address"
        assert connected == [["93.184.216.34"]]  # the second lookup got no connection at all
        assert resolver.asked == [("rebind.test", port)] * 2
        assert (listener.connections, listener.bodies) == (1, [b"one"])


@dataclass
class Certificates:
    ca_pem: bytes
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey

    def server_context(self, host: str) -> ssl.SSLContext:
        """A server context with a certificate for `host` only (no IP address in it)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = SystemClock().now()  # certificates are checked against real time
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        chain = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with tempfile.NamedTemporaryFile(suffix=".pem") as pem:  # load_cert_chain reads files only
            pem.write(chain + key_pem)
            pem.flush()
            context.load_cert_chain(pem.name)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())


@pytest.fixture(scope="module")
def certificates() -> Certificates:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loyalty-api test CA")])
    now = SystemClock().now()  # certificates are checked against real time
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Certificates(cert.public_bytes(serialization.Encoding.PEM), cert, key)


class TestTLS:
    async def test_sni_and_the_certificate_are_for_the_urls_host_not_the_address(
        self, certificates: Certificates
    ) -> None:
        server_context = certificates.server_context("pinned.test")
        server_names: list[str | None] = []  # the SNI of each handshake
        server_context.sni_callback = lambda _socket, name, _context: server_names.append(name)
        async with (
            listening("127.0.0.1", ssl_context=server_context) as (port, (listener,)),
            session(
                allow_private=True,
                resolve=Resolver([("127.0.0.1",)]),
                ssl_context=certificates.client_context(),
            ) as http,
        ):
            answer = await post(http, f"https://pinned.test:{port}/hooks", b"x")

        # The certificate names pinned.test and no IP address: it was verified against the URL's host.
        assert answer == (200, "ok")
        assert server_names == ["pinned.test"]
        assert listener.bodies == [b"x"]

    async def test_a_certificate_for_another_host_is_refused(self, certificates: Certificates) -> None:
        server_context = certificates.server_context("other.test")
        async with (
            listening("127.0.0.1", ssl_context=server_context) as (port, (listener,)),
            session(
                allow_private=True,
                resolve=Resolver([("127.0.0.1",)]),
                ssl_context=certificates.client_context(),
            ) as http,
        ):
            with pytest.raises(aiohttp.ClientConnectorCertificateError) as refused:
                await post(http, f"https://pinned.test:{port}/hooks", b"x")

        # Signed by the trusted CA, so the name is what failed: the check is for pinned.test.
        error = refused.value.certificate_error
        assert isinstance(error, ssl.SSLCertVerificationError)
        assert "Hostname mismatch, certificate is not valid for 'pinned.test'" in str(error.verify_message)
        assert listener.bodies == []


def _units(app: FastAPI, *, allow_private: bool) -> UnitsOfWork:
    """The app's units of work (same database, clock, vault and cache) with private targets allowed or not."""
    units: UnitsOfWork = app.state.units
    settings = units.settings.model_copy(update={"webhook_allow_private_targets": allow_private})
    changed = UnitsOfWork(units.database, units.clock, units.vault, settings)
    changed.cache = units.cache
    return changed


class TestThroughTheSender:
    """The worker's own client (`delivery.webhook_client`) with the stub resolver in place of DNS: a name
    that resolves to loopback reaches the receiver only where the settings allow private targets."""

    @pytest.mark.parametrize("allow_private", [True, False])
    async def test_the_sender_connects_where_the_resolver_checked(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        monkeypatch: pytest.MonkeyPatch,
        allow_private: bool,
    ) -> None:
        resolver = Resolver([("127.0.0.1",)])
        monkeypatch.setattr(delivery, "webhook_session", functools.partial(webhook_session, resolve=resolver))
        units = _units(app, allow_private=allow_private)
        await set_program(client, admin_key)
        member = str((await enrol(client, pos_key))["id"])
        async with running_receiver() as receiver:
            port = urlsplit(receiver.url).port
            await add_endpoint(units, f"http://hooks.test:{port}/hooks", event_types=["points.earned"])
            await earn(client, pos_key, member, 10_000)
            await dispatch_events(units)
            assert await send_due(units, rng=random.Random(7)) == 1

        assert resolver.asked == [("hooks.test", port)]
        [attempt] = await rows(app, "SELECT status_code, error FROM webhook_attempts")
        if allow_private:
            [message] = receiver.received
            assert message.headers["host"] == f"hooks.test:{port}"
            assert attempt == {"status_code": 204, "error": None}
        else:
            assert receiver.received == []
            assert attempt == {
                "status_code": None,
                "error": "TargetRefused: the host resolves to a loopback address",
            }
