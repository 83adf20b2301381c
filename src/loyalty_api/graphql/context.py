"""Per-request GraphQL context: who is calling, and how to open units of work.

Resolvers open their own unit of work per call, so sibling fields that strawberry resolves concurrently never
share a session.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from strawberry.fastapi import BaseContext

from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.http.edge import principal_of
from loyalty_api.http.rate_limits import RateLimiter


@dataclass
class GraphQLContext(BaseContext):
    units: UnitsOfWork
    principal: Principal | None
    rate_limiter: RateLimiter


async def get_context(request: Request) -> GraphQLContext:
    # The edge has verified the key before the document was read (None: an anonymous SDL read).
    return GraphQLContext(
        units=request.app.state.units,
        principal=principal_of(request),
        rate_limiter=request.app.state.rate_limiter,
    )
