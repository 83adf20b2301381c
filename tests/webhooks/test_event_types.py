"""GET /v1/event-types, its committed copy openapi/event-types.json, and the catalogue's completeness."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import loyalty_api
from loyalty_api.auth.principal import Scope
from loyalty_api.cli import main
from loyalty_api.outbox.events import CATALOGUE
from loyalty_api.webhooks import catalogue
from tests.builders import make_key, make_partner_key
from tests.conftest import bearer

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "event-types.json"


class TestListing:
    @pytest.mark.parametrize("scope", list(Scope))
    async def test_every_kind_of_key_may_list_event_types(
        self, app: FastAPI, client: httpx.AsyncClient, scope: Scope
    ) -> None:
        key = await (make_partner_key(app) if scope is Scope.partner else make_key(app, scope))
        response = await client.get("/v1/event-types", headers=bearer(key))
        assert response.status_code == 200, response.text

    async def test_each_type_comes_with_its_description_and_payload_schema_sorted_by_type(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        listed = await client.get("/v1/event-types", params={"limit": 200}, headers=bearer(pos_key))
        items = listed.json()["items"]
        types = [i["type"] for i in items]
        assert types == sorted(CATALOGUE)
        assert {"points.earned", "member.enrolled", "webhook_endpoint.disabled"} <= set(types)
        earned = next(i for i in items if i["type"] == "points.earned")
        assert earned["description"] == CATALOGUE["points.earned"].description
        assert earned["schema"]["type"] == "object"
        assert "member_id" in earned["schema"]["properties"]
        assert all(set(i) == {"type", "description", "schema"} for i in items)

    async def test_no_key_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/event-types")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"

    async def test_the_api_answers_what_is_committed(self, client: httpx.AsyncClient, pos_key: str) -> None:
        # One page holds the whole catalogue (it pages like every list: see tests/http/test_collections.py).
        response = await client.get("/v1/event-types", params={"limit": 200}, headers=bearer(pos_key))
        committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
        assert response.json() == {**committed, "next_cursor": None}


class TestCommittedCopy:
    def test_committed_event_types_match_the_catalogue(self) -> None:
        assert json.loads(COMMITTED.read_text(encoding="utf-8")) == json.loads(
            catalogue.event_types_document()
        ), (
            "openapi/event-types.json is stale: "
            "run `loyalty-api event-types --output openapi/event-types.json`"
        )

    def test_the_cli_writes_the_listing(self, tmp_path: Path) -> None:
        target = tmp_path / "event-types.json"
        main(["event-types", "--output", str(target)])
        assert target.read_text(encoding="utf-8") == catalogue.event_types_document()

    def test_every_events_module_is_in_the_catalogue(self) -> None:
        """A domain's events must be listed even before anything imports that domain."""
        found = {
            module.name
            for module in pkgutil.walk_packages(loyalty_api.__path__, prefix="loyalty_api.")
            # outbox.events holds the base class, no event of its own
            if module.name.endswith(".events") and module.name != "loyalty_api.outbox.events"
        }
        listed = {module.__name__ for module in catalogue.EVENT_MODULES}
        assert found == listed
        for name in found:
            importlib.import_module(name)
        assert sorted(CATALOGUE) == [t.type for t in catalogue.event_types()]
