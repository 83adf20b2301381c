from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin
from loyalty_api.db.constant import constant


class WebhookEndpoint(IdMixin, Base):
    """Where events are sent. Its signing secrets are stored encrypted; during a rotation the previous one
    signs too, until `previous_secret_until`."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(200))
    event_types: Mapped[list[str]]  # empty: every event type
    # A partner's endpoint receives only events about that partner; ours (None) receive every event. No
    # foreign key: SQLite would rebuild this table to add one, and the rebuild's drop cascades to deliveries.
    partner_id: Mapped[uuid.UUID | None]
    enabled: Mapped[bool]
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]  # the first failure since the last success
    # While failing, its deliveries wait and one probe at a time tries the endpoint: the next one not before
    # this (also the probe's own lease while it is out).
    next_probe_at: Mapped[datetime | None]
    # While failing: the latest it was to be tried again by, as its last failure left it. Time past it until
    # the next failed attempt is time nobody tried the endpoint (the worker stopped, nothing left to send it),
    # not counted towards disabling it (failing_since moves on by it).
    failing_seen_until: Mapped[datetime | None]
    # A receiver that answered 429 or 503 with Retry-After asked to be sent nothing before this: the 2xx of a
    # send it had taken in before it asked does not end the wait (only a probe answered, or an operator).
    retry_after_until: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(IdMixin, Base):
    """One event for one endpoint, until it is delivered or given up. Deliveries of one endpoint that share
    an `ordering_key` (the member) go out one after another, in event order."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "created_at"),  # the retention job reads the oldest
        Index(None, "event_id"),  # an event is purged once no delivery of it is left
        # An endpoint's deliveries of one type, newest first (GET .../deliveries?event_type=).
        Index(None, "endpoint_id", "event_type", "id"),
        # The head-of-queue check looks only at pending deliveries of one endpoint and member.
        Index(
            None,
            "endpoint_id",
            "ordering_key",
            "sequence",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox_events.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    ordering_key: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int | None] = mapped_column(BigInteger)  # the event's: the order within a key
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    # Its own next attempt while a recovered endpoint's release sends it ahead of that (None otherwise): a
    # failure then leaves the back-off where it was, as a probe's does.
    scheduled_at: Mapped[datetime | None]
    leased_until: Mapped[datetime | None]  # a worker is sending it; after this another may
    lease_token: Mapped[uuid.UUID | None]  # which worker's run holds the lease (it renews and settles by it)
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


# The deliveries WebhookDelivery's partial index holds, as a statement must name them to use it
# (db/constant.py).
DELIVERY_PENDING = WebhookDelivery.status == constant("pending")


class WebhookAttempt(IdMixin, Base):
    """One try at sending a delivery: kept, so an operator sees every attempt."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id", "id"),)

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int]
    response_body: Mapped[str | None] = mapped_column(Text)  # truncated


class WebhookDeliveryCount(Base):
    """Deliveries settled for good, by outcome, for /metrics: counters that survive the retention purge and
    cost a scrape nothing. Each outcome is spread over a few rows (shards) so settling workers do not queue
    on one row."""

    __tablename__ = "webhook_delivery_counts"

    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)  # succeeded | failed
    shard: Mapped[int] = mapped_column(primary_key=True)
    deliveries: Mapped[int] = mapped_column(BigInteger)
