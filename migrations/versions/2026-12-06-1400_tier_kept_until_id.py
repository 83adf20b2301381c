"""members by when their tier is kept until and their id: the order the tier review and its reminders walk
them in, without sorting the many members a calendar-year ladder gives one instant

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-06 14:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_INDEX = "ix_members__tier_kept_until"
_NEW_INDEX = "ix_members__tier_kept_until_id"


def upgrade() -> None:
    # The new index before the old one goes, so the review always has one. IF NOT EXISTS: on a large
    # PostgreSQL database, build it first with CREATE INDEX CONCURRENTLY (docs/scaling.md).
    op.create_index(_NEW_INDEX, "members", ["tier_kept_until", "id"], if_not_exists=True)
    op.drop_index(_OLD_INDEX, "members")


def downgrade() -> None:
    op.create_index(_OLD_INDEX, "members", ["tier_kept_until"])
    op.drop_index(_NEW_INDEX, "members")
