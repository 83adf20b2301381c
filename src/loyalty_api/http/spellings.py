"""Path parameters whose one value may be written several ways: a UUID (upper case, without dashes, in braces,
as a URN) and a parameter marked with a `Spelling` (a coupon's code in any case, with or without its
hyphens). The route takes every spelling as the same value; what records the value (an Idempotency-Key's
fingerprint, an audit entry's subject) writes it one way, as the route reads it."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from loyalty_api.http.schemas import Spelling

_UUID = TypeAdapter(UUID)


def uuid_as_read(sent: str) -> str | None:
    """A UUID in its usual spelling (lower case, with dashes); None when `sent` is none (refused as the
    endpoint's input then)."""
    try:
        return str(_UUID.validate_python(sent))
    except ValidationError:
        return None


def spellings_in_path(route: APIRoute) -> dict[str, Callable[[str], str | None]]:
    """The route's path parameters that one value may be written several ways in, each with how it is
    written one way: its UUIDs, and those marked with a `Spelling` (a coupon's code)."""
    found: dict[str, Callable[[str], str | None]] = {}
    for parameter in route.dependant.path_params:
        if parameter.field_info.annotation is UUID:
            found[parameter.name] = uuid_as_read
        for mark in parameter.field_info.metadata:
            if isinstance(mark, Spelling):
                found[parameter.name] = mark.canonical
    return found
