"""Per-request GraphQL context: who is calling, the request's read snapshot and its DataLoaders, and how to
open units of work (mutations write in their own, as REST does)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from strawberry.fastapi import BaseContext

from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.graphql.loaders import Loaders
from loyalty_api.graphql.snapshot import Snapshot
from loyalty_api.http.edge import principal_of
from loyalty_api.http.rate_limits import RateLimiter


@dataclass
class GraphQLContext(BaseContext):
    units: UnitsOfWork
    principal: Principal | None
    rate_limiter: RateLimiter
    snapshot: Snapshot
    loaders: Loaders
    entities_named: int = 0  # representations named so far by this request's `_entities` fields
    operation_named: bool = True  # whether the request named the operation to run (`operationName`)


async def get_context(request: Request) -> GraphQLContext:
    # The edge has verified the key before the document was read (None: an anonymous SDL read).
    units: UnitsOfWork = request.app.state.units
    limiter: RateLimiter = request.app.state.rate_limiter
    principal = principal_of(request)
    snapshot = Snapshot(units)
    return GraphQLContext(
        units=units,
        principal=principal,
        rate_limiter=limiter,
        snapshot=snapshot,
        loaders=Loaders.over(snapshot, limiter, principal),
    )
