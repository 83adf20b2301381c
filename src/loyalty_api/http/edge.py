"""The edge: what every request passes before any route runs, so no client can stall a process.

In order: an over-long query string (414), headers (431) or declared body (413) is refused before anything
else; calls to the API (`/v1`, `/graphql`) need a valid key, unexpired and called from one of its networks if
it names any, checked before a byte of the body is read, with failures counted per client address and per key
prefix; the key's rate limit is spent; then the app runs under a backstop time limit (503), reading a body
that is counted as it streams and cut at the cap. A refusal that leaves a body unread closes the connection.
Once the response is out, the key's last-used time is written when it is due (at most once a minute).
Whatever fails before a response has started (a route's own failures are its own) is answered here, inside
the request context: a 500 problem with the request id, or 499 for a caller gone mid-upload.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_api.auth import keys
from loyalty_api.auth import service as auth_service
from loyalty_api.auth.errors import AddressNotAllowed, InvalidApiKey
from loyalty_api.auth.networks import client_ip
from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.errors import LoyaltyError, NotFound
from loyalty_api.http.problems import render_domain_error, unexpected_error
from loyalty_api.http.rate_limits import RateLimiter
from loyalty_api.settings import Settings

GRAPHQL_PATH = "/graphql"
# An anonymous SDL read (when settings allow it) is one short document.
ANONYMOUS_BODY_BYTES = 8 * 1024
# A body streamed past the cap costs its key one unit of rate limit per this many bytes read.
BYTES_PER_UNIT = 64 * 1024
# The HTTP server takes a request line and headers of any length: these bound them (a GraphQL query over GET
# is in the query string, and a document of 1,000 tokens fits in a few KiB).
MAX_QUERY_BYTES = 16 * 1024
MAX_HEADER_BYTES = 32 * 1024
# What the access log and the metrics say of a request whose caller left before sending all of its body
# (nginx's code for it: no standard one exists).
CLIENT_CLOSED_REQUEST = 499
# The backstop's limit is the routes' own plus this, so that a route's own cut-off answers first.
BACKSTOP_GRACE_SECONDS = 1.0


class PayloadTooLarge(LoyaltyError):
    """The request body, as declared or as sent, is larger than the service takes (`max_bytes`); it was not
    processed, and the connection is closed.

    Send a smaller body.
    """

    code = "payload_too_large"
    status = 413
    title = "The request body is too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit} bytes", max_bytes=limit)
        self.headers = {"Connection": "close"}  # else the server reads the rest of the body to reuse it


class RequestTimedOut(LoyaltyError):
    """The request did not finish within the service's time limit, and what it had done was rolled back.

    Retry after `Retry-After` seconds; with the same Idempotency-Key, the work is done at most once.
    """

    code = "request_timed_out"
    status = 503
    title = "The request took too long"

    @classmethod
    def after(cls, seconds: float) -> RequestTimedOut:
        error = cls(
            f"No answer within {seconds:g} s; what the request had done so far was rolled back. "
            "Retry it: with the same Idempotency-Key, the work is done at most once."
        )
        error.headers = {"Retry-After": "1"}
        return error


class UriTooLong(LoyaltyError):
    """The query string is longer than 16 KiB; the request was not processed.

    Shorten the query string; send a long GraphQL document in a POST body.
    """

    code = "uri_too_long"
    status = 414
    title = "The query string is too long"


class HeadersTooLarge(LoyaltyError):
    """The request's headers add up to more than 32 KiB; the request was not processed.

    Send fewer or shorter headers (large cookies are the usual cause).
    """

    code = "headers_too_large"
    status = 431
    title = "The request headers are too large"


def principal_of(request: Request) -> Principal | None:
    """The caller the edge authenticated (None on routes that need no key)."""
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    return principal


def spare_the_commit(connection: HTTPConnection | None) -> None:
    """Stand the backstop down for the rest of the request: a unit of work that finished within its own
    limit is committing, and a commit cut off would leave its caller told "rolled back" of work that may
    have landed. What follows a commit is bounded by each unit's own limit (a GraphQL mutation's covers its
    key's claim and its wait for a unit of work too), and by answering."""
    state = {} if connection is None else connection.scope.get("state", {})
    backstop: asyncio.Timeout | None = state.get("backstop")
    if backstop is not None:
        backstop.reschedule(None)


@asynccontextmanager
async def misses_counted(limiter: RateLimiter, principal: Principal) -> AsyncIterator[None]:
    """Around a look-up of a member: refused once the key's misses budget is spent, and a miss (NotFound)
    spends it. A walk through card numbers or phone numbers is almost all misses; a till's is not."""
    await limiter.check(limiter.lookup_misses, principal.key_lineage)
    try:
        yield
    except NotFound:
        await limiter.count(limiter.lookup_misses, principal.key_lineage)
        raise


async def lookup_budgets(request: Request) -> AbstractAsyncContextManager[None]:
    """A dependency of member look-ups: by phone or e-mail they spend the key's contact-lookup budget, and
    the look-up itself runs inside what this returns, which counts its misses."""
    principal = principal_of(request)
    if principal is None:
        raise InvalidApiKey.missing()
    limiter: RateLimiter = request.app.state.rate_limiter
    # An empty one is left out (http.dependencies.EmptyIsLeftOut): no look-up by contact.
    if request.query_params.get("phone") or request.query_params.get("email"):
        await limiter.spend(limiter.contact_lookup, principal.key_lineage)
    return misses_counted(limiter, principal)


def _path(scope: Scope) -> str:
    """The path as the routes see it: behind a proxy with a root path, without that prefix."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _client_host(scope: Scope) -> str | None:
    """The caller's address: the peer's, or the one a proxy forwarded when the server trusts that proxy
    (uvicorn's FORWARDED_ALLOW_IPS puts it in the scope)."""
    client = scope.get("client")
    return str(client[0]) if client else None


def _client_address(scope: Scope) -> str:
    """Who failed authentication: an IPv4 address, or an IPv6 address's /64 (one host has them all). An IPv4
    client of a dual-stack listener (`::ffff:a.b.c.d`) is its IPv4 address, not the /64 all of them share."""
    host = _client_host(scope)
    address = client_ip(host)
    if address is None:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return str(ipaddress.IPv6Network(f"{address}/64", strict=False))


def _needs_key(scope: Scope) -> bool:
    path = _path(scope)
    if path == GRAPHQL_PATH:
        # GraphiQL's page itself is public; every query, over GET or POST, needs a key.
        return not (scope["method"] == "GET" and not scope.get("query_string"))
    return path.startswith("/v1/") or path == "/v1"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _has_body(scope: Scope) -> bool:
    declared = _header(scope, b"content-length")
    return (declared is not None and declared != b"0") or _header(scope, b"transfer-encoding") is not None


def _bearer(scope: Scope) -> str | None:
    """The bearer token of the `Authorization` header: None when there is no header, "" when it is no bearer
    token. Sent more than once it is refused: a proxy that checks one line and the service that reads
    another must never disagree on who calls."""
    lines = [value for key, value in scope["headers"] if key == b"authorization"]
    if len(lines) > 1:
        raise InvalidApiKey.sent_more_than_once(len(lines))
    if not lines:
        return None
    scheme, _, token = bytes(lines[0]).decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _capped(receive: Receive, limit: int, charge: Callable[[], Awaitable[None]]) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                await charge()
                raise PayloadTooLarge(limit)
        return message

    return counted


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter
        self.max_body = settings.max_body_bytes
        self.timeout = settings.request_timeout_seconds
        self.public_sdl = settings.graphql_public_sdl
        self.key_usage = auth_service.KeyUsage()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            principal = await self._serve(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            # Answered here, not by Starlette's last-resort handler outside every middleware: the answer
            # and the error's log line carry the request id, which the 500's page asks the caller to quote.
            if isinstance(exc, LoyaltyError):
                await self._refuse(exc, scope, receive, send)
            elif isinstance(exc, ClientDisconnect):  # the caller left mid-upload: nothing ran, nobody hears
                await Response(status_code=CLIENT_CLOSED_REQUEST)(scope, receive, send)
            else:
                await unexpected_error(Request(scope), exc)(scope, receive, send)
            return
        if principal is not None:
            # The response is out: the key's last-used time, when due, costs the caller no wait.
            await self.key_usage.write_noted(scope["app"].state.units, principal)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> Principal | None:
        """The checks, then the app; the caller, once known. A refusal comes out as its LoyaltyError."""
        limit = self.max_body
        principal: Principal | None = None
        if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            raise UriTooLong(f"The query string is longer than {MAX_QUERY_BYTES} bytes")
        if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
            raise HeadersTooLarge(f"The headers add up to more than {MAX_HEADER_BYTES} bytes")
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(limit)
        if _needs_key(scope):
            principal = await self._caller(scope)
            if principal is None:
                limit = min(limit, ANONYMOUS_BODY_BYTES)
            scope.setdefault("state", {})["principal"] = principal
        await self._run(scope, _capped(receive, limit, partial(self._charge_for_the_cap, principal)), send)
        return principal

    async def _charge_for_the_cap(self, principal: Principal | None) -> None:
        """A body cut at the cap was read up to it: the key pays for that read as for a call per 64 KiB."""
        if principal is not None:
            cost = max(1, self.max_body // BYTES_PER_UNIT)
            await self.limiter.count(self.limiter.budget_of(principal), principal.key_lineage, cost=cost)

    async def _caller(self, scope: Scope) -> Principal | None:
        """The authenticated caller, None for an anonymous SDL read, or the refusal as an exception. The
        client's address, by which calls without a valid key are counted, is parsed for those calls only."""
        try:
            token = _bearer(scope)
        except InvalidApiKey:
            await self.limiter.spend(self.limiter.unauthenticated, _client_address(scope))
            raise
        if token is None and self.public_sdl and _path(scope) == GRAPHQL_PATH:
            await self.limiter.spend(self.limiter.unauthenticated, _client_address(scope))
            return None
        parts = keys.parse(token) if token else None
        if parts is None:
            await self.limiter.spend(self.limiter.unauthenticated, _client_address(scope))
            raise InvalidApiKey.missing() if token is None else InvalidApiKey()
        units: UnitsOfWork = scope["app"].state.units
        try:
            # The key is checked first, always: a till that shares an address with a guesser, or whose
            # prefix is being guessed, is never refused for it. Once the failures of the address or the
            # prefix have spent their budget, the guesser gets 429 instead of 401.
            principal = await auth_service.authenticate(
                units, parts, client=_client_host(scope), usage=self.key_usage
            )
        except InvalidApiKey:
            await self.limiter.spend(self.limiter.unauthenticated, _client_address(scope))
            await self.limiter.spend(self.limiter.failed_prefix, parts.prefix)
            raise
        except AddressNotAllowed:
            # The secret was right: the prefix's budget stays its owner's; the address pays.
            await self.limiter.spend(self.limiter.unauthenticated, _client_address(scope))
            raise
        await self.limiter.spend(self.limiter.budget_of(principal), principal.key_lineage)
        return principal

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app under the request time limit: the backstop for what the routes do not bound themselves
        (a unit-of-work route cuts its endpoint off at the same limit and rolls back before committing)."""
        limit = asyncio.timeout(self.timeout + BACKSTOP_GRACE_SECONDS)
        scope.setdefault("state", {})["backstop"] = limit
        try:
            async with limit:
                await self.app(scope, receive, send)
        except TimeoutError:
            if not limit.expired():
                raise
            raise RequestTimedOut.after(self.timeout) from None

    async def _refuse(self, exc: LoyaltyError, scope: Scope, receive: Receive, send: Send) -> None:
        response = render_domain_error(exc, Request(scope))
        if _has_body(scope):
            # The body was not read, and a connection kept alive would have the server read and drop all
            # of it before the next request: 50 MB refused would still be 50 MB received.
            response.headers["Connection"] = "close"
        await response(scope, receive, send)
