"""the programme's return window: a referrer's reward waits it out (a return within it voids the reward), and
points a purchase earned within it cannot be sent to another member

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_programs__return_window_days_not_negative"


def upgrade() -> None:
    # SQLite adds a CHECK by rebuilding the table; nothing references the programme's row.
    with op.batch_alter_table("programs") as batch_op:
        # No window for a programme made before: its referrers are credited and its points sent as they were.
        batch_op.add_column(sa.Column("return_window_days", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_check_constraint(batch_op.f(_CHECK), "return_window_days >= 0")
    op.add_column(
        "referral_rewards", sa.Column("voided_at", loyalty_api.db.types.UTCDateTime(), nullable=True)
    )
    # The minimum the purchase qualified under, which a return is measured against; unknown for a reward
    # made before (0: only returning the whole purchase falls short of it).
    op.add_column(
        "referral_rewards",
        sa.Column("min_purchase_minor", sa.BigInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("referral_rewards", "min_purchase_minor")
    op.drop_column("referral_rewards", "voided_at")
    with op.batch_alter_table("programs") as batch_op:
        batch_op.drop_constraint(batch_op.f(_CHECK), type_="check")
        batch_op.drop_column("return_window_days")
