"""each stored window end names the revision of its tier's window it was worked out under: an earn that read
the ladder before a change of the window (under way while the tier's PUT re-dated the members it could see, or
in a process not yet told of the change) stored the old window's end on a tier whose other members the change
had moved, and kept it. A tier's window revision goes up at each change that moves ends, the earlier windows
kept beside it (`past_windows`), and an end of an earlier one is re-dated through the changes since: on
reading, and stored so by the worker, which walks each tier's members by revision (the new index).

Every end stored before is taken as worked out under the window its tier has (revision 1). The downgrade drops
the revisions: an end still of an earlier one is as the code before this revision read it, the old window's.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-11 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_members__tier_id_tier_window_revision_id"
# (the end, its revision)
_ENDS = (
    ("tier_window_end", "tier_window_revision"),
    ("tier_earned_window_end", "tier_earned_window_revision"),
)
# Untyped: the ends are only looked at for being there.
_MEMBERS = sa.table("members", *(sa.column(name) for pair in _ENDS for name in pair))


def upgrade() -> None:
    # Added as they are, not by a rebuild of the table (SQLite adds a column in place): tier_changes references
    # tiers with ON DELETE SET NULL, so a rebuild could not set their rows aside.
    op.add_column("tiers", sa.Column("window_revision", sa.Integer(), server_default="1", nullable=False))
    op.add_column(
        "tiers",
        sa.Column(
            "past_windows", loyalty_api.db.types.JSONDocument, server_default=sa.text("'[]'"), nullable=False
        ),
    )
    for _, number in _ENDS:
        op.add_column("members", sa.Column(number, sa.Integer(), nullable=True))
    c = _MEMBERS.c
    for end, number in _ENDS:
        op.get_bind().execute(sa.update(_MEMBERS).where(c[end].is_not(None)).values({number: 1}))
    op.create_index(_INDEX, "members", ["tier_id", "tier_window_revision", "id"])


def downgrade() -> None:
    op.drop_index(_INDEX, "members")
    for _, number in reversed(_ENDS):
        op.drop_column("members", number)
    op.drop_column("tiers", "past_windows")
    op.drop_column("tiers", "window_revision")
