"""Who may read and change what over GraphQL: the same scopes as the REST endpoints that do the same."""

from __future__ import annotations

from loyalty_api.auth.principal import Scope

READERS = (Scope.admin, Scope.pos, Scope.ecommerce)
TILLS = (Scope.admin, Scope.pos, Scope.ecommerce)
OPERATORS = (Scope.admin,)
