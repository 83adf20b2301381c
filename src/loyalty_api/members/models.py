from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    or_,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class MemberStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    closed = "closed"


# The status of an erased member (POST /v1/members/{id}/erase): not one a client sets or sees, since an erased
# member is found by no read; the row stays, without personal data, to hold the ledger.
ERASED = "erased"


def not_erased() -> ColumnElement[bool]:
    """The condition every read or change of one member puts on their row: an erased member is not there."""
    return Member.__table__.c.status != ERASED


def not_closed() -> ColumnElement[bool]:
    """The condition the member counts put on a member: not closed, nor closed and then erased (the erasure's
    status replaced `closed`, its `closed_at` stays). Only an erased member's `closed_at` is read: a process
    of the release before it (a rolling deploy) reopens a member without clearing it."""
    status, closed_at = Member.__table__.c.status, Member.__table__.c.closed_at
    return and_(status != MemberStatus.closed, or_(status != ERASED, closed_at.is_(None)))


class Segment(StrEnum):
    """An RFM segment (loyalty_api.segments.rules says how a member falls in one)."""

    champions = "champions"
    loyal = "loyal"
    potential = "potential"
    at_risk = "at_risk"
    hibernating = "hibernating"
    needs_attention = "needs_attention"
    lost = "lost"


class Member(IdMixin, Base):
    """A member. Personal data is stored only encrypted; phone and e-mail also as blind-index hashes."""

    __tablename__ = "members"
    # Member lists filtered by stage page by id.
    __table_args__ = (
        Index(None, "lifecycle_stage", "id"),
        Index(None, "birthday_day_key", "id"),
        Index(None, "birthday_month_key", "id"),
        # The tier review and its reminders walk each tier's members by the end of the window they are judged
        # on, in (that, id) order: a calendar-year ladder gives every holder of a tier the same instant. It
        # serves the lookups by tier alone as well.
        Index(None, "tier_id", "tier_window_end", "id"),
        # The worker's walk of the tier's members whose window end was worked out under an earlier revision of
        # its window (tiers/redating.py).
        Index(None, "tier_id", "tier_window_revision", "id"),
        # The review's walk of overrides that ended: hardly any member has one.
        Index(
            "ix_members__tier_override_until_id",
            "tier_override_until",
            "id",
            postgresql_where=text("tier_override_until IS NOT NULL"),
            sqlite_where=text("tier_override_until IS NOT NULL"),
        ),
        # Birthdays written before their keys existed, for the birthday job to key (and then never again).
        Index(
            "ix_members__unkeyed_birthdays",
            "id",
            postgresql_where=text("birthday_encrypted IS NOT NULL AND birthday_day_key IS NULL"),
            sqlite_where=text("birthday_encrypted IS NOT NULL AND birthday_day_key IS NULL"),
        ),
    )

    member_number: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    tier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tiers.id"))
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    email_encrypted: Mapped[str | None] = mapped_column(Text)
    email_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    name_encrypted: Mapped[str | None] = mapped_column(Text)
    birthday_encrypted: Mapped[str | None] = mapped_column(Text)
    # Keyed hashes of the birthday's day and month (members/birthday_keys.py); None with no birthday, or for
    # a birthday from before they existed until the birthday job has filled them in.
    birthday_day_key: Mapped[str | None] = mapped_column(String(64))
    birthday_month_key: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    marketing_consent: Mapped[bool]
    # The member agreed to appear on the points leaderboard (by a masked card number, never by name).
    leaderboard_opt_in: Mapped[bool] = mapped_column(default=False, server_default=false())
    referral_code: Mapped[str] = mapped_column(String(16), unique=True)
    referred_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"))
    tier_since: Mapped[datetime | None]
    # The end of the window the member's review judges (None: never reviewed, and under an override). They
    # keep the tier until then plus the tier's grace as it stands: the grace is not stored here, so a change
    # of it writes nothing to the tier's members.
    tier_window_end: Mapped[datetime | None]
    # The revision of the tier's window `tier_window_end` was worked out under (None with no end): an end of
    # an earlier one is re-dated through the changes since (tiers/models.py, Tier.window_revision).
    tier_window_revision: Mapped[int | None]
    # A rolling window's days from the purchase that won or renewed the tier to `tier_window_end`, which a
    # later longer window counts from (None: a calendar year, or stored before 0044: its revision's window).
    tier_window_days: Mapped[int | None]
    tier_override_until: Mapped[datetime | None]  # an operator set the tier by hand until then
    # The `tier_window_end` the member was told they must requalify by (`tier.review_due`).
    tier_reminded_window_end: Mapped[datetime | None]
    # While an override holds: the tier the member had earned before it, and the end of the window it is
    # judged on. The override's end puts them back on it while that window and its grace last. Not a foreign
    # key: a tier deleted meanwhile is not found, and the member lands where they qualify.
    tier_earned_id: Mapped[uuid.UUID | None]
    tier_earned_window_end: Mapped[datetime | None]
    tier_earned_window_revision: Mapped[int | None]  # of the earned tier's window, as tier_window_revision
    tier_earned_window_days: Mapped[int | None]  # as tier_window_days
    # The member has a paid plan's benefits until then (the latest of their subscriptions'), so that earn and
    # the checkout quote look for plans only when there may be one.
    plan_benefits_until: Mapped[datetime | None]
    # Lifecycle (members/lifecycle.py): the stage, since when (None: not assessed yet), when time alone
    # changes it next (the job looks only at members whose instant has come), when it was last assessed.
    lifecycle_stage: Mapped[str] = mapped_column(String(16), server_default="new")
    lifecycle_since: Mapped[datetime | None]
    lifecycle_due_at: Mapped[datetime | None] = mapped_column(index=True)
    lifecycle_assessed_at: Mapped[datetime | None] = mapped_column(index=True)
    # When the member was closed (None while they are not). An erasure keeps it: its status replaces
    # `closed`, and the member counts must still leave out a member closed before being erased. The counts
    # read it on erased members only (not_closed).
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MemberExternalId(Base):
    """The member's id in another system (a POS, a web shop, a CRM)."""

    __tablename__ = "member_external_ids"
    __table_args__ = (UniqueConstraint("system", "external_id"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    system: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64))


class MemberRfm(Base):
    """A member's RFM scores (1–5, 5 the best; 0 with no purchase in the window) and segment, as the last run
    of the RFM job left them. A table of its own: the job never locks the members' rows the tills use."""

    __tablename__ = "member_rfm"
    __table_args__ = (Index(None, "segment", "member_id"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    recency: Mapped[int] = mapped_column(SmallInteger)
    frequency: Mapped[int] = mapped_column(SmallInteger)
    monetary: Mapped[int] = mapped_column(SmallInteger)
    segment: Mapped[str] = mapped_column(String(24))
    last_purchase_at: Mapped[datetime | None]
    purchases: Mapped[int]
    spend_minor: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime]
