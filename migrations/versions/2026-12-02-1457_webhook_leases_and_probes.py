"""webhook leases and probes: the worker run holding a delivery's lease, an endpoint's next probe, settled
deliveries counted for /metrics, events numbered by the database (the order they are sent in, instead of
their time-based ids), and (PostgreSQL) a notification when an event or a delivery is written

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
# SQLite's writers take turns, so the row id is the commit order; the trigger copies it.
_SQLITE_SEQUENCE = """
CREATE TRIGGER outbox_events__sequence AFTER INSERT ON outbox_events WHEN NEW.sequence IS NULL
BEGIN
    UPDATE outbox_events SET sequence = NEW.rowid WHERE rowid = NEW.rowid;
END
"""
_UNDISPATCHED = "dispatched_at IS NULL"
_PENDING = "status = 'pending'"


def _number_events(dialect: str) -> None:
    op.add_column("outbox_events", sa.Column("sequence", sa.BigInteger(), nullable=True))
    if dialect == "postgresql":
        op.execute("CREATE SEQUENCE outbox_events_sequence AS BIGINT OWNED BY outbox_events.sequence")
        op.execute(
            "UPDATE outbox_events SET sequence = numbered.n FROM "
            "(SELECT id, row_number() OVER (ORDER BY id) AS n FROM outbox_events) AS numbered "
            "WHERE numbered.id = outbox_events.id"
        )
        op.execute(
            "SELECT setval('outbox_events_sequence', COALESCE(max(sequence), 0) + 1, false) FROM outbox_events"
        )
        op.execute(
            "ALTER TABLE outbox_events ALTER COLUMN sequence SET DEFAULT nextval('outbox_events_sequence')"
        )
    else:
        op.execute("UPDATE outbox_events SET sequence = rowid")
        op.execute(_SQLITE_SEQUENCE)
    op.add_column("webhook_deliveries", sa.Column("sequence", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE webhook_deliveries SET sequence = "
        "(SELECT sequence FROM outbox_events WHERE outbox_events.id = webhook_deliveries.event_id)"
    )
    _index_queues(events_by="sequence", deliveries_by="sequence", deliveries_were_by="event_id")


def _index_queues(*, events_by: str, deliveries_by: str, deliveries_were_by: str) -> None:
    """The partial indexes of the two queues, ordered by the given columns."""
    op.drop_index("ix_outbox_events__undispatched", table_name="outbox_events")
    op.create_index(
        "ix_outbox_events__undispatched",
        "outbox_events",
        [events_by],
        postgresql_where=sa.text(_UNDISPATCHED),
        sqlite_where=sa.text(_UNDISPATCHED),
    )
    op.drop_index(
        f"ix_webhook_deliveries__endpoint_id_ordering_key_{deliveries_were_by}",
        table_name="webhook_deliveries",
    )
    op.create_index(
        f"ix_webhook_deliveries__endpoint_id_ordering_key_{deliveries_by}",
        "webhook_deliveries",
        ["endpoint_id", "ordering_key", deliveries_by],
        postgresql_where=sa.text(_PENDING),
        sqlite_where=sa.text(_PENDING),
    )


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
    # The counts start from the deliveries already settled (in shard 0; settling makes the other rows).
    settled = op.get_bind().execute(
        sa.text(
            "SELECT status, count(*) FROM webhook_deliveries WHERE status IN ('succeeded', 'failed') "
            "GROUP BY status"
        )
    )
    op.bulk_insert(counts, [{"outcome": status, "shard": 0, "deliveries": int(n)} for status, n in settled])
    _number_events(op.get_bind().dialect.name)
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
    else:
        op.execute("DROP TRIGGER outbox_events__sequence")
    _index_queues(events_by="id", deliveries_by="event_id", deliveries_were_by="sequence")
    op.drop_column("webhook_deliveries", "sequence")
    op.drop_column("outbox_events", "sequence")  # its PostgreSQL sequence goes with it
    op.drop_column("webhook_endpoints", "next_probe_at")
    op.drop_column("webhook_deliveries", "lease_token")
    op.drop_table("webhook_delivery_counts")
