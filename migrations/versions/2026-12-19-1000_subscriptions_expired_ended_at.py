"""subscription.expired events written before they carried `ended_at` get it, from the subscription's
`ended_at`: a webhook retried or replayed from the outbox then matches the payload schema of
GET /v1/event-types, whenever its event was written.

An event whose subscription is gone, or has no `ended_at`, is left as it is. The downgrade leaves the
payloads as they are: the code before this revision sends a payload as stored and reads none of it.

Revision ID: 0054
Revises: 0053
Create Date: 2026-12-19 10:00:00.000000+00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0054"
down_revision: str | None = "0053"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500

_SUBSCRIPTIONS = sa.table(
    "subscriptions",
    sa.column("id", sa.Uuid()),
    sa.column("ended_at", loyalty_api.db.types.UTCDateTime()),
)
_EVENTS = sa.table(
    "outbox_events",
    sa.column("id", sa.Uuid()),
    sa.column("type", sa.String()),
    sa.column("payload", loyalty_api.db.types.JSONDocument),
)


def upgrade() -> None:
    # Read and written here, the same on both databases: the subscription's id is in the JSON payload, whose
    # text compares with a GUID column differently on each database. Only the expiries are read (one a
    # subscription at most), through the index of types.
    bind = op.get_bind()
    missing: dict[uuid.UUID, tuple[uuid.UUID, dict[str, object]]] = {}  # by event: subscription, payload
    for event_id, payload in bind.execute(
        sa.select(_EVENTS.c.id, _EVENTS.c.payload).where(_EVENTS.c.type == "subscription.expired")
    ):
        if not isinstance(payload, dict) or "ended_at" in payload:
            continue
        try:
            subscription_id = uuid.UUID(str(payload.get("subscription_id")))
        except ValueError:
            continue
        missing[event_id] = (subscription_id, payload)
    wanted = sorted({subscription_id for subscription_id, _ in missing.values()})
    ended: dict[uuid.UUID, str] = {}
    for start in range(0, len(wanted), _BATCH):
        for subscription_id, ended_at in bind.execute(
            sa.select(_SUBSCRIPTIONS.c.id, _SUBSCRIPTIONS.c.ended_at).where(
                _SUBSCRIPTIONS.c.id.in_(wanted[start : start + _BATCH]),
                _SUBSCRIPTIONS.c.ended_at.is_not(None),
            )
        ):
            # As the service writes an instant (loyalty_api.clock.format_instant, kept here as it is today).
            ended[subscription_id] = ended_at.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"
    for event_id, (subscription_id, payload) in missing.items():
        if subscription_id in ended:
            bind.execute(
                sa.update(_EVENTS)
                .where(_EVENTS.c.id == event_id)
                .values(payload={**payload, "ended_at": ended[subscription_id]})
            )


def downgrade() -> None:
    # Nothing to take back: the code before this revision sends a payload as stored and reads none of it.
    pass
