"""`userErrors`: what a mutation answers when the input or a business rule refuses it. Each has the stable
`code` REST answers with (an enum of every domain code), the input field it is about, and a message.

Refusals of the call itself (no key, a key without the scope, a spent rate budget, the database out of reach)
stay GraphQL errors: the mutation never ran, and a client handles them as it handles them on any field.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

import strawberry
from fastapi.encoders import jsonable_encoder
from pydantic import ValidationError
from strawberry.scalars import JSON

import loyalty_api
from loyalty_api.errors import LoyaltyError
from loyalty_api.graphql.enums import values_enum
from loyalty_api.http.problems import described

# Refusals that are not the mutation's answer but the call's (see the module's docstring).
CALL_STATUSES = frozenset({401, 403, 429, 503})


def _domain_codes() -> list[str]:
    """The code of every LoyaltyError a service can raise: those of `loyalty_api.errors` and of each
    package's `errors` module (GraphQL's own module aside: it is being imported)."""
    for module in pkgutil.iter_modules(loyalty_api.__path__, f"{loyalty_api.__name__}."):
        if module.ispkg and not module.name.endswith(".graphql"):
            try:
                importlib.import_module(f"{module.name}.errors")
            except ModuleNotFoundError:
                continue
    codes: set[str] = set()
    pending = list(LoyaltyError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.endswith(".errors") and cls.status not in CALL_STATUSES:
            codes.add(cls.code)
    return sorted(codes)


UserErrorCode = values_enum(
    "UserErrorCode",
    _domain_codes(),
    "The stable codes of REST's problem+json answers; `/problems/{code}` explains each.",
)


# Shareable: `UserError { field message }` is a common shape in other teams' mutations too.
@strawberry.federation.type(
    shareable=True, description="Why a mutation did nothing: the same code and message REST answers with."
)
class UserError:
    field: str | None = strawberry.field(
        description="The input field at fault (`amount.currency`, `items.0.sku`); null when the refusal is "
        "not about one field."
    )
    code: Enum = strawberry.field(graphql_type=UserErrorCode)
    message: str
    details: JSON | None = strawberry.field(
        default=None,
        description="What REST's problem body adds to the code, by the same names: `due_period`, "
        "`subscription_id`, `hold_id`, `refundable`, `resets_at`, … (`/problems/{code}` lists them); null "
        "when none.",
    )


def _camel(part: str) -> str:
    head, *rest = part.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def input_path(location: Any) -> str:
    """A field as the GraphQL input names it: `order_total.currency` is `orderTotal.currency`."""
    parts = location if isinstance(location, tuple | list) else re.split(r"\.", str(location))
    return ".".join(_camel(str(part)) for part in parts if str(part) != "")


# `member_exists` names what another member has in words (REST's `"field": "phone"`, `"external id in
# crm"`, `"member number"`), not in `errors`: the input field each is, where the input has one.
_NAMED_FIELDS = {"phone": "phone", "email": "email", "external id": "externalIds"}


def _named_field(extra: Mapping[str, Any]) -> str | None:
    named = extra.get("field")
    return _NAMED_FIELDS.get(named.split(" in ", 1)[0]) if isinstance(named, str) else None


def of_error(exc: LoyaltyError) -> list[UserError]:
    """A domain refusal as user errors: one per field it names, or one for the whole input; each with what
    the problem body adds (as JSON writes it)."""
    code = UserErrorCode[exc.code]
    extra = {name: value for name, value in exc.extra.items() if name != "errors"}
    details = jsonable_encoder(extra) if extra else None
    fields = exc.extra.get("errors") or []
    if fields:
        return [
            UserError(field=input_path(f["field"]) or None, code=code, message=f["message"], details=details)
            for f in fields
        ]
    return [UserError(field=_named_field(extra), code=code, message=exc.detail, details=details)]


def user_errors_of(exc: LoyaltyError) -> list[UserError] | None:
    """The refusal as the mutation's answer; None when it refuses the call itself (no key, no scope, a
    spent budget) or has a code the enum lacks (raised by something outside the domain's errors modules)."""
    if exc.status in CALL_STATUSES or exc.code not in UserErrorCode.__members__:
        return None
    return of_error(exc)


def of_validation(exc: ValidationError) -> list[UserError]:
    """The input refused by the REST body's own model: one user error per field, code `validation_error`."""
    code = UserErrorCode["validation_error"]
    # `described` reads each error's input only to keep it out of the message, as REST does.
    return [
        UserError(field=input_path(location) or None, code=code, message=message)
        for location, message in map(described, exc.errors(include_url=False))
    ]


def as_stored(errors: list[UserError]) -> list[dict[str, Any]]:
    return [
        {"field": e.field, "code": e.code.value, "message": e.message, "details": e.details} for e in errors
    ]


def from_stored(errors: list[dict[str, Any]]) -> list[UserError]:
    return [
        UserError(
            field=e["field"], code=UserErrorCode[e["code"]], message=e["message"], details=e.get("details")
        )
        for e in errors
    ]
