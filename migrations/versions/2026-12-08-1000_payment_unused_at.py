"""subscription payments keep when a cancel named them `unused` (unused_at): such a fee kept its member, for
churn, until that cancel and never after, where churn read the cancel from the subscription's canceled_at,
which a resume clears (a resumed subscription's fee counted as paid again, and past figures changed)

The backfill takes, for each fee already `unused`, the first of these that is known:
1. the time of the `subscription.canceled` event that names it for a refund, while the outbox keeps it
   (event_retention_days): exact;
2. the subscription's canceled_at, where no resume has cleared it: exact, but for a cancel, a resume and a
   cancel again, where it is the later cancel's time (as 0038 read it);
3. its recorded_at: the time of the cancel is lost (resumed since, its event purged). The cancel came between
   the fee's recording and the resume, and the resume's time is not kept either (updated_at is the latest
   change of any kind, often the trial's end long after). recorded_at errs over the shortest span, the fee's
   recording to the cancel, often days, and errs toward churn: the member is counted as leaving a little
   early, never as kept after they canceled, the error this revision is here to end.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-08 10:00:00.000000+00:00
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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


def _backfill() -> None:
    bind = op.get_bind()
    p = _PAYMENTS.c
    # One cancel names a fee (it is `succeeded` until then), in its event: found by the fee's subscription and
    # reference. Only the events that name a fee are read, and matched here: a payload's text compares with a
    # GUID column differently on each database.
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
    unused = bind.execute(sa.select(p.id, p.subscription_id, p.payment_ref).where(p.status == _UNUSED)).all()
    for payment_id, subscription_id, payment_ref in unused:
        named_at = when.get((str(subscription_id), payment_ref))
        if named_at is not None:
            bind.execute(sa.update(_PAYMENTS).where(p.id == payment_id).values(unused_at=named_at))
    s = _SUBSCRIPTIONS.c
    canceled_at = sa.select(s.canceled_at).where(s.id == p.subscription_id).scalar_subquery()
    left = sa.and_(p.status == _UNUSED, p.unused_at.is_(None))
    bind.execute(
        sa.update(_PAYMENTS).where(left).values(unused_at=sa.func.coalesce(canceled_at, p.recorded_at))
    )


def upgrade() -> None:
    with op.batch_alter_table("subscription_payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unused_at", loyalty_api.db.types.UTCDateTime(), nullable=True))
    _backfill()


def downgrade() -> None:
    # 0038's churn reads the subscription's canceled_at: nothing to carry back.
    with op.batch_alter_table("subscription_payments", schema=None) as batch_op:
        batch_op.drop_column("unused_at")
