"""Exchanges with a partner's programme. Out: our points are spent at once and the exchange waits for the
partner, who confirms it (final) or fails it (points back); unanswered, the worker expires it after its
timeout (points back). In: the partner's points become ours at its rate, once per transfer. Daily limits cap
both directions, for everyone and per member. After every scenario the ledger balances."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.points.expiry import expire_points
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.databases import is_postgres
from tests.inspect_db import events, rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import (
    VALIDATION,
    balance,
    exchange_in,
    exchange_out,
    instant,
    ledger,
    link,
    problem,
    register_partner,
    resolve,
    run_exchange_expiry,
    sent_while_the_link_ends,
    value_minor,
)
from tests.points.helpers import cny, earn, set_program
from tests.points.helpers import points as points_of

POINT_VALUE = "0.5"  # half a fen a point: an exchange's value is not its points
TIMEOUT = 600  # seconds the partner has to answer an exchange out
WRITTEN = ("ledger_entries", "point_lots", "outbox_events")


class Air:
    """The airline partner (out: 2.5 miles a point; in: 0.4 points a mile) and a member linked to it as
    AIR-1 with 1,000 points."""

    def __init__(self, key: str, member_id: str) -> None:
        self.key = key
        self.member_id = member_id


async def give(client: httpx.AsyncClient, admin_key: str, member_id: str, points: int) -> None:
    given = await client.post(
        f"/v1/members/{member_id}/adjustments",
        json={"points": points, "reason": "opening balance"},
        headers=bearer(admin_key),
    )
    assert given.status_code == 201, given.text


async def member_with_points(client: httpx.AsyncClient, admin_key: str, pos_key: str, points: int) -> str:
    member_id: str = (await enrol(client, pos_key))["id"]
    await give(client, admin_key, member_id, points)
    return member_id


@pytest.fixture
async def air(app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str) -> Air:
    await set_program(client, admin_key, point_value_minor=POINT_VALUE)
    key = await register_partner(
        app,
        client,
        admin_key,
        "air",
        exchange_out_rate="2.5",
        exchange_in_rate="0.4",
        exchange_timeout_seconds=TIMEOUT,
    )
    member_id = await member_with_points(client, admin_key, pos_key, 1_000)
    await link(client, pos_key, key, member_id, "air", "AIR-1")
    return Air(key, member_id)


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    exchange: dict[str, Any] = response.json()
    return exchange


# How a pending exchange ends (the partner's answer, or the time-out job), and the status it ends in.
ENDINGS = pytest.mark.parametrize(
    ("answer", "status"), [("confirm", "confirmed"), ("fail", "failed"), ("time-out", "expired")]
)


async def end(
    app: FastAPI, client: httpx.AsyncClient, air: Air, clock: FrozenClock, exchange_id: str, answer: str
) -> None:
    """End the pending exchange as `answer` says (one of ENDINGS)."""
    if answer == "time-out":
        clock.advance(timedelta(seconds=TIMEOUT + 1))
        assert await run_exchange_expiry(app) == 1
    else:
        answered = await resolve(client, air.key, exchange_id, answer)
        assert answered.status_code == 200, answered.text


async def member_exchanges(client: httpx.AsyncClient, key: str, member_id: str) -> list[dict[str, Any]]:
    listed = await client.get(f"/v1/members/{member_id}/exchanges", headers=bearer(key))
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def partner_view(client: httpx.AsyncClient, partner_key: str, exchange_id: str) -> dict[str, Any]:
    read = await client.get(f"/v1/partner/exchanges/{exchange_id}", headers=bearer(partner_key))
    assert read.status_code == 200, read.text
    exchange: dict[str, Any] = read.json()
    return exchange


async def entries_of(
    client: httpx.AsyncClient, admin_key: str, member_id: str, entry_type: str
) -> list[dict[str, Any]]:
    """The member's entries of one type, as an operator filters the ledger for them."""
    path = f"/v1/members/{member_id}/ledger"
    found = await client.get(path, params={"type": entry_type}, headers=bearer(admin_key))
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    assert items == [e for e in await ledger(client, admin_key, member_id) if e["type"] == entry_type]
    return items


class TestExchangeOut:
    async def test_an_exchange_out_spends_the_points_at_once_and_waits_for_the_partner(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        air: Air,
        clock: FrozenClock,
    ) -> None:
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "air", 301))
        assert exchange["direction"] == "out" and exchange["status"] == "pending"
        assert (exchange["partner"], exchange["partner_customer_ref"]) == ("air", "AIR-1")
        # 301 points at 2.5 miles a point, rounded down; worth 150.5 fen, rounded down.
        assert (exchange["points"], exchange["partner_points"]) == (301, 752)
        assert Decimal(exchange["rate"]) == Decimal("2.5")
        assert exchange["value"] == cny(value_minor(301, POINT_VALUE)) == cny(150)
        assert exchange["partner_ref"] is None and exchange["resolved_at"] is None
        assert instant(exchange["created_at"]) == clock.now()
        assert instant(exchange["expires_at"]) == clock.now() + timedelta(seconds=TIMEOUT)

        assert await balance(client, pos_key, air.member_id) == 699
        [entry] = await entries_of(client, admin_key, air.member_id, "exchange_out")
        assert (entry["amount"], entry["balance_after"]) == (-301, 699)
        assert (entry["details"]["partner"], entry["details"]["exchange_id"]) == ("air", exchange["id"])
        # The partner reads the same exchange; the member's list shows it too.
        assert await partner_view(client, air.key, exchange["id"]) == exchange
        assert await member_exchanges(client, pos_key, air.member_id) == [exchange]
        [requested] = await events(app, "partner.exchange_requested")
        assert requested["payload"]["partner"] == "air"
        await assert_ledger_invariant(app, air.member_id)

    async def test_confirmed_it_is_final_and_the_balance_stays_down(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        air: Air,
        clock: FrozenClock,
    ) -> None:
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "air", 400))
        clock.advance(timedelta(seconds=30))
        confirmed = await resolve(client, air.key, exchange["id"], "confirm")
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "confirmed"
        assert instant(confirmed.json()["resolved_at"]) == clock.now()
        assert confirmed.json()["points"] == 400 and confirmed.json()["partner_points"] == 1_000
        assert await balance(client, pos_key, air.member_id) == 600

        before = await table_counts(app, *WRITTEN)
        for how in ("confirm", "fail"):  # a second answer, either way, changes nothing
            refused = await resolve(client, air.key, exchange["id"], how)
            assert problem(refused) == (409, "exchange_not_pending"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert (await partner_view(client, air.key, exchange["id"]))["status"] == "confirmed"
        assert await balance(client, pos_key, air.member_id) == 600
        assert await entries_of(client, admin_key, air.member_id, "exchange_return") == []
        [resolved] = await events(app, "partner.exchange_resolved")
        assert resolved["payload"]["status"] == "confirmed"
        await assert_ledger_invariant(app, air.member_id)

    async def test_failed_the_points_come_back(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air
    ) -> None:
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "air", 400))
        failed = await resolve(client, air.key, exchange["id"], "fail")
        assert failed.status_code == 200, failed.text
        assert failed.json()["status"] == "failed" and failed.json()["resolved_at"] is not None
        assert await balance(client, pos_key, air.member_id) == 1_000
        [back] = await entries_of(client, admin_key, air.member_id, "exchange_return")
        assert (back["amount"], back["balance_after"]) == (400, 1_000)
        assert (back["details"]["exchange_id"], back["details"]["partner"]) == (exchange["id"], "air")

        before = await table_counts(app, *WRITTEN)
        for how in ("confirm", "fail"):  # a failed exchange cannot be confirmed, nor give points back twice
            refused = await resolve(client, air.key, exchange["id"], how)
            assert problem(refused) == (409, "exchange_not_pending"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, air.member_id) == 1_000
        [resolved] = await events(app, "partner.exchange_resolved")
        assert resolved["payload"]["status"] == "failed"
        await assert_ledger_invariant(app, air.member_id)

    async def test_points_that_come_back_keep_their_end(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, air: Air, clock: FrozenClock
    ) -> None:
        """They came back as points earned today: sent the day before they ended, and failed by the partner,
        they lived another full period."""
        clock.advance(timedelta(days=364))  # the member's 1,000 points end tomorrow
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "air", 400))
        assert (await resolve(client, air.key, exchange["id"], "fail")).status_code == 200
        assert await balance(client, pos_key, air.member_id) == 1_000
        clock.advance(timedelta(days=2))
        assert await balance(client, pos_key, air.member_id) == 0
        await assert_ledger_invariant(app, air.member_id)

    async def test_points_that_come_back_settle_what_the_member_owes(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, air: Air
    ) -> None:
        """As points a refund gives back do: the order refunded while its points were away is settled, and
        the leaderboard counts what the refund took back once."""
        opted = await client.patch(
            f"/v1/members/{air.member_id}", json={"leaderboard_opt_in": True}, headers=bearer(pos_key)
        )
        assert opted.status_code == 200, opted.text
        await earn(client, pos_key, air.member_id, 5_000, order_ref="K")  # 50 kept
        await earn(client, pos_key, air.member_id, 10_000, order_ref="O")  # 100 more
        sent = await created(await exchange_out(client, pos_key, air.member_id, "air", 1_150))
        refunded = await client.post("/v1/orders/O/refund", json={"full": True}, headers=bearer(pos_key))
        assert refunded.json()["shortfall"] == 100, refunded.text
        assert (await resolve(client, air.key, sent["id"], "fail")).status_code == 200
        assert await rows(app, "SELECT order_ref FROM orders WHERE points_shortfall > 0") == []
        assert await balance(client, pos_key, air.member_id) == 1_050
        board = await client.get("/v1/leaderboard", params={"period": "week"}, headers=bearer(pos_key))
        assert [(i["member_id"], i["points"]) for i in board.json()["items"]] == [(air.member_id, 50)]
        await assert_ledger_invariant(app, air.member_id)

    async def test_unanswered_it_expires_by_the_worker_after_its_timeout_and_the_points_come_back(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        air: Air,
        clock: FrozenClock,
    ) -> None:
        answered = await created(await exchange_out(client, pos_key, air.member_id, "air", 100))
        forgotten = await created(await exchange_out(client, pos_key, air.member_id, "air", 200))
        clock.advance(timedelta(seconds=TIMEOUT - 1))
        assert await run_exchange_expiry(app) == 0  # not yet: a second is left
        confirmed = await resolve(client, air.key, answered["id"], "confirm")  # just in time
        assert confirmed.status_code == 200, confirmed.text

        clock.advance(timedelta(seconds=2))
        # Past its time the partner cannot confirm it, even before the job has run.
        before = await table_counts(app, *WRITTEN)
        late = await resolve(client, air.key, forgotten["id"], "confirm")
        assert problem(late) == (409, "exchange_not_pending"), late.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, air.member_id) == 700

        assert await run_exchange_expiry(app) == 1
        expired = await partner_view(client, air.key, forgotten["id"])
        assert expired["status"] == "expired"
        # It ended at its time, a second before the job came.
        assert expired["resolved_at"] == forgotten["expires_at"]
        assert (await partner_view(client, air.key, answered["id"]))["status"] == "confirmed"
        assert await balance(client, pos_key, air.member_id) == 900
        [back] = await entries_of(client, admin_key, air.member_id, "exchange_return")
        assert (back["amount"], back["details"]["exchange_id"]) == (200, forgotten["id"])

        after_expiry = await table_counts(app, *WRITTEN)
        for how in ("confirm", "fail"):
            refused = await resolve(client, air.key, forgotten["id"], how)
            assert problem(refused) == (409, "exchange_not_pending"), refused.text
        assert await run_exchange_expiry(app) == 0  # run again: nothing is given back twice
        assert await table_counts(app, *WRITTEN) == after_expiry
        assert await balance(client, pos_key, air.member_id) == 900
        statuses = [e["payload"]["status"] for e in await events(app, "partner.exchange_resolved")]
        assert statuses == ["confirmed", "expired"]
        await assert_ledger_invariant(app, air.member_id)

    async def test_one_the_worker_expires_days_late_ended_at_its_time(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, air: Air, clock: FrozenClock
    ) -> None:
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "air", 200))
        clock.advance(timedelta(days=3))  # the worker was down
        # Read before the job has run, it says when it ended, as it says it is expired.
        before_the_job = await partner_view(client, air.key, exchange["id"])
        assert (before_the_job["status"], before_the_job["resolved_at"]) == (
            "expired",
            exchange["expires_at"],
        )
        assert await run_exchange_expiry(app) == 1
        after_the_job = await partner_view(client, air.key, exchange["id"])
        assert (after_the_job["status"], after_the_job["resolved_at"]) == ("expired", exchange["expires_at"])
        assert await balance(client, pos_key, air.member_id) == 1_000

    async def test_past_its_time_the_partner_cannot_fail_it_either_it_expires(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        air: Air,
        clock: FrozenClock,
    ) -> None:
        # The spec: confirm or fail of an exchange past its expires_at is 409 exchange_not_pending, nothing
        # changed; the worker then settles it as expired, as the partner was told it would be.
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "air", 200))
        clock.advance(timedelta(seconds=TIMEOUT + 1))
        # Read before the job has run, it says what the refusal below says.
        assert (await partner_view(client, air.key, exchange["id"]))["status"] == "expired"
        before = await table_counts(app, *WRITTEN)
        late = await resolve(client, air.key, exchange["id"], "fail")
        assert problem(late) == (409, "exchange_not_pending"), late.text
        assert late.json()["exchange_status"] == "expired"
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, air.member_id) == 800
        assert await run_exchange_expiry(app) == 1
        assert (await partner_view(client, air.key, exchange["id"]))["status"] == "expired"
        assert await balance(client, pos_key, air.member_id) == 1_000
        await assert_ledger_invariant(app, air.member_id)

    @ENDINGS
    async def test_the_partner_hears_how_its_exchange_ended(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        air: Air,
        clock: FrozenClock,
        answer: str,
        status: str,
    ) -> None:
        """`partner.exchange_resolved` is about the member and the partner: the partner's endpoints receive it
        as they received the request, whichever way it ended (its own answer, or the time-out job)."""
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "air", 400))
        await end(app, client, air, clock, exchange["id"], answer)

        [requested] = await events(app, "partner.exchange_requested")
        [resolved] = await events(app, "partner.exchange_resolved")
        assert (resolved["payload"]["exchange_id"], resolved["payload"]["status"]) == (exchange["id"], status)
        assert resolved["member_id"] == requested["member_id"]
        assert resolved["partner_id"] is not None and resolved["partner_id"] == requested["partner_id"]

    @ENDINGS
    async def test_an_erased_members_exchange_is_settled_without_an_event(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        air: Air,
        clock: FrozenClock,
        answer: str,
        status: str,
    ) -> None:
        """An exchange still pending when its member is erased: the partner (told `member.erased`) may still
        answer it, or the worker time it out, and the anonymous account and the settlement follow; but
        `partner.exchange_resolved` told receivers about the erased member again."""
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "air", 400))
        erased = await client.post(f"/v1/members/{air.member_id}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text

        await end(app, client, air, clock, exchange["id"], answer)

        assert (await partner_view(client, air.key, exchange["id"]))["status"] == status
        returned = await rows(app, "SELECT amount FROM ledger_entries WHERE type = 'exchange_return'")
        assert [entry["amount"] for entry in returned] == ([] if answer == "confirm" else [400])
        assert await events(app, "partner.exchange_resolved") == []
        await assert_ledger_invariant(app, air.member_id)

    @pytest.mark.parametrize(
        ("answer", "after"),
        [("fail", 350), ("fail", 500), ("time-out", TIMEOUT + 1)],
        ids=["failed before Y's end", "failed after Y's end", "timed out after Y's end"],
    )
    async def test_points_back_past_a_stand_in_s_end_answer_what_the_expiry_leaves(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        air: Air,
        clock: FrozenClock,
        answer: str,
        after: int,
    ) -> None:
        """E's points were sent; Y's stood in for them at E's refund, and W's for Y's at Y's. The exchange
        coming back gives E's points back: Y's go back, and once Y's end has passed they go back ended, and
        only the expiry read them to give W's back. A read before the job showed the member 0 points (Y's
        due to expire) where the job, a spend or the same events with the exchange answered sooner leave W's
        100, with W's end."""
        member_id = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, air.key, member_id, "air", "AIR-2")
        await earn(client, pos_key, member_id, 10_000, order_ref="E")  # 100, the soonest end
        e_end = instant((await points_of(client, pos_key, member_id))["expiring"][0]["expires_at"])
        clock.advance(timedelta(seconds=100))
        await earn(client, pos_key, member_id, 10_000, order_ref="Y")  # 100, ending 100 seconds later
        clock.advance(timedelta(days=1))
        await earn(client, pos_key, member_id, 10_000, order_ref="W")  # 100, the latest end
        clock.advance(e_end - clock.now() - timedelta(seconds=300))
        sent = await created(await exchange_out(client, pos_key, member_id, "air", 100))  # E's points
        for ref in ("E", "Y"):  # Y's points stand in for E's, then W's for Y's
            path = f"/v1/orders/{ref}/refund"
            taken = await client.post(path, json={"full": True}, headers=bearer(pos_key))
            assert (taken.json()["points_taken_back"], taken.json()["shortfall"]) == (100, 0), taken.text
        clock.advance(timedelta(seconds=after))  # E's end has passed, Y's (at 400) too from 500 on
        if answer == "fail":
            assert (await resolve(client, air.key, sent["id"], "fail")).status_code == 200
        else:
            assert await run_exchange_expiry(app) == 1
        read = await points_of(client, pos_key, member_id)
        assert (read["balance"], read["available"]) == (100, 100)
        [w_end] = read["expiring"]  # W's, with W's end
        assert (w_end["points"], instant(w_end["expires_at"])) == (
            100,
            e_end + timedelta(days=1, seconds=100),
        )
        assert await rows(app, "SELECT order_ref FROM orders WHERE points_shortfall > 0") == []
        await assert_ledger_invariant(app, member_id)
        await expire_points(app.state.units)  # the job (it expires air.member_id's 1,000)
        assert await points_of(client, pos_key, member_id) == read
        await assert_ledger_invariant(app, member_id)

    async def test_another_partners_exchange_is_not_found(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air
    ) -> None:
        rail = await register_partner(app, client, admin_key, "rail", exchange_out_rate="1")
        await link(client, pos_key, rail, air.member_id, "rail", "RAIL-1")
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "air", 300))
        before = await table_counts(app, *WRITTEN)
        for exchange_id in (exchange["id"], str(uuid.uuid4())):
            read = await client.get(f"/v1/partner/exchanges/{exchange_id}", headers=bearer(rail))
            assert problem(read) == (404, "exchange_not_found"), read.text
            for how in ("confirm", "fail"):
                refused = await resolve(client, rail, exchange_id, how)
                assert problem(refused) == (404, "exchange_not_found"), refused.text
                assert "AIR-1" not in refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert (await partner_view(client, air.key, exchange["id"]))["status"] == "pending"
        assert await balance(client, pos_key, air.member_id) == 700
        await assert_ledger_invariant(app, air.member_id)

    async def test_too_few_points_change_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, air: Air
    ) -> None:
        before = await table_counts(app, *WRITTEN)
        refused = await exchange_out(client, pos_key, air.member_id, "air", 1_001)
        assert problem(refused) == (422, "insufficient_points"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, air.member_id) == 1_000
        assert await member_exchanges(client, pos_key, air.member_id) == []
        # All of them is not too many.
        assert (await exchange_out(client, pos_key, air.member_id, "air", 1_000)).status_code == 201
        await assert_ledger_invariant(app, air.member_id)

    async def test_points_held_for_a_checkout_cannot_be_exchanged(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str, air: Air
    ) -> None:
        held = await client.post(
            f"/v1/members/{air.member_id}/holds",
            json={"points": 600, "order_ref": "WEB-1", "ttl_seconds": 3_600},
            headers=bearer(ecommerce_key),
        )
        assert held.status_code == 201, held.text
        before = await table_counts(app, *WRITTEN)
        refused = await exchange_out(client, pos_key, air.member_id, "air", 401)  # 400 are free
        assert problem(refused) == (422, "insufficient_points"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        await created(await exchange_out(client, pos_key, air.member_id, "air", 400))
        await assert_ledger_invariant(app, air.member_id)

    async def test_a_retry_with_the_same_idempotency_key_spends_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, air: Air
    ) -> None:
        # A till that lost the answer sends the request again with its key: one exchange, points spent once.
        headers = bearer(pos_key) | {"Idempotency-Key": "till-7-EX-1"}
        path, body = f"/v1/members/{air.member_id}/exchanges", {"partner": "air", "points": 250}
        first = await client.post(path, json=body, headers=headers)
        again = await client.post(path, json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201), again.text
        assert again.json() == first.json()
        assert await balance(client, pos_key, air.member_id) == 750
        assert len(await member_exchanges(client, pos_key, air.member_id)) == 1
        await assert_ledger_invariant(app, air.member_id)

    async def test_a_member_not_linked_to_the_partner_cannot_exchange_with_it(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air
    ) -> None:
        stranger = await member_with_points(client, admin_key, pos_key, 1_000)
        before = await table_counts(app, *WRITTEN)
        refused = await exchange_out(client, pos_key, stranger, "air", 100)
        assert problem(refused) == (404, "link_not_found"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, stranger) == 1_000
        await assert_ledger_invariant(app, stranger)

    async def test_a_partner_that_takes_no_points_refuses_exchanges_out(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air
    ) -> None:
        inbound_only = await register_partner(app, client, admin_key, "inbound-only", exchange_in_rate="1")
        await link(client, pos_key, inbound_only, air.member_id, "inbound-only", "IO-1")
        before = await table_counts(app, *WRITTEN)
        refused = await exchange_out(client, pos_key, air.member_id, "inbound-only", 100)
        assert problem(refused) == (409, "exchange_not_offered"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, air.member_id) == 1_000
        await assert_ledger_invariant(app, air.member_id)

    async def test_points_that_make_no_partner_point_are_refused(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air
    ) -> None:
        stingy = await register_partner(app, client, admin_key, "stingy", exchange_out_rate="0.3")
        await link(client, pos_key, stingy, air.member_id, "stingy", "ST-1")
        before = await table_counts(app, *WRITTEN)
        # 3 points at 0.3 is 0.9 of a partner point: nothing would arrive. And 0 points is no exchange.
        for partner, points in (("stingy", 3), ("air", 0)):
            refused = await exchange_out(client, pos_key, air.member_id, partner, points)
            assert problem(refused) == (422, VALIDATION), refused.text
            assert refused.json()["errors"][0]["field"] == "points", refused.text
        assert await table_counts(app, *WRITTEN) == before
        # 4 points make 1.2: one partner point.
        exchange = await created(await exchange_out(client, pos_key, air.member_id, "stingy", 4))
        assert exchange["partner_points"] == 1
        await assert_ledger_invariant(app, air.member_id)

    async def test_the_members_list_pages_newest_first(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, air: Air, clock: FrozenClock
    ) -> None:
        made = []
        for points in (10, 20, 30):
            made.append(await created(await exchange_out(client, pos_key, air.member_id, "air", points)))
            clock.advance(timedelta(seconds=1))
        first = await client.get(
            f"/v1/members/{air.member_id}/exchanges", params={"limit": 2}, headers=bearer(pos_key)
        )
        assert first.status_code == 200, first.text
        assert [e["points"] for e in first.json()["items"]] == [30, 20]
        rest = await client.get(
            f"/v1/members/{air.member_id}/exchanges",
            params={"limit": 2, "cursor": first.json()["next_cursor"]},
            headers=bearer(pos_key),
        )
        assert [e["id"] for e in rest.json()["items"]] == [made[0]["id"]]
        assert rest.json()["next_cursor"] is None
        assert await balance(client, pos_key, air.member_id) == 1_000 - 60
        await assert_ledger_invariant(app, air.member_id)


class TestSuspendedPartner:
    async def test_it_still_answers_the_exchanges_pending_with_it_and_starts_none(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        air: Air,
        clock: FrozenClock,
    ) -> None:
        """Its system may have credited the customer before it learnt of the suspension, and the time limit
        runs on: were the confirmation refused, the time-out would give the member the points back too."""
        confirmed = await created(await exchange_out(client, pos_key, air.member_id, "air", 100))
        failed = await created(await exchange_out(client, pos_key, air.member_id, "air", 200))
        unanswered = await created(await exchange_out(client, pos_key, air.member_id, "air", 300))
        terms = {"exchange_out_rate": "2.5", "exchange_in_rate": "0.4", "exchange_timeout_seconds": TIMEOUT}
        body = {"name": "Air", "status": "suspended", **terms}
        suspended = await client.put("/v1/partners/air", json=body, headers=bearer(admin_key))
        assert suspended.status_code == 200, suspended.text

        clock.advance(timedelta(seconds=TIMEOUT - 1))
        assert (await partner_view(client, air.key, confirmed["id"]))["status"] == "pending"
        answer = await resolve(client, air.key, confirmed["id"], "confirm")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "confirmed"
        answer = await resolve(client, air.key, failed["id"], "fail")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "failed"
        assert await balance(client, pos_key, air.member_id) == 1_000 - 100 - 300

        # Nothing new while suspended, either way, and it still reaches no member.
        before = await table_counts(app, *WRITTEN)
        for refused in (
            await exchange_out(client, pos_key, air.member_id, "air", 10),
            await exchange_in(client, air.key, "AIR-1", "T-1", 100),
            await client.get("/v1/partner/members/AIR-1", headers=bearer(air.key)),
        ):
            assert problem(refused) == (409, "partner_not_active"), refused.text
        assert await table_counts(app, *WRITTEN) == before

        # The time limit ran on: the one left unanswered is past it, and only that one comes back.
        clock.advance(timedelta(seconds=2))
        late = await resolve(client, air.key, unanswered["id"], "confirm")
        assert problem(late) == (409, "exchange_not_pending"), late.text
        assert await run_exchange_expiry(app) == 1
        assert await balance(client, pos_key, air.member_id) == 1_000 - 100
        statuses = [e["payload"]["status"] for e in await events(app, "partner.exchange_resolved")]
        assert statuses == ["confirmed", "failed", "expired"]
        await assert_ledger_invariant(app, air.member_id)


class TestExchangeIn:
    async def test_partner_points_come_in_at_its_rate_rounded_down(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        air: Air,
        clock: FrozenClock,
    ) -> None:
        exchange = await created(await exchange_in(client, air.key, "AIR-1", "TX-1", 1_001))
        # 1,001 miles at 0.4 is 400.4 points: 400, worth 200 fen.
        assert (exchange["direction"], exchange["status"]) == ("in", "completed")
        assert (exchange["points"], exchange["partner_points"]) == (400, 1_001)
        assert exchange["partner_ref"] == "TX-1"
        assert Decimal(exchange["rate"]) == Decimal("0.4")
        assert exchange["value"] == cny(value_minor(400, POINT_VALUE))
        assert exchange["expires_at"] is None
        assert (exchange["partner"], exchange["partner_customer_ref"]) == ("air", "AIR-1")
        assert instant(exchange["created_at"]) == clock.now()
        assert await balance(client, pos_key, air.member_id) == 1_400
        [entry] = await entries_of(client, admin_key, air.member_id, "exchange_in")
        assert (entry["amount"], entry["details"]["partner"]) == (400, "air")
        assert await partner_view(client, air.key, exchange["id"]) == exchange
        [received] = await events(app, "partner.exchange_received")
        assert received["payload"]["partner"] == "air"
        await assert_ledger_invariant(app, air.member_id)

    async def test_the_same_transfer_twice_is_credited_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air
    ) -> None:
        await created(await exchange_in(client, air.key, "AIR-1", "TX-2", 1_000))
        before = await table_counts(app, *WRITTEN)
        for miles in (1_000, 500):  # a retry, and a retry with other figures
            again = await exchange_in(client, air.key, "AIR-1", "TX-2", miles)
            assert problem(again) == (409, "exchange_already_recorded"), again.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, air.member_id) == 1_400
        assert len(await entries_of(client, admin_key, air.member_id, "exchange_in")) == 1
        await assert_ledger_invariant(app, air.member_id)

    @pytest.mark.parametrize("since", ["unlinked", "member suspended", "partner suspended"])
    async def test_a_transfer_sent_again_after_its_link_ended_is_told_as_credited(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air, since: str
    ) -> None:
        # The partner's answer was lost; meanwhile the link ended (or a side was suspended). Told that the
        # customer cannot be reached, the partner would give back the miles we credited.
        first = await created(await exchange_in(client, air.key, "AIR-1", "TX-9", 1_000))
        if since == "unlinked":
            ended = await client.delete("/v1/partner/links/AIR-1", headers=bearer(air.key))
        elif since == "member suspended":
            ended = await client.patch(
                f"/v1/members/{air.member_id}", json={"status": "suspended"}, headers=bearer(admin_key)
            )
        else:
            terms = {
                "exchange_out_rate": "2.5",
                "exchange_in_rate": "0.4",
                "exchange_timeout_seconds": TIMEOUT,
            }
            body = {"name": "Air", "status": "suspended", **terms}
            ended = await client.put("/v1/partners/air", json=body, headers=bearer(admin_key))
        assert ended.status_code in (200, 204), ended.text
        before = await table_counts(app, *WRITTEN)

        again = await exchange_in(client, air.key, "AIR-1", "TX-9", 1_000)

        assert problem(again) == (409, "exchange_already_recorded"), again.text
        assert again.json()["exchange_id"] == first["id"]
        assert await table_counts(app, *WRITTEN) == before
        new = await exchange_in(client, air.key, "AIR-1", "TX-10", 1_000)  # a transfer not made is refused
        assert new.status_code in (404, 409) and problem(new)[1] != "exchange_already_recorded", new.text

    @pytest.mark.parametrize(
        ("rate", "miles", "refused_as"),
        [
            (None, 1_000, (409, "exchange_not_offered")),
            ("0.0001", 1_000, (422, VALIDATION)),  # a thousand miles make no point now
            ("100000", 10**8, (422, VALIDATION)),  # 10^13 points: more than one purchase may earn
        ],
    )
    async def test_a_transfer_sent_again_after_the_rate_changed_is_told_as_credited(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        air: Air,
        rate: str | None,
        miles: int,
        refused_as: tuple[int, str],
    ) -> None:
        """The partner's answer was lost; meanwhile the operator withdrew its rate in, or changed it so the
        transfer would now credit nothing or more than one purchase may earn. It was credited: its repeat is
        exchange_already_recorded, naming it, not a refusal the partner would give its customer the miles
        back for. A new transfer is refused by the new terms."""
        first = await created(await exchange_in(client, air.key, "AIR-1", "TX-R", miles))
        terms: dict[str, Any] = {"exchange_out_rate": "2.5", "exchange_timeout_seconds": TIMEOUT}
        if rate is not None:
            terms["exchange_in_rate"] = rate
        body = {"name": "Air", "status": "active", **terms}
        changed = await client.put("/v1/partners/air", json=body, headers=bearer(admin_key))
        assert changed.status_code == 200, changed.text
        before = await table_counts(app, *WRITTEN)
        again = await exchange_in(client, air.key, "AIR-1", "TX-R", miles)
        assert problem(again) == (409, "exchange_already_recorded"), again.text
        assert again.json()["exchange_id"] == first["id"]
        new = await exchange_in(client, air.key, "AIR-1", "TX-S", miles)
        assert problem(new) == refused_as, new.text
        assert await table_counts(app, *WRITTEN) == before
        await assert_ledger_invariant(app, air.member_id)

    async def test_another_partners_transfer_with_the_same_id_is_its_own(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air
    ) -> None:
        # Transfer ids are each partner's own numbering (the spec says "once per partner_ref"; a partner
        # cannot know another's ids, so a clash between two of them must not refuse a real transfer).
        rail = await register_partner(app, client, admin_key, "rail-2", exchange_in_rate="1")
        await link(client, pos_key, rail, air.member_id, "rail-2", "RAIL-2")
        await created(await exchange_in(client, air.key, "AIR-1", "TX-3", 1_000))
        theirs = await exchange_in(client, rail, "RAIL-2", "TX-3", 100)
        assert theirs.status_code == 201, theirs.text
        assert await balance(client, pos_key, air.member_id) == 1_000 + 400 + 100
        await assert_ledger_invariant(app, air.member_id)

    async def test_a_transfer_worth_more_than_one_purchase_may_earn_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air
    ) -> None:
        # At the highest rate a partner may have, the largest transfer would credit 10^17 points: a few such
        # would overflow the balance column. One transfer credits at most what one purchase may earn.
        rich = await register_partner(app, client, admin_key, "rich", exchange_in_rate="100000")
        await link(client, pos_key, rich, air.member_id, "rich", "RICH-1")
        before = await table_counts(app, *WRITTEN)
        refused = await exchange_in(client, rich, "RICH-1", "TX-BIG", 10**12)
        assert problem(refused) == (422, "validation_error"), refused.text
        assert refused.json()["errors"][0]["field"] == "partner_points"
        assert await table_counts(app, *WRITTEN) == before
        allowed = await exchange_in(client, rich, "RICH-1", "TX-MAX", 10**7)  # exactly 10^12 points
        assert allowed.status_code == 201, allowed.text
        await assert_ledger_invariant(app, air.member_id)

    async def test_refusals_change_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, air: Air
    ) -> None:
        outbound_only = await register_partner(app, client, admin_key, "outbound-only", exchange_out_rate="1")
        await link(client, pos_key, outbound_only, air.member_id, "outbound-only", "OO-1")
        before = await table_counts(app, *WRITTEN)
        not_offered = await exchange_in(client, outbound_only, "OO-1", "T-1", 100)
        assert problem(not_offered) == (409, "exchange_not_offered"), not_offered.text
        unknown = await exchange_in(client, air.key, "AIR-404", "T-2", 100)
        assert problem(unknown) == (404, "link_not_found"), unknown.text
        other_partners_ref = await exchange_in(client, air.key, "OO-1", "T-3", 100)
        assert problem(other_partners_ref) == (404, "link_not_found"), other_partners_ref.text
        assert air.member_id not in other_partners_ref.text
        # 2 miles at 0.4 is 0.8 of a point: nothing to credit. And 0 miles is no transfer.
        for miles in (2, 0):
            refused = await exchange_in(client, air.key, "AIR-1", f"T-ZERO-{miles}", miles)
            assert problem(refused) == (422, VALIDATION), refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, air.member_id) == 1_000
        await assert_ledger_invariant(app, air.member_id)

    @pytest.mark.skipif(
        not is_postgres(), reason="reads the link while an unlink holds the member's row: PostgreSQL"
    )
    @pytest.mark.parametrize("ending", ["unlink", "erasure"])
    async def test_a_transfer_that_read_the_link_before_it_ended_finds_no_link(
        self, app: FastAPI, client: httpx.AsyncClient, air: Air, ending: str
    ) -> None:
        """A transfer sent while the member withdrew their consent (or was erased) was credited once the
        unlink committed, and its exchange and event named the member by the ref the partner no longer had."""
        before = await table_counts(app, "ledger_entries", "point_lots", "partner_exchanges")
        answered = await sent_while_the_link_ends(
            app, air.member_id, "air", ending, exchange_in(client, air.key, "AIR-1", "TX-RACE", 1_000)
        )

        assert problem(answered) == (404, "link_not_found"), answered.text
        assert await table_counts(app, "ledger_entries", "point_lots", "partner_exchanges") == before
        assert await events(app, "partner.exchange_received") == []
        await assert_ledger_invariant(app, air.member_id)


class TestLimits:
    """`daily_exchange_limit` (all members) and `member_daily_exchange_limit` (each member) cap our points
    exchanged per programme-local day, each direction on its own."""

    @pytest.fixture
    async def shop(self, app: FastAPI, client: httpx.AsyncClient, admin_key: str) -> str:
        await set_program(client, admin_key)  # Asia/Shanghai: the day turns at 16:00 UTC
        return await register_partner(
            app,
            client,
            admin_key,
            "capped",
            # Rates other than 1, so a limit counted in the partner's points would show.
            exchange_out_rate="2",
            exchange_in_rate="0.5",
            daily_exchange_limit=1_000,
            member_daily_exchange_limit=600,
        )

    async def linked_member(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, shop: str, ref: str
    ) -> str:
        member_id = await member_with_points(client, admin_key, pos_key, 2_000)
        await link(client, pos_key, shop, member_id, "capped", ref)
        return member_id

    async def test_a_member_exchanges_up_to_their_daily_limit_in_each_direction(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, shop: str
    ) -> None:
        member = await self.linked_member(client, admin_key, pos_key, shop, "M-1")
        await created(await exchange_out(client, pos_key, member, "capped", 400))
        before = await table_counts(app, *WRITTEN)
        over = await exchange_out(client, pos_key, member, "capped", 201)
        assert problem(over) == (422, "exchange_limit_exceeded"), over.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, member) == 1_600
        await created(await exchange_out(client, pos_key, member, "capped", 200))  # exactly 600

        # The other direction has a limit of its own, untouched by the points that went out.
        await created(await exchange_in(client, shop, "M-1", "IN-1", 1_200))  # 600 of our points
        over_in = await exchange_in(client, shop, "M-1", "IN-2", 2)  # 1 more
        assert problem(over_in) == (422, "exchange_limit_exceeded"), over_in.text
        assert await balance(client, pos_key, member) == 2_000 - 600 + 600
        # Another member still has a day of their own.
        other = await self.linked_member(client, admin_key, pos_key, shop, "M-2")
        await created(await exchange_out(client, pos_key, other, "capped", 400))
        await assert_ledger_invariant(app)

    async def test_all_members_together_stop_at_the_partners_daily_limit(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, shop: str
    ) -> None:
        members = [await self.linked_member(client, admin_key, pos_key, shop, f"D-{i}") for i in range(3)]
        await created(await exchange_out(client, pos_key, members[0], "capped", 500))
        await created(await exchange_out(client, pos_key, members[1], "capped", 500))
        before = await table_counts(app, *WRITTEN)
        refused = await exchange_out(client, pos_key, members[2], "capped", 1)
        assert problem(refused) == (422, "exchange_limit_exceeded"), refused.text
        assert await table_counts(app, *WRITTEN) == before
        assert await balance(client, pos_key, members[2]) == 2_000
        # In: its own 1,000 for the day.
        await created(await exchange_in(client, shop, "D-0", "IN-A", 1_000))  # 500 of ours
        await created(await exchange_in(client, shop, "D-1", "IN-B", 1_000))
        refused_in = await exchange_in(client, shop, "D-2", "IN-C", 2)
        assert problem(refused_in) == (422, "exchange_limit_exceeded"), refused_in.text
        await assert_ledger_invariant(app)

    async def test_failed_and_expired_exchanges_do_not_count(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        shop: str,
        clock: FrozenClock,
    ) -> None:
        member = await self.linked_member(client, admin_key, pos_key, shop, "F-1")
        failed = await created(await exchange_out(client, pos_key, member, "capped", 600))
        assert (await resolve(client, shop, failed["id"], "fail")).status_code == 200
        forgotten = await created(await exchange_out(client, pos_key, member, "capped", 600))  # room again
        clock.advance(timedelta(seconds=3_601))  # the default timeout, still the same Shanghai day
        assert await run_exchange_expiry(app) == 1
        assert (await partner_view(client, shop, forgotten["id"]))["status"] == "expired"
        kept = await created(await exchange_out(client, pos_key, member, "capped", 600))
        assert (await resolve(client, shop, kept["id"], "confirm")).status_code == 200
        # A confirmed exchange counts: the member's 600 are used up.
        refused = await exchange_out(client, pos_key, member, "capped", 1)
        assert problem(refused) == (422, "exchange_limit_exceeded"), refused.text
        assert await balance(client, pos_key, member) == 2_000 - 600
        await assert_ledger_invariant(app, member)

    async def test_an_exchange_past_its_time_counts_no_more_before_the_job_runs(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        shop: str,
        clock: FrozenClock,
    ) -> None:
        member = await self.linked_member(client, admin_key, pos_key, shop, "X-1")
        forgotten = await created(await exchange_out(client, pos_key, member, "capped", 600))
        clock.advance(timedelta(seconds=3_601))  # past the default timeout, the job not run
        kept = await created(await exchange_out(client, pos_key, member, "capped", 600))
        assert (await resolve(client, shop, kept["id"], "confirm")).status_code == 200
        assert await run_exchange_expiry(app) == 1
        assert (await partner_view(client, shop, forgotten["id"]))["status"] == "expired"
        assert await balance(client, pos_key, member) == 2_000 - 600
        await assert_ledger_invariant(app, member)

    async def test_a_new_day_in_the_programmes_time_zone_starts_afresh(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        shop: str,
        clock: FrozenClock,
    ) -> None:
        member = await self.linked_member(client, admin_key, pos_key, shop, "N-1")
        assert clock.now() == START  # 18:00 in Shanghai
        first = await created(await exchange_out(client, pos_key, member, "capped", 600))
        assert (await resolve(client, shop, first["id"], "confirm")).status_code == 200
        midnight_in_shanghai = START.replace(hour=16)
        clock.set(midnight_in_shanghai - timedelta(seconds=1))
        refused = await exchange_out(client, pos_key, member, "capped", 1)
        assert problem(refused) == (422, "exchange_limit_exceeded"), refused.text
        # Midnight in Shanghai, 16:00 UTC: a new day there, though not in UTC.
        clock.set(midnight_in_shanghai)
        await created(await exchange_out(client, pos_key, member, "capped", 600))
        assert await balance(client, pos_key, member) == 2_000 - 1_200
        await assert_ledger_invariant(app, member)


class TestSettings:
    async def test_a_partners_exchange_settings_read_back_as_set_and_put_resets_the_left_out(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        settings: dict[str, Any] = {
            "earn_rate": "1.25",
            "exchange_out_rate": "2.5",
            "exchange_in_rate": "0.4",
            "daily_exchange_limit": 10_000,
            "member_daily_exchange_limit": 500,
            "exchange_timeout_seconds": 900,
        }
        await register_partner(app, client, admin_key, "full-set", **settings)
        read = await client.get("/v1/partners/full-set", headers=bearer(admin_key))
        assert read.status_code == 200, read.text
        found = read.json()
        # Rates are decimal strings (never floats), limits and timeout whole numbers.
        for rate in ("earn_rate", "exchange_out_rate", "exchange_in_rate"):
            assert isinstance(found[rate], str) and Decimal(found[rate]) == Decimal(settings[rate]), found
        assert (found["daily_exchange_limit"], found["member_daily_exchange_limit"]) == (10_000, 500)
        assert found["exchange_timeout_seconds"] == 900

        replaced = await client.put(
            "/v1/partners/full-set",
            json={"name": "Full Set", "status": "active", "exchange_in_rate": "1"},
            headers=bearer(admin_key),
        )
        assert replaced.status_code == 200, replaced.text
        after = replaced.json()
        assert Decimal(after["exchange_in_rate"]) == 1
        assert [after[k] for k in ("earn_rate", "exchange_out_rate", "daily_exchange_limit")] == [None] * 3
        assert (after["member_daily_exchange_limit"], after["exchange_timeout_seconds"]) == (None, 3_600)
        assert (await client.get("/v1/partners/full-set", headers=bearer(admin_key))).json() == after

    @pytest.mark.parametrize("rate", ["1_0", "١", "1 ", "0x10", "NaN"])
    async def test_a_rate_not_written_as_a_plain_decimal_is_refused(
        self, client: httpx.AsyncClient, admin_key: str, rate: str
    ) -> None:
        body = {"code": "odd-rate", "name": "Odd", "earn_rate": rate}
        refused = await client.post("/v1/partners", json=body, headers=bearer(admin_key))
        assert problem(refused) == (422, VALIDATION), refused.text
        assert refused.json()["errors"][0]["field"] == "earn_rate"
        missing = await client.get("/v1/partners/odd-rate", headers=bearer(admin_key))
        assert missing.status_code == 404

    @pytest.mark.parametrize("seconds", [59, 604_801, 0])
    async def test_a_timeout_outside_a_minute_to_a_week_is_refused(
        self, client: httpx.AsyncClient, admin_key: str, seconds: int
    ) -> None:
        body = {"code": "bad-timeout", "name": "Bad", "exchange_timeout_seconds": seconds}
        refused = await client.post("/v1/partners", json=body, headers=bearer(admin_key))
        assert problem(refused) == (422, VALIDATION), refused.text
        assert refused.json()["errors"][0]["field"] == "exchange_timeout_seconds"
        missing = await client.get("/v1/partners/bad-timeout", headers=bearer(admin_key))
        assert missing.status_code == 404
