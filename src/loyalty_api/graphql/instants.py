"""`DateTime` in GraphQL, written as REST, webhooks and stored details write an instant
(`clock.format_instant`: UTC with `Z`), not as strawberry's default, `datetime.isoformat()` (`+00:00`), and
read as REST reads one (`http.schemas.read_instant`: RFC 3339 with seconds and a zone): strawberry's default
parser (dateutil's `isoparse`) also takes `24:00:00`, a date alone and ISO 8601's compact forms."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, TypeAdapter, ValidationError
from strawberry.types.scalar import ScalarDefinition

from loyalty_api.clock import format_instant
from loyalty_api.http.schemas import read_instant

T = TypeVar("T")

_READ: TypeAdapter[datetime] = TypeAdapter(Annotated[datetime, BeforeValidator(read_instant)])
# Quoted in graphql-core's error after the variable's path and type ("Variable '$input' has invalid value at
# .occurredAt: Expected value of type 'DateTime', but encountered error '…'"): 40 characters at most, or the
# message cuts it as a piece of the document (graphql.schema._without_echo). The type's description has an
# example.
_REFUSED = "must be RFC 3339 with seconds and a zone"


def _written(value: Any) -> str:
    return format_instant(value)


def reader(adapter: TypeAdapter[T], refused: str) -> Callable[[Any], T]:
    """A scalar's reader of variables: text read as REST reads the field (`adapter`, strictly); anything
    else refused with `refused`, which graphql-core quotes (so 40 characters at most)."""

    def read(value: Any) -> T:
        if not isinstance(value, str):
            raise TypeError(refused)
        try:
            return adapter.validate_python(value, strict=True)
        except ValidationError:
            raise ValueError(refused) from None

    return read


DATE_TIME = ScalarDefinition(
    name="DateTime",
    description=(
        "An instant, RFC 3339 in UTC with `Z` (`2026-12-02T06:34:28.844565Z`), as REST writes it. Read as "
        "REST reads one: RFC 3339 with seconds and a zone, `Z` or `±HH:MM` (`2026-12-02T14:34:28.5+08:00`)."
    ),
    specified_by_url=None,
    serialize=_written,
    # The zone and the range are the field's rules, checked where the field is (a `validation_error` naming
    # it); here only the form, as REST reads an instant: RFC 3339's, with seconds, no Unix time.
    parse_value=reader(_READ, _REFUSED),
    parse_literal=None,
    origin=datetime,
)
