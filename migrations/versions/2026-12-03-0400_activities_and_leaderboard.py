"""activities and the leaderboard: activity rules (points per type of activity, caps per day and period,
streak bonuses), the activities members were rewarded for (one per member, type and ref), and the member's
leaderboard opt-in.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 03:15:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Native ADD COLUMN on both databases: members is referenced by many tables, and SQLite's batch mode
    # would copy it.
    op.add_column(
        "members", sa.Column("leaderboard_opt_in", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.create_table(
        "activity_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("period_cap", sa.Integer(), nullable=True),
        sa.Column("cap_period", sa.String(length=16), nullable=False),
        sa.Column("streak_bonuses", loyalty_api.db.types.JSONDocument, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("points >= 0", name=op.f("ck_activity_rules__points_not_negative")),
        sa.CheckConstraint(
            "daily_cap IS NULL OR daily_cap > 0", name=op.f("ck_activity_rules__daily_cap_positive")
        ),
        sa.CheckConstraint(
            "period_cap IS NULL OR period_cap > 0", name=op.f("ck_activity_rules__period_cap_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_rules")),
        sa.UniqueConstraint("type", name=op.f("uq_activity_rules__type")),
    )
    op.create_table(
        "member_activities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("bonus", sa.BigInteger(), nullable=False),
        sa.Column("breakdown", loyalty_api.db.types.JSONDocument, nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "points >= 0 AND bonus >= 0", name=op.f("ck_member_activities__points_not_negative")
        ),
        sa.CheckConstraint("streak > 0", name=op.f("ck_member_activities__streak_positive")),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_member_activities__entry_id__ledger_entries")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_activities__member_id__members")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["activity_rules.id"], name=op.f("fk_member_activities__rule_id__activity_rules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_activities")),
        sa.UniqueConstraint(
            "member_id", "type", "ref", name=op.f("uq_member_activities__member_id_type_ref")
        ),
    )
    op.create_index(
        "ix_member_activities__member_id_type_day", "member_activities", ["member_id", "type", "day"]
    )
    op.create_index("ix_member_activities__rule_id", "member_activities", ["rule_id"])


def downgrade() -> None:
    op.drop_index("ix_member_activities__rule_id", "member_activities")
    op.drop_index("ix_member_activities__member_id_type_day", "member_activities")
    op.drop_table("member_activities")
    op.drop_table("activity_rules")
    op.drop_column("members", "leaderboard_opt_in")
