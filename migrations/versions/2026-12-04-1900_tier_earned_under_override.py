"""while an override holds, the tier the member had earned before it and until when: the override's end puts
them back on it while that time lasts (it dropped them to what their current window alone qualified for)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 19:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Native ADD COLUMN on both databases: nullable columns need no copy of the table on SQLite. Members under
    # an override today keep none: their override ends as it did.
    op.add_column("members", sa.Column("tier_earned_id", sa.Uuid(), nullable=True))
    op.add_column(
        "members", sa.Column("tier_earned_until", loyalty_api.db.types.UTCDateTime(), nullable=True)
    )


def downgrade() -> None:
    """Drops the tier members under an override had earned before it, and until when: upgrading again cannot
    know them, so when such an override ends the member gets what their current window qualifies for."""
    op.drop_column("members", "tier_earned_until")
    op.drop_column("members", "tier_earned_id")
