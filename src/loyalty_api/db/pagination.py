"""Keyset pagination by time-ordered id: the cursor is the last id of the previous page."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from loyalty_api.errors import InvalidField

T = TypeVar("T")
U = TypeVar("U")

MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None

    def with_items(self, items: Sequence[U]) -> Page[U]:
        """The same page, its rows shown as something else."""
        return Page(items=items, next_cursor=self.next_cursor)


def page_of(rows: Sequence[T], limit: int, last_id: Callable[[T], uuid.UUID]) -> Page[T]:
    """A page from the `limit + 1` rows a repository read past the cursor: the extra row only tells that
    more follow, and the last row shown gives the next cursor."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page(items=items, next_cursor=encode_cursor(last_id(items[-1])) if more else None)


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidField("cursor", "not a cursor this service returned") from exc
