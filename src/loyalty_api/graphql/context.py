"""Per-request GraphQL context: who is calling, and how to open units of work.

Resolvers open their own unit of work per call, so sibling fields that strawberry resolves concurrently never
share a session.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from strawberry.fastapi import BaseContext

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.errors import LoyaltyError


@dataclass
class GraphQLContext(BaseContext):
    units: UnitsOfWork
    principal: Principal | None
    auth_error: LoyaltyError | None


async def get_context(request: Request) -> GraphQLContext:
    units: UnitsOfWork = request.app.state.units
    header = request.headers.get("authorization", "")
    principal: Principal | None = None
    error: LoyaltyError | None = None
    if header:
        try:
            async with units.read() as uow:
                principal = await auth_service.authenticate(uow, header.removeprefix("Bearer ").strip())
        except LoyaltyError as exc:
            error = exc
    return GraphQLContext(units=units, principal=principal, auth_error=error)
