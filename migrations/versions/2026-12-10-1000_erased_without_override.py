"""erased members carry no tier override: erasure cleared the window the review judges but left an override's
end, the tier earned before it and that window's end on the row, which no review would ever act on (the
override walk read such members from the overrides' index only to pass them by). Erasure now clears them; this
clears them on the members erased before.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-10 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ERASED = "erased"
_OVERRIDE = ("tier_override_until", "tier_earned_id", "tier_earned_window_end")
# Untyped: the values are only cleared, never read here.
_MEMBERS = sa.table("members", sa.column("status"), *(sa.column(name) for name in _OVERRIDE))


def upgrade() -> None:
    c = _MEMBERS.c
    op.get_bind().execute(
        sa.update(_MEMBERS)
        .where(c.status == _ERASED, sa.or_(*(c[name].is_not(None) for name in _OVERRIDE)))
        .values({name: None for name in _OVERRIDE})
    )


def downgrade() -> None:
    # Nothing to put back: 0040's code read none of it for an erased member, and an erasure is for good.
    pass
