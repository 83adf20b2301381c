"""an API key keeps the lifetime it was made with, which a rotation passes on: rotating a key twice read the
overlap its first rotation had set as the key's lifetime

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 16:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = sa.table(
    "api_keys",
    sa.column("id", sa.Uuid()),
    sa.column("created_at", loyalty_api.db.types.UTCDateTime()),
    sa.column("expires_at", loyalty_api.db.types.UTCDateTime()),
    sa.column("lifetime_seconds", sa.BigInteger()),
)


def upgrade() -> None:
    # Native ADD COLUMN on both databases: a nullable column needs no copy of the table on SQLite.
    op.add_column("api_keys", sa.Column("lifetime_seconds", sa.BigInteger(), nullable=True))
    # A key with an expiry was made to last from creation to it (one rotated already keeps its overlap: what
    # it was made with is not known any more). Few rows: read and written here, the same on both databases.
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_KEYS.c.id, _KEYS.c.created_at, _KEYS.c.expires_at).where(_KEYS.c.expires_at.is_not(None))
    ).all()
    for key_id, created_at, expires_at in rows:
        lifetime = int((expires_at - created_at).total_seconds())
        bind.execute(sa.update(_KEYS).where(_KEYS.c.id == key_id).values(lifetime_seconds=lifetime))


def downgrade() -> None:
    op.drop_column("api_keys", "lifetime_seconds")
