"""Shapes shared by every REST domain: money and whole numbers that must never be floats.

What the schemas of every domain are called, by direction: a resource's body `XCreate` (POST), `XWrite`
(PUT, all of it) or `XUpdate` (PATCH); an action's body `XRequest` (earn, redeem, cancel, a payment); a part
of a body `XBody` (a cart, its items, an amount); a reply `XRead`. What a service returns is an `XView` for a
resource and an `XResult` for an action.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Union, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from loyalty_api.clock import as_utc
from loyalty_api.money import MOST_POINTS_AT_ONCE, Money

# Strict: a string ("10") or a boolean is refused rather than quietly turned into points or money. A JSON
# number that is whole however it is written (10.0, 1e1) is that integer, read from its digits and never
# through a float (http.transaction._whole_numbers_as_integers): JSON Schema's `integer` admits it.
Points = Annotated[int, Field(strict=True, ge=1, le=MOST_POINTS_AT_ONCE)]
MinorUnits = Annotated[int, Field(strict=True, ge=0, le=10**12)]
PositiveMinorUnits = Annotated[int, Field(strict=True, gt=0, le=10**12)]
OrderRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
PlanCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="e.g. plus-yearly")]


@dataclass(frozen=True, slots=True)
class Spelling:
    """Marks a path parameter, or the GraphQL input field that stands for one, whose one value may be written
    several ways: a coupon's code in any case, with or without its hyphens. An Idempotency-Key's fingerprint
    takes it as `canonical` writes it (as sent when that answers None: no such value), so a retry that spells
    it otherwise is the same request, replayed rather than refused as `idempotency_key_reused`. A UUID needs
    no mark: every one is read so."""

    canonical: Callable[[str], str | None]


# Marks a field of an answer that is a secret shown once (a link code): the OpenAPI document says so
# (`x-secret: true`), and the audit log never keeps it.
SHOWN_ONCE = "x-secret"

_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)

# The form of an instant the service reads, RFC 3339's `date-time` (section 5.6): a date, `T`, the time with
# its seconds, a fraction if any, and the offset, `Z` or `±HH:MM` (the RFC lets `t` and `z` be lower case,
# and a space stand for `T`, its note to 5.6: what Python's str() of a datetime writes, and so httpx and
# requests in a query string, which the service took before). Pydantic's parser alone also takes `+0100`,
# `10:00Z` (no seconds) and `,5` for `.5`. In
# ASCII digits: Python's `\d` takes any script's. The OpenAPI document says the form in words, not as a
# `pattern`: generators put a regex check on their date type for a `pattern` beside `format: date-time`
# (openapi-generator's C# models then do not compile, its Java `@Pattern` on an OffsetDateTime fails when
# validated).
_WRITTEN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
_OFFSET = r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
# What read_instant checks: the offset may be missing here, so that an instant without one is refused as
# pydantic refuses it (`timezone_aware`), by the field that needs a zone (GraphQL's DateTime reads the form,
# its field the zone: a `validation_error` naming the field).
_FORM = re.compile(f"{_WRITTEN}{_OFFSET}?")
_FORM_MESSAGE = (
    "must be an RFC 3339 instant with seconds and a zone (Z or ±HH:MM), "
    "such as 2026-03-18T06:32:10Z or 2026-03-18T14:32:10.5+08:00"
)

# What an instant's schema says of it, after the field's own description: JSON Schema's `date-time` has no
# bounds, and any RFC 3339 date-time has a zone (which the service requires), but no leap second is taken.
_WITHIN_RANGE = (
    "RFC 3339, with seconds and a zone (`Z` or `±HH:MM`). "
    f"From {_EARLIEST:%Y-%m-%dT%H:%M:%SZ} up to, not including, {_LATEST:%Y-%m-%dT%H:%M:%SZ} "
    "(with any zone); no leap second (:60)."
)


def _form_and_range_said(schema: dict[str, Any]) -> None:
    said = schema.get("description")
    schema["description"] = f"{said} {_WITHIN_RANGE}" if said else _WITHIN_RANGE


def _within_range(value: datetime) -> datetime:
    try:
        in_range = _EARLIEST <= value.astimezone(UTC) < _LATEST
    except OverflowError:  # 0001-01-01T00:00:00+14:00 has no UTC equivalent
        in_range = False
    if not in_range:
        raise ValueError("must be between 1970 and 2200")
    return as_utc(value)


def read_instant(value: object) -> object:
    """An instant as written in a body, a query string or a GraphQL variable: a string of RFC 3339's form,
    then parsed as a JSON body's instant is (after a validator of ours, pydantic goes on as for a Python
    value, and strictly that takes no string at all). A number is refused, which pydantic would read as a
    Unix time (`?until=0.5`, `"valid_from": 0`), and so is any other form of ISO 8601 (`20260316`, which
    pydantic read as a Unix time even in a strict body, `+0100`, `10:00Z`, `2026-03-18 06:32:10Z`)."""
    if isinstance(value, int | float):
        raise ValueError(_FORM_MESSAGE)
    if not isinstance(value, str):
        return value
    if not _FORM.fullmatch(value):
        raise PydanticCustomError("datetime_parsing", _FORM_MESSAGE)
    try:
        return _DATETIME.validate_strings(value, strict=True)
    except ValidationError as exc:  # a day, hour or offset out of range (`24:00:00`, `02-30`, `:60`)
        refused = exc.errors(include_url=False)[0]
        raise PydanticCustomError(refused["type"], refused["msg"]) from None


_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)

# A calendar date as the service reads one (RFC 3339's `full-date`), in ASCII digits.
_DATE_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_FORM_MESSAGE = "must be a date written YYYY-MM-DD, such as 1990-05-17"
_DATE: TypeAdapter[date] = TypeAdapter(date)


def read_date(value: object) -> object:
    """A calendar date as written in a body or a GraphQL variable: `YYYY-MM-DD` and nothing else. Pydantic
    reads a string of digits as a Unix time even in a strict body (`"0"` was 1970-01-01, `"86400"` the day
    after), and Python's `date.fromisoformat`, GraphQL's reader, ISO 8601's compact and week forms
    (`"19900517"`, `"1990-W20"`: the Monday of that week), which REST refused: both read it here."""
    if not isinstance(value, str):
        return value  # a number or anything else: pydantic refuses it as a date (`date_type`)
    if not _DATE_FORM.fullmatch(value):
        raise PydanticCustomError("date_parsing", _DATE_FORM_MESSAGE)
    try:
        return _DATE.validate_strings(value, strict=True)
    except ValidationError as exc:  # a month or day out of range (`1990-02-30`)
        refused = exc.errors(include_url=False)[0]
        raise PydanticCustomError(refused["type"], refused["msg"]) from None


# A calendar date in a body (a member's birthday); GraphQL's `Date` reads its variables through read_date.
CalendarDate = Annotated[date, BeforeValidator(read_date)]

# A timezone-aware instant a database can store on both engines, taken in UTC whatever zone it was sent in
# (so a reply that shows it back writes it as every other instant, with `Z`); in a body, and GraphQL's
# `DateTime` reads its form through read_instant. The type of every instant the service takes but a query
# string's (QueryInstant, below, this and one more form): its schema says the form (`format: date-time` and
# the description) and the range.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(read_instant),
    AfterValidator(_within_range),
    Field(json_schema_extra=_form_and_range_said),
]

# A client that writes an offset into a URL without percent-encoding its `+` sends a space, as form decoding
# reads `+`; a space before the HH:MM that ends a date-time can have been nothing else, so a query string's
# instant reads it as `+`. A body's does not: JSON is not form-decoded, and a space there was written as one.
_PLUS_DECODED = re.compile(f"{_WRITTEN} [0-9]{{2}}:[0-9]{{2}}")
_PLUS_SAID = " In a query string, a space in place of the offset's `+` (an unencoded `+`) is read as `+`."


def _plus_restored(value: object) -> object:
    if isinstance(value, str) and _PLUS_DECODED.fullmatch(value):
        return f"{value[:-6]}+{value[-5:]}"
    return value


def _form_range_and_plus_said(schema: dict[str, Any]) -> None:
    _form_and_range_said(schema)
    schema["description"] += _PLUS_SAID


# An Instant in a query string (`?since=`, `?from=`), where a space may stand for the offset's `+` too.
QueryInstant = Annotated[
    AwareDatetime,
    BeforeValidator(read_instant),
    BeforeValidator(_plus_restored),
    AfterValidator(_within_range),
    Field(json_schema_extra=_form_range_and_plus_said),
]


def sent_or_left_out(*, schema: dict[str, Any] | None = None, **field: Any) -> Any:
    """A field of a PATCH (or of a one-of body) that may be left out but, when sent, not be null (its
    validator refuses null): declared `X | None` with this, its schema names neither null nor a default (and
    adds `schema`)."""

    def documented(generated: dict[str, Any]) -> None:
        generated.pop("default", None)
        kept = [branch for branch in generated.pop("anyOf", []) if branch.get("type") != "null"]
        if len(kept) == 1:
            generated.update(kept[0])
        elif kept:
            generated["anyOf"] = kept
        generated.update(schema or {})

    return Field(default=None, json_schema_extra=documented, **field)


class ReadModel(BaseModel):
    """A response body, read from the service's result object by attribute name."""

    model_config = ConfigDict(from_attributes=True)


class TierRef(ReadModel):
    """A tier wherever one appears in a reply (a member's, an earn's, a quote's, benefits, tier status and
    history), as webhook payloads and GraphQL show it too."""

    code: str
    name: str
    rank: int = Field(description="Higher is better; the lowest rank is everyone's entry tier.")


class MoneyRead(BaseModel):
    """Money in a reply: minor units (fen, cents) with its ISO 4217 currency. A computed figure (a total, the
    value of a balance) may be larger than any one amount a request may carry."""

    @model_validator(mode="before")
    @classmethod
    def _from_money(cls, value: Any) -> Any:
        if isinstance(value, Money):
            return {"amount": value.amount_minor, "currency": value.currency}
        return value

    amount: int = Field(description="Minor units: 12990 is 129.90 CNY")
    currency: str

    def money(self) -> Money:
        return Money(amount_minor=self.amount, currency=self.currency)


class MoneyBody(MoneyRead):
    """Money in a request: minor units (fen, cents), a whole number up to 10^12, with its currency."""

    model_config = ConfigDict(extra="forbid")

    amount: MinorUnits = Field(description="Minor units: 12990 is 129.90 CNY")
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class PositiveMoneyBody(MoneyBody):
    """Money in a request that must be more than zero: what was paid or refunded, an order's total."""

    amount: PositiveMinorUnits = Field(description="Minor units, more than zero: 12990 is 129.90 CNY")


def by_kind(base: type[BaseModel], kinds: Sequence[type[BaseModel]], *, suffix: str) -> Any:
    """A request body of a polymorphic configuration, `{kind, properties, …}`, as a union discriminated by
    `kind`: one model per kind (`<Kind><suffix>`, the other fields from `base`) whose `properties` is that
    kind's model (`<Kind>Properties`), where `kind` may be left out and, if given, must be the same."""
    variants = []
    for kind_model in kinds:
        value = kind_model.model_fields["kind"].default
        properties = type(
            f"{kind_model.__name__}Properties",
            (kind_model,),
            {
                "__module__": kind_model.__module__,
                "__doc__": kind_model.__doc__,
                "model_config": ConfigDict(json_schema_extra=None),
            },
        )
        variants.append(
            create_model(
                f"{kind_model.__name__}{suffix}",
                __base__=base,
                __module__=base.__module__,
                __doc__=base.__doc__,
                kind=(cast(Any, Literal[value]), ...),
                properties=(properties, ...),
            )
        )
    return Annotated[Union[tuple(variants)], Field(discriminator="kind")]  # noqa: UP007
