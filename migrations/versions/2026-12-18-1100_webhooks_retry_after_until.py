"""webhook_endpoints.retry_after_until: the time before which a receiver that answered 429 or 503 with
Retry-After asked to be sent nothing, so that the 2xx of a send it had taken in before it asked does not end
the wait (it released every delivery held for the endpoint at once, the refused one included).

Endpoints failing when this revision runs have none: their next Retry-After sets it. The downgrade drops the
column.

Revision ID: 0053
Revises: 0052
Create Date: 2026-12-18 11:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0053"
down_revision: str | None = "0052"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place (SQLite too), as failing_seen_until was: a nullable column needs no rebuild.
    op.add_column(
        "webhook_endpoints",
        sa.Column("retry_after_until", loyalty_api.db.types.UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "retry_after_until")
