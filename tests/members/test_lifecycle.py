"""Lifecycle stages: new, active, at risk, lapsed, churned, from the days since a member's last purchase. A
purchase makes a member active at once; time moves them on through the lifecycle job, which looks only at
members whose stage is due to change."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from loyalty_api.clock import FrozenClock, format_instant
from loyalty_api.members.jobs import assess_lifecycles
from loyalty_api.members.lifecycle import Stage, Thresholds, assess
from loyalty_api.members.models import Member
from tests.builders import enrol
from tests.conftest import bearer, units_of
from tests.inspect_db import events, rows
from tests.points.helpers import DEMO_LIKE_PROGRAM, earn, set_program

THRESHOLDS = Thresholds(at_risk_days=30, lapsed_days=90, churned_days=365)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class TestAssess:
    @pytest.mark.parametrize(
        ("bought_days_ago", "stage", "due_in_days"),
        [
            (0, Stage.active, 30),
            (29, Stage.active, 1),
            (30, Stage.at_risk, 60),
            (89, Stage.at_risk, 1),
            (90, Stage.lapsed, 275),
            (364, Stage.lapsed, 1),
            (365, Stage.churned, None),
            (2000, Stage.churned, None),
        ],
    )
    def test_days_since_the_last_purchase_decide(
        self, bought_days_ago: int, stage: Stage, due_in_days: int | None
    ) -> None:
        now = T0 + timedelta(days=400)
        found = assess(
            enrolled_at=T0,
            last_purchase_at=now - timedelta(days=bought_days_ago),
            now=now,
            thresholds=THRESHOLDS,
        )
        assert found.stage is stage
        assert found.due == (None if due_in_days is None else now + timedelta(days=due_in_days))

    def test_before_any_purchase_a_member_is_new_then_counts_from_enrolment(self) -> None:
        assert assess(enrolled_at=T0, last_purchase_at=None, now=T0, thresholds=THRESHOLDS).stage is Stage.new
        later = T0 + timedelta(days=30)
        assert (
            assess(enrolled_at=T0, last_purchase_at=None, now=later, thresholds=THRESHOLDS).stage
            is Stage.at_risk
        )


async def stage_of(client: httpx.AsyncClient, key: str, member_id: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/members/{member_id}", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    lifecycle: dict[str, Any] = answer.json()["lifecycle"]
    return lifecycle


async def changes(app: FastAPI, member_id: str) -> list[tuple[str, str]]:
    return [
        (e["payload"]["previous"], e["payload"]["stage"])
        for e in await events(app, "member.lifecycle_changed")
        if e["payload"]["member_id"] == member_id
    ]


async def run_job(app: FastAPI) -> int:
    return await assess_lifecycles(units_of(app))


class TestStages:
    async def test_a_member_goes_through_every_stage_and_a_purchase_brings_them_back(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = (await enrol(client, pos_key))["id"]
        assert await stage_of(client, pos_key, member) == {
            "stage": "new",
            "since": format_instant(clock.now()),
        }

        clock.set(clock.now() + timedelta(days=30))
        assert await run_job(app) >= 1
        assert (await stage_of(client, pos_key, member))["stage"] == "at_risk"

        await earn(client, pos_key, member, 5_000)  # active at once, without the job
        bought = clock.now()
        assert await stage_of(client, pos_key, member) == {"stage": "active", "since": format_instant(bought)}

        for days, stage in ((29, "active"), (30, "at_risk"), (90, "lapsed"), (365, "churned")):
            clock.set(bought + timedelta(days=days))
            await run_job(app)
            assert (await stage_of(client, pos_key, member))["stage"] == stage, days
        assert await changes(app, member) == [
            ("new", "at_risk"),
            ("at_risk", "active"),
            ("active", "at_risk"),
            ("at_risk", "lapsed"),
            ("lapsed", "churned"),
        ]
        [due] = await rows(
            app,
            "SELECT lifecycle_due_at FROM members WHERE member_number = :n",
            n=(await client.get(f"/v1/members/{member}", headers=bearer(pos_key))).json()["member_number"],
        )
        assert due["lifecycle_due_at"] is None  # churned: time changes nothing more

    async def test_a_job_run_late_dates_the_stage_from_when_the_days_ran_out(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        """The worker was down: the member's stage, and its events, say when the days without a purchase ran
        out, not when the job came (days that ran out twice while it was down make an event each)."""
        await set_program(client, admin_key)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 1_000)
        bought = clock.now()
        clock.set(bought + timedelta(days=35))
        await run_job(app)
        at_risk = format_instant(bought + timedelta(days=30))
        assert await stage_of(client, pos_key, member) == {"stage": "at_risk", "since": at_risk}
        clock.set(bought + timedelta(days=400))  # past lapsed (day 90) and churned (day 365) at once
        await run_job(app)
        churned = format_instant(bought + timedelta(days=365))
        assert await stage_of(client, pos_key, member) == {"stage": "churned", "since": churned}
        told = [
            (e["payload"]["previous"], e["payload"]["stage"], e["payload"]["at"])
            for e in await events(app, "member.lifecycle_changed")
            if e["payload"]["member_id"] == member
        ]
        assert told == [
            ("new", "active", format_instant(bought)),
            ("active", "at_risk", at_risk),
            ("at_risk", "lapsed", format_instant(bought + timedelta(days=90))),
            ("lapsed", "churned", churned),
        ]

    async def test_stages_passed_while_the_worker_was_down_are_each_told_in_order(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        """An active member who went at risk (day 30) and then lapsed (day 90) while the worker was down: a
        receiver that acts on a member entering at_risk, or lapsed, hears of both, in order, each at when it
        was reached, as an on-time worker would have told them."""
        await set_program(client, admin_key)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 1_000)
        bought = clock.now()
        clock.set(bought + timedelta(days=10))
        await run_job(app)  # nothing due yet: active
        clock.set(bought + timedelta(days=95))  # down from day 10 to day 95
        await run_job(app)
        lapsed = format_instant(bought + timedelta(days=90))
        assert await stage_of(client, pos_key, member) == {"stage": "lapsed", "since": lapsed}
        told = [
            (e["payload"]["previous"], e["payload"]["stage"], e["payload"]["at"])
            for e in await events(app, "member.lifecycle_changed")
            if e["payload"]["member_id"] == member
        ]
        assert told == [
            ("new", "active", format_instant(bought)),
            ("active", "at_risk", format_instant(bought + timedelta(days=30))),
            ("at_risk", "lapsed", lapsed),
        ]

    async def test_buying_again_keeps_a_member_active_without_an_event(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 1_000)
        start = clock.now()
        clock.set(start + timedelta(days=20))
        await earn(client, pos_key, member, 1_000)
        clock.set(start + timedelta(days=31))  # 31 days after the first purchase, 11 after the last
        await run_job(app)
        assert await stage_of(client, pos_key, member) == {"stage": "active", "since": format_instant(start)}
        assert await changes(app, member) == [("new", "active")]

    async def test_a_purchase_recorded_late_never_puts_a_member_further_gone(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        days = {"lifecycle_at_risk_days": 5, "lifecycle_lapsed_days": 20, "lifecycle_churned_days": 60}
        await set_program(client, admin_key, **days)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 1_000)
        clock.set(clock.now() + timedelta(days=10))
        await run_job(app)
        at_risk = await stage_of(client, pos_key, member)
        assert at_risk["stage"] == "at_risk"
        # An offline till sends an older purchase (21 days ago: lapsed by itself); the latest still counts.
        late = format_instant(clock.now() - timedelta(days=21))
        await earn(client, pos_key, member, 500, occurred_at=late)
        assert await stage_of(client, pos_key, member) == at_risk
        assert await changes(app, member) == [("new", "active"), ("active", "at_risk")]
        # One from 2 days ago is more recent than the latest known: it makes the member active again.
        await earn(client, pos_key, member, 500, occurred_at=format_instant(clock.now() - timedelta(days=2)))
        assert (await stage_of(client, pos_key, member))["stage"] == "active"

    async def test_new_thresholds_reassess_every_member(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 1_000)
        clock.set(clock.now() + timedelta(days=15))
        await run_job(app)
        assert (await stage_of(client, pos_key, member))["stage"] == "active"
        await set_program(
            client, admin_key, lifecycle_at_risk_days=10, lifecycle_lapsed_days=14, lifecycle_churned_days=60
        )
        changed = clock.now()
        clock.set(changed + timedelta(hours=1))
        await run_job(app)
        # Lapsed by the new days since day 14, but only from the change: active until then.
        lapsed = {"stage": "lapsed", "since": format_instant(changed)}
        assert await stage_of(client, pos_key, member) == lapsed
        # Never at risk before the change, nor after it: one event, straight to lapsed.
        assert await changes(app, member) == [("new", "active"), ("active", "lapsed")]


class TestJob:
    async def test_it_looks_only_at_members_whose_stage_is_due(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await run_job(app)  # what other tests left due
        early = [(await enrol(client, pos_key))["id"] for _ in range(3)]
        clock.set(clock.now() + timedelta(days=20))
        later = [(await enrol(client, pos_key))["id"] for _ in range(20)]
        clock.set(clock.now() + timedelta(days=11))
        assert await run_job(app) == 3  # the early three turned 30 days; the twenty are 11 days in
        assert await run_job(app) == 0
        assert {(await stage_of(client, pos_key, m))["stage"] for m in early} == {"at_risk"}
        assert {(await stage_of(client, pos_key, m))["stage"] for m in later} == {"new"}

    async def test_a_member_from_before_lifecycles_gets_a_stage_without_an_event(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 1_000)
        # As the migration leaves an existing member: stage new, never assessed, due at once.
        async with units_of(app).begin() as uow:
            await uow.session.execute(
                update(Member)
                .where(Member.id == uuid.UUID(member["id"]))
                .values(lifecycle_stage="new", lifecycle_since=None, lifecycle_due_at=Member.created_at)
            )
        clock.set(clock.now() + timedelta(days=40))
        await run_job(app)
        assert await stage_of(client, pos_key, member["id"]) == {
            "stage": "at_risk",
            "since": format_instant(clock.now()),
        }
        assert await changes(app, member["id"]) == [
            ("new", "active")
        ]  # the earn's, before the reset; none since

    async def test_an_erased_members_stage_moves_in_the_figures_without_an_event(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        """After `member.erased`, receivers heard `member.lifecycle_changed` about the erased member (active
        to at_risk a month on, a win-back for someone no read finds any more). Their stage still moves, as
        the overview counts it, but no event says so."""
        await set_program(client, admin_key)
        start = clock.now()
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 1_000)
        erased = await client.post(f"/v1/members/{member['id']}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text
        clock.set(clock.now() + timedelta(days=40))

        assert await run_job(app) == 1

        assert await changes(app, member["id"]) == [("new", "active")]  # the earn's, before the erasure
        window = {"from": format_instant(start), "to": format_instant(clock.now())}
        overview = await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))
        assert overview.status_code == 200, overview.text
        assert overview.json()["members_by_lifecycle"]["at_risk"] == 1


class TestClocks:
    async def test_a_worker_whose_clock_is_behind_still_finishes(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await enrol(client, pos_key)
        clock.set(clock.now() + timedelta(hours=1))
        changed = clock.now()
        await set_program(client, admin_key, lifecycle_at_risk_days=20)  # every member to be assessed again
        clock.set(changed - timedelta(minutes=5))  # the worker's clock, behind the API's
        assert await asyncio.wait_for(run_job(app), timeout=30) >= 1
        assert await asyncio.wait_for(run_job(app), timeout=30) == 0


class TestListsAndSettings:
    async def test_members_can_be_listed_by_stage(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        buyer = (await enrol(client, pos_key))["id"]
        idle = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, buyer, 1_000)
        listed = await client.get(
            "/v1/members", params={"lifecycle": "active", "limit": 200}, headers=bearer(admin_key)
        )
        assert listed.status_code == 200, listed.text
        ids = {m["id"] for m in listed.json()["items"]}
        assert buyer in ids and idle not in ids
        assert {m["lifecycle"]["stage"] for m in listed.json()["items"]} == {"active"}
        bad = await client.get("/v1/members", params={"lifecycle": "sleepy"}, headers=bearer(admin_key))
        assert bad.status_code == 422

    @pytest.mark.parametrize(
        ("days", "field"),
        [
            ({"lifecycle_at_risk_days": 30, "lifecycle_lapsed_days": 30}, "lifecycle_lapsed_days"),
            ({"lifecycle_lapsed_days": 400, "lifecycle_churned_days": 365}, "lifecycle_churned_days"),
            ({"lifecycle_at_risk_days": 0}, "lifecycle_at_risk_days"),
        ],
    )
    async def test_thresholds_must_increase(
        self, client: httpx.AsyncClient, admin_key: str, days: dict[str, int], field: str
    ) -> None:
        answer = await client.put("/v1/program", json=DEMO_LIKE_PROGRAM | days, headers=bearer(admin_key))
        assert answer.status_code == 422, answer.text
        assert [e["field"] for e in answer.json()["errors"]] == [field]
