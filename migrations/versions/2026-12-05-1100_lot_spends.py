"""which lots each order's payment with points took its points from (lot_spends), so a refund gives them back
to those lots with their expiry instead of a fresh lot that lived another full period; points spent before
this have no rows and are given back as a fresh lot, as they were

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05 11:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lot_spends",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lot_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("order_ref", sa.String(length=100), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("given_back", sa.BigInteger(), nullable=False),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_lot_spends__points_positive")),
        sa.CheckConstraint(
            "given_back >= 0 AND given_back <= points", name=op.f("ck_lot_spends__given_back_within_points")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["point_lots.id"], name=op.f("fk_lot_spends__lot_id__point_lots")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_lot_spends__member_id__members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_spends")),
    )
    with op.batch_alter_table("lot_spends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lot_spends__order_ref"), ["order_ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lot_spends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lot_spends__order_ref"))
    op.drop_table("lot_spends")
