"""One written form for an instant wherever the service shows one: RFC 3339 in UTC with `Z`, as pydantic
writes a UTC datetime into a REST body (`2026-12-02T06:34:28.844565Z`). REST replies, the details a ledger
entry stores, event payloads (the webhook's `data`), error details and GraphQL all use `clock.format_instant`
or a model field that writes the same, whatever zone the instant came in with."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from loyalty_api.clock import FrozenClock, format_instant
from loyalty_api.outbox.events import CATALOGUE
from tests.builders import add_tier, enrol
from tests.conftest import START, bearer
from tests.coupons.helpers import coupon_code, use
from tests.inspect_db import events, rows
from tests.points.helpers import add_rule, earn, set_program

SHANGHAI = timezone(timedelta(hours=8))
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
WRITTEN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


def instants_in(value: Any) -> list[str]:
    """Every string in a JSON value that starts like an instant."""
    if isinstance(value, str):
        return [value] if INSTANT.match(value) else []
    if isinstance(value, dict):
        return [found for item in value.values() for found in instants_in(item)]
    if isinstance(value, list):
        return [found for item in value for found in instants_in(item)]
    return []


class _Instant(BaseModel):
    at: datetime


class TestTheOneForm:
    @pytest.mark.parametrize(
        "at",
        [
            START,
            datetime(2026, 12, 2, 6, 34, 28, 844565, tzinfo=UTC),
            datetime(2026, 12, 2, 6, 34, 28, 250000, tzinfo=UTC),
            datetime(2026, 12, 2, 14, 34, 28, 1, tzinfo=SHANGHAI),
            datetime(2026, 12, 2, 14, 34, 28, tzinfo=ZoneInfo("Asia/Shanghai")),
        ],
    )
    def test_it_is_what_a_rest_body_writes_for_the_same_instant_in_utc(self, at: datetime) -> None:
        written = format_instant(at)
        assert written == _Instant(at=at.astimezone(UTC)).model_dump(mode="json")["at"]
        assert WRITTEN.match(written), written
        assert datetime.fromisoformat(written) == at

    def test_a_naive_datetime_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            format_instant(datetime(2026, 1, 1))

    def test_every_instant_in_an_event_payload_is_written_in_utc(self) -> None:
        # A payload class takes an instant in any zone and writes it with Z: every datetime field uses the
        # UtcInstant type, never a bare datetime.
        bare = [
            f"{event_type}.{name}"
            for event_type, event in CATALOGUE.items()
            for name, field in event.model_fields.items()
            if field.annotation is datetime or field.annotation == datetime | None
        ]
        assert bare == []


@pytest.fixture
async def recorded(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, list[Any]]]:
    """A client of the app that keeps every JSON body it is answered with."""
    bodies: list[Any] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        if "json" in response.headers.get("content-type", ""):
            bodies.append(response.json())

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://loyalty.test", event_hooks={"response": [keep]}
    ) as client:
        yield client, bodies


class TestEverywhere:
    async def test_an_instant_sent_in_another_zone_comes_back_in_utc_everywhere(
        self,
        app: FastAPI,
        recorded: tuple[httpx.AsyncClient, list[Any]],
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        client, bodies = recorded
        clock.set(START + timedelta(microseconds=844565))
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "member", rank=0)
        await add_tier(client, admin_key, "silver", rank=1, threshold=10_000)
        rule = await add_rule(
            client,
            admin_key,
            name="开业周",
            kind="member_day",
            properties={"weekday": 1, "multiplier": "2"},
            valid_from=(START - timedelta(days=1)).astimezone(SHANGHAI).isoformat(),
            valid_until=(START + timedelta(days=6)).astimezone(SHANGHAI).isoformat(),
        )
        assert rule["valid_from"] == format_instant(START - timedelta(days=1))

        member = await enrol(client, pos_key)
        occurred = (clock.now() - timedelta(hours=1)).astimezone(SHANGHAI)  # sent as 17:00:00.844565+08:00
        await earn(client, pos_key, member["id"], 20_000, order_ref="TZ-1", occurred_at=occurred.isoformat())
        held = await client.post(
            f"/v1/members/{member['id']}/holds",
            json={"points": 10, "order_ref": "TZ-2", "ttl_seconds": 600},
            headers=bearer(pos_key),
        )
        assert held.status_code == 201, held.text

        ledger = await client.get(f"/v1/members/{member['id']}/ledger", headers=bearer(pos_key))
        [entry] = [e for e in ledger.json()["items"] if e["type"] == "earn"]
        assert entry["details"]["occurred_at"] == format_instant(occurred) == "2026-03-16T09:00:00.844565Z"
        for path in ("tier", "tier/history", "points", "coupons", "subscriptions"):
            response = await client.get(f"/v1/members/{member['id']}/{path}", headers=bearer(pos_key))
            assert response.status_code == 200, response.text
        for path in ("/v1/earning-rules", "/v1/tiers", "/v1/tier-versions", "/v1/program"):
            assert (await client.get(path, headers=bearer(admin_key))).status_code == 200

        written = instants_in(bodies)
        assert len(written) > 20
        assert [at for at in written if not WRITTEN.match(at)] == []

        # What the outbox keeps for webhooks, and the tier history's stored qualification, alike.
        [hold_event] = await events(app, "points.held")
        assert hold_event["payload"]["expires_at"] == format_instant(
            START + timedelta(minutes=10, microseconds=844565)
        )
        [upgrade] = await events(app, "tier.upgraded")
        stored = [row["payload"] for row in await rows(app, "SELECT payload FROM outbox_events")]
        stored = [json.loads(p) if isinstance(p, str) else p for p in stored]
        assert [at for at in instants_in(stored) if not WRITTEN.match(at)] == []
        assert upgrade["payload"]["kept_until"].endswith("Z")
        history = await client.get(f"/v1/members/{member['id']}/tier/history", headers=bearer(pos_key))
        [change] = history.json()["items"]
        assert WRITTEN.match(change["qualification"]["silver"]["window_start"])

    async def test_an_error_detail_writes_its_instant_the_same_way(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        member_id = str((await enrol(client, pos_key))["id"])
        until = (START + timedelta(days=1)).astimezone(SHANGHAI)
        code = await coupon_code(app, member_id, valid_until=until)
        clock.advance(timedelta(days=2))
        response = await use(client, pos_key, code)
        assert (response.status_code, response.json()["code"]) == (410, "coupon_expired")
        assert response.json()["detail"] == "The coupon expired at 2026-03-17T10:00:00Z"

        starts = clock.now() + timedelta(hours=1, microseconds=5)
        early = await coupon_code(
            app, member_id, valid_from=starts.astimezone(SHANGHAI), valid_until=starts + timedelta(days=1)
        )
        response = await use(client, pos_key, early)
        assert (response.status_code, response.json()["code"]) == (422, "coupon_not_yet_valid")
        assert response.json()["detail"] == "The coupon is valid from 2026-03-18T11:00:00.000005Z"

    async def test_graphql_writes_instants_as_rest_does(
        self, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        clock.set(START + timedelta(microseconds=123456))
        member = await enrol(client, pos_key)
        response = await client.post(
            "/graphql",
            json={
                "query": "query($id: ID!) { loyaltyMember(id: $id) { createdAt } }",
                "variables": {"id": member["id"]},
            },
            headers=bearer(pos_key),
        )
        assert response.status_code == 200, response.text
        created = response.json()["data"]["loyaltyMember"]["createdAt"]
        assert created == member["created_at"] == "2026-03-16T10:00:00.123456Z"
