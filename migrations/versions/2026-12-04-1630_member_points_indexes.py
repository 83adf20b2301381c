"""partial indexes for what reads of a member's points count before the jobs run (live lots and active
holds by member) and for their open shortfalls

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 16:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "remaining > 0"
_ACTIVE = "status = 'active'"
_OWING = "points_shortfall > 0"


def upgrade() -> None:
    op.create_index(
        "ix_point_lots__member_id_expires_at",
        "point_lots",
        ["member_id", "expires_at"],
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
    )
    op.create_index(
        "ix_holds__member_id_expires_at",
        "holds",
        ["member_id", "expires_at"],
        postgresql_where=sa.text(_ACTIVE),
        sqlite_where=sa.text(_ACTIVE),
    )
    op.create_index(
        "ix_orders__member_id_shortfall",
        "orders",
        ["member_id"],
        postgresql_where=sa.text(_OWING),
        sqlite_where=sa.text(_OWING),
    )


def downgrade() -> None:
    op.drop_index("ix_orders__member_id_shortfall", table_name="orders")
    op.drop_index("ix_holds__member_id_expires_at", table_name="holds")
    op.drop_index("ix_point_lots__member_id_expires_at", table_name="point_lots")
