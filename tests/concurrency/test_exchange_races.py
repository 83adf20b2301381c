"""Exchanges with a partner under simultaneous requests: the daily limits hold however many arrive together,
and an exchange is resolved once when the partner's confirm and fail race; the ledger invariant holds."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable
from datetime import timedelta
from decimal import Decimal
from typing import Literal

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.partners import service as partners
from loyalty_api.partners.repository import PerkRepository
from loyalty_api.partners.service import Terms
from loyalty_api.subscriptions.repository import SubscriptionRepository
from tests.builders import enrol, make_partner_key
from tests.checkout.helpers import give_points
from tests.concurrency.closing import during_a_close
from tests.conftest import UNLIMITED, bearer
from tests.inspect_db import rows
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import exchange_out, link, resolve, run_exchange_expiry
from tests.points.helpers import set_program


async def _partner(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, code: str, **terms: object
) -> str:
    made = await client.post(
        "/v1/partners",
        json={"code": code, "name": code, "exchange_out_rate": "1", "exchange_in_rate": "1", **terms},
        headers=bearer(admin_key),
    )
    assert made.status_code == 201, made.text
    return await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]), rate_limit=UNLIMITED)


async def test_the_partners_daily_limit_holds_when_exchanges_arrive_together(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    key = await _partner(app, client, admin_key, "race-limit", daily_exchange_limit=500)
    members = [str((await enrol(client, pos_key))["id"]) for _ in range(6)]
    for n, member_id in enumerate(members):
        await give_points(client, admin_key, member_id, 1_000)
        await link(client, pos_key, key, member_id, "race-limit", f"RL-{n}")

    async def send(member_id: str) -> httpx.Response:
        return await client.post(
            f"/v1/members/{member_id}/exchanges",
            json={"partner": "race-limit", "points": 100},
            headers=bearer(pos_key),
        )

    answers = await asyncio.gather(*(send(m) for m in members + members))
    outcomes = Counter((a.status_code, a.json().get("code")) for a in answers)
    assert outcomes == {(201, None): 5, (422, "exchange_limit_exceeded"): 7}
    balances = [
        (await client.get(f"/v1/members/{m}/points", headers=bearer(pos_key))).json()["balance"]
        for m in members
    ]
    assert sum(balances) == 6 * 1_000 - 500
    for member_id in members:
        await assert_ledger_invariant(app, member_id)


async def test_a_members_daily_limit_holds_for_transfers_arriving_together(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    key = await _partner(app, client, admin_key, "race-member", member_daily_exchange_limit=300)
    member_id = str((await enrol(client, pos_key))["id"])
    await link(client, pos_key, key, member_id, "race-member", "RM-1")

    async def receive(n: int) -> httpx.Response:
        return await client.post(
            "/v1/partner/members/RM-1/exchanges-in",
            json={"partner_ref": f"T-{n}", "partner_points": 100},
            headers=bearer(key),
        )

    answers = await asyncio.gather(*(receive(n) for n in range(8)))
    outcomes = Counter((a.status_code, a.json().get("code")) for a in answers)
    assert outcomes == {(201, None): 3, (422, "exchange_limit_exceeded"): 5}
    points = await client.get(f"/v1/members/{member_id}/points", headers=bearer(pos_key))
    assert points.json()["balance"] == 300
    await assert_ledger_invariant(app, member_id)


async def test_a_racing_confirm_and_fail_resolve_the_exchange_once(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    key = await _partner(app, client, admin_key, "race-resolve")
    member_id = str((await enrol(client, pos_key))["id"])
    await give_points(client, admin_key, member_id, 1_000)
    await link(client, pos_key, key, member_id, "race-resolve", "RR-1")
    sent = await client.post(
        f"/v1/members/{member_id}/exchanges",
        json={"partner": "race-resolve", "points": 400},
        headers=bearer(pos_key),
    )
    exchange_id = sent.json()["id"]

    async def answer(how: str) -> httpx.Response:
        return await client.post(f"/v1/partner/exchanges/{exchange_id}/{how}", headers=bearer(key))

    answers = await asyncio.gather(*(answer(how) for how in ["confirm", "fail"] * 5))
    outcomes = Counter((a.status_code, a.json().get("code")) for a in answers)
    assert outcomes == {(200, None): 1, (409, "exchange_not_pending"): 9}
    [winner] = [a.json()["status"] for a in answers if a.status_code == 200]
    points = await client.get(f"/v1/members/{member_id}/points", headers=bearer(pos_key))
    assert points.json()["balance"] == (600 if winner == "confirmed" else 1_000)
    await assert_ledger_invariant(app, member_id)


async def test_an_exchange_out_waits_for_a_close_under_way_and_is_refused_once_it_lands(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    key = await _partner(app, client, admin_key, "race-close")
    member_id = str((await enrol(client, pos_key))["id"])
    await give_points(client, admin_key, member_id, 1_000)
    await link(client, pos_key, key, member_id, "race-close", "RC-1")
    call = client.post(
        f"/v1/members/{member_id}/exchanges",
        json={"partner": "race-close", "points": 100},
        headers=bearer(pos_key),
    )
    refused = await during_a_close(app, member_id, call)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "member_not_active"
    points = await client.get(f"/v1/members/{member_id}/points", headers=bearer(pos_key))
    assert points.json()["balance"] == 1_000
    await assert_ledger_invariant(app, member_id)


async def test_an_exchange_out_and_a_paid_period_s_partner_perks_take_the_member_before_the_partner(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    key = await _partner(app, client, admin_key, "race-perks")
    partner_id = uuid.UUID(
        (await client.get("/v1/partners/race-perks", headers=bearer(admin_key))).json()["id"]
    )
    member_id = str((await enrol(client, pos_key))["id"])
    await give_points(client, admin_key, member_id, 1_000)
    await link(client, pos_key, key, member_id, "race-perks", "RP-1")
    units: UnitsOfWork = app.state.units
    async with units.begin() as uow:
        # What a payment for a plan with the partner's perks does: the member's row, then a share of the
        # partner's (subscriptions._locked, then partners.perks.grant_period_perks).
        await SubscriptionRepository(uow.session).lock_member(uuid.UUID(member_id))
        sending = asyncio.ensure_future(
            client.post(
                f"/v1/members/{member_id}/exchanges",
                json={"partner": "race-perks", "points": 100},
                headers=bearer(pos_key),
            )
        )
        await asyncio.sleep(0.5)  # the exchange is under way, waiting for what the payment holds
        await PerkRepository(uow.session).share_partner(partner_id)
    sent = await sending
    assert sent.status_code == 201, sent.text  # not a deadlock's 500
    await assert_ledger_invariant(app, member_id)


_NEW_TERMS: dict[str, tuple[Literal["active", "suspended"], int | None, int, str]] = {
    # Suspended while the exchange waits: its keys reach no member, our tills start no exchange with it.
    "suspended": ("suspended", None, 409, "partner_not_active"),
    # A lower daily limit: the exchange that waited for it is held to it.
    "limit_lowered": ("active", 50, 422, "exchange_limit_exceeded"),
}


@pytest.mark.parametrize("way", ["out", "in"])
@pytest.mark.parametrize("change", sorted(_NEW_TERMS))
async def test_an_exchange_waiting_for_an_operators_change_of_the_terms_is_held_to_the_new_ones(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, way: str, change: str
) -> None:
    """An operator's PUT of the partner's terms holds its row until commit; an exchange that waited for it
    is judged by what it committed, not by the partner as read before the wait (on PostgreSQL the exchange
    read the partner unlocked, then locked its row without reading it again: 201 with the old terms)."""
    await set_program(client, admin_key)
    key = await _partner(app, client, admin_key, "race-terms")
    member_id = str((await enrol(client, pos_key))["id"])
    await give_points(client, admin_key, member_id, 1_000)
    await link(client, pos_key, key, member_id, "race-terms", "RT-1")
    status, daily_limit, refused_status, refused_code = _NEW_TERMS[change]
    call = (
        client.post(
            f"/v1/members/{member_id}/exchanges",
            json={"partner": "race-terms", "points": 100},
            headers=bearer(pos_key),
        )
        if way == "out"
        else client.post(
            "/v1/partner/members/RT-1/exchanges-in",
            json={"partner_ref": "T-1", "partner_points": 100},
            headers=bearer(key),
        )
    )
    units: UnitsOfWork = app.state.units
    async with units.begin() as uow:
        new_terms = Terms(
            exchange_out_rate=Decimal(1), exchange_in_rate=Decimal(1), daily_exchange_limit=daily_limit
        )
        await partners.update_partner(uow, "race-terms", name="race-terms", status=status, terms=new_terms)
        sending = asyncio.ensure_future(call)
        await asyncio.sleep(0.5)  # the exchange is under way, waiting for the partner's row
    answer = await sending
    assert (answer.status_code, answer.json().get("code")) == (refused_status, refused_code), answer.text
    points = await client.get(f"/v1/members/{member_id}/points", headers=bearer(pos_key))
    assert points.json()["balance"] == 1_000
    await assert_ledger_invariant(app, member_id)


async def _members_with_an_exchange_pending(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, code: str, n: int
) -> tuple[str, list[tuple[str, str]]]:
    """`n` members linked to a new partner (timing out after a minute), each with 1,000 points and 400 sent
    to it, pending: the partner's key and (member, exchange) pairs."""
    await set_program(client, admin_key)
    key = await _partner(app, client, admin_key, code, exchange_timeout_seconds=60)
    pending: list[tuple[str, str]] = []
    for n_ in range(n):
        member_id = str((await enrol(client, pos_key))["id"])
        await give_points(client, admin_key, member_id, 1_000)
        await link(client, pos_key, key, member_id, code, f"{code}-{n_}")
        sent = await exchange_out(client, pos_key, member_id, code, 400)
        assert sent.status_code == 201, sent.text
        pending.append((member_id, sent.json()["id"]))
    return key, pending


def _erase(client: httpx.AsyncClient, admin_key: str, member_id: str) -> Awaitable[httpx.Response]:
    return client.post(f"/v1/members/{member_id}/erase", headers=bearer(admin_key))


async def _assert_given_back(
    app: FastAPI, client: httpx.AsyncClient, key: str, pending: list[tuple[str, str]], status: str
) -> None:
    """Each exchange ended as `status` (as its partner reads it), its 400 points back on its member's books
    (erased: the anonymous account keeps them), and the ledger invariant holds."""
    for member_id, exchange_id in pending:
        read = await client.get(f"/v1/partner/exchanges/{exchange_id}", headers=bearer(key))
        assert read.json()["status"] == status, read.text
        [account] = await rows(
            app, "SELECT balance FROM points_accounts WHERE member_id = :m", m=uuid.UUID(member_id)
        )
        assert account["balance"] == 1_000
        await assert_ledger_invariant(app, member_id)


async def test_a_partners_fail_and_the_members_erasure_at_once_both_land(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """The failure gives the points back, the erasure forgets the partner's ref on the same exchange: both
    lock the member's account and the exchange. On PostgreSQL the failure took the exchange and then the
    account, the erasure the member and account and then the exchange: crossed, one of the two was the
    deadlock's victim, a 500."""
    key, pending = await _members_with_an_exchange_pending(app, client, admin_key, pos_key, "race-fail", 12)
    calls = [
        call
        for member_id, exchange_id in pending
        for call in (_erase(client, admin_key, member_id), resolve(client, key, exchange_id, "fail"))
    ]
    answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [200] * len(calls), [a.text for a in answers if a.is_error]
    await _assert_given_back(app, client, key, pending, "failed")


async def test_the_exchange_time_out_and_erasures_of_its_members_at_once_all_land(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    """The job took every due exchange under lock and then, one by one, each member's account; an erasure
    under way held the account and waited for the exchange: a deadlock on PostgreSQL, the job failed. A member
    an erasure holds is left to the job's next run."""
    key, pending = await _members_with_an_exchange_pending(app, client, admin_key, pos_key, "race-expiry", 12)
    clock.advance(timedelta(minutes=2))
    erasures = [_erase(client, admin_key, member_id) for member_id, _ in pending]
    expired, *answers = await asyncio.gather(run_exchange_expiry(app), *erasures)
    assert [a.status_code for a in answers] == [200] * len(pending), [a.text for a in answers if a.is_error]
    assert expired + await run_exchange_expiry(app) == len(pending)
    await _assert_given_back(app, client, key, pending, "expired")
