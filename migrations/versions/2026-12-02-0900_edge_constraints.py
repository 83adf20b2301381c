"""edge_constraints

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from loyalty_api.db.sqlite_rebuild import rows_set_aside_on_sqlite

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The invariants the services keep, stated to the database as well: (name, as the naming convention gives it,
# and condition), table by table.
CHECKS: dict[str, list[tuple[str, str]]] = {
    "points_accounts": [
        ("ck_points_accounts__balance_not_negative", "balance >= 0"),
        ("ck_points_accounts__held_within_balance", "held >= 0 AND held <= balance"),
        ("ck_points_accounts__lifetime_earned_not_negative", "lifetime_earned >= 0"),
    ],
    "ledger_entries": [
        ("ck_ledger_entries__balance_after_not_negative", "balance_after >= 0"),
        ("ck_ledger_entries__held_after_within_balance", "held_after >= 0 AND held_after <= balance_after"),
    ],
    "point_lots": [
        ("ck_point_lots__points_positive", "points > 0"),
        ("ck_point_lots__remaining_within_points", "remaining >= 0 AND remaining <= points"),
    ],
    "holds": [
        ("ck_holds__points_positive", "points > 0"),
        ("ck_holds__captured_within_points", "captured_points >= 0 AND captured_points <= points"),
        ("ck_holds__status_known", "status IN ('active', 'captured', 'released', 'expired')"),
    ],
    "orders": [
        ("ck_orders__amount_not_negative", "amount_minor >= 0"),
        (
            "ck_orders__refunded_within_amount",
            "refunded_minor >= 0 AND refunded_minor <= COALESCE(amount_minor, 0)",
        ),
        (
            "ck_orders__points_not_negative",
            "points_earned >= 0 AND points_redeemed >= 0 AND points_taken_back >= 0"
            " AND points_given_back >= 0 AND points_shortfall >= 0",
        ),
        ("ck_orders__taken_back_within_earned", "points_taken_back + points_shortfall <= points_earned"),
        ("ck_orders__given_back_within_redeemed", "points_given_back <= points_redeemed"),
    ],
    "rewards": [
        ("ck_rewards__cost_points_positive", "cost_points > 0"),
        ("ck_rewards__stock_left_not_negative", "stock_left >= 0"),
        ("ck_rewards__per_member_limit_positive", "per_member_limit > 0"),
        ("ck_rewards__coupon_valid_days_positive", "coupon_valid_days > 0"),
    ],
    "reward_redemptions": [
        ("ck_reward_redemptions__points_positive", "points > 0"),
    ],
    "plans": [
        ("ck_plans__price_not_negative", "price_amount_minor >= 0"),
        ("ck_plans__interval_count_positive", "interval_count > 0"),
        ("ck_plans__days_not_negative", "trial_days >= 0 AND grace_days >= 0"),
    ],
    "subscriptions": [
        ("ck_subscriptions__price_not_negative", "price_amount_minor >= 0"),
        ("ck_subscriptions__period_months_positive", "period_months > 0"),
    ],
    "subscription_payments": [
        ("ck_subscription_payments__amount_not_negative", "amount_minor >= 0"),
    ],
    "programs": [
        ("ck_programs__min_redeem_points_positive", "min_redeem_points > 0"),
        ("ck_programs__expiry_months_positive", "expiry_months > 0"),
    ],
}


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_limit", sa.String(length=32), nullable=True))

    for table, checks in CHECKS.items():
        with rows_set_aside_on_sqlite(table), op.batch_alter_table(table, schema=None) as batch_op:
            for name, condition in checks:
                batch_op.create_check_constraint(batch_op.f(name), condition)


def downgrade() -> None:
    for table, checks in reversed(CHECKS.items()):
        with rows_set_aside_on_sqlite(table), op.batch_alter_table(table, schema=None) as batch_op:
            for name, _ in reversed(checks):
                batch_op.drop_constraint(batch_op.f(name), type_="check")

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("rate_limit")
