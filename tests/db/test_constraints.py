"""The database itself refuses what the services never write: each CHECK constraint, on both databases.

The rows are made through the API first (a member with points, a hold, an order, a redeemed reward, a paid
subscription); then one raw UPDATE per case breaks one invariant and must be refused by the constraint named.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import CheckConstraint, Uuid, bindparam, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from loyalty_api.schema import metadata
from tests.builders import enrol, make_partner_key
from tests.conftest import bearer, units_of
from tests.partners.helpers import link
from tests.points.helpers import earn, set_program
from tests.rewards.helpers import add_reward, redeem
from tests.subscriptions.helpers import subscribe_paid

EARNED_ORDER = "EDGE-EARNED"  # paid 1000.00 yuan, earned 1000 points
HELD_ORDER = "EDGE-HELD"  # only held for so far: its total is not known
STOOD_IN_FOR = "EDGE-STOOD-IN-FOR"  # another member's, refunded once its points were spent


@dataclass(frozen=True, slots=True)
class Case:
    constraint: str
    statement: str
    # Constraints the same write breaks too (one invariant implies the other): SQLite names the first in the
    # table's definition, and a table a migration rebuilt may list them in another order.
    implied: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.constraint}: {self.statement}"


def _case(constraint: str, statement: str, *implied: str) -> Case:
    return Case(constraint, statement, implied)


# One statement per way to break each invariant; every statement breaks that invariant alone, or (where one
# invariant implies another) those named.
CASES = [
    # A balance below zero breaks 0 <= held <= balance too: balance_not_negative is named (and checked) first.
    _case(
        "ck_points_accounts__balance_not_negative",
        "UPDATE points_accounts SET balance = -1, held = 0",
        "ck_points_accounts__held_within_balance",
    ),
    _case("ck_points_accounts__held_within_balance", "UPDATE points_accounts SET held = balance + 1"),
    _case("ck_points_accounts__held_within_balance", "UPDATE points_accounts SET held = -1"),
    _case(
        "ck_points_accounts__lifetime_earned_not_negative", "UPDATE points_accounts SET lifetime_earned = -1"
    ),
    _case(
        "ck_ledger_entries__balance_after_not_negative",
        "UPDATE ledger_entries SET balance_after = -1, held_after = 0",
        "ck_ledger_entries__held_after_within_balance",
    ),
    _case(
        "ck_ledger_entries__held_after_within_balance",
        "UPDATE ledger_entries SET held_after = balance_after + 1",
    ),
    _case("ck_ledger_entries__held_after_within_balance", "UPDATE ledger_entries SET held_after = -1"),
    _case("ck_point_lots__points_positive", "UPDATE point_lots SET points = 0, remaining = 0"),
    _case("ck_point_lots__remaining_within_points", "UPDATE point_lots SET remaining = points + 1"),
    _case("ck_point_lots__remaining_within_points", "UPDATE point_lots SET remaining = -1"),
    _case("ck_point_stand_ins__points_positive", "UPDATE point_stand_ins SET points = 0, returned = 0"),
    _case("ck_point_stand_ins__returned_within_points", "UPDATE point_stand_ins SET returned = points + 1"),
    _case("ck_point_stand_ins__returned_within_points", "UPDATE point_stand_ins SET returned = -1"),
    _case("ck_holds__points_positive", "UPDATE holds SET points = 0"),
    _case("ck_activity_rules__points_not_negative", "UPDATE activity_rules SET points = -1"),
    _case("ck_activity_rules__daily_cap_positive", "UPDATE activity_rules SET daily_cap = 0"),
    _case("ck_activity_rules__period_cap_positive", "UPDATE activity_rules SET period_cap = 0"),
    _case(
        "ck_activity_rules__window_not_empty",
        "UPDATE activity_rules SET valid_from = '2026-01-02 00:00:00+00:00', "
        "valid_until = '2026-01-02 00:00:00+00:00'",
    ),
    _case("ck_member_activities__points_not_negative", "UPDATE member_activities SET points = -1"),
    _case("ck_member_activities__points_not_negative", "UPDATE member_activities SET bonus = -1"),
    _case("ck_member_activities__streak_positive", "UPDATE member_activities SET streak = 0"),
    _case("ck_holds__captured_within_points", "UPDATE holds SET captured_points = points + 1"),
    _case("ck_holds__captured_within_points", "UPDATE holds SET captured_points = -1"),
    _case("ck_holds__status_known", "UPDATE holds SET status = 'cancelled'"),
    # A negative total leaves no room for a refund either: amount_not_negative is named first.
    _case(
        "ck_orders__amount_not_negative",
        f"UPDATE orders SET amount_minor = -1 WHERE order_ref = '{EARNED_ORDER}'",
        "ck_orders__refunded_within_amount",
    ),
    _case(
        "ck_orders__refunded_within_amount",
        f"UPDATE orders SET refunded_minor = amount_minor + 1 WHERE order_ref = '{EARNED_ORDER}'",
    ),
    _case(
        "ck_orders__refunded_within_amount",
        f"UPDATE orders SET refunded_minor = -1 WHERE order_ref = '{EARNED_ORDER}'",
    ),
    _case(
        "ck_orders__refunded_within_amount",
        f"UPDATE orders SET refunded_minor = 1 WHERE order_ref = '{HELD_ORDER}'",
    ),
    _case(
        "ck_orders__points_not_negative",
        f"UPDATE orders SET points_earned = -1 WHERE order_ref = '{HELD_ORDER}'",
        "ck_orders__taken_back_within_earned",
    ),
    _case(
        "ck_orders__points_not_negative",
        f"UPDATE orders SET points_taken_back = -1 WHERE order_ref = '{EARNED_ORDER}'",
    ),
    _case(
        "ck_orders__points_not_negative",
        f"UPDATE orders SET points_given_back = -1 WHERE order_ref = '{EARNED_ORDER}'",
    ),
    _case(
        "ck_orders__points_not_negative",
        f"UPDATE orders SET points_shortfall = -1 WHERE order_ref = '{EARNED_ORDER}'",
    ),
    _case(
        "ck_orders__taken_back_within_earned",
        f"UPDATE orders SET points_taken_back = points_earned + 1 WHERE order_ref = '{EARNED_ORDER}'",
    ),
    _case(
        "ck_orders__taken_back_within_earned",
        f"UPDATE orders SET points_taken_back = points_earned, points_shortfall = 1"
        f" WHERE order_ref = '{EARNED_ORDER}'",
    ),
    _case(
        "ck_orders__given_back_within_redeemed",
        f"UPDATE orders SET points_given_back = points_redeemed + 1 WHERE order_ref = '{EARNED_ORDER}'",
    ),
    _case("ck_rewards__cost_points_positive", "UPDATE rewards SET cost_points = 0"),
    _case("ck_partners__status_known", "UPDATE partners SET status = 'closed'"),
    _case("ck_partners__exchange_limits_positive", "UPDATE partners SET daily_exchange_limit = 0"),
    _case("ck_partners__exchange_limits_positive", "UPDATE partners SET member_daily_exchange_limit = 0"),
    _case("ck_partners__exchange_timeout_positive", "UPDATE partners SET exchange_timeout_seconds = 0"),
    _case("ck_partner_exchanges__direction_known", "UPDATE partner_exchanges SET direction = 'sideways'"),
    _case("ck_partner_exchanges__status_known", "UPDATE partner_exchanges SET status = 'lost'"),
    _case("ck_partner_exchanges__points_positive", "UPDATE partner_exchanges SET points = 0"),
    _case("ck_partner_exchanges__points_positive", "UPDATE partner_exchanges SET partner_points = 0"),
    _case("ck_partner_perks__status_known", "UPDATE partner_perks SET status = 'lost'"),
    _case("ck_partner_perks__source_known", "UPDATE partner_perks SET source = 'theirs'"),
    _case("ck_partner_perks__source_known", "UPDATE partner_perks SET code = NULL"),  # ours has its code
    _case("ck_partner_perks__source_known", "UPDATE partner_perks SET pool = 'p'"),  # ours takes none
    _case("ck_rewards__stock_left_not_negative", "UPDATE rewards SET stock_left = -1"),
    _case("ck_rewards__per_member_limit_positive", "UPDATE rewards SET per_member_limit = 0"),
    _case("ck_rewards__coupon_valid_days_positive", "UPDATE rewards SET coupon_valid_days = 0"),
    _case("ck_reward_redemptions__points_positive", "UPDATE reward_redemptions SET points = 0"),
    _case("ck_plans__price_not_negative", "UPDATE plans SET price_amount_minor = -1"),
    _case("ck_plans__interval_count_positive", "UPDATE plans SET interval_count = 0"),
    _case("ck_plans__days_not_negative", "UPDATE plans SET trial_days = -1"),
    _case("ck_plans__days_not_negative", "UPDATE plans SET grace_days = -1"),
    _case("ck_subscriptions__price_not_negative", "UPDATE subscriptions SET price_amount_minor = -1"),
    _case("ck_subscriptions__period_months_positive", "UPDATE subscriptions SET period_months = 0"),
    _case(
        "ck_subscription_payments__amount_not_negative",
        "UPDATE subscription_payments SET amount_minor = -1",
    ),
    # `unused` exactly when stamped with when: neither without the other.
    _case(
        "ck_subscription_payments__unused_at_when_unused",
        "UPDATE subscription_payments SET status = 'unused'",
    ),
    _case(
        "ck_subscription_payments__unused_at_when_unused",
        "UPDATE subscription_payments SET unused_at = '2026-01-02 00:00:00+00:00'",
    ),
    _case(
        "ck_subscription_payments__unused_at_when_unused",
        "UPDATE subscription_payments SET status = 'failed', unused_at = '2026-01-02 00:00:00+00:00'",
    ),
    _case("ck_programs__min_redeem_points_positive", "UPDATE programs SET min_redeem_points = 0"),
    _case("ck_programs__expiry_months_positive", "UPDATE programs SET expiry_months = 0"),
    _case("ck_programs__transfer_daily_limit_positive", "UPDATE programs SET transfer_daily_limit = 0"),
    _case("ck_programs__return_window_days_not_negative", "UPDATE programs SET return_window_days = -1"),
    _case("ck_programs__expiry_reminder_days_not_negative", "UPDATE programs SET expiry_reminder_days = -1"),
    _case("ck_programs__tier_reminder_days_not_negative", "UPDATE programs SET tier_reminder_days = -1"),
    _case("ck_campaigns__status_known", "UPDATE campaigns SET status = 'paused'"),
    # An unknown action is no complete one either.
    _case(
        "ck_campaigns__action_known",
        "UPDATE campaigns SET action = 'send_sms'",
        "ck_campaigns__action_complete",
    ),
    _case("ck_campaigns__action_complete", "UPDATE campaigns SET points = 0"),
    _case("ck_campaigns__action_complete", "UPDATE campaigns SET reason = NULL"),
    _case("ck_campaigns__action_complete", "UPDATE campaigns SET action = 'issue_coupon'"),
    _case("ck_campaigns__birthday_month_valid", "UPDATE campaigns SET birthday_month = 13"),
    _case("ck_campaigns__birthday_month_valid", "UPDATE campaigns SET birthday_month = 0"),
    _case("ck_campaigns__counts_not_negative", "UPDATE campaigns SET reached = -1"),
    _case("ck_campaigns__counts_not_negative", "UPDATE campaigns SET points_granted = -1"),
]

# The edges themselves are allowed: the constraints refuse only what is past them.
ALLOWED = [
    "UPDATE points_accounts SET held = balance",
    "UPDATE points_accounts SET balance = 0, held = 0, lifetime_earned = 0",
    "UPDATE ledger_entries SET held_after = balance_after",
    "UPDATE ledger_entries SET balance_after = 0, held_after = 0",
    "UPDATE point_lots SET remaining = points",
    "UPDATE point_lots SET remaining = 0",
    "UPDATE point_stand_ins SET returned = points",
    "UPDATE point_stand_ins SET returned = 0",
    "UPDATE holds SET status = 'captured', captured_points = points",
    f"UPDATE orders SET refunded_minor = amount_minor, points_taken_back = points_earned"
    f" WHERE order_ref = '{EARNED_ORDER}'",
    f"UPDATE orders SET points_redeemed = 5, points_given_back = 5 WHERE order_ref = '{EARNED_ORDER}'",
    "UPDATE orders SET amount_minor = 0 WHERE amount_minor IS NOT NULL AND refunded_minor = 0",
    "UPDATE rewards SET stock_left = 0, per_member_limit = NULL",
    "UPDATE rewards SET stock_left = NULL",
    "UPDATE plans SET price_amount_minor = 0, trial_days = 0, grace_days = 0",
    "UPDATE subscriptions SET price_amount_minor = 0",
    "UPDATE subscription_payments SET amount_minor = 0",
    "UPDATE subscription_payments SET status = 'unused', unused_at = '2026-01-02 00:00:00+00:00'",
    "UPDATE subscription_payments SET status = 'failed', unused_at = NULL",
    "UPDATE programs SET expiry_months = NULL",
    "UPDATE programs SET transfer_daily_limit = NULL",
    "UPDATE programs SET transfer_daily_limit = 1",
    "UPDATE programs SET return_window_days = 0",
    "UPDATE programs SET expiry_reminder_days = 0",
    "UPDATE programs SET tier_reminder_days = 0",
    "UPDATE activity_rules SET points = 0, daily_cap = NULL, period_cap = NULL",
    "UPDATE activity_rules SET valid_from = NULL, valid_until = '2026-01-01 00:00:00+00:00'",
    "UPDATE member_activities SET points = 0, bonus = 0, streak = 1",
    "UPDATE campaigns SET points = 1, birthday_month = 12, reached = 0, coupons_issued = 0",
    "UPDATE campaigns SET birthday_month = 1",
]

_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (?P<name>\w+)")


def _check_constraints() -> dict[str, set[str]]:
    """The CHECK constraints the models declare, by table."""
    found: dict[str, set[str]] = {}
    for table in metadata.tables.values():
        names = {str(c.name) for c in table.constraints if isinstance(c, CheckConstraint)}
        if names:
            found[table.name] = names
    return found


def _constraint_named(exc: IntegrityError) -> str | None:
    cause = getattr(exc.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)  # asyncpg
    if isinstance(name, str):
        return name
    match = _SQLITE_CHECK.search(str(exc.orig))
    return None if match is None else match.group("name")


async def _execute(app: FastAPI, statement: str) -> int:
    """Run one raw write in a transaction of its own; the number of rows it changed."""
    async with units_of(app).database.engine.begin() as connection:
        result = await connection.execute(text(statement))
        return result.rowcount


@pytest.fixture
async def scene(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
) -> uuid.UUID:
    """One member with a row in every table that has a CHECK: an earned order, an active hold on another,
    an activity, a redeemed reward, a paid subscription; and a partner the member sent points to, which it
    failed (so the balance is as it was). Besides, another member's order refunded after its points were spent
    (a stand-in)."""
    await set_program(client, admin_key)
    member_id = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, member_id, 100_000, order_ref=EARNED_ORDER)
    held = await client.post(
        f"/v1/members/{member_id}/holds",
        json={"points": 100, "order_ref": HELD_ORDER, "ttl_seconds": 900},
        headers=bearer(ecommerce_key),
    )
    assert held.status_code == 201, held.text
    # An activity rule with both caps, and an activity it rewarded (with no points: the balance stays).
    rule = {"type": "check_in", "name": "Check-in", "points": 0, "daily_cap": 1, "period_cap": 5}
    made = await client.post("/v1/activity-rules", json=rule, headers=bearer(admin_key))
    assert made.status_code in (201, 409), made.text
    checked_in = await client.post(
        f"/v1/members/{member_id}/activities",
        json={"type": "check_in", "ref": "edge"},
        headers=bearer(pos_key),
    )
    assert checked_in.status_code == 201, checked_in.text
    reward = await add_reward(client, admin_key, stock=5, per_member_limit=2)
    assert (await redeem(client, pos_key, member_id, reward["id"])).status_code == 201
    partner = await client.post(
        "/v1/partners",
        json={"code": "edge", "name": "Edge", "exchange_out_rate": "1"},
        headers=bearer(admin_key),
    )
    assert partner.status_code in (201, 409), partner.text  # the scene is set up again for each case
    # a paid plan that includes the partner's perk (the scene is set up again for each case: plan exists)
    planned = await client.post(
        "/v1/plans",
        json={
            "code": "edge",
            "name": "Edge",
            "price": {"amount": 19_800, "currency": "CNY"},
            "interval": {"unit": "year"},
            "partner_perks": [{"partner": "edge", "name": "Edge perk"}],
        },
        headers=bearer(admin_key),
    )
    assert planned.status_code in (201, 409), planned.text
    await subscribe_paid(client, ecommerce_key, member_id, "edge")
    partner_id = (await client.get("/v1/partners/edge", headers=bearer(admin_key))).json()["id"]
    partner_key = await make_partner_key(app, uuid.UUID(partner_id))
    await link(client, pos_key, partner_key, member_id, "edge", member_id)
    sent = await client.post(
        f"/v1/members/{member_id}/exchanges",
        json={"partner": "edge", "points": 10},
        headers=bearer(pos_key),
    )
    assert sent.status_code == 201, sent.text
    failed = await client.post(f"/v1/partner/exchanges/{sent.json()['id']}/fail", headers=bearer(partner_key))
    assert failed.status_code == 200, failed.text
    # Another member's order refunded once its points were spent: the take-back stood other points in.
    other_id = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, other_id, 10_000, order_ref=STOOD_IN_FOR)
    spent = await client.post(
        f"/v1/members/{other_id}/redeem",
        json={"points": 100, "order_ref": f"{STOOD_IN_FOR}-PAID"},
        headers=bearer(pos_key),
    )
    assert spent.status_code == 200, spent.text
    await earn(client, pos_key, other_id, 10_000)
    refunded = await client.post(
        f"/v1/orders/{STOOD_IN_FOR}/refund", json={"full": True}, headers=bearer(pos_key)
    )
    assert refunded.status_code == 200, refunded.text
    # A campaign (not run: its row is what the constraints guard).
    campaign = {"name": "Edge", "action": {"type": "grant_points", "points": 1, "reason": "edge"}}
    made_campaign = await client.post("/v1/campaigns", json=campaign, headers=bearer(admin_key))
    assert made_campaign.status_code == 201, made_campaign.text
    return uuid.UUID(member_id)


class TestCheckConstraints:
    @pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
    async def test_a_write_past_the_edge_is_refused(self, app: FastAPI, scene: uuid.UUID, case: Case) -> None:
        with pytest.raises(IntegrityError) as refused:
            await _execute(app, case.statement)
        assert _constraint_named(refused.value) in {case.constraint, *case.implied}, str(refused.value.orig)

    @pytest.mark.parametrize("statement", ALLOWED)
    async def test_a_write_at_the_edge_is_allowed(
        self, app: FastAPI, scene: uuid.UUID, statement: str
    ) -> None:
        assert await _execute(app, statement) >= 1

    async def test_the_refused_write_changed_nothing(self, app: FastAPI, scene: uuid.UUID) -> None:
        before = await _account(app, scene)
        with pytest.raises(IntegrityError):
            await _execute(app, "UPDATE points_accounts SET balance = balance - 2000")
        assert await _account(app, scene) == before == {"balance": 900, "held": 100}

    def test_every_check_constraint_has_a_case(self) -> None:
        declared = {name for names in _check_constraints().values() for name in names}
        assert {case.constraint for case in CASES} == declared

    async def test_the_database_has_the_models_check_constraints(self, app: FastAPI) -> None:
        """Alembic's comparison of models and migrations leaves CHECK constraints out: compared here."""

        def found(connection: Connection) -> dict[str, set[str]]:
            inspector = inspect(connection)
            by_table = {
                table: {str(c["name"]) for c in inspector.get_check_constraints(table)}
                for table in inspector.get_table_names()
            }
            return {table: names for table, names in by_table.items() if names}

        async with units_of(app).database.engine.connect() as connection:
            assert await connection.run_sync(found) == _check_constraints()


async def _account(app: FastAPI, member_id: uuid.UUID) -> dict[str, int]:
    statement = text("SELECT balance, held FROM points_accounts WHERE member_id = :m").bindparams(
        bindparam("m", type_=Uuid())
    )
    async with units_of(app).database.engine.connect() as connection:
        row = (await connection.execute(statement, {"m": member_id})).one()
    return {"balance": row.balance, "held": row.held}
