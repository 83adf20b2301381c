"""create_app(settings): the one place the service is put together."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.orm import configure_mappers
from starlette.types import Message

from loyalty_api import __version__, crypto, health
from loyalty_api.activities.router import router as activities_router
from loyalty_api.analytics.router import router as analytics_router
from loyalty_api.audit.router import router as audit_router
from loyalty_api.benefits.router import router as benefits_router
from loyalty_api.campaigns.router import router as campaigns_router
from loyalty_api.checkout.router import router as checkout_router
from loyalty_api.clock import Clock, SystemClock
from loyalty_api.coalition.router import router as coalition_router
from loyalty_api.coupons.router import router as coupons_router
from loyalty_api.crypto import Vault
from loyalty_api.db.engine import Database, engine_for
from loyalty_api.db.invalidation import invalidations
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.earning.router import router as earning_router
from loyalty_api.graphql.schema import graphql_router
from loyalty_api.http.docs import router as docs_router
from loyalty_api.http.edge import EdgeMiddleware
from loyalty_api.http.middleware import (
    CORS_EXPOSED_HEADERS,
    CORS_METHODS,
    CORS_REQUEST_HEADERS,
    RequestContextMiddleware,
)
from loyalty_api.http.problem_catalogue import problem_types
from loyalty_api.http.problem_pages import router as problem_pages_router
from loyalty_api.http.problems import install_problem_handlers
from loyalty_api.http.rate_limits import RateLimiter
from loyalty_api.keys.router import router as keys_router
from loyalty_api.leaderboard.router import router as leaderboard_router
from loyalty_api.openapi.authorization import authorization_matrix, install_scopes, markdown_table
from loyalty_api.openapi.document import install_openapi, operation_id
from loyalty_api.ops.collector import tune_for_serving
from loyalty_api.ops.logging import configure_logging
from loyalty_api.ops.metrics import Metrics
from loyalty_api.plans.router import router as plans_router
from loyalty_api.points.router import router as points_router
from loyalty_api.privacy.router import router as privacy_router
from loyalty_api.profiles.router import router as profiles_router
from loyalty_api.program.router import router as program_router
from loyalty_api.rewards.router import router as rewards_router
from loyalty_api.segments.router import router as segments_router
from loyalty_api.settings import Settings
from loyalty_api.subscriptions.router import router as subscriptions_router
from loyalty_api.tiers.router import router as tiers_router
from loyalty_api.webhooks.router import router as webhooks_router
from loyalty_api.worker.runner import Worker

DESCRIPTION = """
A headless membership and loyalty service: members, points, tiers, benefits, rewards, coupons, the
checkout quote, paid memberships and signed webhooks.

**Auth**: `Authorization: Bearer lk_<prefix>_<secret>`; each key has scopes (`admin`, `pos`, `ecommerce`,
`partner`, `billing`), and each operation lists those it takes as its security requirement's roles (and in
`x-scopes`). **Errors** are RFC 9457 `application/problem+json` with a stable `code`; their `type`
(`/problems/{code}`) opens a page that says what the code means and what to do. Every answer carries
`X-Request-ID`, the caller's own if it sent one: quote it when reporting a problem.
**Idempotency**: every state-changing POST accepts `Idempotency-Key`; the same key and body within 24 h
replays the first response. **Pages**: `?limit=` (at most 200) and `?cursor=`; replies carry `next_cursor`.
**Money** is `{ "amount": minor units, "currency": "CNY" }`; points are whole numbers, which may be written
`10`, `10.0` or `1e1` (not `"10"`). **Text** never holds a control character (a tab, a line break, NUL) or a
lone surrogate; instants are RFC 3339 date-times from 1970 up to 2200.
GraphQL (an Apollo Federation 2 subgraph) is at `/graphql`.
"""


# The order of the sections in /docs, whatever the order the routes are matched in.
DOCS_ORDER = (
    "operations",
    "members",
    "programme",
    "earning rules",
    "points",
    "rewards",
    "coupons",
    "tiers",
    "benefits",
    "checkout",
    "activities",
    "campaigns",
    "paid membership",
    "partners",
    "webhooks",
    "analytics",
    "audit",
    "api keys",
)


class MissingEncryptionKey(RuntimeError):
    pass


def create_app(settings: Settings, *, clock: Clock | None = None, with_worker: bool = False) -> FastAPI:
    """The ASGI app. `with_worker` runs the background jobs inside this process (the SQLite default)."""
    if settings.encryption_key is None:
        raise MissingEncryptionKey(
            "LOYALTY_ENCRYPTION_KEY is not set: personal data is encrypted with it. "
            "Generate one with `loyalty-api encryption-key`, or run `loyalty-api serve --demo`."
        )
    vault = Vault(settings.encryption_key.get_secret_value())
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What a process builds once, before its first caller rather than during its request: SQLAlchemy's
        # mappers (about 500 attributes, set up at the first ORM use) and FastAPI's routes.
        configure_mappers()
        await build_routes(app)
        database = Database(engine_for(settings))
        reports = None
        if settings.reports_database_url is not None:
            reports = Database(engine_for(settings, settings.reports_database_url))
        units = UnitsOfWork(database, clock or SystemClock(), vault, settings, reports=reports)
        app.state.units = units
        worker = Worker(units) if with_worker else None
        worker_task = None if worker is None else asyncio.create_task(worker.run(), name="worker")
        try:
            async with invalidations(settings, units.cache):
                yield
        finally:
            if worker is not None and worker_task is not None:
                worker.stop()
                await worker_task
            await database.dispose()
            if reports is not None:
                await reports.dispose()

    app = FastAPI(
        title="loyalty-api",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # A path with a stray slash is a 404 problem, not a redirect with an empty body that a POS follows.
        redirect_slashes=False,
        openapi_tags=[{"name": name} for name in DOCS_ORDER],
        generate_unique_id_function=operation_id,
        # /docs and /redoc come from http/docs.py, with their scripts served by the app rather than a CDN.
        docs_url=None,
        redoc_url=None,
        # Requests are measured by our own Prometheus metrics and access log. FastAPI's OpenTelemetry would
        # look up three global providers on every request to find none set up (2-3 % of a quote's CPU).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.metrics = metrics
    app.state.database_watch = health.DatabaseWatch()
    app.state.rate_limiter = limiter = RateLimiter(settings)
    install_problem_handlers(app)
    install_openapi(app)
    install_scopes(app)
    # The last added runs first: request ids, logs and metrics see every answer, the edge's refusals too.
    app.add_middleware(EdgeMiddleware, settings=settings, limiter=limiter)
    if settings.cors_allowed_origins:
        # Before the edge: a browser's preflight carries no key, and is no failed authentication.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            allow_credentials=False,
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    # Routes are matched in order, each router's in turn (a few microseconds a route, and a request pays for
    # every route before its own): the till's and the checkout's calls (earn, redeem, member lookup, the
    # quote) come first, the checkout's one route ahead of them, which spares the quote the eighteen routes
    # of the other two for the price of one more check for theirs.
    app.include_router(checkout_router)
    app.include_router(points_router)
    app.include_router(profiles_router)
    app.include_router(health.router)
    app.include_router(problem_pages_router)
    app.include_router(program_router)
    app.include_router(earning_router)
    app.include_router(rewards_router)
    app.include_router(coupons_router)
    app.include_router(tiers_router)
    app.include_router(benefits_router)
    app.include_router(plans_router)
    app.include_router(subscriptions_router)
    app.include_router(webhooks_router)
    app.include_router(coalition_router)
    app.include_router(activities_router)
    app.include_router(campaigns_router)
    app.include_router(leaderboard_router)
    app.include_router(analytics_router)
    app.include_router(segments_router)
    app.include_router(privacy_router)
    app.include_router(audit_router)
    app.include_router(keys_router)
    app.include_router(graphql_router(settings), include_in_schema=False)
    app.include_router(docs_router)
    # The problem catalogue imports every module to find the error classes: built now, never by the first
    # refusal's error handler (a 401 raised by a library reads its code's title there).
    problem_types()
    return app


async def build_routes(app: FastAPI) -> None:
    """Have FastAPI build every route's request handling now, before the first caller's request. It builds
    an included router's routes the first time a request is matched against them, so a fresh process's
    first request to a late route built each route before it (the first GraphQL request, all of them: 236
    ms on a quiet machine, more than a second on a loaded one, past a short request time limit). A
    request that no route matches walks them all; sent to the router itself, it passes no middleware (no
    access log, metric, key or rate limit) and is answered 404 to nobody."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/ no route",
        "raw_path": b"/%20no%20route",
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    await app.router(scope, receive, send)


def serving_app() -> FastAPI:
    """The app of each process `loyalty-api serve --workers N` starts (uvicorn imports it there by name): its
    settings come from the environment, as that command left it; it runs no worker (PostgreSQL only)."""
    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    tune_for_serving()
    return app


def openapi_document() -> str:
    """The OpenAPI document, as `openapi/openapi.json` holds it."""
    app = _described_app()
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def scopes_table() -> str:
    """Who may call what, as the README's table (`loyalty-api scopes`); UndeclaredAccess if a route is
    neither scoped nor public on purpose."""
    return markdown_table(authorization_matrix(_described_app()))


def _described_app() -> FastAPI:
    # The documents do not depend on the key or the database; a throwaway key lets the app be built.
    return create_app(Settings(encryption_key=crypto.generate_key(), database_url="sqlite+aiosqlite://"))
