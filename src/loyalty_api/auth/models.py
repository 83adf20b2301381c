from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class ApiKey(IdMixin, Base):
    __tablename__ = "api_keys"

    # The public part of `lk_<prefix>_<secret>`: finds the row; the secret is only stored as a hash.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list[str]]
    partner_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
