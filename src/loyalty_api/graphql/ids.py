"""Ids a client sends as GraphQL arguments, read as REST reads them in a path."""

from __future__ import annotations

import uuid

from loyalty_api.errors import InvalidField
from loyalty_api.graphql.errors import as_graphql_error


def parse_id(value: str, field: str) -> uuid.UUID:
    """`value` as a UUID; otherwise REST's `invalid_field` on `field`, as a GraphQL error."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise as_graphql_error(InvalidField(field, "must be a UUID")) from None
