"""a validity window for activity rules (valid_from, valid_until), as earning rules have: a check-in campaign
that runs for December is one rule with its dates, not a switch an operator must remember to flip

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05 14:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types
from loyalty_api.db.sqlite_rebuild import rows_set_aside_on_sqlite

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_activity_rules__window_not_empty"


def upgrade() -> None:
    # SQLite adds a CHECK by rebuilding the table, which member_activities references.
    with rows_set_aside_on_sqlite("activity_rules"), op.batch_alter_table("activity_rules") as batch_op:
        # Nullable: rules made before have no window, and stay in force as they were.
        batch_op.add_column(sa.Column("valid_from", loyalty_api.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("valid_until", loyalty_api.db.types.UTCDateTime(), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f(_CHECK), "valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from"
        )


def downgrade() -> None:
    with rows_set_aside_on_sqlite("activity_rules"), op.batch_alter_table("activity_rules") as batch_op:
        batch_op.drop_constraint(batch_op.f(_CHECK), type_="check")
        batch_op.drop_column("valid_until")
        batch_op.drop_column("valid_from")
