"""joint benefits: on which tiers and plans a partner's joint benefits reach its linked members

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 12:56:18.276011+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types
from loyalty_api.db.sqlite_rebuild import rows_set_aside_on_sqlite

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with rows_set_aside_on_sqlite("partners"), op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "benefit_tiers",
                loyalty_api.db.types.JSONDocument,
                server_default=sa.text("'[]'"),
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "benefit_plans",
                loyalty_api.db.types.JSONDocument,
                server_default=sa.text("'[]'"),
                nullable=False,
            )
        )


def downgrade() -> None:
    with rows_set_aside_on_sqlite("partners"), op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("benefit_plans")
        batch_op.drop_column("benefit_tiers")
