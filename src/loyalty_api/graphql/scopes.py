"""Who may read and change what over GraphQL: the same scopes as the REST endpoints that do the same."""

from __future__ import annotations

from loyalty_api.auth.principal import Scope

READERS = (Scope.admin, Scope.pos, Scope.ecommerce)
TILLS = (Scope.admin, Scope.pos, Scope.ecommerce)
OPERATORS = (Scope.admin,)
# Paid membership (plans and subscriptions): the tills and shops that sell plans, and billing, which charges
# for them, read them; shops and back offices sell and manage subscriptions; billing alone reports payments.
PAID_MEMBERSHIP_READERS = (*READERS, Scope.billing)
SELLERS = (Scope.admin, Scope.ecommerce)
BILLING = (Scope.billing,)
