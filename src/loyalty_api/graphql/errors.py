"""Every GraphQL error carries an `extensions.code` a client can act on.

- Domain errors become GraphQL errors with the same stable `code` the REST API uses.
- A document that does not parse or validate gets Apollo's `GRAPHQL_PARSE_FAILED` /
  `GRAPHQL_VALIDATION_FAILED`.
- The database out of reach is `database_unavailable`, as over REST, logged as an outage.
- An error REST answers with Retry-After (`rate_limited`, `database_unavailable`, `request_timed_out`) has its
  seconds in `extensions.retryAfter`, and the HTTP answer has a Retry-After header: the longest of its
  errors' waits.
- Anything else a resolver raises is a bug: it is logged (its type, path and stack, never its message, which
  may hold personal data) and answered as `Internal server error` with `INTERNAL_SERVER_ERROR`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from strawberry.extensions import MaskErrors, SchemaExtension

from graphql import GraphQLError, StringValueNode, ValidationRule
from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.db.outage import database_out_of_reach
from loyalty_api.errors import LoyaltyError
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.http import outage
from loyalty_api.http.input_guard import string_problem

logger = logging.getLogger("loyalty_api.graphql")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
UNKNOWN_TYPENAME = "UNKNOWN_TYPENAME"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL_MESSAGE = "Internal server error"
RETRY_AFTER = "retryAfter"


def as_graphql_error(exc: LoyaltyError) -> GraphQLError:
    extensions = {"code": exc.code, "status": exc.status, **exc.extra}
    if (wait := exc.headers.get("Retry-After")) is not None:
        # The seconds REST's Retry-After gives (a spent budget, an outage); the answer's header: the longest.
        extensions[RETRY_AFTER] = int(wait)
    return GraphQLError(exc.detail, extensions=extensions)


def retry_after(errors: Iterable[GraphQLError]) -> int | None:
    """The longest wait the errors ask for, in seconds; None when none asks to wait."""
    waits = ((e.extensions or {}).get(RETRY_AFTER) for e in errors)
    return max((wait for wait in waits if wait is not None), default=None)


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


def is_internal(error: GraphQLError) -> bool:
    """Whether a field failed for a reason nobody raised on purpose. Errors raised on purpose (not found, no
    access, bad input) are GraphQL or domain errors; errors in the request itself (parse, validation,
    variables) have no path, even when graphql-core keeps a scalar's ValueError as their original error."""
    original = error.original_error
    return (
        error.path is not None
        and original is not None
        and not isinstance(original, GraphQLError | LoyaltyError)
        and not database_out_of_reach(original)
    )


def log_internal(error: GraphQLError) -> None:
    original = error.original_error
    assert original is not None
    logger.error(
        "graphql resolver failed",
        extra={
            "graphql_path": ".".join(str(part) for part in error.path or ()),
            "error_type": f"{type(original).__module__}.{type(original).__qualname__}",
            "stack": "".join(traceback.format_tb(original.__traceback__)),
        },
    )


def _with_code(error: GraphQLError, code: str) -> None:
    if "code" not in (error.extensions or {}):
        error.extensions = {**(error.extensions or {}), "code": code}


class ErrorCodes(SchemaExtension):
    """`extensions.code` on errors that have none: parse and validation errors, variables and arguments that
    do not fit their types (Apollo's `BAD_USER_INPUT`), and a domain error a resolver let through without
    `domain_errors()`."""

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            _with_code(error, PARSE_FAILED)

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            _with_code(error, VALIDATION_FAILED)

    def on_execute(self) -> Iterator[None]:
        yield
        for error in getattr(self.execution_context.result, "errors", None) or ():
            if "code" in (error.extensions or {}):
                continue
            original = error.original_error
            if isinstance(original, LoyaltyError):
                coded = as_graphql_error(original)
                error.message, error.extensions = coded.message, coded.extensions
            elif original is not None and (unavailable := outage.unavailable(original)) is not None:
                # An outage, not a bug: the caller retries after `retryAfter`.
                coded = as_graphql_error(unavailable)
                error.message, error.extensions = coded.message, coded.extensions
            elif error.path is None or original is None or isinstance(original, GraphQLError):
                # The variables did not coerce (no field's error), or a field's arguments did not:
                # graphql-core raises those itself (an explicit null for a non-null argument with a default).
                _with_code(error, BAD_USER_INPUT)


class PlainStrings(ValidationRule):
    """String literals in a document hold no NUL and no lone surrogate, as REST bodies and GraphQL variables
    may not: the database refuses both, and the read would fail as a bug of ours."""

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        problem = string_problem(node.value, controls=False)
        if problem is not None:
            self.report_error(GraphQLError(f"A string literal {problem[0]}", node))


class MaskInternalErrors(MaskErrors):
    """Strawberry's MaskErrors for `is_internal` errors, with Apollo's code on the masked error."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_internal, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        return masked


# In this order: MaskErrors answers last, after the codes are in place.
ERROR_EXTENSIONS = (MaskInternalErrors, ErrorCodes)
