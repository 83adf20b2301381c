"""points transfers between members: whether the programme allows them, and how many points a member may send
in a day

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05 16:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_programs__transfer_daily_limit_positive"


def upgrade() -> None:
    # SQLite adds a CHECK by rebuilding the table; nothing references the programme's row.
    with op.batch_alter_table("programs") as batch_op:
        # Off for a programme made before: members could not move points until an operator says they may.
        batch_op.add_column(
            sa.Column("transfers_enabled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("transfer_daily_limit", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(batch_op.f(_CHECK), "transfer_daily_limit > 0")


def downgrade() -> None:
    with op.batch_alter_table("programs") as batch_op:
        batch_op.drop_constraint(batch_op.f(_CHECK), type_="check")
        batch_op.drop_column("transfer_daily_limit")
        batch_op.drop_column("transfers_enabled")
