"""an index on ledger_entries.created_at: the leaderboard (a week, a month) and the points reports read a
window of the ledger by when its entries were made, and with no index on it every one of them read the whole
ledger, however short the window.

On a large ledger build it by hand before upgrading, without holding writes (docs/scaling.md):
`CREATE INDEX CONCURRENTLY ix_ledger_entries__created_at ON ledger_entries (created_at)`; this revision then
finds it there.

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-15 10:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0046"
down_revision: str | None = "0045"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ledger_entries__created_at", "ledger_entries", ["created_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_ledger_entries__created_at", table_name="ledger_entries")
