"""Partner brands, the codes members give them to link, and the links themselves."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin
from loyalty_api.db.constant import constant


class Partner(IdMixin, Base):
    """A brand that runs joint membership with us; its API keys act for it alone."""

    __tablename__ = "partners"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended')", name="status_known"),
        CheckConstraint(
            "(daily_exchange_limit IS NULL OR daily_exchange_limit > 0)"
            " AND (member_daily_exchange_limit IS NULL OR member_daily_exchange_limit > 0)",
            name="exchange_limits_positive",
        ),
        CheckConstraint("exchange_timeout_seconds > 0", name="exchange_timeout_positive"),
    )

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    # Points per unit of the programme's currency spent at the partner; None: purchases there earn nothing.
    earn_rate: Mapped[Decimal | None]
    # The partner's points one of ours becomes, and ours one of the partner's becomes; None: not offered.
    exchange_out_rate: Mapped[Decimal | None]
    exchange_in_rate: Mapped[Decimal | None]
    # Our points exchanged each way per day in the programme's time zone: in all, and per member.
    daily_exchange_limit: Mapped[int | None] = mapped_column(BigInteger)
    member_daily_exchange_limit: Mapped[int | None] = mapped_column(BigInteger)
    # How long the partner has to confirm an exchange out before the member gets the points back.
    exchange_timeout_seconds: Mapped[int] = mapped_column(server_default=text("3600"))
    # Its joint benefits (benefit_grants rows with source_type "partner") reach linked members on these tiers
    # (tier codes; empty: every tier) who hold one of these paid plans (plan codes; empty: none needed).
    benefit_tiers: Mapped[list[str]] = mapped_column(server_default=text("'[]'"))
    benefit_plans: Mapped[list[str]] = mapped_column(server_default=text("'[]'"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PartnerLinkCode(IdMixin, Base):
    """A member's consent to one link: short-lived, used once, kept as a hash (the code is a credential)."""

    __tablename__ = "partner_link_codes"

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    grants: Mapped[list[str]]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class PartnerLink(IdMixin, Base):
    """One of a partner's customers linked to one of our members, with what the member let it see. Unlinking
    deletes the row: the partner's access ends with it."""

    __tablename__ = "partner_links"
    __table_args__ = (
        UniqueConstraint("partner_id", "partner_customer_ref"),
        UniqueConstraint("partner_id", "member_id"),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    partner_customer_ref: Mapped[str] = mapped_column(String(64))
    grants: Mapped[list[str]]
    created_at: Mapped[datetime]


class PartnerExchange(IdMixin, Base):
    """Points moved between a member's account and their account in a partner's programme. Out: spent here,
    pending until the partner confirms it (or fails it, or lets it time out: then the points come back). In:
    credited here once per `partner_ref`, the partner's id of the transfer."""

    __tablename__ = "partner_exchanges"
    __table_args__ = (
        CheckConstraint("direction IN ('out', 'in')", name="direction_known"),
        CheckConstraint(
            "status IN ('pending', 'confirmed', 'failed', 'expired', 'completed')", name="status_known"
        ),
        CheckConstraint("points > 0 AND partner_points > 0", name="points_positive"),
        UniqueConstraint("partner_id", "partner_ref"),
        Index(None, "partner_id", "created_at"),
        Index(None, "member_id", "created_at"),
        # The time-out job reads just the pending ones.
        Index(
            "ix_partner_exchanges__pending",
            "expires_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    partner_customer_ref: Mapped[str] = mapped_column(String(64))  # as linked then; it outlives the link
    direction: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)  # ours
    partner_points: Mapped[int] = mapped_column(BigInteger)
    rate: Mapped[Decimal]
    value_minor: Mapped[int] = mapped_column(BigInteger)  # our points' value in the programme's currency
    currency: Mapped[str] = mapped_column(String(3))
    partner_ref: Mapped[str | None] = mapped_column(String(64))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_entries.id"))
    return_entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_entries.id"))
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


# The exchanges PartnerExchange's partial index holds, as a statement must name them to use it
# (db/constant.py).
EXCHANGE_PENDING = PartnerExchange.status == constant("pending")


class PartnerPerk(IdMixin, Base):
    """A partner's perk a paid plan gave a member for one period: a code the partner redeems once. One we
    issue is `code`; one from the partner's pool is the pool's row that names this perk (PartnerPerkCode),
    and while the pool is empty the perk is `owed`, with no code, until the partner uploads more (to a member
    suspended meanwhile, once they are active again; one closed or erased is owed nothing: the row goes). A
    perk issued and not redeemed when its member is erased is `ended`: kept (it was granted, and the
    settlement counts it so), never redeemable, its pool code never given again."""

    __tablename__ = "partner_perks"
    __table_args__ = (
        CheckConstraint("status IN ('owed', 'issued', 'redeemed', 'ended')", name="status_known"),
        CheckConstraint(
            "(source = 'ours' AND code IS NOT NULL AND pool IS NULL)"
            " OR (source = 'pool' AND code IS NULL AND pool IS NOT NULL)",
            name="source_known",
        ),
        Index(None, "partner_id", "granted_at"),
        Index(None, "member_id", "id"),
        # The owed perks of a pool, oldest first, for the codes the partner uploads next.
        Index(
            "ix_partner_perks__owed",
            "partner_id",
            "pool",
            "id",
            postgresql_where=text("status = 'owed'"),
            sqlite_where=text("status = 'owed'"),
        ),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    period_number: Mapped[int]
    plan_code: Mapped[str] = mapped_column(String(32))
    # One perk per subscription, period and place in the plan: coming back to a period grants nothing twice.
    issue_key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(8), server_default=text("'ours'"))  # ours | pool
    code: Mapped[str | None] = mapped_column(String(32), unique=True)  # ours only
    pool: Mapped[str | None] = mapped_column(String(32))  # the perk's code naming the partner's pool
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    granted_at: Mapped[datetime | None]  # when the member got the code (an owed perk: not yet)
    redeemed_at: Mapped[datetime | None]


# The perks PartnerPerk's partial index holds, as a statement must name them to use it (db/constant.py).
PERK_OWED = PartnerPerk.status == constant("owed")


class PartnerPerkCode(IdMixin, Base):
    """A code the partner uploaded to the pool of one of its perks, encrypted (it is a credential the member
    must be able to read back) and found by its blind index. `perk_id` is the perk it was given with; unused
    while null."""

    __tablename__ = "partner_perk_codes"
    __table_args__ = (
        UniqueConstraint("partner_id", "code_hash"),
        # The unused codes of a pool, oldest first: what a grant takes from.
        Index(
            "ix_partner_perk_codes__unused",
            "partner_id",
            "pool",
            "id",
            postgresql_where=text("perk_id IS NULL"),
            sqlite_where=text("perk_id IS NULL"),
        ),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    pool: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    code_encrypted: Mapped[str] = mapped_column(Text)
    perk_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("partner_perks.id"), unique=True)
    created_at: Mapped[datetime]


class PartnerBenefitUse(IdMixin, Base):
    """A partner's record that a linked member used one of its joint benefits at its till or checkout."""

    __tablename__ = "partner_benefit_uses"
    __table_args__ = (UniqueConstraint("partner_id", "use_ref"), Index(None, "partner_id", "created_at"))

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    # The benefit as it was used: the benefit itself may be changed or deleted later.
    benefit_id: Mapped[uuid.UUID]
    benefit_name: Mapped[str] = mapped_column(String(100))
    use_ref: Mapped[str] = mapped_column(String(64))  # the partner's id of the use: recorded once
    created_at: Mapped[datetime]
