"""partner perks: a perk issued and not redeemed when its member is erased is `ended`
(ck_partner_perks__status_known), as the member's unused coupons expire: kept, since it was granted and the
settlement counts it so, and never redeemable; a pooled one keeps its code, which is never given again

The perks issued to members erased before this revision end now, as the erasure would have ended them (the
redeem refuses any perk of an erased member, 404 `perk_not_found`, whatever its status). The downgrade sets `ended` perks back to `issued`,
the only status before this revision that neither counts them redeemed nor deletes what the settlement counts
as granted.

Revision ID: 0049
Revises: 0048
Create Date: 2026-12-16 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from loyalty_api.db.sqlite_rebuild import rows_set_aside_on_sqlite

revision: str = "0049"
down_revision: str | None = "0048"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_partner_perks__status_known"
_OWED = "status = 'owed'"


def _replace_check(condition: str) -> None:
    # SQLite changes a CHECK by rebuilding the table; partner_perk_codes references partner_perks, so its rows
    # are set aside meanwhile. The partial index of owed perks is made again by name, with its condition, so
    # the rebuild cannot lose the condition.
    with (
        rows_set_aside_on_sqlite("partner_perks"),
        op.batch_alter_table("partner_perks", schema=None) as batch_op,
    ):
        batch_op.drop_index("ix_partner_perks__owed")
        batch_op.drop_constraint(batch_op.f(_CHECK), type_="check")
        batch_op.create_check_constraint(batch_op.f(_CHECK), condition)
        batch_op.create_index(
            "ix_partner_perks__owed",
            ["partner_id", "pool", "id"],
            unique=False,
            postgresql_where=sa.text(_OWED),
            sqlite_where=sa.text(_OWED),
        )


def upgrade() -> None:
    _replace_check("status IN ('owed', 'issued', 'redeemed', 'ended')")
    op.execute(
        "UPDATE partner_perks SET status = 'ended' WHERE status = 'issued'"
        " AND member_id IN (SELECT id FROM members WHERE status = 'erased')"
    )


def downgrade() -> None:
    op.execute("UPDATE partner_perks SET status = 'issued' WHERE status = 'ended'")
    _replace_check("status IN ('owed', 'issued', 'redeemed')")
