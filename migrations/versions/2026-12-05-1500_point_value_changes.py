"""each change of the programme's point value, and when it came (point_value_changes): a partner's statement
valued every entry at today's point value, so changing it rewrote the statements of past periods

A downgrade drops the changes recorded: upgraded again, every past entry is worth the value the programme has
then, as before this revision.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05 15:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types
from loyalty_api.db.ids import new_id

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROGRAMS = sa.table(
    "programs",
    sa.column("point_value_minor", loyalty_api.db.types.DecimalText()),
    sa.column("updated_at", loyalty_api.db.types.UTCDateTime()),
)


def upgrade() -> None:
    changes = op.create_table(
        "point_value_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("effective_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.Column("point_value_minor", loyalty_api.db.types.DecimalText(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_value_changes")),
        sa.UniqueConstraint("effective_at", name=op.f("uq_point_value_changes__effective_at")),
    )
    # What came before is not known: the value the programme has now stands for every point moved before the
    # next change (a statement values points moved before the first change at the first change's value).
    program = op.get_bind().execute(sa.select(_PROGRAMS.c.point_value_minor, _PROGRAMS.c.updated_at)).first()
    if program is not None:
        op.bulk_insert(
            changes,
            [
                {
                    "id": new_id(),
                    "effective_at": program.updated_at,
                    "point_value_minor": program.point_value_minor,
                }
            ],
        )


def downgrade() -> None:
    op.drop_table("point_value_changes")
