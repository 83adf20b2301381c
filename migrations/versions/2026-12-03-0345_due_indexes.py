"""indexes for jobs that read only what is due: lots still holding points by expiry, active holds by expiry,
birthdays not yet keyed; today's birthdays by key in id order.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 03:45:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNKEYED = "birthday_encrypted IS NOT NULL AND birthday_day_key IS NULL"
# (name, table, columns, where); a partial index replaces a plain one of the same name.
_NEW = (
    ("ix_point_lots__expires_at", "point_lots", ["expires_at"], "remaining > 0"),
    ("ix_holds__expires_at", "holds", ["expires_at"], "status = 'active'"),
    ("ix_members__birthday_day_key_id", "members", ["birthday_day_key", "id"], None),
    ("ix_members__unkeyed_birthdays", "members", ["id"], _UNKEYED),
)
_REPLACED = (
    ("ix_point_lots__expires_at", "point_lots", ["expires_at"]),
    ("ix_holds__expires_at", "holds", ["expires_at"]),
    ("ix_members__birthday_day_key", "members", ["birthday_day_key"]),
)


def _create(name: str, table: str, columns: list[str], where: str | None) -> None:
    condition = None if where is None else sa.text(where)
    # IF NOT EXISTS: on a large PostgreSQL database, build them first with CREATE INDEX CONCURRENTLY (as
    # docs/scaling.md shows), so that the tills keep writing; the upgrade then finds them there.
    op.create_index(
        name, table, columns, postgresql_where=condition, sqlite_where=condition, if_not_exists=True
    )


def upgrade() -> None:
    for name, table, _ in _REPLACED:
        op.drop_index(name, table)
    for spec in _NEW:
        _create(*spec)


def downgrade() -> None:
    for name, table, _, _ in reversed(_NEW):
        op.drop_index(name, table)
    for name, table, columns in _REPLACED:
        _create(name, table, columns, None)
