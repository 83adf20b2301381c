from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class Tier(IdMixin, Base):
    """A rung of the ladder. The lowest rank is where every member starts; its threshold is not used."""

    __tablename__ = "tiers"

    rank: Mapped[int] = mapped_column(unique=True)  # higher is better
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(16), server_default="spend")  # spend | points
    window_kind: Mapped[str] = mapped_column(String(16), server_default="calendar_year")  # | rolling_days
    window_days: Mapped[int | None]
    threshold: Mapped[int] = mapped_column(BigInteger, server_default="0")  # minor units, or points
    points_multiplier: Mapped[Decimal] = mapped_column(server_default="1")
    grace_days: Mapped[int] = mapped_column(server_default="0")
    # A member's stored window end names the revision of the window it was worked out under: a change of the
    # window that moves ends (ladder.redated) makes the next revision, and `past_windows` keeps each earlier
    # window ({"revision", "window", "window_days"}, oldest first: of the earlier revisions, and of this one
    # before a change that moved no end), so that an end worked out under an earlier revision (by a process
    # that had not heard of the change yet) is re-dated through each change since.
    window_revision: Mapped[int] = mapped_column(server_default="1")
    past_windows: Mapped[list[Any]] = mapped_column(server_default=text("'[]'"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]


class TierLadderVersion(Base):
    """The whole ladder as it stood after each change, so past qualifications keep their rules."""

    __tablename__ = "tier_ladder_versions"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tiers: Mapped[list[Any]]
    actor_key_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]


class TierChange(IdMixin, Base):
    """One change of a member's tier (or of how long they keep it), and why."""

    __tablename__ = "tier_changes"
    __table_args__ = (Index(None, "member_id", "id"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    from_tier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tiers.id", ondelete="SET NULL"))
    to_tier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tiers.id", ondelete="SET NULL"))
    from_code: Mapped[str | None] = mapped_column(String(32))
    to_code: Mapped[str] = mapped_column(String(32))
    # upgrade | downgrade | renewal | override | override_ended
    change: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    ladder_version: Mapped[int | None]
    # What the member had when the change was decided: {metric: {window_start, value}} per metric looked at.
    qualification: Mapped[dict[str, Any]]
    kept_until: Mapped[datetime | None]
    actor_key_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
