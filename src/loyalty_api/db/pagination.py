"""Keyset pagination by time-ordered id: the cursor is the last id of the previous page."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from loyalty_api.errors import InvalidField

T = TypeVar("T")

MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


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
