"""reminders of the window that keeps a member's tier: how many days ahead the programme tells members, and
which window each member was told of

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06 13:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_programs__tier_reminder_days_not_negative"


def upgrade() -> None:
    # SQLite adds a CHECK by rebuilding the table; nothing references the programme's row.
    with op.batch_alter_table("programs") as batch_op:
        # No reminders for a programme made before, until an operator asks for them.
        batch_op.add_column(sa.Column("tier_reminder_days", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_check_constraint(batch_op.f(_CHECK), "tier_reminder_days >= 0")
    # The job reads members by `tier_kept_until` through its index, as the review does.
    op.add_column(
        "members", sa.Column("tier_reminded_until", loyalty_api.db.types.UTCDateTime(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("members", "tier_reminded_until")
    with op.batch_alter_table("programs") as batch_op:
        batch_op.drop_constraint(batch_op.f(_CHECK), type_="check")
        batch_op.drop_column("tier_reminder_days")
