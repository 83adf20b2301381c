"""Domain errors. Each class has a stable machine `code`; one HTTP handler renders them as problem+json."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

# The members RFC 9457 and our contract give every problem body.
PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "code"})


class LoyaltyError(Exception):
    """The base of every refusal the service answers with: a subclass sets `code`, `status` and `title`.

    A subclass's own docstring is the page its problem `type` opens (`/problems/{code}`): a first paragraph
    on what the code means, a blank line, then what the caller should do. Write it for API callers.
    """

    code: ClassVar[str] = "loyalty_error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"
    # Whether the same request, sent again with its Idempotency-Key, must get this answer again: a business
    # rule's refusal is final; invalid input (the request never ran) and a race lost for a moment are not,
    # and leave the key free for the corrected or repeated request.
    final: ClassVar[bool] = True

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        if clobbered := PROBLEM_MEMBERS & extra.keys():
            # An extra member named like a standard one would overwrite it in the problem body.
            raise TypeError(f"extra members {sorted(clobbered)} would replace the problem's own")
        self.detail = detail or self.title
        self.extra: Mapping[str, Any] = extra
        # Response headers that go with the error over HTTP (Retry-After, WWW-Authenticate).
        self.headers: Mapping[str, str] = {}
        super().__init__(self.detail)


class NotFound(LoyaltyError):
    """The resource the request names does not exist, or this API key may not see it. The service usually
    answers with a more specific code that names the resource (`member_not_found`, `hold_not_found`, …).

    Check the identifier; sending the same request again gets the same answer.
    """

    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(LoyaltyError):
    """The request is well formed but clashes with the current state of a resource, so nothing was changed.
    The service usually answers with a more specific code that names the clash.

    Read the resource's current state, then change the request, or stop.
    """

    code = "conflict"
    status = 409
    title = "Conflict"


class Forbidden(LoyaltyError):
    """The API key is valid but may not do this. The service usually answers with `scope_not_allowed`.

    Call with a key that is allowed to; retrying with this key will not help.
    """

    code = "forbidden"
    status = 403
    title = "Forbidden"


class Unauthenticated(LoyaltyError):
    """The request carries no valid API key. The service usually answers with `invalid_api_key`.

    Send an active API key as `Authorization: Bearer lk_<prefix>_<secret>`.
    """

    code = "unauthenticated"
    status = 401
    title = "A valid API key is required"


class InvalidField(LoyaltyError):
    """A value has the right type but breaks a rule of the service: a birthday in the future, a phone number
    that is not one, an id of a benefit that does not exist, a cursor this service did not return. `errors`
    names each field with its message.

    Change each named value to meet the rule its message states.
    """

    code = "validation_error"
    status = 422
    title = "Invalid input"
    final = False

    def __init__(self, field: str, message: str, *others: tuple[str, str]) -> None:
        named = [(field, message), *others]
        super().__init__(
            "; ".join(f"{name}: {said}" for name, said in named),
            errors=[{"field": name, "message": said, "type": "value_error"} for name, said in named],
        )

    @property
    def fields(self) -> list[tuple[str, str]]:
        """Each field refused, with its message."""
        return [(error["field"], error["message"]) for error in self.extra["errors"]]


class FieldChecks:
    """The rules of several fields checked together, so that one refusal names every field that breaks its
    rule, as the request's own validation names each: a form shows all its faults at once, not one after
    another as each is put right. Each `check()` keeps the InvalidField it meets; `done()` raises them as one.
    Another refusal (a subclass's own code, a conflict) passes at once."""

    def __init__(self) -> None:
        self.refused: list[tuple[str, str]] = []

    @contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except InvalidField as exc:
            if type(exc) is not InvalidField:
                raise
            self.refused.extend(exc.fields)

    def done(self) -> None:
        if self.refused:
            raise InvalidField(*self.refused[0], *self.refused[1:])


def check_window(valid_from: datetime | None, valid_until: datetime | None) -> None:
    """A validity window (an earning or activity rule's, a reward's) ends after it begins; either end may be
    open."""
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise InvalidField("valid_until", "must be after valid_from")
