"""a subscription's trial_will_end goes once: a change of plan or price during the trial sends the renewal
notice again, not the trial's

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 15:00:00.000000+00:00
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_SUBSCRIPTIONS = sa.table(
    "subscriptions",
    sa.column("id", sa.Uuid()),
    sa.column("trial_notice_sent_at", loyalty_api.db.types.UTCDateTime()),
)
_OUTBOX = sa.table(
    "outbox_events",
    sa.column("type", sa.String()),
    sa.column("occurred_at", loyalty_api.db.types.UTCDateTime()),
    sa.column("payload", loyalty_api.db.types.JSONDocument),
)


def upgrade() -> None:
    # Native ADD COLUMN on both databases: a nullable column needs no copy of the table on SQLite.
    op.add_column(
        "subscriptions", sa.Column("trial_notice_sent_at", loyalty_api.db.types.UTCDateTime(), nullable=True)
    )
    # Trials already told they are ending are not told again. The outbox says which were told, and when: a
    # cancel with the next period paid, or a change of plan, sets notice_sent_for back to -1 (billing is to be
    # asked for the period again), so on a database that comes back up to this revision it does not tell them
    # all. Read and written here, the same on both databases (the subscription's id is in the JSON payload).
    bind = op.get_bind()
    told: dict[str, datetime] = {}
    for occurred_at, payload in bind.execute(
        sa.select(_OUTBOX.c.occurred_at, _OUTBOX.c.payload).where(
            _OUTBOX.c.type == "subscription.trial_will_end"
        )
    ):
        subscription = str((payload or {}).get("subscription_id"))
        told[subscription] = min(occurred_at, told.get(subscription, occurred_at))
    for subscription, occurred_at in told.items():
        try:
            key = uuid.UUID(subscription)
        except ValueError:
            continue
        bind.execute(
            sa.update(_SUBSCRIPTIONS)
            .where(_SUBSCRIPTIONS.c.id == key)
            .values(trial_notice_sent_at=occurred_at)
        )
    # Those whose notice went for period 0 and whose event is gone (past the outbox's retention).
    op.execute(
        "UPDATE subscriptions SET trial_notice_sent_at = updated_at "
        "WHERE period_number = 0 AND notice_sent_for >= 0 AND trial_notice_sent_at IS NULL"
    )


def downgrade() -> None:
    """Drops when each trial was told it ends. Upgrading again finds it in the outbox (the
    subscription.trial_will_end events still kept) or, failing that, takes a trial whose notice went for period 0
    as told; a trial told, whose event is purged and whose notice was asked for again (notice_sent_for -1), is
    told a second time."""
    op.drop_column("subscriptions", "trial_notice_sent_at")
