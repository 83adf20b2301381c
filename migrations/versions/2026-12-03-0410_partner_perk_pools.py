"""partner perk pools: a plan's partner perk may take its codes from a pool the partner uploaded
(partner_perk_codes, encrypted, with a blind index); a perk from an empty pool is owed until codes arrive, so
a perk has a source, a pool, no code of ours when pooled, and the moment it was granted

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 03:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWED = "status = 'owed'"
_UNUSED = "perk_id IS NULL"
_SOURCE = (
    "(source = 'ours' AND code IS NOT NULL AND pool IS NULL)"
    " OR (source = 'pool' AND code IS NULL AND pool IS NOT NULL)"
)


def upgrade() -> None:
    # No table references partner_perks yet (partner_perk_codes comes after), so SQLite's rebuild of it needs
    # no rows set aside.
    with op.batch_alter_table("partner_perks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=8), server_default=sa.text("'ours'"), nullable=False)
        )
        batch_op.add_column(sa.Column("pool", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("granted_at", loyalty_api.db.types.UTCDateTime(), nullable=True))
        batch_op.alter_column("code", existing_type=sa.String(length=32), nullable=True)
        batch_op.drop_constraint(batch_op.f("ck_partner_perks__status_known"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_partner_perks__status_known"), "status IN ('owed', 'issued', 'redeemed')"
        )
        batch_op.create_check_constraint(batch_op.f("ck_partner_perks__source_known"), _SOURCE)
        batch_op.drop_index(batch_op.f("ix_partner_perks__partner_id_created_at"))
        batch_op.create_index(
            batch_op.f("ix_partner_perks__partner_id_granted_at"), ["partner_id", "granted_at"], unique=False
        )
        batch_op.create_index(
            "ix_partner_perks__owed",
            ["partner_id", "pool", "id"],
            unique=False,
            postgresql_where=sa.text(_OWED),
            sqlite_where=sa.text(_OWED),
        )
    # Every perk so far was one of ours, granted when it was made.
    op.execute("UPDATE partner_perks SET granted_at = created_at")

    op.create_table(
        "partner_perk_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("pool", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("code_encrypted", sa.Text(), nullable=False),
        sa.Column("perk_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_perk_codes__partner_id__partners")
        ),
        sa.ForeignKeyConstraint(
            ["perk_id"], ["partner_perks.id"], name=op.f("fk_partner_perk_codes__perk_id__partner_perks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_perk_codes")),
        sa.UniqueConstraint(
            "partner_id", "code_hash", name=op.f("uq_partner_perk_codes__partner_id_code_hash")
        ),
        sa.UniqueConstraint("perk_id", name=op.f("uq_partner_perk_codes__perk_id")),
    )
    with op.batch_alter_table("partner_perk_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_partner_perk_codes__unused",
            ["partner_id", "pool", "id"],
            unique=False,
            postgresql_where=sa.text(_UNUSED),
            sqlite_where=sa.text(_UNUSED),
        )


def downgrade() -> None:
    with op.batch_alter_table("partner_perk_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_partner_perk_codes__unused")
    op.drop_table("partner_perk_codes")
    # The pooled perks have no code of ours to keep: they go with their pools.
    op.execute("DELETE FROM partner_perks WHERE source = 'pool'")
    with op.batch_alter_table("partner_perks", schema=None) as batch_op:
        batch_op.drop_index("ix_partner_perks__owed")
        batch_op.drop_index(batch_op.f("ix_partner_perks__partner_id_granted_at"))
        batch_op.create_index(
            batch_op.f("ix_partner_perks__partner_id_created_at"), ["partner_id", "created_at"], unique=False
        )
        batch_op.drop_constraint(batch_op.f("ck_partner_perks__source_known"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_partner_perks__status_known"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_partner_perks__status_known"), "status IN ('issued', 'redeemed')"
        )
        batch_op.alter_column("code", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column("granted_at")
        batch_op.drop_column("pool")
        batch_op.drop_column("source")
