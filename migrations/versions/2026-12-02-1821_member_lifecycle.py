"""member lifecycle: each member's stage (new, active, at risk, lapsed, churned), since when, when time alone
changes it next and when it was last assessed; the programme's thresholds in days. Existing members are due
at once: the lifecycle job assesses them (without an event: their first assessment).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 18:21:07.787903+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_members__lifecycle_assessed_at", ["lifecycle_assessed_at"]),
    ("ix_members__lifecycle_due_at", ["lifecycle_due_at"]),
    ("ix_members__lifecycle_stage_id", ["lifecycle_stage", "id"]),
)
_THRESHOLDS = (
    ("lifecycle_at_risk_days", "30"),
    ("lifecycle_lapsed_days", "90"),
    ("lifecycle_churned_days", "365"),
)


def upgrade() -> None:
    # Native ADD COLUMN on both databases: members is referenced by many tables, and SQLite's batch mode
    # would copy it.
    op.add_column(
        "members", sa.Column("lifecycle_stage", sa.String(16), server_default="new", nullable=False)
    )
    for name in ("lifecycle_since", "lifecycle_due_at", "lifecycle_assessed_at"):
        op.add_column("members", sa.Column(name, loyalty_api.db.types.UTCDateTime(), nullable=True))
    for index, columns in _INDEXES:
        op.create_index(index, "members", columns)
    op.execute("UPDATE members SET lifecycle_due_at = created_at")
    for name, default in _THRESHOLDS:
        op.add_column("programs", sa.Column(name, sa.Integer(), server_default=default, nullable=False))
    op.add_column(
        "programs", sa.Column("lifecycle_changed_at", loyalty_api.db.types.UTCDateTime(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("programs", "lifecycle_changed_at")
    for name, _ in reversed(_THRESHOLDS):
        op.drop_column("programs", name)
    for index, _ in reversed(_INDEXES):
        op.drop_index(index, "members")
    for name in ("lifecycle_assessed_at", "lifecycle_due_at", "lifecycle_since", "lifecycle_stage"):
        op.drop_column("members", name)
