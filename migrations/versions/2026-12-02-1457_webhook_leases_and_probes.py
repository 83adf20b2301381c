"""webhook leases and probes: the worker run holding a delivery's lease, an endpoint's next probe, settled
deliveries counted for /metrics, and (PostgreSQL) a notification when an event or a delivery is written

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 14:57:11.672646+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The worker listens on this channel (loyalty_api.webhooks.wakeup.CHANNEL): a statement-level trigger sends
# one notification per writing statement, delivered at commit, collapsed within a transaction.
_NOTIFY_FUNCTION = """
CREATE FUNCTION loyalty_webhooks_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('loyalty_webhooks', '');
    RETURN NULL;
END
$$
"""
_WOKEN_BY = ("outbox_events", "webhook_deliveries")


def upgrade() -> None:
    counts = op.create_table(
        "webhook_delivery_counts",
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("deliveries", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("outcome", "shard", name=op.f("pk_webhook_delivery_counts")),
    )
    assert counts is not None
    # Native ADD/DROP COLUMN: a batch rebuild of either table would cascade-delete what references it.
    op.add_column("webhook_deliveries", sa.Column("lease_token", sa.Uuid(), nullable=True))
    op.add_column(
        "webhook_endpoints", sa.Column("next_probe_at", loyalty_api.db.types.UTCDateTime(), nullable=True)
    )
    # Shard 0 starts from the deliveries already settled; the others from nothing.
    settled = op.get_bind().execute(
        sa.text(
            "SELECT status, count(*) FROM webhook_deliveries WHERE status IN ('succeeded', 'failed') "
            "GROUP BY status"
        )
    )
    found = {status: int(n) for status, n in settled}
    op.bulk_insert(
        counts,
        [
            {"outcome": outcome, "shard": shard, "deliveries": found.get(outcome, 0) if shard == 0 else 0}
            for outcome in ("succeeded", "failed")
            for shard in range(8)
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY_FUNCTION)
        for table in _WOKEN_BY:
            op.execute(
                f"CREATE TRIGGER {table}__wake_webhooks AFTER INSERT ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION loyalty_webhooks_wake()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _WOKEN_BY:
            op.execute(f"DROP TRIGGER {table}__wake_webhooks ON {table}")
        op.execute("DROP FUNCTION loyalty_webhooks_wake()")
    op.drop_column("webhook_endpoints", "next_probe_at")
    op.drop_column("webhook_deliveries", "lease_token")
    op.drop_table("webhook_delivery_counts")
