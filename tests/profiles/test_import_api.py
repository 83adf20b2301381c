"""Members brought over from a programme's previous system: their cards, the points they held with their ends
and the tier they had; a batch written whole or not at all, refusals naming their row."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.members.member_number import luhn_check_digit
from loyalty_api.points.expiry import expire_points
from loyalty_api.tiers.membership import review_tiers
from tests.builders import add_tier, enrol, unique_phone
from tests.conftest import bearer, units_of
from tests.databases import is_postgres
from tests.inspect_db import events, rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import iso
from tests.points.helpers import earn, points, set_program

WRITES = ("members", "member_external_ids", "ledger_entries", "point_lots", "outbox_events", "tier_changes")


def card(payload: str) -> str:
    """A card number of ours: nine digits and their Luhn check digit."""
    return payload + luhn_check_digit(payload)


async def send(
    client: httpx.AsyncClient, key: str, members: list[dict[str, Any]], **headers: str
) -> httpx.Response:
    return await client.post("/v1/members/import", json={"members": members}, headers=bearer(key, **headers))


@pytest.fixture
async def ladder(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key, expiry_months=12)
    await add_tier(client, admin_key, "member", rank=0)
    await add_tier(client, admin_key, "gold", rank=2, threshold=500_000)


@pytest.mark.usefixtures("ladder")
class TestImport:
    async def test_members_arrive_with_their_cards_points_and_tiers(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        now = clock.now()
        phone, number = unique_phone(), card("512345678")
        soon, later = now + timedelta(days=60), now + timedelta(days=180)
        response = await send(
            client,
            admin_key,
            [
                {
                    "phone": phone,
                    "name": "王芳",
                    "member_number": number,
                    "points": [{"points": 300, "expires_at": iso(soon)}, {"points": 200}],
                    "tier": {"code": "gold", "until": iso(later)},
                },
                {"email": "li.na@example.com", "external_ids": {"legacy_card": "OLD-77"}},
            ],
        )
        assert response.status_code == 201, response.text
        first, second = response.json()["members"]
        assert (first["member_number"], first["points"], first["tier"]["code"]) == (number, 500, "gold")
        assert (second["points"], second["tier"]["code"]) == (0, "member")
        assert second["member_number"] != number and len(second["member_number"]) == 10

        # The till finds them as it found them before: by the card, the phone, the old card's id.
        for params in (
            {"member_number": number},
            {"phone": phone},
            {"external_system": "legacy_card", "external_id": "OLD-77"},
        ):
            found = await client.get("/v1/members/lookup", params=params, headers=bearer(pos_key))
            assert found.status_code == 200, found.text
        assert found.json()["id"] == second["id"]
        profile = (await client.get(f"/v1/members/{first['id']}", headers=bearer(admin_key))).json()
        assert (profile["name"], profile["channel"], profile["lifecycle"]["stage"]) == (
            "王芳",
            "import",
            "new",
        )

        # Each part of the points ends when it did; left out, as points earned today (12 months).
        held = await points(client, pos_key, first["id"])
        assert (held["balance"], held["lifetime_earned"]) == (500, 0)
        assert [(e["points"], e["expires_at"]) for e in held["expiring"]] == [
            (300, iso(soon)),
            (200, iso(now.replace(year=now.year + 1))),
        ]
        ledger = (await client.get(f"/v1/members/{first['id']}/ledger", headers=bearer(pos_key))).json()
        assert [(e["type"], e["amount"]) for e in ledger["items"]] == [("import", 500)]
        tier = (await client.get(f"/v1/members/{first['id']}/tier", headers=bearer(pos_key))).json()
        assert (tier["tier"]["code"], tier["kept_until"], tier["override_until"]) == (
            "gold",
            iso(later),
            None,
        )

        enrolled = await events(app, "member.enrolled")
        assert [e["payload"]["imported"] for e in enrolled] == [True, True]
        [placed] = await events(app, "tier.upgraded")
        assert (placed["payload"]["to_tier"]["code"], placed["payload"]["reason"]) == ("gold", "imported")
        [imported] = await events(app, "points.imported")
        assert (imported["payload"]["points"], imported["payload"]["balance"]) == (500, 500)
        report = await client.get(
            "/v1/analytics/points",
            params={"from": iso(now - timedelta(days=1)), "to": iso(now + timedelta(days=1))},
            headers=bearer(admin_key),
        )
        [figures] = report.json()["items"]
        assert (figures["imported"], figures["issued"], figures["adjusted"], figures["net"]) == (
            500,
            0,
            0,
            500,
        )
        for member in (first, second):
            await assert_ledger_invariant(app, member["id"])

    async def test_a_batch_is_written_whole_or_not_at_all(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        taken = await enrol(client, pos_key)
        phone = unique_phone()
        before = await table_counts(app, *WRITES)
        cases = [
            # a phone another member has
            ([{"phone": phone, "points": [{"points": 10}]}, {"phone": taken["phone"]}], 1, "phone"),
            # the same e-mail twice in the batch: the second is refused
            ([{"email": "a@example.com"}, {"email": "A@example.com "}], 1, "email"),
            # a card another member carries
            ([{"member_number": taken["member_number"]}], 0, "member number"),
            (
                [{"member_number": card("712345678")}, {"member_number": card("712345678")}],
                1,
                "member number",
            ),
            ([{"external_ids": {"crm": "C-1"}}, {"external_ids": {"crm": "C-1"}}], 1, "external id in crm"),
        ]
        for members, row, field in cases:
            refused = await send(client, admin_key, members)
            assert refused.status_code == 409, refused.text
            assert {k: refused.json()[k] for k in ("code", "row", "field")} == {
                "code": "member_exists",
                "row": row,
                "field": field,
            }
            assert await table_counts(app, *WRITES) == before

    async def test_a_row_that_breaks_a_rule_is_named(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        now = clock.now()
        fine = {"phone": unique_phone()}
        before = await table_counts(app, *WRITES)
        cases = [
            ({"tier": {"code": "platinum", "until": iso(now + timedelta(days=9))}}, "members.1.tier.code"),
            ({"tier": {"code": "gold", "until": iso(now - timedelta(days=1))}}, "members.1.tier.until"),
            (
                {"points": [{"points": 5}, {"points": 5, "expires_at": iso(now)}]},
                "members.1.points.1.expires_at",
            ),
            ({"birthday": (now + timedelta(days=3)).date().isoformat()}, "members.1.birthday"),
        ]
        for row, field in cases:
            refused = await send(client, admin_key, [fine, row])
            assert refused.status_code == 422, refused.text
            assert refused.json()["code"] == "validation_error"
            assert [e["field"] for e in refused.json()["errors"]] == [field]
        malformed = [
            [fine, {"member_number": "5123456780"}],  # the check digit is wrong
            [fine, {"member_number": "0000000000"}],  # a Luhn sum of 0: an export's "no card"
            [fine, {"member_number": "OLD-77"}],
            [fine, {"referral_code": "ABCD1234"}],
            [fine, {"enrolled_at": iso(now - timedelta(days=9))}],
            [fine, {"points": [{"points": 0}]}],
            [fine, {"points": [{"points": "10"}]}],
            [],
            [fine] * 201,
        ]
        for members in malformed:
            refused = await send(client, admin_key, members)
            assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), refused.text
        assert await table_counts(app, *WRITES) == before

    async def test_only_admin_keys_import_and_a_retry_with_its_key_imports_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
    ) -> None:
        members = [{"phone": unique_phone(), "points": [{"points": 40}]}]
        for key in (pos_key, ecommerce_key):
            refused = await send(client, key, members)
            assert (refused.status_code, refused.json()["code"]) == (403, "scope_not_allowed")
        first = await send(client, admin_key, members, **{"Idempotency-Key": "import-batch-1"})
        again = await send(client, admin_key, members, **{"Idempotency-Key": "import-batch-1"})
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert len(await events(app, "points.imported")) == 1
        not_a_member = await client.get("/v1/members/import", headers=bearer(admin_key))
        assert not_a_member.status_code == 405, not_a_member.text


@pytest.mark.usefixtures("ladder")
class TestAfterTheImport:
    async def test_an_imported_tier_is_reviewed_by_purchases_here_and_a_purchase_moves_it_up(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await add_tier(client, admin_key, "platinum", rank=3, threshold=1_000_000)
        until = clock.now() + timedelta(days=300)
        body = [{"phone": unique_phone(), "tier": {"code": "gold", "until": iso(until)}} for _ in range(2)]
        climber, sitter = (await send(client, admin_key, body)).json()["members"]
        earned = await earn(client, pos_key, climber["id"], 1_000_000)
        assert (earned["tier"]["code"], earned["tier_changed"]) == ("platinum", True)
        clock.set(until)
        assert await review_tiers(units_of(app)) >= 1
        reviewed = await client.get(f"/v1/members/{sitter['id']}/tier", headers=bearer(pos_key))
        assert reviewed.json()["tier"]["code"] == "member"  # nothing bought here by the review

    async def test_imported_points_count_in_the_base_of_breakage(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        start = clock.now()
        soon = start + timedelta(days=5)
        imported = {"phone": unique_phone(), "points": [{"points": 1_000, "expires_at": iso(soon)}]}
        assert (await send(client, admin_key, [imported])).status_code == 201
        other = await enrol(client, pos_key)
        await earn(client, pos_key, other["id"], 10_000)  # 100 issued
        clock.advance(timedelta(days=6))
        assert (await expire_points(units_of(app))).points == 1_000
        window = {"from": iso(start - timedelta(days=1)), "to": iso(clock.now() + timedelta(days=1))}
        overview = (
            await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))
        ).json()
        assert (overview["points"]["issued"], overview["points"]["imported"]) == (100, 1_000)
        assert overview["breakage"] == str((Decimal(1_000) / 1_100).quantize(Decimal("0.0001")))


@pytest.mark.skipif(not is_postgres(), reason="two imports at once on PostgreSQL")
@pytest.mark.usefixtures("ladder")
async def test_two_imports_of_the_same_people_at_once_refuse_one_and_fail_none(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    phones = [unique_phone() for _ in range(40)]
    one = [{"phone": phone, "points": [{"points": 5}]} for phone in phones]
    answers = await asyncio.gather(send(client, admin_key, one), send(client, admin_key, one[::-1]))
    assert sorted(answer.status_code for answer in answers) == [201, 409]
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert (refused.json()["code"], refused.json()["field"]) == ("member_exists", "phone")
    counted = await rows(app, "SELECT COUNT(*) AS n FROM ledger_entries WHERE type = 'import'")
    assert counted[0]["n"] == 40
