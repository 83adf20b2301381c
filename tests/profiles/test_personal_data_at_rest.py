"""No table keeps a member's personal data in clear: after a day of work (enrolments with Idempotency-Keys,
lookups, earn, redeem, holds, a reward, a tier change, webhooks delivered), every column of every table in
the real database is read as text and searched for each member's phone, e-mail, name and birthday."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, Text, cast, column, inspect, select, table

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.schema import metadata
from loyalty_api.webhooks.delivery import deliver_webhooks
from tests.builders import add_tier
from tests.conftest import bearer
from tests.points.helpers import earn, set_program
from tests.rewards.helpers import add_reward
from tests.webhooks.endpoint_helpers import add_endpoint
from tests.webhooks.receiver import Receiver, running_receiver

# Each as a till or a web shop would send it, with what the service makes of it.
MEMBERS: list[dict[str, Any]] = [
    {
        "sent": {
            "phone": "139 1234 5678",
            "email": "Li.Na.Private@Example.CN",
            "name": "李娜",
            "birthday": "1990-07-15",
            "external_ids": {"pos": "C-1"},
        },
        "e164": "+8613912345678",
    },
    {
        "sent": {
            "phone": "+86 138-0013-8000",
            "email": "wang.wei.secret@example.com",
            "name": "Wang Weiqiang",
            "birthday": "1985-12-03",
            "marketing_consent": True,
        },
        "e164": "+8613800138000",
    },
    {
        "sent": {
            "phone": "186-2233-4455",
            "email": "zhao_min@example.org",
            "name": "赵敏",
            "birthday": "1979-11-30",
        },
        "e164": "+8618622334455",
    },
]


def personal_data(member: dict[str, Any]) -> dict[str, str]:
    sent, e164 = member["sent"], member["e164"]
    return {
        "phone as entered": sent["phone"],
        "phone in E.164": e164,
        "phone, E.164 digits": e164[1:],
        "phone, national digits": e164[3:],
        "e-mail as entered": sent["email"],
        "e-mail lower-cased": sent["email"].lower(),
        "name": sent["name"],
        "birthday": sent["birthday"],
        "birthday, digits": sent["birthday"].replace("-", ""),
    }


def spellings(value: str) -> set[str]:
    """How a value can sit in a column: as is, JSON-escaped (SQLite keeps JSON as ASCII text), URL-encoded."""
    return {value, json.dumps(value)[1:-1], quote(value, safe="")}


def _columns(connection: Connection) -> dict[str, list[str]]:
    inspector = inspect(connection)
    return {name: [c["name"] for c in inspector.get_columns(name)] for name in inspector.get_table_names()}


async def database_as_text(app: FastAPI) -> dict[tuple[str, str], list[str]]:
    """Every non-null value of every column of every table in the database, read as text by the database
    itself (so what is on disk, not what the ORM makes of it), by (table, column). Text and JSON columns are
    where personal data could be; the others are read too, since a birthday in a date column or a phone number
    in an integer one would be in clear just the same."""
    units: UnitsOfWork = app.state.units
    values: dict[tuple[str, str], list[str]] = {}
    async with units.database.engine.connect() as connection:
        tables = await connection.run_sync(_columns)
        assert set(metadata.tables) <= set(tables), "the database lacks tables the models have"
        for table_name, column_names in tables.items():
            for column_name in column_names:
                as_text = cast(column(column_name), Text)
                query = select(as_text).select_from(table(table_name)).where(column(column_name).is_not(None))
                values[(table_name, column_name)] = [
                    str(v) for v in (await connection.execute(query)).scalars()
                ]
    return values


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


class TestPersonalDataAtRest:
    async def test_no_column_of_any_table_holds_personal_data_in_clear(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        receiver: Receiver,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
    ) -> None:
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "silver", rank=1)
        await add_tier(client, admin_key, "gold", rank=2, threshold=10_000)
        reward = await add_reward(client, admin_key)
        await add_endpoint(app.state.units, receiver.url)  # every event type

        members = []
        for index, member in enumerate(MEMBERS):
            key = pos_key if index != 1 else ecommerce_key
            headers = bearer(key, idempotency_key=f"till-1-{index:04d}")
            enrolled = await client.post("/v1/members", json=member["sent"], headers=headers)
            assert enrolled.status_code == 201, enrolled.text
            assert enrolled.json()["phone"] == member["e164"]
            replayed = await client.post("/v1/members", json=member["sent"], headers=headers)
            assert replayed.status_code == 201 and replayed.json() == enrolled.json()
            members.append(enrolled.json())
        first, second, third = (m["id"] for m in members)

        for params in ({"phone": "13912345678"}, {"email": "WANG.wei.secret@example.com"}):
            found = await client.get("/v1/members/lookup", params=params, headers=bearer(pos_key))
            assert found.status_code == 200, found.text
        changed = await client.patch(
            f"/v1/members/{third}", json={"name": "赵敏", "marketing_consent": True}, headers=bearer(pos_key)
        )
        assert changed.status_code == 200, changed.text

        for member_id in (first, second, third):
            await earn(client, pos_key, member_id, 12_990)
        await earn(client, pos_key, first, 1_000_000)  # to gold
        redeemed = await client.post(
            f"/v1/members/{first}/redeem",
            json={"points": 100, "order_ref": "T1-0002"},
            headers=bearer(pos_key, idempotency_key="till-1-0100"),
        )
        assert redeemed.status_code == 200, redeemed.text
        held = await client.post(
            f"/v1/members/{second}/holds",
            json={"points": 50, "order_ref": "WEB-1", "ttl_seconds": 900},
            headers=bearer(ecommerce_key, idempotency_key="web-0001"),
        )
        assert held.status_code == 201, held.text
        bought = await client.post(
            f"/v1/members/{first}/rewards/{reward['id']}/redeem",
            headers=bearer(pos_key, idempotency_key="till-1-0101"),
        )
        assert bought.status_code == 201, bought.text
        refused = await client.post(  # a business refusal is kept for its Idempotency-Key too
            f"/v1/members/{third}/redeem",
            json={"points": 10**9, "order_ref": "T1-0003"},
            headers=bearer(pos_key, idempotency_key="till-1-0102"),
        )
        assert refused.status_code == 422, refused.text

        # The worker's webhook job sends every event to the receiver (loopback allowed for this test).
        units = app.state.units
        local = UnitsOfWork(
            units.database,
            units.clock,
            units.vault,
            units.settings.model_copy(update={"webhook_allow_private_targets": True}),
        )
        local.cache = units.cache
        assert await deliver_webhooks(local) > 0
        assert receiver.received

        stored = await database_as_text(app)
        filled = {t for (t, _), values in stored.items() if values}
        expected = {
            "members",
            "member_external_ids",
            "idempotency_records",
            "outbox_events",
            "ledger_entries",
        }
        expected |= {
            "point_lots",
            "holds",
            "coupons",
            "tier_changes",
            "webhook_deliveries",
            "webhook_attempts",
        }
        assert expected <= filled, expected - filled
        hits = sorted(
            f"{table_name}.{column_name}: member {index}'s {what} ({spelling!r})"
            for (table_name, column_name), values in stored.items()
            for index, member in enumerate(MEMBERS)
            for what, value in personal_data(member).items()
            for spelling in spellings(value)
            if any(spelling in text for text in values)
        )
        assert not hits, "personal data in clear:\n" + "\n".join(hits)
