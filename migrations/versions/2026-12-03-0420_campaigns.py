"""campaigns: one action (a coupon, or points) for every active member of an audience, run by the worker in
batches, and the members each campaign reached (once each: the key is campaign and member)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 04:20:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tier_id", sa.Uuid(), nullable=True),
        sa.Column("plan_id", sa.Uuid(), nullable=True),
        sa.Column("lifecycle", sa.String(length=16), nullable=True),
        sa.Column("segment", sa.String(length=24), nullable=True),
        sa.Column("birthday_month", sa.SmallInteger(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("coupon_name", sa.String(length=100), nullable=True),
        sa.Column("coupon_kind", sa.String(length=32), nullable=True),
        sa.Column("coupon_properties", loyalty_api.db.types.JSONDocument, nullable=True),
        sa.Column("coupon_valid_days", sa.Integer(), nullable=True),
        sa.Column("cursor", sa.Uuid(), nullable=True),
        sa.Column("reached", sa.BigInteger(), nullable=False),
        sa.Column("coupons_issued", sa.BigInteger(), nullable=False),
        sa.Column("points_granted", sa.BigInteger(), nullable=False),
        sa.Column("actor_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.Column("started_at", loyalty_api.db.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", loyalty_api.db.types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'cancelled')",
            name=op.f("ck_campaigns__status_known"),
        ),
        sa.CheckConstraint(
            "action IN ('issue_coupon', 'grant_points')", name=op.f("ck_campaigns__action_known")
        ),
        sa.CheckConstraint(
            "(action = 'grant_points' AND points > 0 AND reason IS NOT NULL)"
            " OR (action = 'issue_coupon' AND coupon_kind IS NOT NULL AND coupon_valid_days > 0)",
            name=op.f("ck_campaigns__action_complete"),
        ),
        sa.CheckConstraint(
            "birthday_month IS NULL OR birthday_month BETWEEN 1 AND 12",
            name=op.f("ck_campaigns__birthday_month_valid"),
        ),
        sa.CheckConstraint(
            "reached >= 0 AND coupons_issued >= 0 AND points_granted >= 0",
            name=op.f("ck_campaigns__counts_not_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns__status_id", "campaigns", ["status", "id"])
    op.create_table(
        "campaign_members",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reached_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_members__campaign_id__campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_campaign_members__member_id__members")
        ),
        sa.PrimaryKeyConstraint("campaign_id", "member_id", name=op.f("pk_campaign_members")),
    )
    op.create_index("ix_campaign_members__member_id", "campaign_members", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_campaign_members__member_id", "campaign_members")
    op.drop_table("campaign_members")
    op.drop_index("ix_campaigns__status_id", "campaigns")
    op.drop_table("campaigns")
