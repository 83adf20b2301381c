"""The OpenAPI document: FastAPI's, with the problem schema every error response refers to and each
operation's examples (openapi.examples); `app.openapi_document` writes it as openapi/openapi.json holds it."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from loyalty_api.http.dependencies import EmptyIsLeftOut
from loyalty_api.http.problems import PROBLEM_JSON, Problem, all_routes
from loyalty_api.openapi.examples import JSON, Example, examples
from loyalty_api.text import PLAIN_TEXT


def operation_id(route: APIRoute) -> str:
    """The endpoint's function name (`earn`, `enrol_member`): what a generated client names its method, so it
    must be unique in the app (a test checks)."""
    return route.name


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    finished: list[dict[str, Any]] = []

    def document() -> dict[str, Any]:
        schema = generate()  # FastAPI's, kept until the routes change
        if not any(schema is done for done in finished):
            _with_problem_schemas(schema)
            _with_plain_text(schema)
            _with_wide_integers(schema)
            _with_answer_headers(schema)
            _with_examples(schema)
            _with_empty_values(schema, app.routes)
            finished[:] = [schema]
        return schema

    app.openapi = document  # type: ignore[method-assign]


# An `integer` without a format is a 32-bit int to openapi-generator's Java, C#, Go and Kotlin clients (and
# Kiota's): money in minor units and points pass 2,147,483,647 (21.5 million yuan in fen). An integer whose
# bounds do not keep it within 32 bits says `int64`, as GraphQL calls points and money `Long`.
_INT32 = (-(2**31), 2**31 - 1)


def _with_wide_integers(document: dict[str, Any]) -> None:
    pending: list[Any] = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if item.get("type") == "integer" and "format" not in item:
                least = item.get("minimum", item.get("exclusiveMinimum"))
                most = item.get("maximum", item.get("exclusiveMaximum"))
                if least is None or most is None or least < _INT32[0] or most > _INT32[1]:
                    item["format"] = "int64"
            # Examples and defaults are values, not schemas.
            pending.extend(v for k, v in item.items() if k not in ("examples", "example", "default"))
        elif isinstance(item, list):
            pending.extend(item)


# The headers of an answer a client acts on (http.middleware.CORS_EXPOSED_HEADERS lets a script read them), on
# the answers that carry them: the request's id on every answer (http.middleware), when to retry a 429 or a
# 503, and which budget a 429 spent (http.rate_limits, http.errors, http.edge), and whether a success is the
# replay of an earlier one (http.transaction).
_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id in the service's log: the caller's own `X-Request-ID` when it sent "
        "one of 1 to 64 letters, digits, `.`, `_` or `-`, else one made for it. Quote it when reporting a "
        "problem.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "RateLimit-Policy": {
        "description": 'The budget that is spent, as `"<name>";q=<calls>;w=<seconds>`.',
        "required": True,
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left of it, as `"<name>";r=0;t=<seconds until it comes back>`.',
        "required": True,
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` on the answer to a retry with the same Idempotency-Key and body: the first "
        "answer (a success, or a refusal such as `insufficient_points`), replayed without doing the work "
        "again. Absent on a first answer.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
_CARRIED = {
    "429": ("Retry-After", "RateLimit-Policy", "RateLimit"),
    "503": ("Retry-After",),
}


def _with_answer_headers(document: dict[str, Any]) -> None:
    document.setdefault("components", {})["headers"] = copy.deepcopy(_HEADERS)

    def named(*names: str) -> dict[str, Any]:
        return {name: {"$ref": f"#/components/headers/{name}"} for name in names}

    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            responses = operation.get("responses", {})
            for status, response in responses.items():
                response["headers"] = {
                    **response.get("headers", {}),
                    **named("X-Request-ID", *_CARRIED.get(status, ())),
                }
            if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
                # A success or a refusal that is final is replayed; a 429 is not (nothing was done).
                for status, response in responses.items():
                    if status.startswith(("2", "4")) and status != "429":
                        response["headers"] = {**response.get("headers", {}), **named("Idempotent-Replayed")}


def _with_problem_schemas(document: dict[str, Any]) -> None:
    # Error responses name the Problem schema under application/problem+json (http.problems); FastAPI only
    # collects the schemas of models it is given, so Problem and what it refers to are added here.
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    # FastAPI's own 422 (routes outside /v1 that take parameters) describes its default body; ours is a
    # problem like every other error.
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            invalid = operation.get("responses", {}).get("422")
            if invalid is not None and _VALIDATION_ERROR in str(invalid.get("content")):
                operation["responses"]["422"] = {
                    "description": "`validation_error`: a parameter is missing or invalid (see `errors`)",
                    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    document["components"]["schemas"] = dict(sorted(schemas.items()))


_VALIDATION_ERROR = "#/components/schemas/HTTPValidationError"


def _with_empty_values(document: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    # A list's optional query parameter read as left out when empty (http.dependencies.EmptyIsLeftOut) says
    # so with OpenAPI's `allowEmptyValue`: `?tier=` is taken though "" is no tier code, enum value or instant.
    for route in all_routes(routes):
        marked = {
            parameter.alias
            for parameter in _query_parameters(route.dependant)
            if any(mark is EmptyIsLeftOut for mark in parameter.field_info.metadata)
        }
        for method in (route.methods or set()) if marked else ():
            operation = document.get("paths", {}).get(route.path_format, {}).get(method.lower(), {})
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] in marked:
                    parameter["allowEmptyValue"] = True


def _query_parameters(dependant: Dependant) -> Iterator[Any]:  # FastAPI's ModelField
    """The query parameters of an endpoint and of its dependencies (paging's `limit` and `cursor`)."""
    yield from dependant.query_params
    for dependency in dependant.dependencies:
        yield from _query_parameters(dependency)


def _with_examples(document: dict[str, Any]) -> None:
    # Each operation's examples (http.examples) as OpenAPI 3.1 `examples` maps: the request's under its JSON
    # body, the replies under its success (2xx) response. tests/http/test_examples.py checks them.
    def named(found: Mapping[str, Example]) -> dict[str, Any]:
        return {name: {"summary": e.summary, "value": copy.deepcopy(e.value)} for name, e in found.items()}

    for (method, path), found in examples().items():
        operation = document.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None:
            continue  # no such operation (any more): the test of the examples names it
        if found.requests and "requestBody" in operation:
            body = operation["requestBody"].setdefault("content", {}).setdefault(JSON, {})
            body["examples"] = named(found.requests)
        success = next((status for status in operation.get("responses", {}) if status.startswith("2")), None)
        if found.responses and success is not None:
            content = operation["responses"][success].setdefault("content", {})
            reply = content.setdefault(found.response_media_type, {"schema": {"type": "string"}})
            reply["examples"] = named(found.responses)


# The input guard (http.input_guard) refuses a control character (C0 with NUL, DEL, C1) and a bidirectional
# control in any string of a /v1 body or query string. A string that only requests carry and that has no
# pattern or format of its own (names, reasons, descriptions, codes) says so with PLAIN_TEXT, so that a
# client or a fuzzer obeying the document does not send one (a required text, text.FilledText,
# says it with its own pattern, FILLED_TEXT). A schema replies use too is left alone: the pattern would be a
# promise about what the service sends. (Lone surrogates, refused too, are beyond a regular expression.)
_SAID_ALREADY = frozenset({"pattern", "format", "enum", "const"})


def _with_plain_text(document: dict[str, Any]) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    requested: set[str] = set()
    replied: set[str] = set()
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            _referenced(operation.get("responses"), replied)
            if not path.startswith("/v1/"):
                continue
            body = operation.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema")
            _plain_strings(body)
            _referenced(body, requested)
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _plain_strings(parameter.get("schema"))
                    _referenced(parameter.get("schema"), requested)
    for name in _reachable(requested, schemas) - _reachable(replied, schemas):
        _plain_strings(schemas[name])


def _referenced(node: Any, found: set[str]) -> None:
    """The names of the component schemas `node` refers to itself (not through them)."""
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(_COMPONENT):
                found.add(ref.removeprefix(_COMPONENT))
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


_COMPONENT = "#/components/schemas/"


def _reachable(names: set[str], schemas: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = [name for name in names if name in schemas]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            referenced: set[str] = set()
            _referenced(schemas[name], referenced)
            pending.extend(n for n in referenced if n in schemas and n not in seen)
    return seen


def _plain_strings(schema: Any) -> None:
    """PLAIN_TEXT on each string `schema` describes, down its subschemas (not through references, and not
    into examples or defaults, which are values)."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not _SAID_ALREADY & schema.keys():
        schema["pattern"] = PLAIN_TEXT
    for key in ("properties", "patternProperties"):
        for subschema in schema.get(key, {}).values():
            _plain_strings(subschema)
    for key in ("items", "additionalProperties", "not"):
        _plain_strings(schema.get(key))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for subschema in schema.get(key, []):
            _plain_strings(subschema)
