"""Domain errors. Each class has a stable machine `code`; one HTTP handler renders them as problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class LoyaltyError(Exception):
    code: ClassVar[str] = "loyalty_error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra: Mapping[str, Any] = extra
        # Response headers that go with the error over HTTP (Retry-After, WWW-Authenticate).
        self.headers: Mapping[str, str] = {}
        super().__init__(self.detail)


class NotFound(LoyaltyError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(LoyaltyError):
    code = "conflict"
    status = 409
    title = "Conflict"


class Forbidden(LoyaltyError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class Unauthenticated(LoyaltyError):
    code = "unauthenticated"
    status = 401
    title = "A valid API key is required"


class InvalidField(LoyaltyError):
    """A value that passed the schema but breaks a domain rule (an unknown phone number, a future date)."""

    code = "validation_error"
    status = 422
    title = "Invalid input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"{field}: {message}",
            errors=[{"field": field, "message": message, "type": "value_error"}],
        )
