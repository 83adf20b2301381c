"""subscription payments: a fee is `unused` exactly when it has unused_at
(ck_subscription_payments__unused_at_when_unused), so that churn, which reads the time, and renewals, which
read the status, cannot disagree about a fee

Before the check, the rows are made to meet it; the service writes none that breaks it, but a process still
running the code before 0039 (a rolling deploy) or a hand edit may have:
1. a fee `unused` with no unused_at (a cancel by code before 0039, after 0039 ran): filled as 0039 filled every
   such fee, from the first of these that is known: the `subscription.canceled` event that names it (exact,
   and likely still in the outbox, being recent), the subscription's canceled_at while no resume cleared it,
   its recorded_at (errs toward churn over the shortest span; 0039 says why);
2. a fee not `unused` with an unused_at (no code writes one; a fee set back to succeeded by hand): the stamp is
   dropped. The status is what renewals take (only a `succeeded` fee pays a period), what the one success per
   period rests on and what billing was told; marking the fee `unused` instead would take a paid period from
   its subscription.
The downgrade drops the check only: the rows as the upgrade left them are 0039's shape too.

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-09 10:00:00.000000+00:00
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types
from loyalty_api.db.sqlite_rebuild import rows_set_aside_on_sqlite

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_subscription_payments__unused_at_when_unused"
# Portable as it is: a comparison is a boolean on PostgreSQL and 0 or 1 on SQLite, and neither side is ever
# NULL (status is NOT NULL), so the two sides are equal exactly when both hold or neither does.
_CONDITION = "(status = 'unused') = (unused_at IS NOT NULL)"

_UNUSED = "unused"
_PAYMENTS = sa.table(
    "subscription_payments",
    sa.column("id", sa.Uuid()),
    sa.column("subscription_id", sa.Uuid()),
    sa.column("payment_ref", sa.String()),
    sa.column("status", sa.String()),
    sa.column("recorded_at", loyalty_api.db.types.UTCDateTime()),
    sa.column("unused_at", loyalty_api.db.types.UTCDateTime()),
)
_SUBSCRIPTIONS = sa.table(
    "subscriptions",
    sa.column("id", sa.Uuid()),
    sa.column("canceled_at", loyalty_api.db.types.UTCDateTime()),
)
_EVENTS = sa.table(
    "outbox_events",
    sa.column("type", sa.String()),
    sa.column("occurred_at", loyalty_api.db.types.UTCDateTime()),
    sa.column("payload", loyalty_api.db.types.JSONDocument),
)


def _fill_unused() -> None:
    """0039's backfill, copied as it was (a revision imports no other), for the fees `unused` without
    unused_at only."""
    bind = op.get_bind()
    p = _PAYMENTS.c
    left = sa.and_(p.status == _UNUSED, p.unused_at.is_(None))
    unused = bind.execute(sa.select(p.id, p.subscription_id, p.payment_ref).where(left)).all()
    if not unused:
        return  # the outbox is not read for nothing
    # One cancel names a fee, in its event: found by the fee's subscription and reference, matched here (a
    # payload's text compares with a GUID column differently on each database).
    names = _EVENTS.c.payload[("unused_payment", "payment_ref")].as_string()
    canceled = bind.execute(
        sa.select(_EVENTS.c.occurred_at, _EVENTS.c.payload["subscription_id"].as_string(), names).where(
            _EVENTS.c.type == "subscription.canceled", names.is_not(None)
        )
    )
    when: dict[tuple[str, str], datetime] = {}
    for occurred_at, subscription_id, payment_ref in canceled:
        key = (str(subscription_id), str(payment_ref))
        when[key] = min(occurred_at, when.get(key, occurred_at))
    for payment_id, subscription_id, payment_ref in unused:
        named_at = when.get((str(subscription_id), payment_ref))
        if named_at is not None:
            bind.execute(sa.update(_PAYMENTS).where(p.id == payment_id).values(unused_at=named_at))
    s = _SUBSCRIPTIONS.c
    canceled_at = sa.select(s.canceled_at).where(s.id == p.subscription_id).scalar_subquery()
    bind.execute(
        sa.update(_PAYMENTS).where(left).values(unused_at=sa.func.coalesce(canceled_at, p.recorded_at))
    )


def upgrade() -> None:
    _fill_unused()
    # A time on a fee not `unused` goes; its status stands.
    p = _PAYMENTS.c
    op.get_bind().execute(
        sa.update(_PAYMENTS).where(p.status != _UNUSED, p.unused_at.is_not(None)).values(unused_at=None)
    )
    # SQLite adds a CHECK by rebuilding the table. No table references subscription_payments now; should one
    # come to, its rows are set aside for the rebuild.
    with (
        rows_set_aside_on_sqlite("subscription_payments"),
        op.batch_alter_table("subscription_payments", schema=None) as batch_op,
    ):
        batch_op.create_check_constraint(batch_op.f(_CHECK), _CONDITION)


def downgrade() -> None:
    with (
        rows_set_aside_on_sqlite("subscription_payments"),
        op.batch_alter_table("subscription_payments", schema=None) as batch_op,
    ):
        batch_op.drop_constraint(batch_op.f(_CHECK), type_="check")
