"""Who may call what, on every route of the app: the matrix is read from the routes themselves
(loyalty_api.openapi.authorization), so a route added tomorrow is checked the day it lands.

Each route either takes keys of some scopes, or is GraphQL (any key; its fields check their scopes), or is
public on purpose; anything else fails here. Each keyed route is called with no key (401), with a key of each
scope it refuses (403, and no table gains or loses a row), and with a key of each scope it takes (neither:
made-up ids and empty bodies may well be 404 or 422). The README's table is the generated one.

The module has an app and a database of its own, with one key per scope made once: the suite's shared app
empties its tables after every test, which would take the keys with it.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import text
from starlette.routing import Mount

from loyalty_api import crypto
from loyalty_api.app import create_app, scopes_table
from loyalty_api.auth.principal import Scope
from loyalty_api.cli import main
from loyalty_api.clock import FrozenClock
from loyalty_api.db.migrations import upgrade
from loyalty_api.http.dependencies import require
from loyalty_api.openapi.authorization import (
    PUBLIC,
    Access,
    Operation,
    UndeclaredAccess,
    authorization_matrix,
    operations,
)
from loyalty_api.schema import metadata
from loyalty_api.settings import Settings
from tests.apps import client_for
from tests.builders import make_key, make_partner_key
from tests.conftest import UNLIMITED, bearer, units_of
from tests.databases import fresh_database

README = Path(__file__).resolve().parents[2] / "README.md"
WITH_BODY = {"POST", "PUT", "PATCH"}
TYPENAME = "{ __typename }"


@functools.cache
def _described() -> FastAPI:
    return create_app(Settings(encryption_key=crypto.generate_key(), database_url="sqlite+aiosqlite://"))


OPERATIONS = operations(_described())
SCOPED = [op for op in OPERATIONS if op.access is Access.scopes]
KEYED = [op for op in OPERATIONS if op.access in (Access.scopes, Access.graphql)]
REFUSING = [op for op in SCOPED if op.scopes != frozenset(Scope)]
OPEN = [op for op in OPERATIONS if op.access is Access.public]


def _ids(found: list[Operation]) -> list[str]:
    return [op.label for op in found]


@pytest.fixture(scope="module")
async def matrix_app(
    settings: Settings, clock: FrozenClock, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    async with fresh_database(tmp_path_factory.mktemp("matrix"), f"{worker}_matrix") as url:
        # Every route is called without a key, and the lookups miss: no budget may answer 429 instead.
        unlimited = dict.fromkeys(
            (
                "rate_limit_unauthenticated_per_address",
                "rate_limit_contact_lookup",
                "rate_limit_lookup_misses",
            ),
            UNLIMITED,
        )
        app = create_app(settings.model_copy(update={"database_url": url, **unlimited}), clock=clock)
        async with app.router.lifespan_context(app):
            await upgrade(units_of(app).database.engine)
            yield app


@pytest.fixture(scope="module")
async def keys(matrix_app: FastAPI) -> dict[Scope, str]:
    """A key of each scope; the partner's bound to a partner that exists."""
    made = {
        scope: await make_key(matrix_app, scope, rate_limit=UNLIMITED)
        for scope in Scope
        if scope is not Scope.partner
    }
    made[Scope.partner] = await make_partner_key(matrix_app, rate_limit=UNLIMITED)
    return made


@pytest.fixture(scope="module")
async def caller(matrix_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(matrix_app) as client:
        yield client


def _value(annotation: Any) -> str:
    """A value the path parameter parses as: a made-up id, a number, a short code."""
    if annotation is uuid.UUID:
        return str(uuid.uuid4())
    return "1" if annotation is int else "some-code"


def _url(operation: Operation) -> str:
    route = operation.route
    if isinstance(route, APIRoute):
        values = {p.name: _value(p.field_info.annotation) for p in route.dependant.path_params}
    elif isinstance(route, Mount):
        values = {"path": "some-file.js"}
    else:
        values = {}
    path = operation.path.format(**values)
    # A GET on GraphQL without a query is GraphiQL's page, which is public; with one it is a call.
    return (
        f"{path}?query={TYPENAME}"
        if operation.access is Access.graphql and operation.method == "GET"
        else path
    )


async def _call(client: httpx.AsyncClient, operation: Operation, key: str | None = None) -> httpx.Response:
    body: dict[str, Any] | None = {} if operation.method in WITH_BODY else None
    if operation.access is Access.graphql and operation.method == "POST":
        body = {"query": TYPENAME}
    headers = bearer(key) if key is not None else {}
    return await client.request(operation.method, _url(operation), json=body, headers=headers)


def _code(response: httpx.Response) -> object:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer.get("code") if isinstance(answer, dict) else None


async def _row_counts(app: FastAPI) -> Mapping[str, int]:
    counts = ", ".join(f'(SELECT count(*) FROM "{t.name}") AS "{t.name}"' for t in metadata.sorted_tables)
    async with units_of(app).database.engine.connect() as connection:
        row = (await connection.execute(text(f"SELECT {counts}"))).one()
    return dict(row._mapping)


class TestEveryRouteSaysWhoMayCallIt:
    @pytest.mark.parametrize("operation", OPERATIONS, ids=_ids(OPERATIONS))
    def test_a_route_takes_scopes_or_is_public_on_purpose(self, operation: Operation) -> None:
        assert operation.access is not Access.undeclared, (
            f"{operation.label} asks for no key: give it a `require(...)` dependency, or name it in "
            "loyalty_api.openapi.authorization.PUBLIC with the reason"
        )
        if operation.access is Access.scopes:
            # the edge authenticates /v1 alone: elsewhere `require` would refuse every caller
            assert operation.path.startswith("/v1/"), operation.label

    def test_every_public_entry_names_a_route_that_asks_for_no_key(self) -> None:
        assert set(PUBLIC) == {(op.method, op.path) for op in OPEN}

    def test_a_route_without_scopes_that_is_not_public_is_refused(self) -> None:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.get("/v1/forgotten")
        async def forgotten() -> None: ...

        @app.get("/v1/kept", dependencies=[Depends(require(Scope.pos))])
        async def kept() -> None: ...

        with pytest.raises(UndeclaredAccess) as refused:
            authorization_matrix(app)
        assert [op.label for op in refused.value.operations] == ["GET /v1/forgotten"]
        assert "GET /v1/forgotten" in str(refused.value)

    def test_the_graphql_route_and_the_partner_routes_are_where_expected(self) -> None:
        found = {op.label: op for op in OPERATIONS}
        assert found["POST /graphql"].access is Access.graphql
        assert found["POST /v1/partner/links"].scopes == {Scope.partner}
        assert found["POST /v1/subscriptions/{subscription_id}/payments"].scopes == {Scope.billing}
        assert len(KEYED) > 50


class TestCallingEveryRoute:
    @pytest.mark.parametrize("operation", KEYED, ids=_ids(KEYED))
    async def test_without_a_key_it_is_401(self, caller: httpx.AsyncClient, operation: Operation) -> None:
        response = await _call(caller, operation)
        assert response.status_code == 401, response.text
        assert _code(response) == "invalid_api_key"

    @pytest.mark.parametrize("operation", REFUSING, ids=_ids(REFUSING))
    async def test_a_key_of_a_scope_it_does_not_take_is_403_and_changes_nothing(
        self,
        matrix_app: FastAPI,
        caller: httpx.AsyncClient,
        keys: dict[Scope, str],
        operation: Operation,
    ) -> None:
        before = await _row_counts(matrix_app)
        for scope in sorted(set(Scope) - operation.scopes):
            response = await _call(caller, operation, keys[scope])
            assert response.status_code == 403, (scope, response.text)
            assert _code(response) == "scope_not_allowed", (scope, response.text)
        assert await _row_counts(matrix_app) == before

    @pytest.mark.parametrize("operation", KEYED, ids=_ids(KEYED))
    async def test_a_key_of_a_scope_it_takes_gets_past_authorization(
        self, caller: httpx.AsyncClient, keys: dict[Scope, str], operation: Operation
    ) -> None:
        allowed = operation.scopes if operation.access is Access.scopes else frozenset(Scope)
        for scope in sorted(allowed):
            response = await _call(caller, operation, keys[scope])
            assert response.status_code not in (401, 403), (scope, response.text)
            assert response.status_code < 500, (scope, response.text)

    @pytest.mark.parametrize("operation", OPEN, ids=_ids(OPEN))
    async def test_a_public_route_answers_without_a_key(
        self, caller: httpx.AsyncClient, operation: Operation
    ) -> None:
        response = await _call(caller, operation)
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text


class TestTheMatrixIsPublished:
    def test_the_readme_table_is_the_generated_one(self, capsys: pytest.CaptureFixture[str]) -> None:
        found = re.search(
            r"<!-- scopes:begin -->\n(.*?)<!-- scopes:end -->", README.read_text(encoding="utf-8"), re.DOTALL
        )
        assert found, "the README has lost its `<!-- scopes:begin -->` … `<!-- scopes:end -->` markers"
        main(["scopes"])
        printed = capsys.readouterr().out
        assert printed == scopes_table()
        assert found[1] == printed, (
            "the README's table of who may call what is stale: put the output of `loyalty-api scopes` "
            "between its markers"
        )

    def test_the_openapi_document_names_each_operations_scopes(self) -> None:
        document = _described().openapi()
        for operation in SCOPED:
            described = document["paths"][operation.path][operation.method.lower()]
            scopes = [str(s) for s in Scope if s in operation.scopes]
            assert described["x-scopes"] == scopes, operation.label
            # OpenAPI 3.1's own place: the roles of the security requirement, which tools show beside the key.
            assert described["security"] == [{"HTTPBearer": scopes}], operation.label
        for operation in OPEN:
            described = document["paths"].get(operation.path, {}).get(operation.method.lower(), {})
            assert "x-scopes" not in described, operation.label
