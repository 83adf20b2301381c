"""webhook deliveries keep their own next attempt while a recovered endpoint's release sends them ahead of
it, so that a failure then does not count towards giving up

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 13:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Native ADD COLUMN on both databases: a nullable column needs no copy of the table on SQLite.
    op.add_column(
        "webhook_deliveries", sa.Column("scheduled_at", loyalty_api.db.types.UTCDateTime(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("webhook_deliveries", "scheduled_at")
