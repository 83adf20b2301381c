"""partner benefit uses: a partner's records that linked members used its joint benefits

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 13:24:05.856378+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner_benefit_uses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("benefit_id", sa.Uuid(), nullable=False),
        sa.Column("benefit_name", sa.String(length=100), nullable=False),
        sa.Column("use_ref", sa.String(length=64), nullable=False),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_partner_benefit_uses__member_id__members")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_benefit_uses__partner_id__partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_benefit_uses")),
        sa.UniqueConstraint(
            "partner_id", "use_ref", name=op.f("uq_partner_benefit_uses__partner_id_use_ref")
        ),
    )
    with op.batch_alter_table("partner_benefit_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_benefit_uses__member_id"), ["member_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_partner_benefit_uses__partner_id_created_at"),
            ["partner_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("partner_benefit_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_benefit_uses__partner_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_partner_benefit_uses__member_id"))

    op.drop_table("partner_benefit_uses")
