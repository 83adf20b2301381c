"""RFC 9457 problem+json for every error the API returns."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, compile_path
from starlette.types import Scope

from loyalty_api.errors import LoyaltyError
from loyalty_api.http import outage
from loyalty_api.http.errors import MethodNotAllowed

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("loyalty_api.errors")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "route_not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

# The page behind `/problems/{code}` for the codes answered here without a LoyaltyError class (a class's
# docstring is the page of its code, MethodNotAllowed's for 405; loyalty_api.http.problem_pages shows both):
# status (None where it varies), title, and what the code means, a blank line, what the caller should do.
CLASSLESS_PROBLEMS: dict[str, tuple[int | None, str, str]] = {
    "bad_request": (
        400,
        "Bad request",
        "The request could not be read: a body the server failed to parse, or a GraphQL request without a "
        "query.\n\nCheck the request's syntax and headers; sending it again unchanged gets the same answer.",
    ),
    "route_not_found": (
        404,
        "No such route",
        "No endpoint has this path. A path with a trailing slash is not redirected: it is another path."
        "\n\nCheck the path against the API reference (`/docs`): the `/v1` prefix, no trailing slash.",
    ),
    "not_acceptable": (
        406,
        "Not acceptable",
        "The service cannot answer in any media type the `Accept` header allows.\n\nAccept "
        "`application/json` (and `application/problem+json` for errors).",
    ),
    "validation_error": (
        422,
        "Invalid input",
        "The request does not match the endpoint's schema: a field is missing, of the wrong type or out of "
        "range, or a field is not one the endpoint knows. `errors` lists each problem with its `field` path "
        "and its `location` (body, query, path or header).\n\nCorrect the listed values; sending the "
        "request again unchanged gets the same answer.",
    ),
    "http_error": (
        None,
        "HTTP error",
        "A refusal at the HTTP level that has no code of its own; `status` and `detail` say what went "
        "wrong.\n\nAct on the meaning of the HTTP status; if it seems wrong, report it with the response's "
        "`X-Request-ID` header.",
    ),
    "internal_error": (
        500,
        "Internal error",
        "The service failed while handling the request. What the request had done was rolled back, and the "
        "failure was logged.\n\nRetry later; with the same Idempotency-Key the work is done at most once. If "
        "it keeps failing, report it with the response's `X-Request-ID` header.",
    ),
}


def title_of(code: str) -> str:
    """The title of the problem `code`, as its page (`/problems/{code}`) gives it: every answer with the code
    carries it (RFC 9457: the title does not change from occurrence to occurrence)."""
    classless = CLASSLESS_PROBLEMS.get(code)
    if classless is not None:
        return classless[1]
    # A code of a class (a status such as 401 raised by a library, not by us): its page's title. Imported
    # here because the catalogue reads CLASSLESS_PROBLEMS from this module; create_app builds it first.
    from loyalty_api.http.problem_catalogue import problem_types

    return problem_types()[code].title


class FieldError(BaseModel):
    field: str
    location: str | None = None
    message: str
    type: str


class Problem(BaseModel):
    """An error. `code` is stable and meant for programs; `title` and `detail` are for people."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[FieldError] | None = None


def _app_root(request: Request) -> str:
    # Inside a mount (the docs' static files) root_path includes the mount's path; app_root_path does not.
    root: str = request.scope.get("app_root_path", request.scope.get("root_path", ""))
    return root


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    # `type` is a reference relative to the request's URL (RFC 9457 allows it), so it names no host a proxy
    # might rewrite; behind a root path it starts with that path, as `instance` does.
    body: dict[str, Any] = {
        "type": f"{_app_root(request)}/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def render_domain_error(exc: LoyaltyError, request: Request) -> JSONResponse:
    response = problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        extra=_located(exc.extra, request),
    )
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    response.headers.update(exc.headers)
    return response


def _located(extra: Mapping[str, Any], request: Request) -> Mapping[str, Any]:
    """The problem's members with each of its `errors` located, as a request validation error's are: a
    service names the field its rule refused (InvalidField) but cannot know where the caller put it."""
    errors = extra.get("errors")
    if not isinstance(errors, list) or all("location" in error for error in errors):
        return extra
    return {
        **extra,
        "errors": [
            {**error, "location": _location_of(str(error.get("field", "")), request)} for error in errors
        ],
    }


def _location_of(field: str, request: Request) -> str:
    name = field.split(".", 1)[0]
    if name in request.path_params:
        return "path"
    if name in request.query_params:
        return "query"
    return "body" if request.method in ("POST", "PUT", "PATCH") else "query"


# What pydantic puts before the message of a validator's ValueError or assertion.
_LIBRARY_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


def plain_message(message: str) -> str:
    """A validation message as people should read it: without pydantic's prefix."""
    return _LIBRARY_PREFIX.sub("", message)


# Messages of our own for pydantic errors whose message quotes the input or a piece of it: the input may be
# personal data (a phone number typed into the wrong field), and README promises it is never echoed back.
_EMAIL_MESSAGE = "value is not a valid email address"  # pydantic's, before email-validator's reason
_MIN_ECHO = 4  # shorter inputs occur in messages by chance ("1", "de")
_CHOICE_ERRORS = frozenset({"enum", "literal_error"})


def described(error: Mapping[str, Any]) -> tuple[tuple[Any, ...], str]:
    """One pydantic error's location and message, the message saying nothing of the input. Reads `input`
    when the error has it (only to check the message does not repeat it); never returns it."""
    location = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    context: Mapping[str, Any] = error.get("ctx") or {}
    message = plain_message(str(error.get("msg", "")))
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        # "Input tag '13800138000' found using 'kind' does not match …", reported at the union's place: the
        # field at fault is the discriminator, and the kinds it takes are what the caller needs.
        discriminator = str(context.get("discriminator", "")).strip("'")
        if discriminator.isidentifier():
            location = (*location, discriminator)
        if kind == "union_tag_not_found":
            message = "Field required"
        elif expected := context.get("expected_tags"):
            message = f"must be one of: {expected}"
        else:
            message = "is not a kind this field takes"
    elif kind == "value_error" and message.startswith(_EMAIL_MESSAGE):
        # email-validator's reasons quote the characters they refuse ("invalid characters: '_'").
        message = "is not a valid e-mail address"
    elif kind == "uuid_parsing":
        # The parser names the character it stopped at ("found `z` at 11").
        message = "must be a UUID"
    elif kind not in _CHOICE_ERRORS:
        # A validator of a library, or one of ours, that repeats the value it refused. (A choice's message
        # quotes only the values it takes, which a cut-off value such as "lapse" is part of: kept.)
        given = error.get("input")
        if isinstance(given, str) and len(given) >= _MIN_ECHO and given in message:
            message = "is not a valid value"
    return location, message


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Deliberately leave out pydantic's `input`: it may hold personal data.
    rendered = []
    for error in errors:
        loc, message = described(error)
        location = [str(part) for part in loc]
        where = location[0] if location else None
        path = ".".join(location[1:]) if len(location) > 1 else (where or "")
        if error.get("type") == "json_invalid":  # its loc ends in a character position, not a field
            path = ""
        rendered.append({"field": path, "location": where, "message": message, "type": error.get("type", "")})
    return rendered


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LoyaltyError)
    return render_domain_error(exc, request)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    fields = ", ".join(sorted({e["field"] or e["location"] or "request" for e in errors}))
    if any(e["type"] == "json_invalid" for e in errors):
        fields = "the body is not valid JSON"
    return problem_response(
        request,
        status=422,
        code="validation_error",
        title=title_of("validation_error"),
        detail=f"The request has invalid or missing values: {fields}",
        extra={"errors": errors},
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        # Starlette's Allow names the methods of the one route it tried, not of every route on the path.
        allowed = methods_of_path(request.app, request.scope) or _header_methods(exc.headers)
        return render_domain_error(MethodNotAllowed.allowing(allowed), request)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    # Starlette's phrase ("Not Found") or the GraphQL view's reason says what went wrong this time: the
    # detail. The title is the code's, the same on every answer with it and on the code's page.
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    response = problem_response(
        request, status=exc.status_code, code=code, title=title_of(code), detail=detail
    )
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _header_methods(headers: Mapping[str, str] | None) -> list[str]:
    allow = (headers or {}).get("Allow", "")
    return [method.strip() for method in allow.split(",") if method.strip()]


def methods_of_path(app: Starlette, scope: Scope) -> list[str]:
    """Every method some route of the app offers on the request's path."""
    path = scope.get("path", "").removeprefix(scope.get("root_path", ""))
    return sorted(
        {method for template, methods in _route_methods(app) if template.match(path) for method in methods}
    )


def _route_methods(app: Starlette) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    found: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(app.state, "route_methods", None)
    if found is None:
        found = [
            (compile_path(route.path)[0], _with_head(route.methods or set()))
            for route in all_routes(app.routes)
        ]
        app.state.route_methods = found
    return found


def _with_head(methods: set[str]) -> frozenset[str]:
    # HEAD is answered wherever GET is (http/middleware.py), though no route names it.
    return frozenset(methods | {"HEAD"} if "GET" in methods else methods)


def all_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """The routes of the app, those of included routers too (FastAPI keeps these behind an include)."""
    flat: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            flat.append(route)
        original = getattr(route, "original_router", None)
        if original is not None:
            flat.extend(all_routes(original.routes))
    return flat


def unexpected_error(request: Request, exc: BaseException) -> JSONResponse:
    """The answer to an exception nothing handled: 503 `database_unavailable` when the database was out of
    reach (http/outage.py), else a 500 logged with its stack."""
    answer = outage.unavailable(exc)
    if answer is not None:
        return render_domain_error(answer, request)
    logger.error("unhandled error", exc_info=exc)
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title=title_of("internal_error"),
        detail="The service failed to process the request; nothing was changed. Retry later.",
    )


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return unexpected_error(request, exc)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LoyaltyError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)


def _problem_content() -> dict[str, Any]:
    """An error response in the OpenAPI document: the Problem schema, under the media type it is sent with
    (`openapi.document` adds the schema to the document's components)."""
    return {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


# Every route can answer 422 `validation_error` (its schema refuses the request); the classes with that code
# (InvalidField for a rule of a service, InvalidInput for the edge's checks) are answers of this one line.
_VALIDATION_LINE = "`validation_error`: a field is missing or invalid (see `errors`)"


def problem_responses(*errors: type[LoyaltyError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: every failure it can answer with, by status, each code listed once."""
    listed = add_problems({}, *(error for error in errors if error.code != "validation_error"))
    return _with_line(listed, 422, "validation_error", _VALIDATION_LINE)


def add_problems(
    responses: dict[int | str, dict[str, Any]], *errors: type[LoyaltyError]
) -> dict[int | str, dict[str, Any]]:
    """`responses` with these failures listed too (the route class adds the ones every POST can give); a code
    listed already is not listed again, whatever its class."""
    merged = {status: dict(response) for status, response in responses.items()}
    for error in errors:
        merged = _with_line(merged, error.status, error.code, f"`{error.code}`: {error.title}")
    return merged


def _with_line(
    responses: dict[int | str, dict[str, Any]], status: int, code: str, line: str
) -> dict[int | str, dict[str, Any]]:
    merged = dict(responses)
    found = merged.get(status)
    if found is None:
        merged[status] = {"description": line, "content": _problem_content()}
    elif f"`{code}`:" not in str(found.get("description", "")):
        merged[status] = {**found, "description": f"{found.get('description', '')}; {line}".lstrip("; ")}
    return dict(sorted(merged.items(), key=lambda item: str(item[0])))
