"""member RFM: each member's recency, frequency and monetary scores and segment, in a table of their own that
the RFM job rewrites; the programme's RFM window in days

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 19:15:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "programs", sa.Column("rfm_window_days", sa.Integer(), server_default="365", nullable=False)
    )
    op.create_table(
        "member_rfm",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("recency", sa.SmallInteger(), nullable=False),
        sa.Column("frequency", sa.SmallInteger(), nullable=False),
        sa.Column("monetary", sa.SmallInteger(), nullable=False),
        sa.Column("segment", sa.String(length=24), nullable=False),
        sa.Column("last_purchase_at", loyalty_api.db.types.UTCDateTime(), nullable=True),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_rfm__member_id__members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_rfm")),
    )
    op.create_index("ix_member_rfm__segment_member_id", "member_rfm", ["segment", "member_id"])


def downgrade() -> None:
    op.drop_index("ix_member_rfm__segment_member_id", "member_rfm")
    op.drop_table("member_rfm")
    op.drop_column("programs", "rfm_window_days")
