from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from tests.builders import enrol
from tests.conftest import bearer


class TestHealth:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_when_migrated(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["status"] == "ready"

    async def test_readyz_is_503_when_the_schema_is_behind(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        engine = app.state.units.database.engine
        async with engine.begin() as connection:
            [revision] = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars()
            await connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
        try:
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["status"] == "not_ready"
        finally:
            async with engine.begin() as connection:
                await connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


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
