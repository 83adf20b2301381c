"""Coalition earn: a purchase at a partner brand earns points in our programme at the partner's rate, lands in
our ledger marked with the partner, earns once per order, and is refunded in proportion like our own orders. A
partner reaches only the customers it linked, learns nothing of others, and its sales never count toward our
tiers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.idempotency import service as idempotency
from tests.builders import add_tier, enrol
from tests.conftest import bearer
from tests.databases import is_postgres
from tests.inspect_db import rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import (
    VALIDATION,
    balance,
    ledger,
    link,
    partner_earn,
    partner_refund,
    problem,
    register_partner,
    sent_while_the_link_ends,
)
from tests.points.helpers import cny, earn, set_program

# Tables any earn or refund writes to: a refusal must leave all of them as they were.
WRITTEN = ("ledger_entries", "point_lots", "outbox_events")


class Cafe:
    """One partner (`cafe`, 1.5 points per yuan) and one member linked to it as `C-1`, with points granted."""

    def __init__(self, key: str, member: dict[str, Any]) -> None:
        self.key = key
        self.member = member
        self.member_id: str = member["id"]


@pytest.fixture
async def cafe(app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str) -> Cafe:
    await set_program(client, admin_key)
    key = await register_partner(app, client, admin_key, "cafe", earn_rate="1.5")
    member = await enrol(client, pos_key, name="林晓", email="lin@example.com")
    await link(client, pos_key, key, member["id"], "cafe", "C-1", "basic", "points")
    return Cafe(key, member)


async def joint_points(client: httpx.AsyncClient, partner_key: str, ref: str) -> Any:
    """The points the joint view shows the partner of its customer `ref`."""
    view = await client.get(f"/v1/partner/members/{ref}", headers=bearer(partner_key))
    assert view.status_code == 200, view.text
    return view.json()["points"]


def assert_nothing_of_the_member_in(response: httpx.Response, member: dict[str, Any]) -> None:
    for personal in (member["id"], member["member_number"], member["phone"], "林晓", "lin@example.com"):
        assert personal not in response.text, response.text


class TestPartnerEarn:
    async def test_a_purchase_at_the_partner_earns_at_its_rate_and_lands_in_our_ledger(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe
    ) -> None:
        response = await partner_earn(client, cafe.key, "C-1", "O-1", 10_000)  # 100 yuan at 1.5 a yuan
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["order_ref"], body["points_earned"], Decimal(body["rate"])) == (
            "O-1",
            150,
            Decimal("1.5"),
        )
        # The member granted "points": the partner sees the balance the earn left, as our tills do.
        ours = (await client.get(f"/v1/members/{cafe.member_id}/points", headers=bearer(pos_key))).json()
        assert (
            body["points"]
            == {"balance": 150, "available": 150}
            == {
                "balance": ours["balance"],
                "available": ours["available"],
            }
        )

        [entry] = await ledger(client, admin_key, cafe.member_id)
        assert (entry["type"], entry["amount"], entry["balance_after"]) == ("earn", 150, 150)
        # Our order reference names the partner, so the partner's O-1 never meets a till's O-1.
        assert entry["order_ref"] == "cafe/O-1"
        details = entry["details"]
        assert (details["partner"], details["partner_order_ref"]) == ("cafe", "O-1")
        assert Decimal(details["rate"]) == Decimal("1.5")
        assert details["amount"] == cny(10_000)
        await assert_ledger_invariant(app, cafe.member_id)

    @pytest.mark.parametrize(
        ("rounding", "amount", "expected"),
        [
            # 10.50 yuan at 1.5 a yuan is 15.75 points; 10.30 yuan is 15.45.
            ("down", 1_050, 15),
            ("half_up", 1_050, 16),
            ("up", 1_050, 16),
            ("down", 1_030, 15),
            ("half_up", 1_030, 15),
            ("up", 1_030, 16),
        ],
    )
    async def test_fractions_of_a_point_follow_the_programmes_rounding(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        cafe: Cafe,
        rounding: str,
        amount: int,
        expected: int,
    ) -> None:
        await set_program(client, admin_key, rounding=rounding)
        response = await partner_earn(client, cafe.key, "C-1", "O-R", amount)
        assert response.status_code == 201, response.text
        assert response.json()["points_earned"] == expected
        assert await balance(client, admin_key, cafe.member_id) == expected
        await assert_ledger_invariant(app, cafe.member_id)

    async def test_the_answer_shows_the_points_the_joint_view_shows_before_the_expiry_job_runs(
        self, app: FastAPI, client: httpx.AsyncClient, cafe: Cafe, clock: FrozenClock
    ) -> None:
        """Points past their end are gone for the member whether or not the expiry job has run: the earn's and
        the refund's answers showed them still in the balance, the joint view did not."""
        assert (await partner_earn(client, cafe.key, "C-1", "O-30", 10_000)).status_code == 201  # 150
        clock.advance(timedelta(days=400))  # past the programme's 12 months; the expiry job has not run

        earned = await partner_earn(client, cafe.key, "C-1", "O-31", 10_000)
        assert earned.status_code == 201, earned.text
        assert earned.json()["points"] == await joint_points(client, cafe.key, "C-1")
        assert earned.json()["points"] == {"balance": 150, "available": 150}
        refunded = await partner_refund(client, cafe.key, "C-1", "O-31", amount=cny(4_000))
        assert refunded.status_code == 200, refunded.text
        assert refunded.json()["points"] == await joint_points(client, cafe.key, "C-1")
        assert refunded.json()["points"] == {"balance": 90, "available": 90}

    async def test_the_answer_shows_no_points_unless_the_member_granted_them(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        key = await register_partner(app, client, admin_key, "basic-shop", earn_rate="2")
        member = await enrol(client, pos_key)
        await link(client, pos_key, key, member["id"], "basic-shop", "BS-1")  # "basic" only
        response = await partner_earn(client, key, "BS-1", "O-1", 5_000)
        assert response.status_code == 201, response.text
        assert (response.json()["points_earned"], response.json()["points"]) == (100, None)
        assert await balance(client, pos_key, member["id"]) == 100  # earned all the same
        await assert_ledger_invariant(app, member["id"])

    async def test_the_same_order_twice_is_refused_and_earns_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe
    ) -> None:
        assert (await partner_earn(client, cafe.key, "C-1", "O-2", 10_000)).status_code == 201
        before = await table_counts(app, *WRITTEN)
        # A retry without an Idempotency-Key, and one with another amount: the order has earned already.
        for amount in (10_000, 20_000):
            again = await partner_earn(client, cafe.key, "C-1", "O-2", amount)
            assert problem(again) == (409, "order_already_earned"), again.text
        assert await balance(client, pos_key, cafe.member_id) == 150
        assert await table_counts(app, *WRITTEN) == before
        await assert_ledger_invariant(app, cafe.member_id)

    @pytest.mark.parametrize("status", ["suspended", "closed"])
    async def test_an_order_sent_again_after_the_member_was_suspended_is_refused_as_the_repeat_it_is(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe, status: str
    ) -> None:
        """A partner whose reply was lost sends the purchase again without a key, after our desk suspended
        (or closed) the member meanwhile: the order earned, and its repeat is refused as a repeat is for an
        active member (order_already_earned), not as member_not_active, which reads as the purchase earning
        nothing. A new order is still member_not_active."""
        assert (await partner_earn(client, cafe.key, "C-1", "O-S", 10_000)).status_code == 201
        changed = await client.patch(
            f"/v1/members/{cafe.member_id}", json={"status": status}, headers=bearer(admin_key)
        )
        assert changed.status_code == 200, changed.text
        before = await table_counts(app, *WRITTEN)
        again = await partner_earn(client, cafe.key, "C-1", "O-S", 10_000)
        assert problem(again) == (409, "order_already_earned"), again.text
        new = await partner_earn(client, cafe.key, "C-1", "O-T", 10_000)
        assert problem(new) == (409, "member_not_active"), new.text
        assert await table_counts(app, *WRITTEN) == before
        await assert_ledger_invariant(app, cafe.member_id)

    @pytest.mark.parametrize(
        "since", ["unlinked", "partner suspended", "member erased", "earn rate withdrawn"]
    )
    async def test_an_order_sent_again_after_its_link_ended_is_refused_as_the_repeat_it_is(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe, since: str
    ) -> None:
        """The partner's answer was lost; meanwhile the customer unlinked, the partner was suspended or the
        member erased, or the operator withdrew the partner's earn rate. The purchase earned: its repeat is
        order_already_earned, as an exchange in's is exchange_already_recorded then, not link_not_found,
        partner_not_active or partner_earn_not_offered, which read as the purchase earning nothing. An order
        not earned is refused as before."""
        assert (await partner_earn(client, cafe.key, "C-1", "O-L", 10_000)).status_code == 201
        if since == "unlinked":
            ended = await client.delete("/v1/partner/links/C-1", headers=bearer(cafe.key))
        elif since == "partner suspended":
            body = {"name": "Cafe", "status": "suspended", "earn_rate": "1.5"}
            ended = await client.put("/v1/partners/cafe", json=body, headers=bearer(admin_key))
        elif since == "earn rate withdrawn":
            body = {"name": "Cafe", "status": "active"}
            ended = await client.put("/v1/partners/cafe", json=body, headers=bearer(admin_key))
        else:
            ended = await client.post(f"/v1/members/{cafe.member_id}/erase", headers=bearer(admin_key))
        assert ended.status_code in (200, 204), ended.text
        before = await table_counts(app, *WRITTEN)
        again = await partner_earn(client, cafe.key, "C-1", "O-L", 10_000)
        assert problem(again) == (409, "order_already_earned"), again.text
        new = await partner_earn(client, cafe.key, "C-1", "O-M", 10_000)
        assert new.status_code in (404, 409) and problem(new)[1] != "order_already_earned", new.text
        assert await table_counts(app, *WRITTEN) == before
        await assert_ledger_invariant(app)

    async def test_an_order_sent_again_after_the_rate_rose_past_what_one_purchase_may_earn_is_a_repeat(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, cafe: Cafe
    ) -> None:
        """The partner's answer to a large purchase was lost; meanwhile the operator raised its earn rate so
        far that the purchase would now earn more than one purchase may. It earned: its repeat is
        order_already_earned, not validation_error on amount, which reads as the purchase earning nothing.
        A new purchase that large is still refused."""
        assert (await partner_earn(client, cafe.key, "C-1", "O-BIG", 10**11)).status_code == 201
        body = {"name": "Cafe", "status": "active", "earn_rate": "100000"}
        raised = await client.put("/v1/partners/cafe", json=body, headers=bearer(admin_key))
        assert raised.status_code == 200, raised.text
        before = await table_counts(app, *WRITTEN)
        again = await partner_earn(client, cafe.key, "C-1", "O-BIG", 10**11)
        assert problem(again) == (409, "order_already_earned"), again.text
        new = await partner_earn(client, cafe.key, "C-1", "O-BIG-2", 10**11)
        assert problem(new) == (422, "validation_error"), new.text
        assert await table_counts(app, *WRITTEN) == before
        await assert_ledger_invariant(app)

    async def test_another_partners_order_with_the_same_reference_is_another_order(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe
    ) -> None:
        # Order numbers are each partner's own: two brands may both have an order O-1 for the same member.
        books = await register_partner(app, client, admin_key, "books", earn_rate="1")
        await link(client, pos_key, books, cafe.member_id, "books", "BK-1")
        assert (await partner_earn(client, cafe.key, "C-1", "O-1", 10_000)).status_code == 201
        theirs = await partner_earn(client, books, "BK-1", "O-1", 10_000)
        assert theirs.status_code == 201, theirs.text
        assert await balance(client, pos_key, cafe.member_id) == 150 + 100
        refs = {e["order_ref"] for e in await ledger(client, admin_key, cafe.member_id)}
        assert refs == {"cafe/O-1", "books/O-1"}
        await assert_ledger_invariant(app, cafe.member_id)

    async def test_a_customer_this_partner_has_not_linked_is_not_found_and_nothing_is_told(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe
    ) -> None:
        books = await register_partner(app, client, admin_key, "books-2", earn_rate="1")
        await link(client, pos_key, books, cafe.member_id, "books-2", "BK-7", "basic", "points")
        before = await table_counts(app, *WRITTEN)
        # Another partner's reference for the very same member, and a reference nobody linked.
        for ref in ("BK-7", "C-404"):
            refused = await partner_earn(client, cafe.key, ref, "O-3", 10_000)
            assert problem(refused) == (404, "link_not_found"), refused.text
            assert_nothing_of_the_member_in(refused, cafe.member)
        # And the other way round: books cannot earn through the cafe's reference either.
        refused = await partner_earn(client, books, "C-1", "O-3", 10_000)
        assert problem(refused) == (404, "link_not_found"), refused.text
        assert_nothing_of_the_member_in(refused, cafe.member)
        assert await table_counts(app, *WRITTEN) == before

    async def test_after_unlinking_the_partner_earns_nothing_for_the_customer(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        unlinked = await client.delete("/v1/partner/links/C-1", headers=bearer(cafe.key))
        assert unlinked.status_code == 204, unlinked.text
        refused = await partner_earn(client, cafe.key, "C-1", "O-4", 10_000)
        assert problem(refused) == (404, "link_not_found"), refused.text
        assert_nothing_of_the_member_in(refused, cafe.member)
        assert await balance(client, pos_key, cafe.member_id) == 0

    async def test_a_partner_without_an_earn_rate_earns_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        key = await register_partner(app, client, admin_key, "no-earn")  # earn_rate left out: null
        member = await enrol(client, pos_key)
        await link(client, pos_key, key, member["id"], "no-earn", "N-1")
        before = await table_counts(app, *WRITTEN)
        refused = await partner_earn(client, key, "N-1", "O-1", 10_000)
        assert problem(refused) == (409, "partner_earn_not_offered"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, member["id"]) == 0

    async def test_a_put_that_leaves_the_earn_rate_out_stops_earning(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe
    ) -> None:
        # PUT replaces every setting: one left out goes back to null, and the partner earns no more.
        replaced = await client.put(
            "/v1/partners/cafe", json={"name": "Cafe", "status": "active"}, headers=bearer(admin_key)
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["earn_rate"] is None
        refused = await partner_earn(client, cafe.key, "C-1", "O-5", 10_000)
        assert problem(refused) == (409, "partner_earn_not_offered"), refused.text
        assert await balance(client, pos_key, cafe.member_id) == 0

    async def test_a_purchase_of_nothing_is_refused_and_the_order_can_still_earn(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        """As the till's earn: an amount of zero is a mistake, and must not use the order up."""
        before = await table_counts(app, *WRITTEN)
        refused = await partner_earn(client, cafe.key, "C-1", "O-0", 0)
        assert problem(refused) == (422, "validation_error"), refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["amount.amount"]
        assert await table_counts(app, *WRITTEN) == before
        assert (await partner_earn(client, cafe.key, "C-1", "O-0", 10_000)).status_code == 201
        assert await balance(client, pos_key, cafe.member_id) == 150

    async def test_a_purchase_in_another_currency_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        before = await table_counts(app, *WRITTEN)
        refused = await partner_earn(client, cafe.key, "C-1", "O-6", 10_000, currency="USD")
        assert problem(refused) == (422, "currency_mismatch"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        # The order has not earned: the same reference in the programme's currency still earns.
        assert (await partner_earn(client, cafe.key, "C-1", "O-6", 10_000)).status_code == 201
        assert await balance(client, pos_key, cafe.member_id) == 150

    async def test_a_partner_purchase_does_not_move_the_members_tier_progress(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe
    ) -> None:
        # The entry tier doubles points at our tills; a partner's purchase earns at the partner's rate alone.
        await add_tier(client, admin_key, "member", rank=0, points_multiplier="2")
        await add_tier(client, admin_key, "silver", rank=1, threshold=100_000)
        member = await enrol(client, pos_key)  # enrolled onto the ladder
        await link(client, pos_key, cafe.key, member["id"], "cafe", "C-T")
        await earn(
            client, pos_key, member["id"], 60_000
        )  # our own till: 600 yuan toward silver, 1,200 points

        async def tier() -> dict[str, Any]:
            found = await client.get(f"/v1/members/{member['id']}/tier", headers=bearer(pos_key))
            assert found.status_code == 200, found.text
            status: dict[str, Any] = found.json()
            return status

        before = await tier()
        assert (before["tier"]["code"], before["next"]["value"]) == ("member", 60_000)
        # 500 yuan at the partner would carry the member past silver's bar if it counted.
        assert (await partner_earn(client, cafe.key, "C-T", "O-7", 50_000)).status_code == 201
        after = await tier()
        assert after["tier"] == before["tier"]
        assert (after["next"]["value"], after["next"]["remaining"]) == (60_000, 40_000)
        assert await balance(client, pos_key, member["id"]) == 1_200 + 750
        # Nor does its refund take anything off what our own tills counted.
        refunded = await partner_refund(client, cafe.key, "C-T", "O-7", full=True)
        assert refunded.status_code == 200, refunded.text
        assert (await tier())["next"] == before["next"]

    async def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        # The partner's till lost the answer and sends the same request with the same key: it gets the 201
        # again (not the 409 a new request for the order would get), and the member earns once.
        headers = bearer(cafe.key) | {"Idempotency-Key": "cafe-till-1-O-8"}
        body = {"order_ref": "O-8", "amount": cny(10_000)}
        first = await client.post("/v1/partner/members/C-1/earn", json=body, headers=headers)
        again = await client.post("/v1/partner/members/C-1/earn", json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201), again.text
        assert again.json() == first.json()
        assert await balance(client, pos_key, cafe.member_id) == 150

    async def test_the_idempotency_record_holds_no_plain_hash_of_the_path_naming_the_customer(
        self, app: FastAPI, client: httpx.AsyncClient, cafe: Cafe
    ) -> None:
        # A partner's customer ref may be a phone number: with a plain SHA-256 of the path in the table,
        # whoever reads it could confirm a guessed number by hashing it.
        headers = bearer(cafe.key) | {"Idempotency-Key": "cafe-till-1-O-9"}
        body = {"order_ref": "O-9", "amount": cny(10_000)}
        path = "/v1/partner/members/C-1/earn"
        first = await client.post(path, json=body, headers=headers)
        assert first.status_code == 201, first.text

        [stored] = [r["fingerprint"] for r in await rows(app, "SELECT fingerprint FROM idempotency_records")]
        assert stored != idempotency.fingerprint("POST", path, first.request.content)
        again = await client.post(path, json=body, headers=headers)
        assert (again.status_code, again.headers.get("idempotent-replayed")) == (201, "true"), again.text


class TestPartnerRefunds:
    async def test_a_partial_refund_then_the_rest_take_points_back_in_proportion(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe
    ) -> None:
        assert (await partner_earn(client, cafe.key, "C-1", "O-10", 10_000)).status_code == 201  # 150

        part = await partner_refund(client, cafe.key, "C-1", "O-10", amount=cny(4_000))
        assert part.status_code == 200, part.text
        body = part.json()
        # 40 of 100 yuan come back: 40% of the 150 points go.
        assert (body["order_ref"], body["points_taken_back"], body["shortfall"]) == ("O-10", 60, 0)
        assert body["refunded"] == cny(4_000)
        assert body["points"] == {"balance": 90, "available": 90}
        await assert_ledger_invariant(app, cafe.member_id)

        rest = await partner_refund(client, cafe.key, "C-1", "O-10", full=True)
        assert rest.status_code == 200, rest.text
        body = rest.json()
        assert (body["points_taken_back"], body["shortfall"], body["refunded"]) == (90, 0, cny(6_000))
        assert body["points"] == {"balance": 0, "available": 0}
        assert await balance(client, pos_key, cafe.member_id) == 0

        refunds = [e for e in await ledger(client, admin_key, cafe.member_id) if e["type"] == "refund"]
        assert sorted(e["amount"] for e in refunds) == [-90, -60]
        assert {e["details"]["partner"] for e in refunds} == {"cafe"}
        # Nothing is left to refund (the spec is silent; our own orders answer so).
        over = await partner_refund(client, cafe.key, "C-1", "O-10", amount=cny(1))
        assert problem(over) == (422, "refund_exceeds_order"), over.text
        await assert_ledger_invariant(app, cafe.member_id)

    async def test_points_the_member_has_spent_become_a_shortfall_not_a_negative_balance(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        assert (await partner_earn(client, cafe.key, "C-1", "O-11", 10_000)).status_code == 201  # 150
        spent = await client.post(
            f"/v1/members/{cafe.member_id}/redeem",
            json={"points": 100, "order_ref": "SPEND-1"},
            headers=bearer(pos_key),
        )
        assert spent.status_code == 200, spent.text
        body = (await partner_refund(client, cafe.key, "C-1", "O-11", full=True)).json()
        # The member lets the partner see their points: it is told how the 150 reversed fell.
        assert body["points_reversed"] == 150
        assert (body["points_taken_back"], body["shortfall"], body["already_expired"]) == (50, 100, 0)
        assert body["points"] == {"balance": 0, "available": 0}
        await assert_ledger_invariant(app, cafe.member_id)

    async def test_the_answer_shows_no_points_unless_the_member_granted_them(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        key = await register_partner(app, client, admin_key, "basic-refund", earn_rate="1")
        member = await enrol(client, pos_key)
        await link(client, pos_key, key, member["id"], "basic-refund", "BR-1")
        assert (await partner_earn(client, key, "BR-1", "O-1", 10_000)).status_code == 201
        body = (await partner_refund(client, key, "BR-1", "O-1", amount=cny(5_000))).json()
        # Half the purchase is returned: half its 100 points are reversed, what the partner's own books say.
        assert (body["points_reversed"], body["points"]) == (50, None)
        assert await balance(client, pos_key, member["id"]) == 50

    async def test_a_partner_not_granted_points_learns_nothing_of_what_the_member_spent(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The member let the partner see their tier alone. The refund's split of the purchase's points into
        taken back and already spent (`shortfall`) was the member's available balance to the point: a
        partner refunding one purchase read it, where the joint view shows it none."""
        await set_program(client, admin_key)
        key = await register_partner(app, client, admin_key, "basic-only", earn_rate="1.5")
        member = await enrol(client, pos_key)
        await link(client, pos_key, key, member["id"], "basic-only", "BO-1")  # "basic" only
        assert (await partner_earn(client, key, "BO-1", "O-1", 10_000)).status_code == 201  # 150
        spent = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": 100, "order_ref": "SPEND-1"},
            headers=bearer(pos_key),
        )
        assert spent.status_code == 200, spent.text

        done = await partner_refund(client, key, "BO-1", "O-1", full=True)

        assert done.status_code == 200, done.text
        body = done.json()
        # The purchase's 150 points are reversed, as the partner's books say; how many of them the member
        # still had is theirs.
        assert body["points_reversed"] == 150
        assert (body["points_taken_back"], body["shortfall"], body["already_expired"], body["points"]) == (
            None,
            None,
            None,
            None,
        )
        assert body["refunded"] == cny(10_000)
        # The refund itself is done all the same: the 50 points left are taken, 100 are owed.
        assert await balance(client, pos_key, member["id"]) == 0
        [entry] = [e for e in await ledger(client, admin_key, member["id"]) if e["type"] == "refund"]
        assert (entry["amount"], entry["details"]["shortfall"]) == (-50, 100)
        await assert_ledger_invariant(app, member["id"])

    async def test_a_customer_who_unlinked_since_is_refunded_and_nothing_of_their_points_is_told(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        """The member had granted points, then withdrew their consent: the refund of a purchase from before
        must not tell the partner what they spent since."""
        assert (await partner_earn(client, cafe.key, "C-1", "O-40", 10_000)).status_code == 201  # 150
        spent = await client.post(
            f"/v1/members/{cafe.member_id}/redeem",
            json={"points": 120, "order_ref": "SPEND-40"},
            headers=bearer(pos_key),
        )
        assert spent.status_code == 200, spent.text
        unlinked = await client.delete(
            f"/v1/members/{cafe.member_id}/partner-links/cafe", headers=bearer(pos_key)
        )
        assert unlinked.status_code == 204, unlinked.text

        done = await partner_refund(client, cafe.key, "C-1", "O-40", amount=cny(5_000))

        assert done.status_code == 200, done.text
        body = done.json()
        assert body["points_reversed"] == 75
        assert (body["points_taken_back"], body["shortfall"], body["already_expired"], body["points"]) == (
            None,
            None,
            None,
            None,
        )
        assert await balance(client, pos_key, cafe.member_id) == 0  # 30 taken, 45 owed
        await assert_ledger_invariant(app, cafe.member_id)

    async def test_a_purchase_of_a_customer_who_unlinked_since_is_still_refunded(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe
    ) -> None:
        # Earn at the partner, unlink at our till, return the goods: the points must go back.
        assert (await partner_earn(client, cafe.key, "C-1", "O-20", 10_000)).status_code == 201  # 150
        unlinked = await client.delete(
            f"/v1/members/{cafe.member_id}/partner-links/cafe", headers=bearer(pos_key)
        )
        assert unlinked.status_code == 204, unlinked.text

        done = await partner_refund(client, cafe.key, "C-1", "O-20", full=True)

        assert done.status_code == 200, done.text
        body = done.json()
        assert (body["order_ref"], body["points_reversed"]) == ("O-20", 150)
        # The customer no longer lets the partner see their points, nor how the refund fell on them.
        assert (body["points"], body["points_taken_back"], body["shortfall"]) == (None, None, None)
        assert_nothing_of_the_member_in(done, cafe.member)
        assert await balance(client, pos_key, cafe.member_id) == 0
        [entry] = [e for e in await ledger(client, admin_key, cafe.member_id) if e["type"] == "refund"]
        assert entry["details"]["partner"] == "cafe"
        await assert_ledger_invariant(app, cafe.member_id)

    async def test_an_unlinked_customers_purchase_is_refunded_only_under_the_reference_it_was_made_under(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        """Two customers who have both unlinked since. The till names C-1 and, by a typo, C-2's order: while
        they were linked that was a 404; once they had unlinked it refunded C-2's purchase, and so did any
        reference at all, one nobody ever linked included."""
        other = await enrol(client, pos_key)
        await link(client, pos_key, cafe.key, other["id"], "cafe", "C-2", "basic", "points")
        assert (await partner_earn(client, cafe.key, "C-1", "O-51", 10_000)).status_code == 201  # 150
        assert (await partner_earn(client, cafe.key, "C-2", "O-52", 10_000)).status_code == 201  # 150
        for ref in ("C-1", "C-2"):
            unlinked = await client.delete(f"/v1/partner/links/{ref}", headers=bearer(cafe.key))
            assert unlinked.status_code == 204, unlinked.text
        before = await table_counts(app, *WRITTEN)

        for ref, order_ref in (("C-1", "O-52"), ("C-2", "O-51"), ("NOBODY", "O-51"), ("C-10", "O-51")):
            refused = await partner_refund(client, cafe.key, ref, order_ref, full=True)
            assert problem(refused) == (404, "link_not_found"), (ref, order_ref, refused.text)
            assert_nothing_of_the_member_in(refused, cafe.member)
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, cafe.member_id) == 150
        assert await balance(client, pos_key, other["id"]) == 150

        # Under the reference each purchase was made under, each is refunded.
        done = await partner_refund(client, cafe.key, "C-1", "O-51", full=True)
        assert (done.status_code, done.json()["points_reversed"]) == (200, 150), done.text
        assert await balance(client, pos_key, cafe.member_id) == 0
        assert await balance(client, pos_key, other["id"]) == 150
        await assert_ledger_invariant(app)

    async def test_a_former_customers_purchase_is_refunded_under_its_reference_given_to_someone_else_since(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        """The partner gave C-1 to another customer since (a phone number passed on): the purchase made under
        it is still refunded by it, and the answer shows neither member's points."""
        assert (await partner_earn(client, cafe.key, "C-1", "O-61", 10_000)).status_code == 201  # 150
        unlinked = await client.delete("/v1/partner/links/C-1", headers=bearer(cafe.key))
        assert unlinked.status_code == 204, unlinked.text
        newcomer = await enrol(client, pos_key)
        await link(client, pos_key, cafe.key, newcomer["id"], "cafe", "C-1", "basic", "points")
        assert (await partner_earn(client, cafe.key, "C-1", "O-62", 20_000)).status_code == 201  # 300

        done = await partner_refund(client, cafe.key, "C-1", "O-61", full=True)

        assert done.status_code == 200, done.text
        body = done.json()
        assert (body["points_reversed"], body["points"], body["points_taken_back"]) == (150, None, None)
        assert await balance(client, pos_key, cafe.member_id) == 0
        assert await balance(client, pos_key, newcomer["id"]) == 300
        # The newcomer's own purchase is theirs, with their points.
        theirs = await partner_refund(client, cafe.key, "C-1", "O-62", full=True)
        assert (theirs.status_code, theirs.json()["points"]) == (200, {"balance": 0, "available": 0})
        await assert_ledger_invariant(app)

    async def test_an_unlinked_reference_does_not_reach_a_customer_linked_again_under_another(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        assert (await partner_earn(client, cafe.key, "C-1", "O-21", 10_000)).status_code == 201
        unlinked = await client.delete("/v1/partner/links/C-1", headers=bearer(cafe.key))
        assert unlinked.status_code == 204, unlinked.text
        await link(client, pos_key, cafe.key, cafe.member_id, "cafe", "C-9", "basic", "points")
        before = await table_counts(app, *WRITTEN)

        refused = await partner_refund(client, cafe.key, "C-1", "O-21", full=True)

        assert problem(refused) == (404, "link_not_found"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        done = await partner_refund(client, cafe.key, "C-9", "O-21", full=True)
        assert (done.status_code, done.json()["points_taken_back"]) == (200, 150), done.text
        assert done.json()["points_reversed"] == 150

    async def test_an_order_that_is_not_this_partners_for_this_customer_is_not_found(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, cafe: Cafe
    ) -> None:
        books = await register_partner(app, client, admin_key, "books-3", earn_rate="1")
        await link(client, pos_key, books, cafe.member_id, "books-3", "BK-3")
        other = await enrol(client, pos_key)
        await link(client, pos_key, cafe.key, other["id"], "cafe", "C-2")
        assert (await partner_earn(client, books, "BK-3", "B-ORDER", 10_000)).status_code == 201
        assert (await partner_earn(client, cafe.key, "C-2", "OTHER-MEMBERS", 10_000)).status_code == 201
        await earn(client, pos_key, cafe.member_id, 10_000, order_ref="TILL-1")  # our own till's order
        before = await table_counts(app, *WRITTEN)

        # Unknown; the other brand's order; another customer's order; an order of our own tills.
        for order_ref in ("NOPE", "B-ORDER", "OTHER-MEMBERS", "TILL-1"):
            for body in ({"full": True}, {"amount": cny(100)}):
                refused = await partner_refund(client, cafe.key, "C-1", order_ref, **body)
                assert problem(refused) == (404, "order_not_found"), (order_ref, refused.text)
                assert_nothing_of_the_member_in(refused, cafe.member)
        unlinked_ref = await partner_refund(client, cafe.key, "BK-3", "B-ORDER", full=True)
        assert problem(unlinked_ref) == (404, "link_not_found"), unlinked_ref.text
        assert_nothing_of_the_member_in(unlinked_ref, cafe.member)
        assert await table_counts(app, *WRITTEN) == before
        await assert_ledger_invariant(app)

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"amount": cny(1_000), "full": True},
            {"full": False},
            {"amount": {"amount": 0, "currency": "CNY"}},
        ],
    )
    async def test_a_refund_names_exactly_one_of_an_amount_or_full(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe, body: dict[str, Any]
    ) -> None:
        assert (await partner_earn(client, cafe.key, "C-1", "O-12", 10_000)).status_code == 201
        before = await table_counts(app, *WRITTEN)
        refused = await partner_refund(client, cafe.key, "C-1", "O-12", **body)
        assert problem(refused) == (422, VALIDATION), refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, cafe.member_id) == 150

    async def test_a_refund_in_another_currency_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, cafe: Cafe
    ) -> None:
        assert (await partner_earn(client, cafe.key, "C-1", "O-13", 10_000)).status_code == 201
        before = await table_counts(app, *WRITTEN)
        usd = {"amount": 1_000, "currency": "USD"}
        refused = await partner_refund(client, cafe.key, "C-1", "O-13", amount=usd)
        assert problem(refused) == (422, "currency_mismatch"), refused.text
        assert await table_counts(app, *WRITTEN) == before


@pytest.mark.skipif(
    not is_postgres(), reason="reads the link while an unlink holds the member's row: PostgreSQL"
)
class TestRacingTheEndOfTheLink:
    @pytest.mark.parametrize(
        ("call", "ending", "refusal"),
        [
            ("earn", "unlink", "link_not_found"),
            ("earn", "erasure", "link_not_found"),
            # The erased member's purchase is not there, as nothing of theirs is.
            ("refund", "erasure", "order_not_found"),
        ],
    )
    async def test_an_earn_or_refund_that_read_the_link_before_it_ended_finds_no_link(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        cafe: Cafe,
        call: str,
        ending: str,
        refusal: str,
    ) -> None:
        """An earn or a refund sent while the member withdrew their consent (or was erased) went on once the
        unlink committed: 201, and the answer showed the partner the balance it may no longer see. (A refund
        after an unlink is made, showing no points: see the next test.)"""
        assert (await partner_earn(client, cafe.key, "C-1", "O-20", 10_000)).status_code == 201
        before = await table_counts(app, "ledger_entries", "point_lots")
        answered = await sent_while_the_link_ends(
            app,
            cafe.member_id,
            "cafe",
            ending,
            partner_earn(client, cafe.key, "C-1", "O-21", 10_000)
            if call == "earn"
            else partner_refund(client, cafe.key, "C-1", "O-20", full=True),
        )

        assert problem(answered) == (404, refusal), answered.text
        assert await table_counts(app, "ledger_entries", "point_lots") == before
        await assert_ledger_invariant(app)

    async def test_a_refund_that_read_the_link_before_an_unlink_is_made_and_shows_no_points(
        self, app: FastAPI, client: httpx.AsyncClient, cafe: Cafe
    ) -> None:
        assert (await partner_earn(client, cafe.key, "C-1", "O-20", 10_000)).status_code == 201
        answered = await sent_while_the_link_ends(
            app, cafe.member_id, "cafe", "unlink", partner_refund(client, cafe.key, "C-1", "O-20", full=True)
        )

        assert answered.status_code == 200, answered.text
        assert (answered.json()["points_reversed"], answered.json()["points"]) == (150, None)
        assert answered.json()["points_taken_back"] is None
        await assert_ledger_invariant(app, cafe.member_id)
