"""Paid-membership churn in the overview: of the members paying at the window's start, the share paying for
no subscription at its end, as a decimal string (never a float), in JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.conftest import START, bearer
from tests.partners.helpers import iso
from tests.points.helpers import set_program
from tests.subscriptions.helpers import (
    add_plan,
    new_paid_subscriber,
    new_subscriber,
    next_payment_ref,
    pay,
    post_action,
    read,
    run_job,
    subscribe,
    subscribe_paid,
)


async def cancel_now(client: httpx.AsyncClient, key: str, subscription_id: str) -> None:
    response = await post_action(client, key, subscription_id, "cancel", {"at_period_end": False})
    assert response.status_code == 200, response.text


async def trial_paid_ahead_then_canceled(
    client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, billing_key: str, clock: FrozenClock
) -> dict[str, Any]:
    """A member paying for plus at START moves to a trial paid ahead (START + 1) and cancels it (START + 4),
    which names its fee `unused`; the clock at START + 5. Returns the trial."""
    await set_program(client, admin_key)
    await add_plan(client, admin_key, "plus", price=3_000, unit="month")
    await add_plan(client, admin_key, "trial", price=3_000, unit="month", trial_days=30)
    clock.set(START - timedelta(days=10))
    member, plus = await new_paid_subscriber(client, ecommerce_key, "plus")
    clock.set(START + timedelta(days=1))
    await cancel_now(client, ecommerce_key, plus["id"])
    trial = await subscribe(client, ecommerce_key, member["id"], "trial")
    await pay(client, billing_key, trial["id"], period=1, amount=3_000)
    clock.set(START + timedelta(days=4))
    response = await post_action(client, ecommerce_key, trial["id"], "cancel", {"at_period_end": True})
    assert response.status_code == 200, response.text  # in its trial to START + 31, its fee unused
    clock.set(START + timedelta(days=5))
    return trial


async def churn_to(client: httpx.AsyncClient, admin_key: str, days: int) -> tuple[int, int]:
    """(paying at START, churned by START + `days`) as the overview reads them now."""
    window = {"from": iso(START), "to": iso(START + timedelta(days=days))}
    answer = await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    return found["paying_members_at_start"], found["churned_members"]


class TestChurn:
    async def test_churn_is_the_share_of_members_paying_at_the_start_whose_subscription_ended(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=3_000, unit="month")
        await add_plan(client, admin_key, "trial", price=3_000, unit="month", trial_days=30)
        clock.set(START - timedelta(days=10))
        subs = {name: (await new_paid_subscriber(client, ecommerce_key, "plus"))[1] for name in "ABCD"}
        _, trialing = await new_subscriber(client, ecommerce_key, "trial")  # E: not paying yet
        clock.set(START - timedelta(days=1))
        await cancel_now(client, ecommerce_key, subs["D"]["id"])  # ended before the window
        window = {"from": iso(START), "to": iso(START + timedelta(days=20))}

        clock.set(START + timedelta(days=1))
        await cancel_now(client, ecommerce_key, subs["A"]["id"])  # churned
        clock.set(START + timedelta(days=2))
        response = await post_action(
            client, ecommerce_key, subs["B"]["id"], "cancel", {"at_period_end": True}
        )
        assert response.status_code == 200  # B's paid period runs past the window: not ended in it
        clock.set(START + timedelta(days=3))
        _, late = await new_paid_subscriber(client, ecommerce_key, "plus")  # F: joined in the window
        clock.set(START + timedelta(days=4))
        await cancel_now(client, ecommerce_key, late["id"])  # not paying at the start: not churn
        await cancel_now(client, ecommerce_key, trialing["id"])  # a trial: never paying
        clock.set(START + timedelta(days=25))

        answer = await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))
        assert answer.status_code == 200, answer.text
        found = answer.json()
        # By hand: paying at the start A, B and C (D had ended, E was in a trial); of them, A ended since.
        paying, churned = 3, 1
        expected = (Decimal(churned) / Decimal(paying)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
        assert (found["paying_members_at_start"], found["churned_members"]) == (paying, churned)
        assert found["churn"] == str(expected) == "0.3333"
        assert isinstance(found["churn"], str)

        as_csv = await client.get(
            "/v1/analytics/overview", params=window, headers=bearer(admin_key, Accept="text/csv")
        )
        figures = {row["figure"]: row["value"] for row in csv.DictReader(io.StringIO(as_csv.text))}
        assert (figures["paying_members_at_start"], figures["churned_members"], figures["churn"]) == (
            "3",
            "1",
            "0.3333",
        )

    async def test_a_trial_whose_first_fee_was_taken_ahead_is_not_paying_yet(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        """Billing may take the first period's fee before the trial ends: the member is still in the trial
        at the window's start, so not paying then (a cancellation would give the fee back unused)."""
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=3_000, unit="month")
        await add_plan(client, admin_key, "trial", price=3_000, unit="month", trial_days=30)
        clock.set(START - timedelta(days=10))
        _, paying = await new_paid_subscriber(client, ecommerce_key, "plus")
        _, trialing = await new_subscriber(client, ecommerce_key, "trial")  # in its trial until START + 20
        clock.set(START - timedelta(days=5))
        await pay(client, billing_key, trialing["id"], period=1, amount=3_000)  # ahead of the trial's end
        clock.set(START + timedelta(days=1))
        await cancel_now(client, ecommerce_key, paying["id"])
        clock.set(START + timedelta(days=5))

        window = {"from": iso(START), "to": iso(START + timedelta(days=3))}
        found = (await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))).json()
        assert (found["paying_members_at_start"], found["churned_members"], found["churn"]) == (
            1,
            1,
            "1.0000",
        )

    async def test_a_member_who_upgraded_out_of_the_trial_is_paying_and_can_churn(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        """An upgrade in a trial ends the trial: the member pays for the period it started from then on."""
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=1_500, unit="month", trial_days=30)
        await add_plan(client, admin_key, "premium", price=3_000, unit="month", family="plus")
        clock.set(START - timedelta(days=20))
        _, sub = await new_subscriber(client, ecommerce_key, "plus")  # its trial would run to START + 10
        clock.set(START - timedelta(days=15))
        upgraded = await post_action(
            client,
            ecommerce_key,
            sub["id"],
            "change-plan",
            {"plan": "premium", "payment_ref": next_payment_ref()},
        )
        assert upgraded.status_code == 200, upgraded.text  # paid period 1 from START - 15
        clock.set(START + timedelta(days=5))
        await cancel_now(client, ecommerce_key, sub["id"])
        clock.set(START + timedelta(days=25))

        window = {"from": iso(START), "to": iso(START + timedelta(days=20))}
        found = (await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))).json()
        assert (found["paying_members_at_start"], found["churned_members"], found["churn"]) == (
            1,
            1,
            "1.0000",
        )

    async def test_no_one_paying_at_the_start_is_no_churn_figure(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        window = {"from": iso(START - timedelta(days=7)), "to": iso(START)}
        found = (await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))).json()
        assert (found["paying_members_at_start"], found["churned_members"], found["churn"]) == (0, 0, None)


class TestChurnIsAMemberWhoStoppedPaying:
    async def test_ending_one_plan_while_another_family_still_pays_is_no_churn(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=3_000, unit="month")
        await add_plan(client, admin_key, "gold", price=9_000, unit="month")  # a family of its own
        clock.set(START - timedelta(days=10))
        member, plus = await new_paid_subscriber(client, ecommerce_key, "plus")
        await subscribe_paid(client, ecommerce_key, member["id"], "gold")
        clock.set(START + timedelta(days=1))
        await cancel_now(client, ecommerce_key, plus["id"])
        clock.set(START + timedelta(days=5))

        window = {"from": iso(START), "to": iso(START + timedelta(days=3))}
        found = (await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))).json()
        # Still paying for gold at the window's end: they did not leave.
        assert (found["paying_members_at_start"], found["churned_members"], found["churn"]) == (
            1,
            0,
            "0.0000",
        )

    async def test_a_member_who_subscribed_again_in_the_window_did_not_churn(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=3_000, unit="month")
        clock.set(START - timedelta(days=10))
        member, plus = await new_paid_subscriber(client, ecommerce_key, "plus")
        _, leaver = await new_paid_subscriber(client, ecommerce_key, "plus")
        clock.set(START + timedelta(days=1))
        await cancel_now(client, ecommerce_key, plus["id"])
        await cancel_now(client, ecommerce_key, leaver["id"])
        clock.set(START + timedelta(days=2))
        await subscribe_paid(client, ecommerce_key, member["id"], "plus")
        clock.set(START + timedelta(days=5))

        window = {"from": iso(START), "to": iso(START + timedelta(days=3))}
        found = (await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))).json()
        assert (found["paying_members_at_start"], found["churned_members"], found["churn"]) == (
            2,
            1,
            "0.5000",
        )


class TestChurnCountsAMemberInATrialPaidAhead:
    """Churn compares two instants: a member paying at `from` has churned unless, at `to`, they still hold a
    paying subscription, or one in its trial whose first fee billing has taken. What happened between (a
    cancel, a new subscription) does not count by itself."""

    async def test_moving_to_a_trial_whose_first_fee_was_taken_ahead_is_no_churn(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=3_000, unit="month")
        await add_plan(client, admin_key, "trial", price=3_000, unit="month", trial_days=30)  # a family
        clock.set(START - timedelta(days=10))
        moved, moved_plus = await new_paid_subscriber(client, ecommerce_key, "plus")
        tried, tried_plus = await new_paid_subscriber(client, ecommerce_key, "plus")
        clock.set(START + timedelta(days=1))
        for plus in (moved_plus, tried_plus):
            await cancel_now(client, ecommerce_key, plus["id"])
        trial = await subscribe(client, ecommerce_key, moved["id"], "trial")  # in its trial past the window
        await subscribe(client, ecommerce_key, tried["id"], "trial")  # a trial billing has taken nothing for
        clock.set(START + timedelta(days=2))
        await pay(client, billing_key, trial["id"], period=1, amount=3_000)  # the first fee, ahead
        clock.set(START + timedelta(days=5))

        window = {"from": iso(START), "to": iso(START + timedelta(days=3))}
        found = (await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))).json()
        # Both paid for plus at the start; at the end one is in a trial paid for, the other in a free one.
        assert (found["paying_members_at_start"], found["churned_members"], found["churn"]) == (
            2,
            1,
            "0.5000",
        )

    async def test_a_trial_paid_ahead_and_canceled_churns_in_the_window_of_its_cancel(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        """A cancel names the fee paid ahead for a refund (`unused`): the member is leaving from then on, and
        a window that ended before the cancel keeps its figure."""
        await trial_paid_ahead_then_canceled(client, admin_key, ecommerce_key, billing_key, clock)
        assert await churn_to(client, admin_key, 3) == (1, 0)  # before the cancel: as it read then
        assert await churn_to(client, admin_key, 5) == (1, 1)  # after it: the member stopped paying


class TestAFeeNamedUnusedKeepsNoOneAfterItsCancel:
    """A cancel names the fee paid ahead for a refund (`unused`): it paid until the cancel and for nothing
    after it, a resume or not (billing is asked for the period again, and a renewal takes only a `succeeded`
    fee). Only a new fee keeps the member again."""

    async def _resumed_after_a_cancel(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> dict[str, Any]:
        """The member of `trial_paid_ahead_then_canceled`, whom the window to START + 5 reads churned,
        resumes the trial (START + 6). Returns the trial."""
        trial = await trial_paid_ahead_then_canceled(client, admin_key, ecommerce_key, billing_key, clock)
        assert await churn_to(client, admin_key, 5) == (1, 1)
        clock.set(START + timedelta(days=6))
        resumed = await post_action(client, ecommerce_key, trial["id"], "resume")
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["state"] == "trialing"  # in its trial to START + 31, its fee still unused
        return trial

    async def test_a_resume_leaves_the_figure_of_a_window_that_ended_before_it_as_it_was(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        await self._resumed_after_a_cancel(client, admin_key, ecommerce_key, billing_key, clock)
        clock.set(START + timedelta(days=7))

        assert await churn_to(client, admin_key, 3) == (1, 0)  # before the cancel: the fee paid then
        assert await churn_to(client, admin_key, 5) == (1, 1)  # as it read before the resume

    async def test_a_resumed_trial_whose_fee_went_unused_keeps_no_one_until_billing_takes_a_new_one(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        trial = await self._resumed_after_a_cancel(client, admin_key, ecommerce_key, billing_key, clock)
        clock.set(START + timedelta(days=8))
        assert await churn_to(client, admin_key, 7) == (1, 1)  # resumed, but nothing paid for its period 1

        await pay(client, billing_key, trial["id"], period=1, amount=3_000)  # billing asked again, and paid
        clock.set(START + timedelta(days=10))
        assert await churn_to(client, admin_key, 7) == (1, 1)  # a window's figure stays
        assert await churn_to(client, admin_key, 9) == (1, 0)


class TestAWorkerThatWasDown:
    @pytest.mark.parametrize("how", ["unpaid", "canceled"])
    async def test_a_subscription_expired_late_ended_when_its_time_ran_out(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
        how: str,
    ) -> None:
        """The worker was down when the subscription's grace (or its canceled period) ran out and expired it
        days later: it ended when its time ran out, not when the job came, and that window's churn counts it
        as the job running on time would have."""
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=3_000, unit="month", grace_days=5)
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")  # paid from START for a month
        if how == "unpaid":
            await pay(client, billing_key, sub["id"], period=2, amount=3_000, status="failed")
            ends = START + timedelta(days=31 + 5)  # grace ends 21 April
        else:
            await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
            ends = START + timedelta(days=31)  # the canceled period ends 16 April
        clock.set(ends + timedelta(days=25))  # the worker's first run after it, in May
        await run_job(app)

        assert (await read(client, ecommerce_key, sub["id"]))["ended_at"] == iso(ends)
        # The window from the day after it was taken to 25 April.
        window = {"from": iso(START + timedelta(days=1)), "to": iso(START + timedelta(days=40))}
        found = (await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))).json()
        assert (found["paying_members_at_start"], found["churned_members"]) == (1, 1)


class TestPastDueIsOneDefinition:
    async def test_a_member_past_due_in_grace_is_paying_at_the_start_and_now_alike(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        """A member whose fee is overdue, in grace, has not left: churn counts them as paying at `from` and
        kept at `to`, and `paying_members` counts them as well, so with no one joining or leaving the paying
        members now are those at the start less the churned. Recurring revenue and the paid-membership report
        still show them as past due, bringing in nothing."""
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=3_000, unit="month", grace_days=5)
        _, renewed = await new_paid_subscriber(client, ecommerce_key, "plus")  # paid from START for a month
        _, late = await new_paid_subscriber(client, ecommerce_key, "plus")  # its next fee never comes
        await pay(client, billing_key, renewed["id"], period=2, amount=3_000)
        clock.set(START + timedelta(days=31, hours=1))  # both first periods ended on 16 April
        await run_job(app)
        assert (await read(client, ecommerce_key, late["id"]))["state"] == "past_due"
        assert (await read(client, ecommerce_key, renewed["id"]))["state"] == "active"

        window = {"from": iso(START + timedelta(days=1)), "to": iso(START + timedelta(days=31, hours=1))}
        answer = await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert (found["paying_members_at_start"], found["churned_members"]) == (2, 0)
        assert found["paying_members"] == 2
        assert found["monthly_recurring_revenue"]["amount"] == 3_000  # the past-due member's fee is awaited
        paid = await client.get("/v1/analytics/paid-membership", headers=bearer(admin_key))
        assert [(p["paying"], p["past_due"]) for p in paid.json()["plans"]] == [(1, 1)]
