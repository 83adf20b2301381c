"""Who may call what: the authorization matrix, read from the app's routes.

A route says who may call it with its bearer scheme, `require(*scopes)` (http/dependencies.py). The matrix is
read from there, never written by hand, so the README's table (`loyalty-api scopes`), each operation's
`x-scopes` in the OpenAPI document and tests/http/test_authorization_matrix.py cannot disagree with what the
routes check. A route that asks for no key must be named in PUBLIC, with the reason; one that is neither is
`undeclared`, which the test refuses and `authorization_matrix` raises for. GraphQL is one route whose fields
check their own scopes (graphql/scopes.py): any key passes the route.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount, WebSocketRoute

from loyalty_api.auth.principal import Scope
from loyalty_api.http.edge import GRAPHQL_PATH
from loyalty_api.http.transaction import required_scopes

# The routes anyone may call without a key, and why. Short on purpose: a new entry is a decision to review.
PUBLIC: Mapping[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness probe",
    ("GET", "/readyz"): "readiness probe",
    ("GET", "/metrics"): "Prometheus scrape",
    ("GET", "/openapi.json"): "the API's description",
    ("GET", "/docs"): "Swagger UI",
    ("GET", "/redoc"): "ReDoc",
    ("GET", "/static/docs/{path}"): "the scripts and styles of the documentation pages",
    ("GET", "/problems"): "the problem types' pages",
    ("GET", "/problems/{code}"): "the problem types' pages",
}
GRAPHQL_ACCESS = "any key: each query and mutation field checks its own scopes"
_METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Access(StrEnum):
    scopes = "scopes"  # a key with one of `scopes`
    graphql = "graphql"  # any key; the fields check their scopes
    public = "public"  # no key, on purpose (PUBLIC)
    undeclared = "undeclared"  # no key, and not on purpose: a mistake


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str  # as clients write it: `/v1/members/{member_id}`, without a convertor
    access: Access
    scopes: frozenset[Scope] = frozenset()
    route: BaseRoute | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def ordered_scopes(self) -> list[Scope]:
        return [scope for scope in Scope if scope in self.scopes]


class UndeclaredAccess(RuntimeError):
    def __init__(self, operations: Sequence[Operation]) -> None:
        named = ", ".join(operation.label for operation in operations)
        super().__init__(
            f"these routes ask for no key and are not public on purpose: {named}. Give each a "
            "`require(...)` dependency, or name it in loyalty_api.openapi.authorization.PUBLIC"
        )
        self.operations = list(operations)


def operations(app: FastAPI) -> list[Operation]:
    """Every operation of the app, in the order the README lists them: /v1, GraphQL, then the public ones."""
    found = [operation for route in _flat(app.routes) for operation in _operations_of(route)]
    group = {Access.scopes: 0, Access.undeclared: 0, Access.graphql: 1, Access.public: 2}
    return sorted(found, key=lambda op: (group[op.access], op.path, _method_rank(op.method)))


def authorization_matrix(app: FastAPI) -> list[Operation]:
    """`operations(app)`, or UndeclaredAccess naming every route that is neither scoped nor public."""
    found = operations(app)
    undeclared = [operation for operation in found if operation.access is Access.undeclared]
    if undeclared:
        raise UndeclaredAccess(undeclared)
    return found


def markdown_table(matrix: Sequence[Operation]) -> str:
    """The README's table, as `loyalty-api scopes` prints it."""
    lines = ["| Route | Who may call it |", "| --- | --- |"]
    for operation in matrix:
        if operation.access is Access.scopes:
            who = ", ".join(f"`{scope}`" for scope in operation.ordered_scopes())
        elif operation.access is Access.graphql:
            who = GRAPHQL_ACCESS + (
                "; without a query, the GraphiQL page" if operation.method == "GET" else ""
            )
        elif operation.access is Access.public:
            who = f"no key: {PUBLIC[operation.method, operation.path]}"
        else:
            who = "**undeclared**"
        lines.append(f"| `{operation.label}` | {who} |")
    return "\n".join(lines) + "\n"


def install_scopes(app: FastAPI) -> None:
    """Each operation of the OpenAPI document names the scopes it lets in: as `x-scopes`, and as the roles of
    its security requirement, where OpenAPI 3.1 lets a scheme other than OAuth2's name them."""
    generate = app.openapi
    finished: list[dict[str, Any]] = []

    def document() -> dict[str, Any]:
        schema = generate()  # cached below us until the routes change
        if not any(schema is done for done in finished):
            with_scopes(schema, operations(app))
            finished[:] = [schema]
        return schema

    app.openapi = document  # type: ignore[method-assign]


def with_scopes(document: dict[str, Any], matrix: Sequence[Operation]) -> None:
    paths = document.get("paths", {})
    for operation in matrix:
        described = paths.get(operation.path, {}).get(operation.method.lower())
        if described is not None and operation.access is Access.scopes:
            scopes = [str(scope) for scope in operation.ordered_scopes()]
            described["x-scopes"] = scopes
            described["security"] = [
                dict.fromkeys(requirement, scopes) for requirement in described.get("security", [])
            ]


def _flat(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """The app's routes, those of included routers too (FastAPI keeps these behind the include; ours carry
    their whole path, as http.problems assumes too)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flat(included.routes)
        else:
            yield route


def _operations_of(route: BaseRoute) -> Iterator[Operation]:
    path: str = getattr(route, "path_format", "")
    if isinstance(route, WebSocketRoute):
        if path == GRAPHQL_PATH:
            return  # strawberry's, with no subscription protocol allowed: it closes every connection
        yield Operation("WEBSOCKET", path, Access.undeclared, route=route)
        return
    methods: set[str] = set(getattr(route, "methods", None) or ())
    if isinstance(route, Mount):
        methods = {"GET"}  # static files
    if "GET" in methods:
        methods.discard("HEAD")  # a GET without its body
    scopes = required_scopes(route) if isinstance(route, APIRoute) else frozenset()
    for method in methods:
        if scopes:
            access = Access.scopes
        elif path == GRAPHQL_PATH:
            access = Access.graphql
        elif (method, path) in PUBLIC:
            access = Access.public
        else:
            access = Access.undeclared
        yield Operation(method, path, access, scopes, route)


def _method_rank(method: str) -> int:
    return _METHOD_ORDER.index(method) if method in _METHOD_ORDER else len(_METHOD_ORDER)
