"""Request id, security headers, access log and request metrics, and HEAD answered as GET without its body, as
one pure ASGI middleware; and what CORS allows when settings name origins."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_api.db.ids import new_id
from loyalty_api.http.edge import GRAPHQL_PATH
from loyalty_api.ops.logging import request_id_var
from loyalty_api.ops.metrics import Metrics

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("loyalty_api.access")

CSP_HEADER = b"content-security-policy"
# On every answer. Strict-Transport-Security is left to whatever terminates TLS: only it knows whether the
# host name is HTTPS-only, and a shop's back office reached over plain HTTP or a self-signed certificate on
# its own network would be locked out by it.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
# The policy of everything that is not a page of its own: JSON runs nothing and loads nothing. The pages
# (/docs, /redoc, GraphiQL, /problems) send theirs, made for what they load; a second policy would be
# enforced as well and break them, so theirs is kept.
STRICT_POLICY = (CSP_HEADER, b"default-src 'none'; frame-ancestors 'none'")
# API answers carry members' personal data: no cache, shared or private, may keep them.
NO_STORE = (b"cache-control", b"no-store")
_V1_HEADERS = (*SECURITY_HEADERS, STRICT_POLICY, NO_STORE)

# CORS, for the browser callers that settings name: the methods the API uses, the headers it reads, and the
# headers of its answers a script needs to see. No credentials: the key travels in Authorization, which a
# browser never sends on its own.
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id")
CORS_EXPOSED_HEADERS = (
    "Idempotent-Replayed",
    "X-Request-Id",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "Allow",
)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = given if _SAFE_REQUEST_ID.match(given) else new_id().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        path = _route_path(scope)
        # /v1 answers are JSON, never a page with a policy of its own: their headers are fixed in advance.
        fixed = _V1_HEADERS if path.startswith("/v1/") or path == "/v1" else None

        method = scope["method"]
        # HTTP wants HEAD wherever GET is (RFC 9110 9.3.2): monitors and caches check a resource with it.
        # FastAPI's routes take only the methods they name, so HEAD runs as GET, with GET's headers.
        head = method == "HEAD"
        served = {**scope, "method": "GET"} if head else scope

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                extra = fixed if fixed is not None else _headers_for(path, headers)
                message["headers"] = [*headers, (REQUEST_ID_HEADER, request_id.encode()), *extra]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(served, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = served.get("route")
            # path_format: `/v1/members/{member_id}`, without the convertor that `path` may name
            template = getattr(route, "path_format", None) or "unmatched"
            self.metrics.observe_request(method, template, status, elapsed)
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


def _route_path(scope: Scope) -> str:
    """The path as the routes see it: behind a proxy with a root path, without that prefix."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _headers_for(path: str, headers: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
    own_policy = any(name == CSP_HEADER for name, _ in headers)  # ASGI header names are lower-case
    found = SECURITY_HEADERS if own_policy else (*SECURITY_HEADERS, STRICT_POLICY)
    return (*found, NO_STORE) if path == GRAPHQL_PATH else found
