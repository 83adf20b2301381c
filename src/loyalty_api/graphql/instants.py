"""`DateTime` in GraphQL, written as REST, webhooks and stored details write an instant
(`clock.format_instant`: UTC with `Z`), not as strawberry's default, `datetime.isoformat()` (`+00:00`)."""

from __future__ import annotations

from typing import Any

from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

from loyalty_api.clock import format_instant


def _written(value: Any) -> str:
    return format_instant(value)


DATE_TIME = ScalarDefinition(
    name="DateTime",
    description="An instant, RFC 3339 in UTC with `Z` (`2026-12-02T06:34:28.844565Z`), as REST writes it.",
    specified_by_url=None,
    serialize=_written,
    parse_value=DateTimeDefinition.parse_value,
    parse_literal=None,
    origin=DateTimeDefinition.origin,
)
