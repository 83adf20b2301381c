"""Refuse NUL characters anywhere in a request's strings.

JSON allows "\\u0000" and query strings allow %00, and pydantic passes them, but PostgreSQL text and JSONB
cannot store them: without this guard such input would fail inside the database as a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from loyalty_api.http.problems import problem_response

_MESSAGE = "must not contain NUL characters"


def _nul_paths(value: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield ".".join(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                yield ".".join((*path, key))
            yield from _nul_paths(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, (*path, str(index)))


def refuse_nul(request: Request, body: bytes) -> JSONResponse | None:
    errors = [
        {"field": name, "location": "query", "message": _MESSAGE, "type": "string_nul"}
        for name, value in request.query_params.multi_items()
        if "\x00" in name or "\x00" in value
    ]
    if b"\\u0000" in body or b"\x00" in body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None  # not JSON: the body validation will refuse it
        errors += [
            {"field": field, "location": "body", "message": _MESSAGE, "type": "string_nul"}
            for field in _nul_paths(parsed)
        ]
    if not errors:
        return None
    fields = ", ".join(e["field"] for e in errors)
    return problem_response(
        status=422,
        code="validation_error",
        title="Invalid input",
        detail=f"The request has invalid or missing values: {fields}",
        instance=request.url.path,
        extra={"errors": errors},
    )
