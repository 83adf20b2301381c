from __future__ import annotations

from loyalty_api.errors import Forbidden, LoyaltyError, NotFound, Unauthenticated


class InvalidApiKey(Unauthenticated):
    code = "invalid_api_key"
    title = "The API key is missing, malformed, unknown or revoked"

    @classmethod
    def missing(cls) -> InvalidApiKey:
        return cls("Send the API key as `Authorization: Bearer lk_…`")


class ScopeNotAllowed(Forbidden):
    code = "scope_not_allowed"
    title = "This API key's scopes do not allow this call"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "No such API key"


class PartnerRequired(LoyaltyError):
    code = "partner_required"
    status = 422
    title = "A partner key must name its partner, and only a partner key may"
