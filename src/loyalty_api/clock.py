"""The only source of "now": services and jobs take it from here so tests can move time. And the one way an
instant is written, wherever the service shows one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol

from pydantic import AfterValidator, AwareDatetime


def as_utc(at: datetime) -> datetime:
    """The same instant in UTC; a naive datetime names no instant and is refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a timezone-aware instant is needed")
    return at.astimezone(UTC)


# An instant in a model that is written out (event payloads, REST replies): any zone in, UTC out.
UtcInstant = Annotated[AwareDatetime, AfterValidator(as_utc)]


def format_instant(at: datetime) -> str:
    """The one written form of an instant: RFC 3339 in UTC with `Z`, microseconds when there are any
    (`2026-12-02T06:34:28.844565Z`, `2026-03-16T10:00:00Z`). It is how pydantic writes a UTC datetime into
    JSON, so REST replies, webhook payloads and timestamps, stored details, GraphQL and messages agree
    (Python's own ISO form is the same text with `+00:00` for `Z`, at a tenth of pydantic's cost: every
    access log line and every earn writes a few)."""
    return as_utc(at).isoformat().removesuffix("+00:00") + "Z"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)  # noqa: TID251 - the one place real time is read


class FrozenClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware instant")
        self._now = at.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware instant")
        with self._lock:
            self._now = at.astimezone(UTC)

    def advance(self, by: timedelta) -> None:
        with self._lock:
            self._now += by
