"""Domain errors become GraphQL errors with the same stable `code` the REST API uses."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from graphql import GraphQLError
from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import LoyaltyError
from loyalty_api.graphql.context import GraphQLContext

logger = logging.getLogger("loyalty_api.graphql")


def as_graphql_error(exc: LoyaltyError) -> GraphQLError:
    return GraphQLError(exc.detail, extensions={"code": exc.code, "status": exc.status, **exc.extra})


@contextmanager
def domain_errors() -> Iterator[None]:
    try:
        yield
    except LoyaltyError as exc:
        raise as_graphql_error(exc) from exc


def require(context: GraphQLContext, *scopes: Scope) -> Principal:
    if context.principal is None:
        raise as_graphql_error(InvalidApiKey.missing())
    if not context.principal.has_any(frozenset(scopes)):
        allowed = ", ".join(sorted(scopes))
        raise as_graphql_error(ScopeNotAllowed(f"This query needs one of the scopes: {allowed}"))
    return context.principal
