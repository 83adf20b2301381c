"""The webhook sender's HTTP client: every connection goes to an address that passed the SSRF check.

Checking a URL (`targets.check_target`) and then letting httpx resolve the host again to connect leaves a
DNS-rebinding window: the name can answer a public address to the check and 127.0.0.1 to the connect. Here
the check moves into the connection: `PinningBackend.connect_tcp` resolves the host once per new
connection, refuses it by the rules of `targets.checked_addresses`, and connects to exactly the addresses
that passed. Kept-alive connections are reused per endpoint, so a reused connection still goes to an
address that was checked when it opened.

TLS is unchanged by the pinning: httpcore gives `start_tls` the request URL's host as `server_hostname`,
whatever IP the TCP connection went to (httpcore 1.0.9, `httpcore/_async/connection.py`,
`AsyncHTTPConnection._connect`: `"server_hostname": sni_hostname or self._origin.host.decode("ascii")`,
where `_origin` is the request URL's origin and `sni_hostname` a request extension the sender never sets).
So SNI and the certificate check are for the URL's host, as with a plain httpx client.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

import httpcore
import httpx

from loyalty_api.webhooks.errors import TargetNotAllowed
from loyalty_api.webhooks.targets import Resolver, checked_addresses, refusal_reason, resolve_host

# httpx's own defaults (httpx.AsyncClient() without limits).
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class TargetRefused(httpx.ConnectError):
    """The webhook's host resolves to an address the sender may not connect to, or to none; no connection
    was made. `str()` is the reason targets.py gives ("the host resolves to a loopback address"), and
    `refusal` the TargetNotAllowed (or TargetUnresolvable) behind it."""

    def __init__(self, refusal: TargetNotAllowed) -> None:
        super().__init__(refusal_reason(refusal))
        self.refusal = refusal


def webhook_client(
    *,
    timeout: float,
    allow_private: bool,
    resolve: Resolver = resolve_host,
    limits: httpx.Limits = DEFAULT_LIMITS,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient whose connections go only to checked addresses (see the module docstring), without
    redirects, proxies or .netrc. A refused host fails the request with TargetRefused (an
    httpx.ConnectError). `ssl_context` defaults to httpx's (certifi's CAs); tests give their own."""
    transport = PinnedTransport(
        allow_private=allow_private, resolve=resolve, limits=limits, ssl_context=ssl_context
    )
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)


class PinningBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking each TCP connection's host itself and handing
    the wrapped backend only the addresses that passed."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: Resolver = resolve_host,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._backend = network_backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # As in httpcore's own backend, `timeout` bounds the whole connect, resolving included; the
        # addresses are tried in the order the resolver gave them until one connects.
        try:
            async with asyncio.timeout(timeout):
                try:
                    addresses = await checked_addresses(
                        host, port, allow_private=self._allow_private, resolve=self._resolve
                    )
                except TargetNotAllowed as refusal:
                    raise TargetRefused(refusal) from refusal
                failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
                for address in addresses:
                    try:
                        return await self._backend.connect_tcp(
                            str(address),
                            port,
                            timeout=timeout,
                            local_address=local_address,
                            socket_options=socket_options,
                        )
                    except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                        failure = exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        assert failure is not None  # checked_addresses returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._backend.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class PinnedTransport(httpx.AsyncBaseTransport):
    """httpx's AsyncHTTPTransport (HTTP/1.1, no proxy) over a PinningBackend: the same request and response
    conversion and exception mapping as httpx/_transports/default.py, through public APIs only."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: Resolver = resolve_host,
        limits: httpx.Limits = DEFAULT_LIMITS,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinningBackend(
                allow_private=allow_private, resolve=resolve, network_backend=network_backend
            ),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,  # the name: httpcore's SNI and certificate check use it
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpcore_errors_as_httpx():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpcore_errors_as_httpx():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


# httpcore's exceptions and the httpx ones httpx's own transport turns them into.
_ERRORS: dict[type[Exception], type[httpx.HTTPError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextlib.contextmanager
def _httpcore_errors_as_httpx() -> Iterator[None]:
    """Raise an httpcore exception as the most specific httpx one for it, with the same message; anything
    else (TargetRefused is already an httpx error) passes through."""
    try:
        yield
    except Exception as exc:
        mapped: type[httpx.HTTPError] | None = None
        for source, target in _ERRORS.items():
            if isinstance(exc, source) and (mapped is None or issubclass(target, mapped)):
                mapped = target
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc
