"""Partner brands, the codes members give them to link, and the links themselves."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class Partner(IdMixin, Base):
    """A brand that runs joint membership with us; its API keys act for it alone."""

    __tablename__ = "partners"
    __table_args__ = (CheckConstraint("status IN ('active', 'suspended')", name="status_known"),)

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
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
