"""Fixtures: the real app on a real database (PostgreSQL or SQLite), driven over httpx's ASGI transport."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api import crypto
from loyalty_api.app import create_app
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.db.migrations import upgrade
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.schema import metadata
from loyalty_api.settings import Settings, variable
from tests.builders import make_key
from tests.databases import fresh_database, listen_url, pooler

# The suite starts Python processes by the hundred (the CLI, `serve`, schemathesis). Where the environment
# says not to write bytecode beside the sources (PYTHONDONTWRITEBYTECODE), each would compile every module
# it imports anew; they keep their bytecode in a folder of this user's under the temporary folder instead, the
# checkout untouched. Only where that folder is this user's alone: bytecode planted there would be run.
if "PYTHONDONTWRITEBYTECODE" in os.environ:
    _bytecode = os.path.join(tempfile.gettempdir(), f"loyalty-api-test-bytecode-{os.getuid()}")
    os.makedirs(_bytecode, mode=0o700, exist_ok=True)
    _folder = os.stat(_bytecode, follow_symlinks=False)
    if (
        stat.S_ISDIR(_folder.st_mode)
        and _folder.st_uid == os.getuid()
        and stat.S_IMODE(_folder.st_mode) == 0o700
    ):
        del os.environ["PYTHONDONTWRITEBYTECODE"]
        os.environ["PYTHONPYCACHEPREFIX"] = _bytecode

# The suite sets every setting it tests. One exported in the shell that runs it (webhooks to private targets
# allowed, from trying them on the demo; a production LOYALTY_RATE_LIMIT_STORAGE) would reach each Settings()
# a test makes, and fail tests that are right. The suite's own variables (LOYALTY_TEST_*, the sweeps) are no
# settings, and stay; the processes it starts get a clean environment (tests.processes).
for _setting in {variable(field) for field in Settings.model_fields}:
    os.environ.pop(_setting, None)

START = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)  # a Monday
# The fixtures' keys have a rate of their own far above what a test sends: a suite that runs fast on a quick
# machine must not meet a 429 in place of the answer it checks. Budgets are tested with keys made for that.
UNLIMITED = "1000000/second"


@pytest.fixture(scope="session")
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    async with fresh_database(tmp_path_factory.mktemp("db"), worker) as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # GraphiQL and introspection on, as `serve --demo` has them (production settings have them off).
    return Settings(
        database_url=database_url,
        database_pooler=pooler(),
        listen_database_url=listen_url(database_url),
        encryption_key=crypto.generate_key(),
        default_phone_region="CN",
        graphql_introspection=True,
        graphql_ide=True,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        await upgrade(units_of(application).database.engine)
        yield application


def units_of(app: FastAPI) -> UnitsOfWork:
    units: UnitsOfWork = app.state.units
    return units


@contextmanager
def cache_kept(app: FastAPI) -> Iterator[None]:
    """The app's cache keeps what it reads for an hour in the block (as an entry no notification cleared yet
    would stay), and forgets it all after: the app is the session's, and a later test must read afresh (a key
    revoked by the CLI is refused within the usual seconds)."""
    cache = units_of(app).cache
    seconds, cache.seconds = cache.seconds, 3600
    cache.clear()
    try:
        yield
    finally:
        cache.seconds = seconds
        cache.clear()


@pytest.fixture
def units(app: FastAPI) -> UnitsOfWork:
    return units_of(app)


@pytest.fixture(autouse=True)
async def _clean_state(request: pytest.FixtureRequest, clock: FrozenClock) -> AsyncIterator[None]:
    """Each test starts at START on empty tables; commits stay real, so tests clean up after themselves."""
    clock.set(START)
    yield
    if "app" not in request.fixturenames:
        return
    app: FastAPI = request.getfixturevalue("app")
    units_of(app).cache.clear()  # the tables are emptied behind the services' back
    await app.state.rate_limiter.reset()
    engine = units_of(app).database.engine
    # DELETE, not TRUNCATE, on PostgreSQL too: TRUNCATE gives each of the forty-odd tables and their indexes
    # new files (about 0.3 s a test, nearly half the suite's time), where a test leaves a few rows to delete.
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as http:
        yield http


@pytest.fixture
async def admin_key(app: FastAPI) -> str:
    return await make_key(app, Scope.admin, rate_limit=UNLIMITED)


@pytest.fixture
async def pos_key(app: FastAPI) -> str:
    return await make_key(app, Scope.pos, rate_limit=UNLIMITED)


@pytest.fixture
async def ecommerce_key(app: FastAPI) -> str:
    return await make_key(app, Scope.ecommerce, rate_limit=UNLIMITED)


@pytest.fixture
async def billing_key(app: FastAPI) -> str:
    return await make_key(app, Scope.billing, rate_limit=UNLIMITED)


def bearer(key: str, **extra: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **{k.replace("_", "-"): str(v) for k, v in extra.items()}}
