"""each stored rolling window end keeps how many days its window runs from the purchase that won or renewed
the tier (members.tier_window_days, tier_earned_window_days): a window made shorter ends where it did, so a
365-day end read as a 90-day one after the change; made 365 days again, the window counted 365 days from the
90-day start and put every such end 275 days later than the purchase had won.

Ends stored before are read as the window of their revision, as before this revision. The downgrade drops the
days: an end stored since is read as its revision's window again.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-13 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0044"
down_revision: str | None = "0043"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DAYS = ("tier_window_days", "tier_earned_window_days")


def upgrade() -> None:
    # Added in place (SQLite too): a rebuild of members could not set aside the rows that reference it.
    for name in _DAYS:
        op.add_column("members", sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    for name in reversed(_DAYS):
        op.drop_column("members", name)
