"""birthday keys: keyed hashes of each member's birthday's day and month, so the birthday job reads only
today's members and lists filter by birthday month (existing birthdays are keyed by the birthday job, which
alone holds the encryption key); deliveries by event, so events whose deliveries are purged can go too.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 03:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MEMBER_INDEXES = (
    ("ix_members__birthday_day_key", ["birthday_day_key"]),
    ("ix_members__birthday_month_key_id", ["birthday_month_key", "id"]),
)


def upgrade() -> None:
    # Native ADD COLUMN on both databases: members is referenced by many tables, and SQLite's batch mode
    # would copy it.
    for name in ("birthday_day_key", "birthday_month_key"):
        op.add_column("members", sa.Column(name, sa.String(64), nullable=True))
    for index, columns in _MEMBER_INDEXES:
        op.create_index(index, "members", columns)
    op.create_index("ix_webhook_deliveries__event_id", "webhook_deliveries", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries__event_id", "webhook_deliveries")
    for index, _ in reversed(_MEMBER_INDEXES):
        op.drop_index(index, "members")
    for name in ("birthday_month_key", "birthday_day_key"):
        op.drop_column("members", name)
