"""The GraphQL API: an Apollo Federation 2 subgraph over the same services as REST."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from strawberry.fastapi import GraphQLRouter
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graphql import GraphQLError
from loyalty_api.graphql.checkout import CheckoutQueries
from loyalty_api.graphql.context import get_context
from loyalty_api.graphql.members import Member, MemberQueries
from loyalty_api.graphql.money import SCALARS

logger = logging.getLogger("loyalty_api.graphql")


@strawberry.type
class Query(MemberQueries, CheckoutQueries):
    pass


class LoyaltySchema(strawberry.federation.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Errors raised on purpose (not found, no access, bad input, bad query) are answers, not failures.
        for error in errors:
            if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
                logger.error("graphql resolver failed", exc_info=error.original_error)


schema = LoyaltySchema(
    query=Query, types=[Member], federation_version="2.5", config=StrawberryConfig(scalar_map=SCALARS)
)


def graphql_router() -> GraphQLRouter[Any, None]:
    return GraphQLRouter(schema, path="/graphql", context_getter=get_context, graphql_ide="graphiql")
