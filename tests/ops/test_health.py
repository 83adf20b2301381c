from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import make_url, text

from loyalty_api import crypto, health
from loyalty_api.app import create_app
from loyalty_api.db.migrations import alembic_config, head_revision
from loyalty_api.settings import Settings
from tests.apps import serving
from tests.builders import enrol
from tests.conftest import bearer
from tests.databases import is_postgres
from tests.relay import Relay

# A revision of a release newer than this one: unknown to this release's migrations.
NEWER = "0999"


@asynccontextmanager
async def _schema_at(app: FastAPI, revision: str) -> AsyncIterator[None]:
    """The test database's alembic_version reads `revision` for the block (the tables stay at head)."""
    engine = app.state.units.database.engine
    async with engine.begin() as connection:
        [current] = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars()
        await connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    try:
        yield
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": current})


class TestHealth:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_when_migrated(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["status"] == "ready"

    async def test_readyz_answers_at_once_while_a_write_is_under_way(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        """A probe reads: it never waits for the transaction of a request or a job (on SQLite, for the
        database's one writer; the probe's own timeout is a second or so, and past SQLite's busy timeout it
        would say the database is unreachable)."""
        async with app.state.units.begin() as uow:
            await uow.session.execute(text("UPDATE alembic_version SET version_num = version_num"))
            response = await asyncio.wait_for(client.get("/readyz"), timeout=5)
        assert response.status_code == 200
        assert response.json()["status"] == "ready"

    async def test_readyz_is_503_when_the_schema_is_behind(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        head = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision())
        assert isinstance(head.down_revision, str)
        async with _schema_at(app, head.down_revision):
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json() == {
                "status": "not_ready",
                "database": "ok",
                "migration": head.down_revision,
                "expected_migration": head_revision(),
            }

    async def test_readyz_stays_ready_on_a_schema_a_newer_release_migrated(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        """A rolling upgrade migrates first, then replaces the processes one by one: the old ones keep
        taking traffic meanwhile, on a revision only the newer release knows."""
        async with _schema_at(app, NEWER):
            response = await client.get("/readyz")
            assert response.status_code == 200
            assert response.json() == {
                "status": "ready",
                "database": "ok",
                "migration": NEWER,
                "expected_migration": head_revision(),
            }

    async def test_readyz_is_503_when_the_database_takes_the_connection_and_never_answers(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A hung server, or a network path that drops the replies: the probe waited on the driver's own
        connection timeout (60 s by default, here 600) until the load balancer gave up, and never said
        "not ready" (with a log line of its own) in time. The next probe says it again, without another
        line: the log would fill with one line every few seconds through the outage."""
        held: list[asyncio.StreamWriter] = []

        async def take_and_keep_quiet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)

        silent = await asyncio.start_server(take_and_keep_quiet, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        settings = Settings(
            database_url=f"postgresql+asyncpg://postgres:secret@127.0.0.1:{port}/loyalty?timeout=600",
            encryption_key=crypto.generate_key(),
            readiness_timeout_seconds=0.5,
            request_timeout_seconds=600,
        )
        app = create_app(settings)
        caplog.set_level(logging.WARNING, logger="loyalty_api.database")
        async with silent, app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as http:
                # Only so that a probe that hangs fails this test rather than stalls the suite.
                response = await asyncio.wait_for(http.get("/readyz"), timeout=60)
                # Probes come every few seconds: the outage is logged as it begins, not at each one.
                again = await asyncio.wait_for(http.get("/readyz"), timeout=60)
            for writer in held:
                writer.close()
        assert held  # the probe did reach the database
        assert response.status_code == again.status_code == 503
        assert (
            response.json()
            == again.json()
            == {
                "status": "not_ready",
                "database": "unreachable",
                "migration": None,
                "expected_migration": head_revision(),
            }
        )
        said = [r for r in caplog.records if r.name == "loyalty_api.database"]
        assert len(said) == 1
        # The error's class only: what the driver says may name the host.
        assert (said[0].getMessage(), said[0].__dict__["error"]) == ("database unreachable", "TimeoutError")

    @pytest.mark.skipif(
        not is_postgres(), reason="SQLite is a file of the process: it has no connection to lose"
    )
    async def test_an_outage_is_logged_once_as_it_begins_and_once_as_it_ends(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The operator reads when the database went away and when it came back, not one line per probe or
        scrape: /readyz and /metrics each find it, and the process says it once."""
        url = make_url(settings.database_url)
        relay = Relay((url.host or "127.0.0.1", url.port or 5432))
        port = await relay.start()
        relayed = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        caplog.set_level(logging.INFO, logger="loyalty_api.database")
        try:
            async with serving(settings, database_url=relayed) as (_, http):
                assert (await http.get("/readyz")).status_code == 200
                await relay.cut()
                during = [await http.get("/readyz") for _ in range(2)]
                scraped_during = [await http.get("/metrics") for _ in range(2)]
                await relay.restore()
                scraped_after = [await http.get("/metrics") for _ in range(2)]
                after = [await http.get("/readyz") for _ in range(2)]
        finally:
            await relay.close()
        assert [r.json()["database"] for r in during] == ["unreachable", "unreachable"]
        assert [(r.status_code, r.json()["database"]) for r in after] == [(200, "ok"), (200, "ok")]
        assert all("loyalty_database_up 0.0" in r.text for r in scraped_during)
        assert all("loyalty_database_up 1.0" in r.text for r in scraped_after)
        said = [r for r in caplog.records if r.name == "loyalty_api.database"]
        assert [(r.levelname, r.getMessage()) for r in said] == [
            ("WARNING", "database unreachable"),
            ("INFO", "database reachable again"),
        ]
        for record in said:  # what the driver said may name the host; the password never shows
            assert "127.0.0.1" not in record.getMessage() and str(port) not in record.getMessage()
            assert url.password is None or url.password not in str(record.__dict__)


class TestMetrics:
    async def test_requests_are_counted_by_route_template(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert 'route="/v1/members/{member_id}"' in response.text
        assert "loyalty_http_request_duration_seconds_bucket" in response.text
        assert member["id"] not in response.text

    async def test_the_database_is_up_when_the_backlog_was_read(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert "loyalty_database_up 1.0" in response.text
        assert 'loyalty_webhook_deliveries{status="pending"} 0.0' in response.text

    @pytest.mark.usefixtures("app")  # the database migrated: /readyz says ready
    async def test_a_backlog_read_slower_than_the_scrapes_limit_is_not_an_outage(
        self, settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A long queue of deliveries (an endpoint down for hours) can make the backlog's count outlast the
        scrape's limit while the database answers every probe: the gauges say they are stale, and the log
        says nothing, where each scrape would log the database gone and the next probe its return."""
        monkeypatch.setattr(health, "BACKLOG_SECONDS", 0)  # every backlog read outlasts it
        caplog.set_level(logging.INFO, logger="loyalty_api.database")
        async with serving(settings) as (_, http):
            for _ in range(2):
                scrape = await http.get("/metrics")
                assert scrape.status_code == 200, scrape.text
                assert "loyalty_database_up 0.0" in scrape.text
                assert (await http.get("/readyz")).status_code == 200
        assert [r.getMessage() for r in caplog.records if r.name == "loyalty_api.database"] == []

    async def test_request_metrics_still_go_out_while_the_database_is_down(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An outage is when Prometheus needs them most."""
        nowhere = "postgresql+asyncpg://postgres:secret@127.0.0.1:1/none"
        down = create_app(Settings(database_url=nowhere, encryption_key=crypto.generate_key()))
        caplog.set_level(logging.WARNING, logger="loyalty_api.database")
        async with down.router.lifespan_context(down):
            transport = httpx.ASGITransport(app=down, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as http:
                assert (await http.get("/readyz")).status_code == 503
                scrapes = [await http.get("/metrics") for _ in range(3)]
        for scrape in scrapes:
            assert scrape.status_code == 200, scrape.text
            assert "loyalty_database_up 0.0" in scrape.text
        assert (
            'loyalty_http_requests_total{method="GET",route="/readyz",status="503"} 1.0' in scrapes[-1].text
        )
        assert 'route="/metrics",status="200"} 2.0' in scrapes[-1].text
        said = [r for r in caplog.records if r.name == "loyalty_api.database"]
        assert len(said) == 1  # as the outage began, not at every probe or scrape
        assert "secret" not in said[0].getMessage() and "127.0.0.1" not in said[0].getMessage()
