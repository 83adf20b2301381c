"""orders.partner_customer_ref: a partner's purchase keeps the partner's reference of the customer it was made
under. Once the customer has unlinked, the partner refunds the purchase by that reference alone: without it
any reference refunded any former customer's purchase, so a mistyped order number refunded someone else's.
An erasure forgets it (a partner may make its references of phone numbers).

Purchases made before this revision take the reference their member is linked to the partner under now (the
one the partner reaches them by, and refunds them by while linked); those of members not linked now keep none,
and are refunded by their order alone, as before. The downgrade drops the column.

Revision ID: 0051
Revises: 0050
Create Date: 2026-12-17 11:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0051"
down_revision: str | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A partner's order is `<partner code>/<its order ref>` (coalition.purchases.partner_order_ref); codes hold
# no `/`, so one partner's code followed by `/` begins no other partner's orders. Compared with substr rather
# than LIKE, where a code's `_` would match any character. A member links once per partner: one row at most.
_BACKFILL = """
UPDATE orders SET partner_customer_ref = (
    SELECT partner_links.partner_customer_ref
    FROM partner_links JOIN partners ON partners.id = partner_links.partner_id
    WHERE partner_links.member_id = orders.member_id
      AND substr(orders.order_ref, 1, length(partners.code) + 1) = partners.code || '/'
)
WHERE orders.order_ref LIKE '%/%'
"""


def upgrade() -> None:
    # Added in place (SQLite too), as members.closed_at was: a nullable column needs no rebuild, and a
    # rebuild of orders would have to make its partial index again.
    op.add_column("orders", sa.Column("partner_customer_ref", sa.String(length=64), nullable=True))
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.drop_column("orders", "partner_customer_ref")
