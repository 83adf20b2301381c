"""Keyset pagination: the cursor is the sort key of the last item of the previous page (usually its
time-ordered id), and the next page is what sorts after it, so inserts and deletes between pages neither
repeat nor skip an item. Small catalogues read whole (the ladder, the plans, event types) page the same way in
memory with `page_after`."""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from collections.abc import Awaitable, Callable, Sequence
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


KeyPart = int | str | uuid.UUID
_INT = struct.Struct(">q")


_LONG = 255  # a text's length byte that says two bytes of length follow
_LENGTH = struct.Struct(">H")


def encode_key(key: tuple[KeyPart, ...]) -> str:
    """The cursor of a sort key of several parts (priority and id, a code, a rank): each part as bytes (an id
    its 16, a whole number 8, a text its UTF-8 after its length: one byte, or 255 and two more for a text of
    255 bytes or more), base64url. A key of one id gives the same cursor as `encode_cursor`."""
    raw = bytearray()
    for part in key:
        if isinstance(part, uuid.UUID):
            raw += part.bytes
        elif isinstance(part, int):
            raw += _INT.pack(part)
        else:
            text = part.encode("utf-8")
            raw += (
                bytes([len(text)]) if len(text) < _LONG else bytes([_LONG]) + _LENGTH.pack(len(text))
            ) + text
    return base64.urlsafe_b64encode(bytes(raw)).decode("ascii").rstrip("=")


def decode_key(cursor: str, shape: tuple[type[KeyPart], ...]) -> tuple[KeyPart, ...]:
    """The sort key `encode_key` wrote into `cursor`, its parts of the types in `shape`; anything else is
    refused as a cursor this service did not return."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidField("cursor", "not a cursor this service returned") from exc
    key: list[KeyPart] = []
    at = 0
    try:
        for kind in shape:
            if kind is uuid.UUID:
                key.append(uuid.UUID(bytes=raw[at : at + 16]))
                at += 16
            elif kind is int:
                key.append(_INT.unpack_from(raw, at)[0])
                at += _INT.size
            else:
                length, at = raw[at], at + 1
                if length == _LONG:
                    length, at = _LENGTH.unpack_from(raw, at)[0], at + _LENGTH.size
                text = raw[at : at + length]
                if len(text) != length or 0 in text:  # PostgreSQL's text holds no NUL: no key part has one
                    raise ValueError("cut short, or not text")
                key.append(text.decode("utf-8"))
                at += length
    except (IndexError, ValueError, struct.error) as exc:
        raise InvalidField("cursor", "not a cursor this service returned") from exc
    if at != len(raw):
        raise InvalidField("cursor", "not a cursor this service returned")
    return tuple(key)


def page_after(
    items: Sequence[T],
    *,
    limit: int,
    cursor: str | None,
    key: Callable[[T], tuple[KeyPart, ...]],
    shape: tuple[type[KeyPart], ...],
) -> Page[T]:
    """A page of a list held whole in memory, in the order of `key` (ascending: negate a number to sort it
    downwards): the `limit` items whose key sorts after the cursor's. Like a keyset page of the database, it
    neither repeats nor skips an item when others are added or removed between pages."""
    ordered = sorted(items, key=key)
    if cursor is not None:
        after = decode_key(cursor, shape)
        ordered = [item for item in ordered if key(item) > after]
    shown = ordered[:limit]
    more = len(ordered) > limit
    return Page(items=shown, next_cursor=encode_key(key(shown[-1])) if more else None)


# Rows read per statement when a whole history is gathered: a member with years of it is read in many of
# these, never in one.
BATCH = 500
K = TypeVar("K")


async def every_row(
    fetch: Callable[[K | None, int], Awaitable[Sequence[T]]], key: Callable[[T], K]
) -> list[T]:
    """Every row `fetch(after, limit)` gives, following the keyset until a batch comes back short."""
    found: list[T] = []
    after: K | None = None
    while True:
        batch = await fetch(after, BATCH)
        found.extend(batch)
        if len(batch) < BATCH:
            return found
        after = key(batch[-1])
