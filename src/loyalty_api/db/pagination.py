"""Keyset pagination: the cursor is the sort key of the last item of the previous page (usually its
time-ordered id), and the next page is what sorts after it, so inserts and deletes between pages neither
repeat nor skip an item. Small catalogues read whole (the ladder, the plans, event types) page the same way in
memory with `page_after`.

Every cursor carries its list's scope after the key: which list, and for a list of one owner's rows (a
member's ledger, an endpoint's deliveries) whose. A cursor given for another list (the members' for the
rewards', another owner's, another of the owner's lists) is refused rather than read as a place in it: two
lists keyed alike (by an id, by a code) read each other's cursors and gave a page that started in the middle,
the rows before the place left out without a word. The scope is a required argument everywhere a list makes
or reads a cursor, so no list can leave it out."""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Generic, TypeVar

from loyalty_api.errors import InvalidField

T = TypeVar("T")
U = TypeVar("U")

MAX_LIMIT = 200

KeyPart = int | str | uuid.UUID


def scope_of(listed: str, owner: uuid.UUID | str = "") -> int:
    """The scope of the list `listed` (`scope_of("members")`), or of the list `listed` of `owner`'s rows
    (`scope_of("ledger", member_id)`; a board's period and start), as its cursors carry it: 7 bytes of a hash
    of both, a whole number a cursor holds in 8."""
    named = owner.bytes if isinstance(owner, uuid.UUID) else owner.encode()
    return int.from_bytes(blake2b(listed.encode() + named, digest_size=7).digest(), "big")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None
    scope: int  # the list's scope, for the cursor after each item (GraphQL's edges)

    def with_items(self, items: Sequence[U]) -> Page[U]:
        """The same page, its rows shown as something else."""
        return Page(items=items, next_cursor=self.next_cursor, scope=self.scope)

    def cursor_after(self, last: uuid.UUID | tuple[KeyPart, ...]) -> str:
        """The cursor of the page after the item whose id (or sort key) is `last`, as `next_cursor` is of the
        page after this."""
        return encode_place(last if isinstance(last, tuple) else (last,), self.scope)


def page_of(rows: Sequence[T], limit: int, last_id: Callable[[T], uuid.UUID], scope: int) -> Page[T]:
    """A page from the `limit + 1` rows a repository read past the cursor: the extra row only tells that
    more follow, and the last row shown gives the next cursor, with the list's `scope`."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page(
        items=items, next_cursor=encode_cursor(last_id(items[-1]), scope) if more else None, scope=scope
    )


def encode_cursor(last_id: uuid.UUID, scope: int) -> str:
    return encode_place((last_id,), scope)


def decode_cursor(cursor: str | None, scope: int) -> uuid.UUID | None:
    """The id `encode_cursor` wrote into `cursor`; a cursor of another list (another `scope`) is refused."""
    if cursor is None:
        return None
    (last_id,) = decode_place(cursor, (uuid.UUID,), scope)
    assert isinstance(last_id, uuid.UUID)
    return last_id


def encode_place(key: tuple[KeyPart, ...], scope: int) -> str:
    """The cursor of a place in the list whose scope is `scope`: the sort key of the last item shown, then
    the scope."""
    return encode_key((*key, scope))


def decode_place(cursor: str, shape: tuple[type[KeyPart], ...], scope: int) -> tuple[KeyPart, ...]:
    """The sort key `encode_place` wrote into `cursor`, its parts of the types in `shape`. The scope is read
    first, from the cursor's end, so that another list's cursor is named as such whatever its key's shape."""
    raw = _raw(cursor)
    if len(raw) < _INT.size or _INT.unpack_from(raw, len(raw) - _INT.size)[0] != scope:
        raise InvalidField("cursor", "not a cursor of this list: its pages start from its first, without one")
    *key, _ = decode_key(cursor, (*shape, int))
    return tuple(key)


_INT = struct.Struct(">q")


_LONG = 255  # a text's length byte that says two bytes of length follow
_LENGTH = struct.Struct(">H")


def encode_key(key: tuple[KeyPart, ...]) -> str:
    """The bytes of a sort key of several parts (priority and id, a code, a rank): each part as bytes (an id
    its 16, a whole number 8, a text its UTF-8 after its length: one byte, or 255 and two more for a text of
    255 bytes or more), base64url. A list writes its cursors with `encode_place`, which adds its scope."""
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


def _raw(cursor: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidField("cursor", "not a cursor this service returned") from exc


def decode_key(cursor: str, shape: tuple[type[KeyPart], ...]) -> tuple[KeyPart, ...]:
    """The sort key `encode_key` wrote into `cursor`, its parts of the types in `shape`; anything else is
    refused as a cursor this service did not return."""
    raw = _raw(cursor)
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
    scope: int,
) -> Page[T]:
    """A page of a list held whole in memory, in the order of `key` (ascending: negate a number to sort it
    downwards): the `limit` items whose key sorts after the cursor's. Like a keyset page of the database, it
    neither repeats nor skips an item when others are added or removed between pages. Its cursors carry the
    list's `scope` after the key."""
    ordered = sorted(items, key=key)
    if cursor is not None:
        after = decode_place(cursor, shape, scope)
        ordered = [item for item in ordered if key(item) > after]
    shown = ordered[:limit]
    more = len(ordered) > limit
    next_cursor = encode_place(key(shown[-1]), scope) if more else None
    return Page(items=shown, next_cursor=next_cursor, scope=scope)


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
