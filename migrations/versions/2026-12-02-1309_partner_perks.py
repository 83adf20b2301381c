"""partner perks: the partners' perks a paid plan includes, and the codes each paid period gives a member

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:09:21.295631+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types
from loyalty_api.db.sqlite_rebuild import rows_set_aside_on_sqlite

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner_perks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("period_number", sa.Integer(), nullable=False),
        sa.Column("plan_code", sa.String(length=32), nullable=False),
        sa.Column("issue_key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.Column("redeemed_at", loyalty_api.db.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('issued', 'redeemed')", name=op.f("ck_partner_perks__status_known")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_partner_perks__member_id__members")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_perks__partner_id__partners")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_partner_perks__subscription_id__subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_perks")),
        sa.UniqueConstraint("code", name=op.f("uq_partner_perks__code")),
        sa.UniqueConstraint("issue_key", name=op.f("uq_partner_perks__issue_key")),
    )
    with op.batch_alter_table("partner_perks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_perks__member_id_id"), ["member_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_partner_perks__partner_id_created_at"), ["partner_id", "created_at"], unique=False
        )

    with rows_set_aside_on_sqlite("plans"), op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "partner_perks",
                loyalty_api.db.types.JSONDocument,
                server_default=sa.text("'[]'"),
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("partner_perks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_perks__partner_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_partner_perks__member_id_id"))

    op.drop_table("partner_perks")
    with rows_set_aside_on_sqlite("plans"), op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("partner_perks")
