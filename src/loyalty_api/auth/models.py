from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class ApiKey(IdMixin, Base):
    __tablename__ = "api_keys"

    # The public part of `lk_<prefix>_<secret>`: finds the row; the secret is only stored as a hash.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    # The prefix of the first key in this key's line: its own for a key made anew, the replaced key's
    # lineage for one made by a rotation. Idempotency-Keys belong to the line, so a request retried with the
    # replacement replays instead of running twice, and a key made apart never sees the line's replies.
    lineage: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list[str]]
    partner_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # This key's own rate limit, a `limits` rate string such as "100/second" or "6000/minute" (None: the
    # default limit from settings).
    rate_limit: Mapped[str | None] = mapped_column(String(32))
    # The key stops working then (None: never); rotating a key sets it on the old key, after an overlap.
    expires_at: Mapped[datetime | None]
    # How long the key was made to last (None: for ever): what a rotation gives the new key, however often the
    # old one is rotated (a rotation shortens the old key's own `expires_at` to the overlap).
    lifetime_seconds: Mapped[int | None] = mapped_column(BigInteger)
    # When the key last authenticated a request, written at most once a minute per process.
    last_used_at: Mapped[datetime | None]
    # Client networks (CIDR) the key may be used from; None: any.
    allowed_networks: Mapped[list[str] | None]
