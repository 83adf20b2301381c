"""Points sent from one member to another: both ledgers, the points' ends kept, the programme's switch and
daily limit, every refusal leaving nothing written, Idempotency-Key, and the GraphQL mutation."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.points.expiry import expire_points
from tests.builders import enrol
from tests.concurrency.test_earn_races import all_at_once
from tests.conftest import bearer, units_of
from tests.graphql.helpers import mutate
from tests.inspect_db import events, rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import DEMO_LIKE_PROGRAM, earn, hold_points, next_order, points, set_program

WRITES = ("ledger_entries", "point_lots", "outbox_events", "points_accounts")


async def send(
    client: httpx.AsyncClient, key: str, sender: str, recipient: str, amount: int, **headers: str
) -> httpx.Response:
    return await client.post(
        f"/v1/members/{sender}/transfers",
        json={"to_member_id": recipient, "points": amount},
        headers=bearer(key, **headers),
    )


async def ledger(client: httpx.AsyncClient, key: str, member: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/members/{member}/ledger", headers=bearer(key))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.fixture
async def pair(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> tuple[str, str]:
    """Two members, transfers allowed; the first holds 1,000 points, the second none."""
    await set_program(client, admin_key, expiry_months=12, transfers_enabled=True)
    sender = str((await enrol(client, pos_key))["id"])
    recipient = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, sender, 100_000)
    return sender, recipient


class TestTransfer:
    async def test_the_points_move_from_one_ledger_to_the_other(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, pair: tuple[str, str]
    ) -> None:
        sender, recipient = pair
        response = await send(client, ecommerce_key, sender, recipient, 300)
        assert response.status_code == 201, response.text
        body = response.json()
        assert {k: body[k] for k in ("from_member_id", "to_member_id", "points", "balance", "available")} == {
            "from_member_id": sender,
            "to_member_id": recipient,
            "points": 300,
            "balance": 700,
            "available": 700,
        }
        mine, theirs = (
            await points(client, ecommerce_key, sender),
            await points(client, ecommerce_key, recipient),
        )
        assert (mine["balance"], mine["lifetime_earned"]) == (700, 1_000)
        # Received, not earned: nothing added to what the recipient earned in their lifetime.
        assert (theirs["balance"], theirs["available"], theirs["lifetime_earned"]) == (300, 300, 0)
        out = (await ledger(client, ecommerce_key, sender))[0]
        [into] = await ledger(client, ecommerce_key, recipient)
        assert (out["type"], out["amount"], out["balance_after"]) == ("transfer_out", -300, 700)
        assert (into["type"], into["amount"], into["balance_after"]) == ("transfer_in", 300, 300)
        assert out["details"]["transfer_id"] == into["details"]["transfer_id"] == body["transfer_id"]
        assert (out["details"]["to_member_id"], into["details"]["from_member_id"]) == (recipient, sender)
        sent = await events(app, "points.transferred")
        assert sorted(
            (str(e["payload"]["member_id"]), e["payload"]["role"], e["payload"]["balance"]) for e in sent
        ) == sorted([(sender, "sent", 700), (recipient, "received", 300)])
        assert {e["payload"]["transfer_id"] for e in sent} == {body["transfer_id"]}
        await assert_ledger_invariant(app, sender)
        await assert_ledger_invariant(app, recipient)

    async def test_points_keep_their_ends_and_expire_with_the_recipient(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        pair: tuple[str, str],
        clock: FrozenClock,
    ) -> None:
        sender, recipient = pair  # 1,000 points earned now, ending in 12 months
        clock.advance(timedelta(days=60))
        await earn(client, pos_key, sender, 50_000)  # 500 more, ending two months later
        ends = [(e["month"], e["expires_at"]) for e in (await points(client, pos_key, sender))["expiring"]]
        assert (await send(client, admin_key, sender, recipient, 1_200)).status_code == 201
        # Oldest first: all 1,000 of the first lot and 200 of the second, each ending as it did.
        theirs = await points(client, pos_key, recipient)
        mine = await points(client, pos_key, sender)
        assert [(e["month"], e["expires_at"], e["points"]) for e in theirs["expiring"]] == [
            (*ends[0], 1_000),
            (*ends[1], 200),
        ]
        assert [(e["month"], e["expires_at"], e["points"]) for e in mine["expiring"]] == [(*ends[1], 300)]
        # Past the first lot's end the recipient's 1,000 expire, as the sender's would have.
        clock.advance(timedelta(days=310))
        assert (await points(client, pos_key, recipient))["balance"] == 200
        assert (await expire_points(units_of(app))).points == 1_000
        await assert_ledger_invariant(app, sender)
        await assert_ledger_invariant(app, recipient)

    async def test_held_points_are_not_sent(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, pair: tuple[str, str]
    ) -> None:
        sender, recipient = pair
        await hold_points(client, ecommerce_key, sender, 800, "WEB-1", ttl=900)
        before = await table_counts(app, *WRITES)
        refused = await send(client, ecommerce_key, sender, recipient, 300)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["code"], refused.json()["available"]) == ("insufficient_points", 200)
        assert await table_counts(app, *WRITES) == before
        assert (await send(client, ecommerce_key, sender, recipient, 200)).status_code == 201
        await assert_ledger_invariant(app, sender)

    async def test_an_idempotency_key_sends_once(
        self, client: httpx.AsyncClient, ecommerce_key: str, pair: tuple[str, str]
    ) -> None:
        sender, recipient = pair
        first = await send(client, ecommerce_key, sender, recipient, 100, **{"Idempotency-Key": "gift-1"})
        again = await send(client, ecommerce_key, sender, recipient, 100, **{"Idempotency-Key": "gift-1"})
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert (await points(client, ecommerce_key, recipient))["balance"] == 100

    async def test_received_points_can_be_spent_and_sent_on(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str, pair: tuple[str, str]
    ) -> None:
        sender, recipient = pair
        third = str((await enrol(client, pos_key))["id"])
        assert (await send(client, ecommerce_key, sender, recipient, 400)).status_code == 201
        redeemed = await client.post(
            f"/v1/members/{recipient}/redeem",
            json={"points": 150, "order_ref": "R-T1"},
            headers=bearer(pos_key),
        )
        assert redeemed.status_code == 200, redeemed.text
        assert (await send(client, ecommerce_key, recipient, third, 250)).status_code == 201
        assert (await send(client, ecommerce_key, third, sender, 250)).status_code == 201
        balances = [(await points(client, pos_key, m))["balance"] for m in (sender, recipient, third)]
        assert balances == [850, 0, 0]
        for member in (sender, recipient, third):
            await assert_ledger_invariant(app, member)


class TestRefusals:
    async def test_transfers_are_off_until_the_programme_allows_them(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
    ) -> None:
        await set_program(client, admin_key)
        sender = str((await enrol(client, pos_key))["id"])
        recipient = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, sender, 10_000)
        before = await table_counts(app, *WRITES)
        refused = await send(client, ecommerce_key, sender, recipient, 10)
        assert (refused.status_code, refused.json()["code"]) == (409, "transfers_not_offered")
        assert await table_counts(app, *WRITES) == before

    async def test_bad_recipients_and_senders(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
    ) -> None:
        sender, recipient = pair
        before = await table_counts(app, *WRITES)
        to_self = await send(client, ecommerce_key, sender, sender, 10)
        nobody = await send(client, ecommerce_key, sender, str(uuid.uuid4()), 10)
        for refused in (to_self, nobody):
            assert refused.status_code == 422, refused.text
            assert refused.json()["code"] == "validation_error"
            assert [e["field"] for e in refused.json()["errors"]] == ["to_member_id"]
        unknown_sender = await send(client, ecommerce_key, str(uuid.uuid4()), recipient, 10)
        assert (unknown_sender.status_code, unknown_sender.json()["code"]) == (404, "member_not_found")
        for amount in (0, -5, "10", 1.5):
            malformed = await send(client, ecommerce_key, sender, recipient, amount)  # type: ignore[arg-type]
            assert (malformed.status_code, malformed.json()["code"]) == (422, "validation_error")
        too_many = await send(client, ecommerce_key, sender, recipient, 1_001)
        assert (too_many.status_code, too_many.json()["code"]) == (422, "insufficient_points")
        till = await send(client, pos_key, sender, recipient, 10)
        assert (till.status_code, till.json()["code"]) == (403, "scope_not_allowed")
        suspended = await client.patch(
            f"/v1/members/{recipient}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text
        assert await table_counts(app, *WRITES) == before | {"outbox_events": before["outbox_events"] + 1}
        before = await table_counts(app, *WRITES)
        to_suspended = await send(client, ecommerce_key, sender, recipient, 10)
        from_suspended = await send(client, ecommerce_key, recipient, sender, 10)
        for refused in (to_suspended, from_suspended):
            assert (refused.status_code, refused.json()["code"]) == (409, "member_not_active")
        assert "recipient" in to_suspended.json()["detail"]
        assert await table_counts(app, *WRITES) == before

    async def test_the_sender_is_judged_first_whichever_id_sorts_first(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
    ) -> None:
        sender, recipient = pair
        others = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        lower, higher = sorted(others)
        for member in others:
            suspended = await client.patch(
                f"/v1/members/{member}", json={"status": "suspended"}, headers=bearer(admin_key)
            )
            assert suspended.status_code == 200, suspended.text
        nobody = str(uuid.UUID(int=0)), str(uuid.UUID(int=2**128 - 1))  # sorts before and after anyone
        for other in nobody:
            for suspended_member in (lower, higher):
                # A suspended sender, an unknown recipient: the sender's refusal, wherever the ids sort.
                refused = await send(client, ecommerce_key, suspended_member, other, 10)
                assert (refused.status_code, refused.json()["code"]) == (409, "member_not_active")
                # An unknown sender, a suspended recipient: the sender's refusal again.
                refused = await send(client, ecommerce_key, other, suspended_member, 10)
                assert (refused.status_code, refused.json()["code"]) == (404, "member_not_found")
        assert (await points(client, pos_key, sender))["balance"] == 1_000
        assert (await points(client, pos_key, recipient))["balance"] == 0

    async def test_a_members_export_keeps_the_transfer_but_not_the_other_members_id(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, pair: tuple[str, str]
    ) -> None:
        sender, recipient = pair
        sent = (await send(client, ecommerce_key, sender, recipient, 100)).json()
        for member, kind in ((sender, "transfer_out"), (recipient, "transfer_in")):
            export = await client.get(f"/v1/members/{member}/export", headers=bearer(admin_key))
            assert export.status_code == 200, export.text
            [entry] = [e for e in export.json()["points"]["ledger"] if e["type"] == kind]
            assert entry["details"]["transfer_id"] == sent["transfer_id"]
            assert {"to_member_id", "from_member_id"}.isdisjoint(entry["details"])
            assert (sender if member == recipient else recipient) not in export.text

    async def test_the_daily_limit_counts_what_the_member_sent_today(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
        clock: FrozenClock,
    ) -> None:
        sender, recipient = pair
        await set_program(
            client, admin_key, expiry_months=12, transfers_enabled=True, transfer_daily_limit=300
        )
        assert (await send(client, ecommerce_key, sender, recipient, 200)).status_code == 201
        over = await send(client, ecommerce_key, sender, recipient, 150)
        assert over.status_code == 422, over.text
        assert {k: over.json()[k] for k in ("code", "limit", "used", "requested")} == {
            "code": "transfer_limit_exceeded",
            "limit": 300,
            "used": 200,
            "requested": 150,
        }
        # What a member received is not what they sent: the recipient may send all of it.
        assert (await send(client, ecommerce_key, recipient, sender, 200)).status_code == 201
        assert (await send(client, ecommerce_key, sender, recipient, 100)).status_code == 201
        # A new day in the programme's time zone (Shanghai) starts a new count.
        now = clock.now()
        clock.advance(timedelta(days=1))
        assert (await send(client, ecommerce_key, sender, recipient, 300)).status_code == 201
        clock.set(now)
        assert (await points(client, pos_key, sender))["balance"] == 1_000 - 200 + 200 - 100 - 300

    async def test_the_programme_refuses_a_limit_below_one(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        for limit in (0, -1, "5"):
            refused = await client.put(
                "/v1/program",
                json=DEMO_LIKE_PROGRAM | {"transfer_daily_limit": limit},
                headers=bearer(admin_key),
            )
            assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
        read = (await client.get("/v1/program", headers=bearer(admin_key))).json()
        assert (read["transfers_enabled"], read["transfer_daily_limit"]) == (False, None)


TRANSFER = "transfer { transferId fromMemberId toMemberId points balance available }"


class TestGraphQL:
    async def test_the_mutation_sends_as_rest_does_and_refuses_as_rest_refuses(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, pos_key: str, pair: tuple[str, str]
    ) -> None:
        sender, recipient = pair
        payload = await mutate(
            client,
            ecommerce_key,
            "loyaltyTransferPoints",
            TRANSFER,
            input={"memberId": sender, "toMemberId": recipient, "points": 250},
        )
        assert payload["userErrors"] == []
        assert {k: payload["transfer"][k] for k in ("fromMemberId", "toMemberId", "points", "balance")} == {
            "fromMemberId": sender,
            "toMemberId": recipient,
            "points": 250,
            "balance": 750,
        }
        [into] = await ledger(client, pos_key, recipient)
        assert into["details"]["transfer_id"] == payload["transfer"]["transferId"]
        too_many = await mutate(
            client,
            ecommerce_key,
            "loyaltyTransferPoints",
            TRANSFER,
            input={"memberId": sender, "toMemberId": recipient, "points": 5_000},
        )
        assert too_many["transfer"] is None
        assert [e["code"] for e in too_many["userErrors"]] == ["insufficient_points"]
        assert (await points(client, pos_key, recipient))["balance"] == 250
        await assert_ledger_invariant(app, sender)

    async def test_the_reversal_mutation_undoes_as_rest_does(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
    ) -> None:
        sender, recipient = pair
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        undo = {"memberId": sender, "transferId": sent["transfer_id"], "reason": "sent to the wrong member"}
        reversal = "reversal { transferId fromMemberId toMemberId points balance recipientBalance }"
        payload = await mutate(client, admin_key, "loyaltyReverseTransfer", reversal, input=undo)
        assert payload["userErrors"] == []
        assert payload["reversal"] == {
            "transferId": sent["transfer_id"],
            "fromMemberId": sender,
            "toMemberId": recipient,
            "points": 300,
            "balance": 1_000,
            "recipientBalance": 0,
        }
        again = await mutate(client, admin_key, "loyaltyReverseTransfer", reversal, input=undo)
        assert (again["reversal"], [e["code"] for e in again["userErrors"]]) == (
            None,
            ["transfer_already_reversed"],
        )
        await assert_ledger_invariant(app, sender)
        await assert_ledger_invariant(app, recipient)


async def reverse(
    client: httpx.AsyncClient, key: str, sender: str, transfer_id: str, **headers: str
) -> httpx.Response:
    return await client.post(
        f"/v1/members/{sender}/transfers/{transfer_id}/reversal",
        json={"reason": "sent to the wrong member"},
        headers=bearer(key, **headers),
    )


async def owing(app: FastAPI) -> dict[str, int]:
    found = await rows(app, "SELECT order_ref, points_shortfall FROM orders WHERE points_shortfall > 0")
    return {row["order_ref"]: row["points_shortfall"] for row in found}


class TestReversal:
    async def test_the_points_go_back_to_the_sender_once(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
        clock: FrozenClock,
    ) -> None:
        sender, recipient = pair
        ends = (await points(client, admin_key, sender))["expiring"]
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        clock.advance(timedelta(days=40))
        answer = await reverse(client, admin_key, sender, sent["transfer_id"])
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert {
            k: body[k] for k in ("from_member_id", "to_member_id", "points", "balance", "recipient_balance")
        } == {
            "from_member_id": sender,
            "to_member_id": recipient,
            "points": 300,
            "balance": 1_000,
            "recipient_balance": 0,
        }
        mine, theirs = await points(client, admin_key, sender), await points(client, admin_key, recipient)
        assert (mine["balance"], mine["lifetime_earned"], theirs["balance"]) == (1_000, 1_000, 0)
        # Back with the ends they had: a transfer and its reversal never make points last longer.
        assert [(e["points"], e["expires_at"]) for e in mine["expiring"]] == [(1_000, ends[0]["expires_at"])]
        back = (await ledger(client, admin_key, sender))[0]
        gone = (await ledger(client, admin_key, recipient))[0]
        assert (back["type"], back["amount"], gone["type"], gone["amount"]) == (
            "transfer_return",
            300,
            "transfer_out",
            -300,
        )
        assert gone["details"]["reversal"] is True
        for entry in (back, gone):
            assert (entry["details"]["transfer_id"], entry["details"]["reason"]) == (
                sent["transfer_id"],
                "sent to the wrong member",
            )
        reversed_events = await events(app, "points.transfer_reversed")
        assert sorted((e["payload"]["member_id"], e["payload"]["role"]) for e in reversed_events) == sorted(
            [(sender, "sender"), (recipient, "recipient")]
        )
        before = await table_counts(app, *WRITES)
        again = await reverse(client, admin_key, sender, sent["transfer_id"])
        assert (again.status_code, again.json()["code"]) == (409, "transfer_already_reversed")
        assert await table_counts(app, *WRITES) == before
        await assert_ledger_invariant(app, sender)
        await assert_ledger_invariant(app, recipient)

    async def test_the_recipient_gives_back_the_transfers_own_points(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
        clock: FrozenClock,
    ) -> None:
        sender, recipient = pair  # the sender's 1,000 end in 12 months
        await earn(client, pos_key, recipient, 30_000)  # the recipient's own 300 end at the same time
        own_end = (await points(client, admin_key, recipient))["expiring"][0]["expires_at"]
        clock.advance(timedelta(days=100))
        await earn(client, pos_key, sender, 30_000)  # 300 more for the sender, ending 100 days later
        # 1,000 of the first lot and 100 of the second go over; the reversal takes those back, not the
        # recipient's own points, which end sooner.
        sent = (await send(client, ecommerce_key, sender, recipient, 1_100)).json()
        assert (await reverse(client, admin_key, sender, sent["transfer_id"])).status_code == 201
        theirs = await points(client, admin_key, recipient)
        assert [(e["points"], e["expires_at"]) for e in theirs["expiring"]] == [(300, own_end)]
        await assert_ledger_invariant(app, sender)
        await assert_ledger_invariant(app, recipient)

    async def test_points_that_passed_their_end_at_the_recipient_are_not_owed(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
        clock: FrozenClock,
    ) -> None:
        sender, recipient = pair  # 1,000 ending in 12 months
        clock.advance(timedelta(days=300))
        await earn(client, pos_key, sender, 50_000)  # 500 ending 300 days later
        sent = (await send(client, ecommerce_key, sender, recipient, 1_200)).json()  # 1,000 + 200 of them
        clock.advance(timedelta(days=70))  # the first 1,000 have ended, at the recipient as they would have
        await earn(client, pos_key, recipient, 100_000)  # the recipient's own 1,000
        answer = await reverse(client, admin_key, sender, sent["transfer_id"])
        assert answer.status_code == 201, answer.text
        assert (answer.json()["points"], answer.json()["recipient_balance"]) == (200, 1_000)
        assert (await points(client, admin_key, sender))["balance"] == 500
        await assert_ledger_invariant(app, sender)
        await assert_ledger_invariant(app, recipient)
        # Once every point of a transfer has ended, there is nothing to give back.
        gone = (await send(client, ecommerce_key, recipient, sender, 100)).json()
        clock.advance(timedelta(days=400))
        expired = await reverse(client, admin_key, recipient, gone["transfer_id"])
        assert (expired.status_code, expired.json()["code"]) == (409, "transfer_expired")

    async def test_the_points_back_settle_what_the_sender_owes(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
    ) -> None:
        sender, recipient = pair
        order = next_order()
        await earn(client, pos_key, sender, 50_000, order_ref=order)  # 500 more: 1,500
        sent = (await send(client, ecommerce_key, sender, recipient, 1_500)).json()
        returned = await client.post(
            f"/v1/orders/{order}/refund", json={"full": True}, headers=bearer(pos_key)
        )
        assert returned.json()["shortfall"] == 500  # bought, gave the points away, returned the purchase
        assert (await reverse(client, admin_key, sender, sent["transfer_id"])).status_code == 201
        assert (await points(client, admin_key, sender))["balance"] == 1_000  # the 500 owed are settled
        assert (await points(client, admin_key, recipient))["balance"] == 0
        await assert_ledger_invariant(app, sender)
        await assert_ledger_invariant(app, recipient)

    @pytest.mark.parametrize("first", ["refund", "reversal"])
    @pytest.mark.parametrize("ending", ["capture", "release"])
    async def test_points_back_do_not_settle_another_order_beside_ended_points_a_hold_spares(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        first: str,
        ending: str,
    ) -> None:
        """X's points were sent; T's points, received later and ending sooner, have passed their end, spared
        by a hold. The reversal settled X's shortfall with the points back (all of what was available), so the
        capture then spent T's ended points: points past their end paid what X owes, and only when X was
        refunded first. As a refund's points do, those back first stand in for the ended ones the hold spares
        (points/refunds.py): X owes its 100 after the capture either way, and nothing after the release."""
        await set_program(client, admin_key, expiry_months=12, transfers_enabled=True)
        sender, recipient, third = [str((await enrol(client, pos_key))["id"]) for _ in range(3)]
        await earn(client, pos_key, third, 10_000)  # 100, ending in 12 months
        clock.advance(timedelta(days=200))
        await earn(client, pos_key, sender, 10_000, order_ref="X")  # 100, ending 200 days after those
        sent = (await send(client, ecommerce_key, sender, recipient, 100)).json()  # X's points
        assert (await send(client, ecommerce_key, third, sender, 100)).status_code == 201
        clock.advance(timedelta(days=164))
        hold_id = await hold_points(client, pos_key, sender, 100, "CART", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))  # the third member's points have ended; the hold spares them
        for step in (first, "reversal" if first == "refund" else "refund"):
            if step == "refund":
                refunded = await client.post(
                    "/v1/orders/X/refund", json={"full": True}, headers=bearer(pos_key)
                )
                assert refunded.json()["shortfall"] == 100, refunded.text
            else:
                answer = await reverse(client, admin_key, sender, sent["transfer_id"])
                assert answer.status_code == 201, answer.text
                assert answer.json()["balance"] == 100
        read = await points(client, admin_key, sender)
        assert (read["balance"], read["held"], read["available"]) == (100, 100, 0)
        assert await owing(app) == {"X": 100}
        await assert_ledger_invariant(app, sender)
        ended = await client.post(f"/v1/holds/{hold_id}/{ending}", headers=bearer(pos_key))
        assert ended.status_code == 200, ended.text
        assert (await points(client, admin_key, sender))["balance"] == 0
        assert await owing(app) == ({"X": 100} if ending == "capture" else {})
        await assert_ledger_invariant(app, sender)

    @pytest.mark.parametrize("first", ["refund", "reversal"])
    async def test_an_order_s_points_back_return_what_stood_in_for_them(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        first: str,
    ) -> None:
        """X's points were sent, and K's stood in for them at X's refund. The reversal gave X's points back
        as no order's, with X's end, and left K's stand-in open: 100 ending with X's where the reversal
        before the refund left K's 100 with K's end. X's own points back now return its stand-ins, as a
        refund's do."""
        await set_program(client, admin_key, expiry_months=12, transfers_enabled=True)
        sender, recipient = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        await earn(client, pos_key, sender, 10_000, order_ref="X")  # 100, the soonest end
        clock.advance(timedelta(days=30))
        await earn(client, pos_key, sender, 10_000, order_ref="K")  # 100, ending 30 days later
        k_end = (await points(client, admin_key, sender))["expiring"][-1]
        sent = (await send(client, ecommerce_key, sender, recipient, 100)).json()  # X's points
        for step in (first, "reversal" if first == "refund" else "refund"):
            if step == "refund":
                refunded = await client.post(
                    "/v1/orders/X/refund", json={"full": True}, headers=bearer(pos_key)
                )
                assert refunded.json()["points_taken_back"] == 100, refunded.text
            else:
                answer = await reverse(client, admin_key, sender, sent["transfer_id"])
                assert answer.status_code == 201, answer.text
        read = await points(client, admin_key, sender)
        assert (read["balance"], read["expiring"]) == (100, [k_end])
        await assert_ledger_invariant(app, sender)
        clock.advance(timedelta(days=350))  # past X's end, before K's
        assert (await points(client, admin_key, sender))["balance"] == 100
        await expire_points(units_of(app))
        assert (await points(client, admin_key, sender))["balance"] == 100
        await assert_ledger_invariant(app, sender)

    async def test_a_reversed_transfer_is_undone_in_the_analytics(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
        clock: FrozenClock,
    ) -> None:
        sender, recipient = pair
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        assert (await reverse(client, admin_key, sender, sent["transfer_id"])).status_code == 201
        now = clock.now()
        today = {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
        report = await client.get("/v1/analytics/points", params=today, headers=bearer(admin_key))
        assert report.status_code == 200, report.text
        [figures] = report.json()["items"]
        assert (figures["transferred"], figures["net"]) == (0, 1_000)

    async def test_a_reversal_counts_against_no_ones_daily_limit(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, pair: tuple[str, str]
    ) -> None:
        sender, recipient = pair
        await set_program(
            client, admin_key, expiry_months=12, transfers_enabled=True, transfer_daily_limit=300
        )
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        assert (await reverse(client, admin_key, sender, sent["transfer_id"])).status_code == 201
        # The sender may send the 300 again today, to the right member: the reversed transfer is undone.
        other = str((await enrol(client, admin_key))["id"])
        assert (await send(client, ecommerce_key, sender, other, 300)).status_code == 201
        # The recipient, given 300 more, may still send 300 today: the reversal was no sending of theirs.
        given = await client.post(
            f"/v1/members/{recipient}/adjustments",
            json={"points": 300, "reason": "x"},
            headers=bearer(admin_key),
        )
        assert given.status_code == 201, given.text
        assert (await send(client, ecommerce_key, recipient, sender, 300)).status_code == 201

    async def test_spent_points_are_not_reversed_and_nothing_changes(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
    ) -> None:
        sender, recipient = pair
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        spent = await client.post(
            f"/v1/members/{recipient}/redeem",
            json={"points": 120, "order_ref": "SHOP-9"},
            headers=bearer(ecommerce_key),
        )
        assert spent.status_code == 200, spent.text
        before = await table_counts(app, *WRITES)
        refused = await reverse(client, admin_key, sender, sent["transfer_id"])
        assert refused.status_code == 422, refused.text
        assert (refused.json()["code"], refused.json()["available"], refused.json()["requested"]) == (
            "insufficient_points",
            180,
            300,
        )
        assert await table_counts(app, *WRITES) == before

    async def test_a_suspended_recipient_gives_the_points_back(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, pair: tuple[str, str]
    ) -> None:
        sender, recipient = pair
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        suspended = await client.patch(
            f"/v1/members/{recipient}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text
        assert (await reverse(client, admin_key, sender, sent["transfer_id"])).status_code == 201
        assert (await points(client, admin_key, sender))["balance"] == 1_000

    async def test_who_may_reverse_what(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
    ) -> None:
        sender, recipient = pair
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        before = await table_counts(app, *WRITES)
        member_app = await reverse(client, ecommerce_key, sender, sent["transfer_id"])
        assert (member_app.status_code, member_app.json()["code"]) == (403, "scope_not_allowed")
        # The path names the member who sent it: the recipient's id, or an unknown transfer, finds none.
        for member, transfer in ((recipient, sent["transfer_id"]), (sender, str(uuid.uuid4()))):
            missing = await reverse(client, admin_key, member, transfer)
            assert (missing.status_code, missing.json()["code"]) == (404, "transfer_not_found")
        nobody = await reverse(client, admin_key, str(uuid.uuid4()), sent["transfer_id"])
        assert (nobody.status_code, nobody.json()["code"]) == (404, "member_not_found")
        no_reason = await client.post(
            f"/v1/members/{sender}/transfers/{sent['transfer_id']}/reversal",
            json={},
            headers=bearer(admin_key),
        )
        assert (no_reason.status_code, no_reason.json()["code"]) == (422, "validation_error")
        assert await table_counts(app, *WRITES) == before

    async def test_nothing_comes_back_from_an_erased_recipient(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
    ) -> None:
        sender, recipient = pair
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        erased = await client.post(f"/v1/members/{recipient}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text
        before = await table_counts(app, *WRITES)
        missing = await reverse(client, admin_key, sender, sent["transfer_id"])
        assert (missing.status_code, missing.json()["code"]) == (404, "transfer_not_found")
        assert await table_counts(app, *WRITES) == before

    async def test_an_idempotency_key_reverses_once(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, pair: tuple[str, str]
    ) -> None:
        sender, recipient = pair
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        first = await reverse(client, admin_key, sender, sent["transfer_id"], **{"Idempotency-Key": "undo-1"})
        again = await reverse(client, admin_key, sender, sent["transfer_id"], **{"Idempotency-Key": "undo-1"})
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"
        assert (await points(client, admin_key, sender))["balance"] == 1_000

    async def test_two_reversals_at_once_give_the_points_back_once(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        pair: tuple[str, str],
    ) -> None:
        sender, recipient = pair
        sent = (await send(client, ecommerce_key, sender, recipient, 300)).json()
        answers = await all_at_once(
            app,
            [sender, recipient],
            [reverse(client, admin_key, sender, sent["transfer_id"]) for _ in range(6)],
        )
        assert sorted(a.status_code for a in answers) == [201] + [409] * 5
        assert (await points(client, admin_key, sender))["balance"] == 1_000
        assert (await points(client, admin_key, recipient))["balance"] == 0
        await assert_ledger_invariant(app, sender)
        await assert_ledger_invariant(app, recipient)
