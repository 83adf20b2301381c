"""The webhook client connects to exactly the address it checked: one resolution per new connection, kept
for the connection's life; refused addresses get no connection; TLS stays checked against the URL's host.

The receivers are plain asyncio servers on loopback addresses (Linux routes all of 127.0.0.0/8 to loopback),
so a test can count the TCP connections each one gets; the resolver is a stub that says what it was asked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loyalty_api.clock import SystemClock
from loyalty_api.webhooks.errors import TargetUnresolvable
from loyalty_api.webhooks.targets import IPAddress
from loyalty_api.webhooks.transport import PinningBackend, TargetRefused, webhook_client


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


class TestPinning:
    async def test_a_kept_alive_connection_stays_on_the_address_that_was_checked(self) -> None:
        resolver = Resolver([("127.0.0.1",), ("127.0.0.2",)])
        async with (
            listening("127.0.0.1", "127.0.0.2") as (port, (first, second)),
            webhook_client(timeout=5, allow_private=True, resolve=resolver) as client,
        ):
            url = f"http://pinned.test:{port}/hooks"
            one = await client.post(url, content=b"one")
            two = await client.post(url, content=b"two")

        assert (one.status_code, one.text, two.status_code, two.text) == (200, "ok", 200, "ok")
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
            async with webhook_client(timeout=5, allow_private=True, resolve=resolver) as client:
                for body in (b"one", b"two", b"three"):
                    assert (await client.post(url, content=body)).status_code == 200
            assert resolver.asked == [("pinned.test", port)] * 2
            assert (first.connections, first.bodies) == (1, [b"one", b"two"])
            assert (second.connections, second.bodies) == (1, [b"three"])

            # A fresh client has no connection to reuse: it resolves again (the stub now answers 127.0.0.2).
            async with webhook_client(timeout=5, allow_private=True, resolve=resolver) as client:
                assert (await client.post(url, content=b"four")).status_code == 200
            assert len(resolver.asked) == 3
            assert second.bodies == [b"three", b"four"]

    async def test_the_addresses_are_tried_in_order_until_one_connects(self) -> None:
        async with listening("127.0.0.1") as (port, (listener,)):
            # Nothing listens on 127.0.0.3: that connect is refused at once and the next address is tried.
            resolver = Resolver([("127.0.0.3", "127.0.0.1")])
            async with webhook_client(timeout=5, allow_private=True, resolve=resolver) as client:
                response = await client.post(f"http://pinned.test:{port}/", content=b"x")
        assert response.status_code == 200
        assert listener.bodies == [b"x"]

    async def test_a_literal_address_is_not_resolved(self) -> None:
        resolver = Resolver([("127.0.0.2",)])
        async with (
            listening("127.0.0.1") as (port, (listener,)),
            webhook_client(timeout=5, allow_private=True, resolve=resolver) as client,
        ):
            response = await client.post(f"http://127.0.0.1:{port}/", content=b"x")
        assert response.status_code == 200
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
            webhook_client(timeout=5, allow_private=False, resolve=Resolver([answer])) as client,
        ):
            with pytest.raises(TargetRefused) as refused:
                await client.post(f"http://pinned.test:{port}/hooks", content=b"x")

        assert isinstance(refused.value, httpx.ConnectError)  # the sender's `except httpx.HTTPError` takes it
        # What the sender records for an httpx error:
        assert f"{type(refused.value).__name__}: {refused.value}" == f"TargetRefused: {reason}"
        assert listener.connections == 0

    @pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"])
    async def test_a_literal_loopback_address_is_refused(self, host: str) -> None:
        async with (
            listening("127.0.0.1") as (port, (listener,)),
            webhook_client(timeout=5, allow_private=False) as client,
        ):
            with pytest.raises(TargetRefused) as refused:
                await client.post(f"http://{host}:{port}/hooks", content=b"x")
        assert str(refused.value) == "the host resolves to a loopback address"
        assert listener.connections == 0

    async def test_resolving_counts_against_the_connect_timeout(self) -> None:
        async def never(host: str, port: int) -> tuple[IPAddress, ...]:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async with webhook_client(timeout=0.05, allow_private=True, resolve=never) as client:
            with pytest.raises(httpx.ConnectTimeout) as timed_out:
                await client.get("http://slow.test/")
        assert str(timed_out.value) == "timed out connecting to slow.test:80"

    async def test_a_resolver_that_finds_nothing_is_refused_as_unresolvable(self) -> None:
        async def nothing(host: str, port: int) -> tuple[IPAddress, ...]:
            raise TargetUnresolvable("the host does not resolve to an address")

        async with webhook_client(timeout=5, allow_private=True, resolve=nothing) as client:
            with pytest.raises(TargetRefused) as refused:
                await client.get("http://nowhere.test/")
        assert str(refused.value) == "the host does not resolve to an address"
        assert refused.value.refusal.code == "webhook_target_unresolvable"

    async def test_a_name_rebound_to_loopback_is_refused_on_the_next_connection(self) -> None:
        """The rebinding attack itself: public to the first lookup, loopback to the next."""
        connected: list[str] = []

        class Recording(httpcore.AsyncNetworkBackend):
            async def connect_tcp(self, host: str, port: int, **_: Any) -> httpcore.AsyncNetworkStream:
                connected.append(host)
                return httpcore.AsyncNetworkStream()

        backend = PinningBackend(
            allow_private=False,
            resolve=Resolver([("93.184.216.34",), ("127.0.0.1",)]),
            network_backend=Recording(),
        )
        await backend.connect_tcp("rebind.test", 443, timeout=5)
        with pytest.raises(TargetRefused) as refused:
            await backend.connect_tcp("rebind.test", 443, timeout=5)
        assert str(refused.value) == "the host resolves to a loopback address"
        assert connected == ["93.184.216.34"]


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
            webhook_client(
                timeout=5,
                allow_private=True,
                resolve=Resolver([("127.0.0.1",)]),
                ssl_context=certificates.client_context(),
            ) as client,
        ):
            response = await client.post(f"https://pinned.test:{port}/hooks", content=b"x")

        # The certificate names pinned.test and no IP address: it was verified against the URL's host.
        assert response.status_code == 200
        assert server_names == ["pinned.test"]
        assert listener.bodies == [b"x"]

    async def test_a_certificate_for_another_host_is_refused(self, certificates: Certificates) -> None:
        server_context = certificates.server_context("other.test")
        async with (
            listening("127.0.0.1", ssl_context=server_context) as (port, (listener,)),
            webhook_client(
                timeout=5,
                allow_private=True,
                resolve=Resolver([("127.0.0.1",)]),
                ssl_context=certificates.client_context(),
            ) as client,
        ):
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                await client.post(f"https://pinned.test:{port}/hooks", content=b"x")
        assert listener.bodies == []
