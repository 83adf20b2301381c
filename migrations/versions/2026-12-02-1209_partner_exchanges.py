"""partners: earn and exchange rates, limits, exchanges, partner-marked ledger entries, partners' webhook
endpoints; order references long enough for a partner's under its code

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 12:09:04.508960+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types
from loyalty_api.db.sqlite_rebuild import rows_set_aside_on_sqlite

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner_exchanges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("partner_customer_ref", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("partner_points", sa.BigInteger(), nullable=False),
        sa.Column("rate", loyalty_api.db.types.DecimalText(), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("partner_ref", sa.String(length=64), nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("return_entry_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", loyalty_api.db.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", loyalty_api.db.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint("direction IN ('out', 'in')", name=op.f("ck_partner_exchanges__direction_known")),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'failed', 'expired', 'completed')",
            name=op.f("ck_partner_exchanges__status_known"),
        ),
        sa.CheckConstraint(
            "points > 0 AND partner_points > 0", name=op.f("ck_partner_exchanges__points_positive")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_partner_exchanges__entry_id__ledger_entries")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_partner_exchanges__member_id__members")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_exchanges__partner_id__partners")
        ),
        sa.ForeignKeyConstraint(
            ["return_entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_partner_exchanges__return_entry_id__ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_exchanges")),
        sa.UniqueConstraint(
            "partner_id", "partner_ref", name=op.f("uq_partner_exchanges__partner_id_partner_ref")
        ),
    )
    with op.batch_alter_table("partner_exchanges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_exchanges__member_id_created_at"),
            ["member_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_partner_exchanges__partner_id_created_at"),
            ["partner_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_partner_exchanges__pending",
            ["expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    with (
        rows_set_aside_on_sqlite("ledger_entries"),
        op.batch_alter_table("ledger_entries", schema=None) as batch_op,
    ):
        batch_op.add_column(sa.Column("partner_id", sa.Uuid(), nullable=True))
        batch_op.alter_column(
            "order_ref",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.String(length=100),
            existing_nullable=True,
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_entries__partner_id_created_at"),
            ["partner_id", "created_at"],
            unique=False,
            postgresql_where=sa.text("partner_id IS NOT NULL"),
            sqlite_where=sa.text("partner_id IS NOT NULL"),
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_ledger_entries__partner_id__partners"), "partners", ["partner_id"], ["id"]
        )

    with rows_set_aside_on_sqlite("orders"), op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column(
            "order_ref",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.String(length=100),
            existing_nullable=False,
        )

    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_id", sa.Uuid(), nullable=True))

    with rows_set_aside_on_sqlite("partners"), op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("earn_rate", loyalty_api.db.types.DecimalText(), nullable=True))
        batch_op.add_column(sa.Column("exchange_out_rate", loyalty_api.db.types.DecimalText(), nullable=True))
        batch_op.add_column(sa.Column("exchange_in_rate", loyalty_api.db.types.DecimalText(), nullable=True))
        batch_op.add_column(sa.Column("daily_exchange_limit", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("member_daily_exchange_limit", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "exchange_timeout_seconds", sa.Integer(), server_default=sa.text("3600"), nullable=False
            )
        )
        batch_op.create_check_constraint(
            op.f("ck_partners__exchange_limits_positive"),
            "(daily_exchange_limit IS NULL OR daily_exchange_limit > 0)"
            " AND (member_daily_exchange_limit IS NULL OR member_daily_exchange_limit > 0)",
        )
        batch_op.create_check_constraint(
            op.f("ck_partners__exchange_timeout_positive"), "exchange_timeout_seconds > 0"
        )

    with rows_set_aside_on_sqlite("point_lots"), op.batch_alter_table("point_lots", schema=None) as batch_op:
        batch_op.alter_column(
            "order_ref",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.String(length=100),
            existing_nullable=True,
        )

    # No foreign key to partners: SQLite would rebuild the table, and the rebuild's drop cascades to deliveries.
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("partner_id")

    with rows_set_aside_on_sqlite("point_lots"), op.batch_alter_table("point_lots", schema=None) as batch_op:
        batch_op.alter_column(
            "order_ref",
            existing_type=sa.String(length=100),
            type_=sa.VARCHAR(length=64),
            existing_nullable=True,
        )

    with rows_set_aside_on_sqlite("partners"), op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_partners__exchange_timeout_positive"), type_="check")
        batch_op.drop_constraint(op.f("ck_partners__exchange_limits_positive"), type_="check")
        batch_op.drop_column("exchange_timeout_seconds")
        batch_op.drop_column("member_daily_exchange_limit")
        batch_op.drop_column("daily_exchange_limit")
        batch_op.drop_column("exchange_in_rate")
        batch_op.drop_column("exchange_out_rate")
        batch_op.drop_column("earn_rate")

    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_column("partner_id")

    with rows_set_aside_on_sqlite("orders"), op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column(
            "order_ref",
            existing_type=sa.String(length=100),
            type_=sa.VARCHAR(length=64),
            existing_nullable=False,
        )

    with (
        rows_set_aside_on_sqlite("ledger_entries"),
        op.batch_alter_table("ledger_entries", schema=None) as batch_op,
    ):
        batch_op.drop_constraint(batch_op.f("fk_ledger_entries__partner_id__partners"), type_="foreignkey")
        batch_op.drop_index(
            batch_op.f("ix_ledger_entries__partner_id_created_at"),
            postgresql_where=sa.text("partner_id IS NOT NULL"),
            sqlite_where=sa.text("partner_id IS NOT NULL"),
        )
        batch_op.alter_column(
            "order_ref",
            existing_type=sa.String(length=100),
            type_=sa.VARCHAR(length=64),
            existing_nullable=True,
        )
        batch_op.drop_column("partner_id")

    with op.batch_alter_table("partner_exchanges", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_partner_exchanges__pending",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index(batch_op.f("ix_partner_exchanges__partner_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_partner_exchanges__member_id_created_at"))

    op.drop_table("partner_exchanges")
