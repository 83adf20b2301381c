"""reminders of points about to expire: how many days ahead the programme tells members, and which lots they
were told of

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06 12:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_programs__expiry_reminder_days_not_negative"
_LIVE = sa.text("remaining > 0")
_OLD_INDEX = "ix_point_lots__expires_at"
_NEW_INDEX = "ix_point_lots__expires_at_expiry_reminded_at"


def upgrade() -> None:
    # SQLite adds a CHECK by rebuilding the table; nothing references the programme's row.
    with op.batch_alter_table("programs") as batch_op:
        # No reminders for a programme made before, until an operator asks for them.
        batch_op.add_column(
            sa.Column("expiry_reminder_days", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_check_constraint(batch_op.f(_CHECK), "expiry_reminder_days >= 0")
    op.add_column(
        "point_lots", sa.Column("expiry_reminded_at", loyalty_api.db.types.UTCDateTime(), nullable=True)
    )
    # The new index before the old one goes, so the expiry job always has one. IF NOT EXISTS: on a large
    # PostgreSQL database, build it first with CREATE INDEX CONCURRENTLY (docs/scaling.md), so that the tills
    # keep writing; the upgrade then finds it there.
    op.create_index(
        _NEW_INDEX,
        "point_lots",
        ["expires_at", "expiry_reminded_at"],
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
        if_not_exists=True,
    )
    op.drop_index(_OLD_INDEX, "point_lots")


def downgrade() -> None:
    op.create_index(_OLD_INDEX, "point_lots", ["expires_at"], postgresql_where=_LIVE, sqlite_where=_LIVE)
    op.drop_index(_NEW_INDEX, "point_lots")
    op.drop_column("point_lots", "expiry_reminded_at")
    with op.batch_alter_table("programs") as batch_op:
        batch_op.drop_constraint(batch_op.f(_CHECK), type_="check")
        batch_op.drop_column("expiry_reminder_days")
