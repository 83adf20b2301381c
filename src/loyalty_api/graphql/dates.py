"""`Date` in GraphQL (a member's birthday), read as REST reads a calendar date (`http.schemas.read_date`:
`YYYY-MM-DD` alone): strawberry's default parser, `date.fromisoformat`, also takes ISO 8601's compact and
week forms (`19900517`, `1990-W20-4`), so GraphQL stored a birthday REST refused (a week as its Monday)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, TypeAdapter
from strawberry.types.scalar import ScalarDefinition

from loyalty_api.graphql.instants import reader
from loyalty_api.http.schemas import read_date

_READ: TypeAdapter[date] = TypeAdapter(Annotated[date, BeforeValidator(read_date)])
# Quoted in graphql-core's error after the variable's path (graphql.schema._without_echo keeps 40 characters
# of a quoted piece).
_REFUSED = "must be a date written YYYY-MM-DD"


def _written(value: Any) -> str:
    return date.isoformat(value)


DATE = ScalarDefinition(
    name="Date",
    description="A calendar date, `YYYY-MM-DD` (`1990-05-17`), as REST writes and reads one.",
    specified_by_url=None,
    serialize=_written,
    # The range (not in the future, from 1900) is the field's rule, a `validation_error` naming it.
    parse_value=reader(_READ, _REFUSED),
    parse_literal=None,
    origin=date,
)
