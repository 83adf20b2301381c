"""the length in months of the period a subscription payment pays for, as the plan had it when billing charged:
a period paid ahead ran as long as its plan's interval said when it began, so an interval change after the
payment gave a year for a month's fee

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Native ADD COLUMN on both databases: a nullable column needs no copy of the table on SQLite. Payments
    # recorded before keep none: their periods take the plan's length, as they did.
    op.add_column("subscription_payments", sa.Column("period_months", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("subscription_payments", "period_months")
