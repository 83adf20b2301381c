"""webhook_endpoints.failing_seen_until: how long a failing endpoint was to be tried again by, so that the time
nobody tried it (the worker stopped, or nothing was left to send it) is not counted towards disabling it. An
endpoint that failed once before an outage of the worker longer than LOYALTY_WEBHOOK_DISABLE_AFTER_HOURS was
disabled by the first attempt that failed after it, a healthy receiver among them.

Endpoints failing when this revision runs have none: their next failed attempt counts from their
failing_since, as before, and sets it. The downgrade drops the column.

Revision ID: 0052
Revises: 0051
Create Date: 2026-12-18 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0052"
down_revision: str | None = "0051"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place (SQLite too), as orders.partner_customer_ref was: a nullable column needs no rebuild.
    op.add_column(
        "webhook_endpoints",
        sa.Column("failing_seen_until", loyalty_api.db.types.UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "failing_seen_until")
