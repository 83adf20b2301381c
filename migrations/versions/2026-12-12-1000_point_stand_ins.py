"""points taken in place of an order's own spent points (point_stand_ins): a refund that took the member's other
points because the order's own were spent kept no record of which, so when the order's own points came back
(the refund of the order they paid) they could not give those back, and came back ended to expire instead

A downgrade drops the record: stand-ins not yet given back stay taken, as before this revision.

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-12 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "returned < points"


def upgrade() -> None:
    op.create_table(
        "point_stand_ins",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("order_ref", sa.String(length=100), nullable=False),
        sa.Column("lot_id", sa.Uuid(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("returned", sa.BigInteger(), nullable=False),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_point_stand_ins__points_positive")),
        sa.CheckConstraint(
            "returned >= 0 AND returned <= points", name=op.f("ck_point_stand_ins__returned_within_points")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["point_lots.id"], name=op.f("fk_point_stand_ins__lot_id__point_lots")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_point_stand_ins__member_id__members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_stand_ins")),
    )
    op.create_index(
        op.f("ix_point_stand_ins__member_id_order_ref"),
        "point_stand_ins",
        ["member_id", "order_ref"],
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_point_stand_ins__member_id_order_ref"), table_name="point_stand_ins")
    op.drop_table("point_stand_ins")
