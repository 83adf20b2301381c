"""RFC 9457 problem+json for every error the API returns."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from loyalty_api.errors import LoyaltyError

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


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def render_domain_error(exc: LoyaltyError, request: Request) -> JSONResponse:
    response = problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        extra=exc.extra,
    )
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    response.headers.update(exc.headers)
    return response


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Deliberately leave out pydantic's `input`: it may hold personal data.
    rendered = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        where = location[0] if location else None
        path = ".".join(location[1:]) if len(location) > 1 else (where or "")
        if error.get("type") == "json_invalid":  # its loc ends in a character position, not a field
            path = ""
        rendered.append(
            {"field": path, "location": where, "message": error.get("msg", ""), "type": error.get("type", "")}
        )
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
        status=422,
        code="validation_error",
        title="Invalid input",
        detail=f"The request has invalid or missing values: {fields}",
        instance=request.url.path,
        extra={"errors": errors},
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    response = problem_response(
        status=exc.status_code, code=code, title=detail, detail=detail, instance=request.url.path
    )
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def internal_error(request: Request, exc: BaseException) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    return problem_response(
        status=500,
        code="internal_error",
        title="Internal error",
        detail="The service failed to process the request; nothing was changed. Retry later.",
        instance=request.url.path,
    )


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return internal_error(request, exc)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LoyaltyError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)


def problem_responses(*errors: type[LoyaltyError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: every failure it can answer with, grouped by status, codes listed."""
    by_status: dict[int, list[type[LoyaltyError]]] = {}
    for error in errors:
        by_status.setdefault(error.status, []).append(error)
    by_status.setdefault(422, [])
    responses: dict[int | str, dict[str, Any]] = {}
    for status, classes in sorted(by_status.items()):
        codes = [f"`{c.code}`: {c.title}" for c in classes]
        if status == 422:
            codes.append("`validation_error`: a field is missing or invalid (see `errors`)")
        responses[status] = {
            "model": Problem,
            "description": "; ".join(codes),
            "content": {PROBLEM_JSON: {}},
        }
    return responses


def add_problems(
    responses: dict[int | str, dict[str, Any]], *errors: type[LoyaltyError]
) -> dict[int | str, dict[str, Any]]:
    """`responses` with these failures listed too (the route class adds the ones every POST can give)."""
    merged = {status: dict(response) for status, response in responses.items()}
    for error in errors:
        line = f"`{error.code}`: {error.title}"
        found = merged.get(error.status)
        if found is None:
            merged[error.status] = {"model": Problem, "description": line, "content": {PROBLEM_JSON: {}}}
        elif line not in str(found.get("description", "")):
            found["description"] = f"{found.get('description', '')}; {line}".lstrip("; ")
    return dict(sorted(merged.items(), key=lambda item: str(item[0])))
