"""Input that passes JSON parsing but that a database would choke on must be refused as input."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import count


class TestNulCharacters:
    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/v1/members", {"name": "a\u0000b"}),
            ("/v1/members", {"external_ids": {"pos": "C\u00001"}}),
            ("/v1/earning-rules", {"name": "x\u0000", "kind": "base_rate", "properties": {"rate": "1"}}),
        ],
    )
    async def test_nul_in_a_string_is_422(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, path: str, body: dict[str, object]
    ) -> None:
        response = await client.post(path, json=body, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert await count(app, "members") == 0

    async def test_nul_in_earn_details_is_422(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        member = await enrol(client, admin_key)
        response = await client.post(
            f"/v1/members/{member['id']}/earn",
            json={"order_ref": "N1", "amount": {"amount": 100, "currency": "CNY"}, "store_id": "S\u00001"},
            headers=bearer(admin_key),
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "store_id"
        assert await count(app, "ledger_entries") == 0

    async def test_nul_in_a_query_parameter_is_422(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.get(
            "/v1/members/lookup",
            params={"external_system": "pos", "external_id": "a\u0000"},
            headers=bearer(admin_key),
        )
        assert response.status_code == 422, response.text
