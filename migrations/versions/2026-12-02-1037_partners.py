"""partners: the registry, link codes and links of joint membership

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:37:07.104206+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_partners__status_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
        sa.UniqueConstraint("code", name=op.f("uq_partners__code")),
    )
    op.create_table(
        "partner_link_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("grants", loyalty_api.db.types.JSONDocument, nullable=False),
        sa.Column("expires_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", loyalty_api.db.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_partner_link_codes__member_id__members")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_link_codes__partner_id__partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_link_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_partner_link_codes__code_hash")),
    )
    with op.batch_alter_table("partner_link_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_link_codes__member_id"), ["member_id"], unique=False)

    op.create_table(
        "partner_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("partner_customer_ref", sa.String(length=64), nullable=False),
        sa.Column("grants", loyalty_api.db.types.JSONDocument, nullable=False),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_partner_links__member_id__members")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_links__partner_id__partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_links")),
        sa.UniqueConstraint("partner_id", "member_id", name=op.f("uq_partner_links__partner_id_member_id")),
        sa.UniqueConstraint(
            "partner_id",
            "partner_customer_ref",
            name=op.f("uq_partner_links__partner_id_partner_customer_ref"),
        ),
    )
    with op.batch_alter_table("partner_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_links__member_id"), ["member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("partner_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_links__member_id"))

    op.drop_table("partner_links")
    with op.batch_alter_table("partner_link_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_link_codes__member_id"))

    op.drop_table("partner_link_codes")
    op.drop_table("partners")
