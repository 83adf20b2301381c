"""a subscription's trial_will_end goes once: a change of plan or price during the trial sends the renewal
notice again, not the trial's

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 15:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Native ADD COLUMN on both databases: a nullable column needs no copy of the table on SQLite.
    op.add_column(
        "subscriptions", sa.Column("trial_notice_sent_at", loyalty_api.db.types.UTCDateTime(), nullable=True)
    )
    # Trials already told they are ending (their notice went for period 0; a canceled one may be resumed) are
    # not told again.
    op.execute(
        "UPDATE subscriptions SET trial_notice_sent_at = updated_at "
        "WHERE period_number = 0 AND notice_sent_for >= 0"
    )


def downgrade() -> None:
    op.drop_column("subscriptions", "trial_notice_sent_at")
