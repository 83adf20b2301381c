"""referral rewards: the programme's points for a referred member's first qualifying purchase (the friend's
and the referrer's) and the smallest such purchase; one row per rewarded friend, the referrer's points
credited by the referral job.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 18:45:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = "credited_at IS NULL"


def upgrade() -> None:
    op.add_column(
        "programs", sa.Column("referral_friend_points", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "programs", sa.Column("referral_referrer_points", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "programs",
        sa.Column("referral_min_purchase_minor", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_table(
        "referral_rewards",
        sa.Column("friend_id", sa.Uuid(), nullable=False),
        sa.Column("referrer_id", sa.Uuid(), nullable=False),
        sa.Column("order_ref", sa.String(length=100), nullable=False),
        sa.Column("friend_points", sa.BigInteger(), nullable=False),
        sa.Column("referrer_points", sa.BigInteger(), nullable=False),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.Column("credited_at", loyalty_api.db.types.UTCDateTime(), nullable=True),
        sa.Column("referrer_credited", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["friend_id"], ["members.id"], name=op.f("fk_referral_rewards__friend_id__members")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["members.id"], name=op.f("fk_referral_rewards__referrer_id__members")
        ),
        sa.PrimaryKeyConstraint("friend_id", name=op.f("pk_referral_rewards")),
    )
    op.create_index("ix_referral_rewards__referrer_id", "referral_rewards", ["referrer_id"])
    op.create_index(
        "ix_referral_rewards__pending",
        "referral_rewards",
        ["created_at"],
        postgresql_where=sa.text(_PENDING),
        sqlite_where=sa.text(_PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_referral_rewards__pending", "referral_rewards")
    op.drop_index("ix_referral_rewards__referrer_id", "referral_rewards")
    op.drop_table("referral_rewards")
    for name in ("referral_min_purchase_minor", "referral_referrer_points", "referral_friend_points"):
        op.drop_column("programs", name)
