"""members.closed_at: when the member was closed (null while they are not), kept through an erasure, so a member
closed and then erased stays out of the member counts (`members`, by tier, lifecycle and segment) as every
closed member is: the erasure's status replaced `closed`, and the figures counted them again.

Members closed before this revision take the time of their last change (`updated_at`, their closing or
later). Members closed and then erased before it cannot be told apart from other erased members and stay
counted. The downgrade drops the column.

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-14 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0045"
down_revision: str | None = "0044"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MEMBERS = sa.table(
    "members",
    sa.column("status", sa.String()),
    sa.column("updated_at", loyalty_api.db.types.UTCDateTime()),
    sa.column("closed_at", loyalty_api.db.types.UTCDateTime()),
)


def upgrade() -> None:
    # Added in place (SQLite too): a rebuild of members could not set aside the rows that reference it.
    op.add_column("members", sa.Column("closed_at", loyalty_api.db.types.UTCDateTime(), nullable=True))
    op.execute(_MEMBERS.update().where(_MEMBERS.c.status == "closed").values(closed_at=_MEMBERS.c.updated_at))


def downgrade() -> None:
    op.drop_column("members", "closed_at")
