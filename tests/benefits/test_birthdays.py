"""The birthday job gives each birthday gift of the member's tier as a coupon, once a year."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, event, text

from loyalty_api.benefits.birthdays import issue_birthday_gifts, key_birthdays
from loyalty_api.clock import FrozenClock
from loyalty_api.db.engine import READ_ONLY
from loyalty_api.db.uow import UnitsOfWork
from tests.builders import add_tier, enrol
from tests.conftest import bearer
from tests.databases import is_postgres, side_engine, until_waiting_for_a_lock
from tests.inspect_db import events
from tests.partners.helpers import link, register_partner
from tests.points.helpers import set_program
from tests.subscriptions.helpers import add_plan, subscribe_paid

GIFT = {
    "kind": "birthday_gift",
    "properties": {
        "coupon_name": "生日快乐 50 元券",
        "coupon": {"kind": "fixed_discount", "amount": 5000},
        "valid_days": 30,
    },
}


async def run_job(app: FastAPI) -> int:
    units: UnitsOfWork = app.state.units
    return await issue_birthday_gifts(units, batch=2)  # small batches: the walk over pages is exercised


async def coupons(client: httpx.AsyncClient, key: str, member_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/members/{member_id}/coupons", headers=bearer(key))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_members_whose_birthday_it_is_get_their_tiers_gift_once(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    await set_program(client, admin_key)
    gift = await client.post("/v1/benefits", json={"name": "生日礼", **GIFT}, headers=bearer(admin_key))
    assert gift.status_code == 201
    await add_tier(client, admin_key, "member", rank=0, benefit_ids=[gift.json()["id"]])
    # 17 March 2026 begins in Shanghai at 16:00 UTC on the 16th.
    clock.set(datetime(2026, 3, 16, 16, 30, tzinfo=UTC))
    celebrating = await enrol(client, pos_key, birthday="1990-03-17")
    others = [
        await enrol(client, pos_key, birthday="1990-03-16"),  # yesterday in Shanghai, today in UTC
        await enrol(client, pos_key, birthday="1985-03-18"),
        await enrol(client, pos_key),  # no birthday known
    ]
    assert await run_job(app) == 1
    assert await run_job(app) == 0  # the same day again: nothing more

    [coupon] = await coupons(client, pos_key, celebrating["id"])
    assert (coupon["name"], coupon["kind"], coupon["properties"]["amount"]) == (
        "生日快乐 50 元券",
        "fixed_discount",
        5000,
    )
    assert coupon["valid_from"] == "2026-03-16T16:00:00Z"
    assert coupon["valid_until"] == "2026-04-15T16:00:00Z"
    assert coupon["source"] == {"type": "birthday_gift", "id": gift.json()["id"]}
    for other in others:
        assert await coupons(client, pos_key, other["id"]) == []
    [issued] = await events(app, "coupon.issued")
    assert issued["payload"]["member_id"] == celebrating["id"]

    clock.set(datetime(2027, 3, 17, 1, 0, tzinfo=UTC))  # a year later: a new gift
    # With the 16th's, which this worker, not run since, missed the day before.
    assert await run_job(app) == 2
    assert len(await coupons(client, pos_key, celebrating["id"])) == 2


async def test_no_gift_without_a_birthday_gift_benefit_or_for_a_suspended_member(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    gift = await client.post("/v1/benefits", json={"name": "生日礼", **GIFT}, headers=bearer(admin_key))
    await add_tier(client, admin_key, "member", rank=0)
    await add_tier(client, admin_key, "gold", rank=1, threshold=1_000_000, benefit_ids=[gift.json()["id"]])
    member = await enrol(client, pos_key, birthday="1990-03-16")  # START is the 16th in Shanghai too
    assert await run_job(app) == 0  # their tier gives no gift
    override = {"tier": "gold", "until": "2026-12-31T00:00:00Z", "reason": "test"}
    response = await client.put(
        f"/v1/members/{member['id']}/tier/override", json=override, headers=bearer(admin_key)
    )
    assert response.status_code == 200
    response = await client.patch(
        f"/v1/members/{member['id']}", json={"status": "suspended"}, headers=bearer(admin_key)
    )
    assert response.status_code == 200
    assert await run_job(app) == 0
    response = await client.patch(
        f"/v1/members/{member['id']}", json={"status": "active"}, headers=bearer(admin_key)
    )
    assert await run_job(app) == 1


@pytest.mark.skipif(not is_postgres(), reason="it watches the job wait for a lock in pg_stat_activity")
@pytest.mark.parametrize(
    ("change", "given"),
    [
        ("UPDATE members SET status = 'suspended' WHERE id = :m", []),
        ("UPDATE members SET tier_id = :silver WHERE id = :m", ["生日咖啡券"]),
        # As the partner's unlinking does: the member's row locked, then the link gone.
        (
            "SELECT id FROM members WHERE id = :m FOR NO KEY UPDATE; "
            "DELETE FROM partner_links WHERE member_id = :m",
            ["生日快乐 50 元券"],
        ),
    ],
    ids=["suspended", "moved to a tier without a gift", "unlinked from the partner"],
)
async def test_the_gifts_follow_a_change_committed_while_the_job_runs(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, change: str, given: list[str]
) -> None:
    """The job lists those celebrating, with their standing, in one transaction and gives each their gifts in
    another: an operator's change that commits in between (here under way as the job starts, and committed
    once the job waits for it) is what the gifts follow."""
    await set_program(client, admin_key)
    gift = await client.post("/v1/benefits", json={"name": "生日礼", **GIFT}, headers=bearer(admin_key))
    await add_tier(client, admin_key, "member", rank=0, benefit_ids=[gift.json()["id"]])
    silver = await add_tier(client, admin_key, "silver", rank=1, threshold=1_000_000)
    coffee = {"name": "咖啡生日礼", **GIFT, "properties": {**GIFT["properties"], "coupon_name": "生日咖啡券"}}
    coffee_id = (await client.post("/v1/benefits", json=coffee, headers=bearer(admin_key))).json()["id"]
    cafe = await register_partner(app, client, admin_key, "cafe", benefit_ids=[coffee_id])
    member = await enrol(client, pos_key, birthday="1990-03-16")  # START is the 16th in Shanghai too
    await link(client, pos_key, cafe, member["id"], "cafe", "CAFE-1")
    units: UnitsOfWork = app.state.units
    engine = side_engine(units.settings)
    try:
        async with engine.connect() as operator, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            for statement in change.split("; "):
                await operator.execute(
                    text(statement), {"m": uuid.UUID(member["id"]), "silver": uuid.UUID(silver["id"])}
                )
            job = asyncio.ensure_future(run_job(app))
            await until_waiting_for_a_lock(watcher, job)  # the job waits for the member's row
            await operator.commit()
            assert await job == len(given)
    finally:
        await engine.dispose()
    assert sorted(c["name"] for c in await coupons(client, admin_key, member["id"])) == sorted(given)
    assert len(await events(app, "coupon.issued")) == len(given)


async def test_a_paid_plans_birthday_gift_is_given_and_one_also_of_the_tier_once(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
) -> None:
    await set_program(client, admin_key)
    gift = await client.post("/v1/benefits", json={"name": "生日礼", **GIFT}, headers=bearer(admin_key))
    tea = await client.post(
        "/v1/benefits",
        json={"name": "生日茶", **GIFT, "properties": {**GIFT["properties"], "coupon_name": "生日茶券"}},
        headers=bearer(admin_key),
    )
    assert (gift.status_code, tea.status_code) == (201, 201)
    await add_tier(client, admin_key, "member", rank=0, benefit_ids=[gift.json()["id"]])
    await add_plan(client, admin_key, "plus", benefit_ids=[gift.json()["id"], tea.json()["id"]])
    subscriber = await enrol(client, pos_key, birthday="1990-03-16")  # START is the 16th in Shanghai
    await subscribe_paid(client, ecommerce_key, subscriber["id"], "plus")
    on_the_tier = await enrol(client, pos_key, birthday="1991-03-16")
    assert await run_job(app) == 3
    assert sorted(c["name"] for c in await coupons(client, pos_key, subscriber["id"])) == [
        "生日快乐 50 元券",
        "生日茶券",
    ]
    assert [c["name"] for c in await coupons(client, pos_key, on_the_tier["id"])] == ["生日快乐 50 元券"]
    assert await run_job(app) == 0


async def test_a_partners_joint_birthday_gift_reaches_only_the_members_linked_to_it(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    await add_tier(client, admin_key, "member", rank=0)
    coffee = await client.post(
        "/v1/benefits",
        json={
            "name": "咖啡生日礼",
            **GIFT,
            "properties": {**GIFT["properties"], "coupon_name": "生日咖啡券"},
        },
        headers=bearer(admin_key),
    )
    assert coffee.status_code == 201, coffee.text
    cafe = await register_partner(app, client, admin_key, "cafe", benefit_ids=[coffee.json()["id"]])
    linked = await enrol(client, pos_key, birthday="1990-03-16")  # START is the 16th in Shanghai
    await link(client, pos_key, cafe, linked["id"], "cafe", "CAFE-1")
    not_linked = await enrol(client, pos_key, birthday="1990-03-16")
    assert await run_job(app) == 1
    assert [c["name"] for c in await coupons(client, pos_key, linked["id"])] == ["生日咖啡券"]
    assert await coupons(client, pos_key, not_linked["id"]) == []


async def write(app: FastAPI, sql: str, **params: Any) -> None:
    units: UnitsOfWork = app.state.units
    async with units.database.engine.begin() as connection:
        await connection.execute(text(sql), params)


async def test_the_job_reads_only_the_members_whose_birthday_it_is(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await set_program(client, admin_key)
    gift = await client.post("/v1/benefits", json={"name": "生日礼", **GIFT}, headers=bearer(admin_key))
    await add_tier(client, admin_key, "member", rank=0, benefit_ids=[gift.json()["id"]])
    clock.set(datetime(2026, 3, 16, 16, 30, tzinfo=UTC))  # 17 March in Shanghai
    celebrating = await enrol(client, pos_key, birthday="1990-03-17")
    others = [await enrol(client, pos_key, birthday=f"1980-{month:02d}-16") for month in range(1, 13)]
    others.append(await enrol(client, pos_key, birthday="1990-03-18"))
    units: UnitsOfWork = app.state.units
    decrypted: list[str] = []
    decrypt = units.vault.decrypt

    def counting_decrypt(token: str) -> str:
        decrypted.append(token)
        return decrypt(token)

    # The vault counts what the job decrypts: members keyed at enrolment need none of it.
    monkeypatch.setattr(units.vault, "decrypt", counting_decrypt)
    assert await run_job(app) == 1
    assert decrypted == []
    assert len(await coupons(client, pos_key, celebrating["id"])) == 1
    for other in others:
        assert await coupons(client, pos_key, other["id"]) == []


async def test_a_birthday_on_29_february_is_celebrated_on_the_28th_in_common_years(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    await set_program(client, admin_key)
    gift = await client.post("/v1/benefits", json={"name": "生日礼", **GIFT}, headers=bearer(admin_key))
    await add_tier(client, admin_key, "member", rank=0, benefit_ids=[gift.json()["id"]])
    leapling = await enrol(client, pos_key, birthday="2000-02-29")
    clock.set(datetime(2027, 2, 27, 16, 30, tzinfo=UTC))  # 28 February 2027 in Shanghai
    assert await run_job(app) == 1
    clock.set(datetime(2028, 2, 27, 16, 30, tzinfo=UTC))  # 28 February 2028: a leap year, not yet
    assert await run_job(app) == 0
    clock.set(datetime(2028, 2, 28, 16, 30, tzinfo=UTC))  # 29 February 2028
    assert await run_job(app) == 1
    assert len(await coupons(client, pos_key, leapling["id"])) == 2


@pytest.mark.parametrize(
    ("timezone", "birthday", "valid_from", "valid_until"),
    [
        # Berlin moves its clocks on an hour on 29 March 2026: the week of a 25 March birthday ends at
        # midnight on 1 April there (22:00 UTC), not 01:00 (7 times 24 hours).
        ("Europe/Berlin", "1990-03-25", "2026-03-24T23:00:00Z", "2026-03-31T22:00:00Z"),
        # It moves them back on 25 October: the week of a 20 October birthday ends at midnight on 27 October
        # there (23:00 UTC), not 23:00 on the 26th.
        ("Europe/Berlin", "1990-10-20", "2026-10-19T22:00:00Z", "2026-10-26T23:00:00Z"),
        # Santiago's clocks go from midnight to 01:00 on 6 September 2026: the week of a 30 August birthday
        # ends as 6 September begins, at 01:00 there (04:00 UTC).
        ("America/Santiago", "1990-08-30", "2026-08-30T04:00:00Z", "2026-09-06T04:00:00Z"),
    ],
    ids=["berlin-spring", "berlin-autumn", "santiago-midnight-skipped"],
)
async def test_a_week_s_gift_runs_from_the_birthday_s_midnight_to_midnight_a_week_on_across_a_clock_change(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
    timezone: str,
    birthday: str,
    valid_from: str,
    valid_until: str,
) -> None:
    await set_program(client, admin_key, timezone=timezone)
    offer = {"kind": "fixed_discount", "amount": 500}
    week = {"coupon_name": "Happy birthday", "coupon": offer, "valid_days": 7}
    gift = await client.post(
        "/v1/benefits",
        json={"name": "Birthday", "kind": "birthday_gift", "properties": week},
        headers=bearer(admin_key),
    )
    assert gift.status_code == 201, gift.text
    await add_tier(client, admin_key, "member", rank=0, benefit_ids=[gift.json()["id"]])
    member = await enrol(client, pos_key, birthday=birthday)
    clock.set(datetime.fromisoformat(valid_from) + timedelta(hours=12))  # the birthday, at noon or so
    assert await run_job(app) == 1
    [coupon] = await coupons(client, pos_key, member["id"])
    assert (coupon["valid_from"], coupon["valid_until"]) == (valid_from, valid_until)


async def members_born_in(client: httpx.AsyncClient, key: str, month: int) -> set[str]:
    response = await client.get(f"/v1/members?birthday_month={month}", headers=bearer(key))
    assert response.status_code == 200, response.text
    return {member["id"] for member in response.json()["items"]}


async def test_members_are_listed_by_birthday_month_as_their_birthday_changes(
    client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    march = await enrol(client, pos_key, birthday="1990-03-17")
    july = await enrol(client, pos_key, birthday="1975-07-01")
    await enrol(client, pos_key)  # no birthday known
    assert await members_born_in(client, admin_key, 3) == {march["id"]}
    assert await members_born_in(client, admin_key, 7) == {july["id"]}
    response = await client.patch(
        f"/v1/members/{march['id']}", json={"birthday": "1990-07-20"}, headers=bearer(admin_key)
    )
    assert response.status_code == 200
    assert await members_born_in(client, admin_key, 3) == set()
    assert await members_born_in(client, admin_key, 7) == {march["id"], july["id"]}
    for month in ("0", "13", "july"):
        response = await client.get(f"/v1/members?birthday_month={month}", headers=bearer(admin_key))
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"


async def test_birthdays_stored_before_birthday_keys_get_theirs_from_the_job_once(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    await set_program(client, admin_key)
    gift = await client.post("/v1/benefits", json={"name": "生日礼", **GIFT}, headers=bearer(admin_key))
    await add_tier(client, admin_key, "member", rank=0, benefit_ids=[gift.json()["id"]])
    clock.set(datetime(2026, 3, 16, 16, 30, tzinfo=UTC))  # 17 March in Shanghai
    celebrating = await enrol(client, pos_key, birthday="1990-03-17")
    july = await enrol(client, pos_key, birthday="1975-07-01")
    # As migration 0019 leaves a member enrolled before it: a birthday, no keys.
    await write(app, "UPDATE members SET birthday_day_key = NULL, birthday_month_key = NULL")
    assert await members_born_in(client, admin_key, 7) == set()
    assert await run_job(app) == 1
    assert await members_born_in(client, admin_key, 7) == {july["id"]}
    assert len(await coupons(client, pos_key, celebrating["id"])) == 1
    assert await key_birthdays(app.state.units) == 0  # nothing left to key


async def test_a_birthday_that_cannot_be_read_is_left_unkeyed_and_the_others_are_keyed(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    damaged = await enrol(client, pos_key, birthday="1990-07-17")
    july = await enrol(client, pos_key, birthday="1975-07-01")
    await write(app, "UPDATE members SET birthday_day_key = NULL, birthday_month_key = NULL")
    await write(
        app,
        "UPDATE members SET birthday_encrypted = 'unreadable' WHERE member_number = :n",
        n=damaged["member_number"],
    )
    assert await key_birthdays(app.state.units, batch=1) >= 1
    assert july["id"] in await members_born_in(client, admin_key, 7)
    assert damaged["id"] not in await members_born_in(client, admin_key, 7)


def shanghai(month: int, day: int, hour: int, year: int = 2026) -> datetime:
    """An instant on the programme's clock (Asia/Shanghai, UTC+8, no daylight saving)."""
    return datetime(year, month, day, hour, tzinfo=UTC) - timedelta(hours=8)


async def add_gifts(client: httpx.AsyncClient, admin_key: str) -> None:
    """The entry tier's gifts: a coupon valid 30 days, and one for a day."""
    month = await client.post("/v1/benefits", json={"name": "生日礼", **GIFT}, headers=bearer(admin_key))
    day_only = {
        "coupon_name": "生日当天券",
        "coupon": {"kind": "fixed_discount", "amount": 800},
        "valid_days": 1,
    }
    day = await client.post(
        "/v1/benefits",
        json={"name": "生日当天", "kind": "birthday_gift", "properties": day_only},
        headers=bearer(admin_key),
    )
    assert (month.status_code, day.status_code) == (201, 201)
    await add_tier(client, admin_key, "member", rank=0, benefit_ids=[month.json()["id"], day.json()["id"]])


class TestBirthdaysTheWorkerMissed:
    """The worker was down (an outage, a long deploy): its next run gives the gifts of the birthdays it
    missed, a week back at most, to those who were members on their birthday, once, valid from the day they
    are given (as the plans' coupons a late run gives: not spent already by the outage)."""

    async def test_a_birthday_that_fell_while_the_worker_was_down_gets_its_gift_when_it_comes_back(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_gifts(client, admin_key)
        clock.set(shanghai(3, 16, 20))
        assert await run_job(app) == 0  # the worker's last run: the 16th, nobody's birthday
        missed = await enrol(client, pos_key, birthday="1990-03-17")
        missed_too = await enrol(client, pos_key, birthday="1988-03-18")
        today = await enrol(client, pos_key, birthday="1995-03-19")
        long_before = await enrol(client, pos_key, birthday="1990-03-10")
        clock.set(shanghai(3, 19, 9))  # the worker comes back on the 19th
        # Enrolled on the 19th: not a member on their birthday the day before.
        too_late = await enrol(client, pos_key, birthday="1991-03-18")

        assert await run_job(app) == 6  # both gifts of the 17th, the 18th and the 19th
        assert await run_job(app) == 0  # not twice
        for member in (missed, missed_too, today):
            given = {
                c["name"]: (c["valid_from"], c["valid_until"])
                for c in await coupons(client, pos_key, member["id"])
            }
            # From the start of the 19th, the day the gifts are given: the outage does not eat their days.
            assert given == {
                "生日快乐 50 元券": ("2026-03-18T16:00:00Z", "2026-04-17T16:00:00Z"),
                "生日当天券": ("2026-03-18T16:00:00Z", "2026-03-19T16:00:00Z"),
            }
        assert await coupons(client, pos_key, long_before["id"]) == []
        assert await coupons(client, pos_key, too_late["id"]) == []

        clock.set(shanghai(3, 20, 9))  # and the next day's run gives nothing again
        assert await run_job(app) == 0

    async def test_a_run_looks_back_seven_days_at_most(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_gifts(client, admin_key)
        clock.set(shanghai(3, 1, 20))
        assert await run_job(app) == 0
        eight_days_back = await enrol(client, pos_key, birthday="1990-03-04")
        seven_days_back = await enrol(client, pos_key, birthday="1990-03-05")
        clock.set(shanghai(3, 12, 9))  # down ten days
        assert await run_job(app) == 2
        assert await coupons(client, pos_key, eight_days_back["id"]) == []
        assert len(await coupons(client, pos_key, seven_days_back["id"])) == 2

    async def test_a_birthday_missed_across_the_new_year_is_that_years_gift(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_gifts(client, admin_key)
        member = await enrol(client, pos_key, birthday="1990-12-31")
        clock.set(shanghai(12, 30, 20))
        assert await run_job(app) == 0
        clock.set(shanghai(1, 2, 9, year=2027))  # down over the new year
        assert await run_job(app) == 2
        # 2026's gifts: the birthday of 2027 still gets its own.
        clock.set(shanghai(12, 31, 9, year=2027))
        assert await run_job(app) == 2
        assert len(await coupons(client, pos_key, member["id"])) == 4

    async def test_a_clock_stepped_back_across_midnight_gives_nothing_twice(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_gifts(client, admin_key)
        yesterday = await enrol(client, pos_key, birthday="1990-03-17")
        today = await enrol(client, pos_key, birthday="1990-03-18")
        clock.set(shanghai(3, 17, 12))
        assert await run_job(app) == 2
        clock.set(shanghai(3, 18, 0) + timedelta(seconds=20))
        assert await run_job(app) == 2
        clock.set(shanghai(3, 18, 0) - timedelta(seconds=10))  # NTP steps the clock back 30 seconds
        assert await run_job(app) == 0
        clock.set(shanghai(3, 18, 1))
        assert await run_job(app) == 0
        assert len(await coupons(client, pos_key, yesterday["id"])) == 2
        assert len(await coupons(client, pos_key, today["id"])) == 2

    async def test_members_given_already_are_passed_over_without_a_writing_transaction_each(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """Every hourly run of the day, and the first after midnight (which looks at yesterday again, as its
        last complete run started then), read the day's members: those given their gifts already cost a
        writing transaction each that gave nothing, about 2,700 a day per million members after midnight
        alone. They are now passed over in the run's reads."""
        await set_program(client, admin_key)
        await add_gifts(client, admin_key)
        celebrating = [await enrol(client, pos_key, birthday="1990-03-17") for _ in range(3)]
        clock.set(shanghai(3, 16, 20))
        with writing_transactions(app) as idle_run:
            assert await run_job(app) == 0  # a run with nobody to give anything to
        clock.set(shanghai(3, 17, 9))
        assert await run_job(app) == 6

        for later in (shanghai(3, 17, 10), shanghai(3, 18, 0) + timedelta(minutes=5)):
            clock.set(later)
            with writing_transactions(app) as begun:
                assert await run_job(app) == 0
            assert len(begun) == len(idle_run), later  # the run's own (its mark), none for the members
        for member in celebrating:
            assert len(await coupons(client, pos_key, member["id"])) == 2


@contextmanager
def writing_transactions(app: FastAPI) -> Iterator[list[bool]]:
    """The writing transactions begun on the app's database meanwhile (one each)."""
    begun: list[bool] = []
    engine = app.state.units.database.engine.sync_engine

    def note(connection: Connection) -> None:
        if not connection.get_execution_options().get(READ_ONLY, False):
            begun.append(True)

    event.listen(engine, "begin", note)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", note)
