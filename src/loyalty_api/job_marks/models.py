from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base


class JobMark(Base):
    """How far a scheduled job that works through days has looked: the start of its last complete run. Its
    next run takes up from there, so the days a stopped worker (an outage, a long deploy) did not run on are
    not passed over."""

    __tablename__ = "job_marks"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    reached_at: Mapped[datetime]
