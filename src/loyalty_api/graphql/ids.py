"""Ids and codes a client sends as GraphQL arguments, read as REST reads them in a path."""

from __future__ import annotations

import uuid

from pydantic import TypeAdapter, ValidationError

from loyalty_api.errors import InvalidField
from loyalty_api.graphql.errors import as_graphql_error
from loyalty_api.http.problems import described


def parse_id(value: str, field: str) -> uuid.UUID:
    """`value` as a UUID; otherwise REST's `invalid_field` on `field`, as a GraphQL error."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise as_graphql_error(InvalidField(field, "must be a UUID")) from None


def parse_code(value: str, code: TypeAdapter[str], field: str) -> str:
    """`value` as REST reads a code of this kind in a path (a plan's `PlanCode`, a tier's `TierCode`): one no
    plan or tier can have (`Premium`, with a space, too long) is REST's validation_error on `field`, not the
    null that says there is no such plan or tier when the code is only misspelt."""
    try:
        return code.validate_python(value)
    except ValidationError as exc:
        _, message = described(exc.errors(include_url=False)[0])  # says nothing of the value
        raise as_graphql_error(InvalidField(field, message)) from None
