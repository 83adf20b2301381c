"""Every route, generated from the app's own routes, against a list of hostile inputs: never a 500.

A new route is covered the day it is added. The key is an admin key with a rate of its own high enough that
no answer here is a 429 standing in for the route's real one.
"""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.auth.principal import Scope
from tests.builders import enrol, make_key
from tests.conftest import UNLIMITED, bearer
from tests.points.helpers import earn, set_program

DEEP = "[" * 5_000 + "]" * 5_000
HOSTILE_BODIES: dict[str, bytes] = {
    "null": b"null",
    "a string": b'"x"',
    "a list": b"[]",
    "a number": b"1e400",
    "an integer of 5,000 digits": b"1" * 5_000,
    "nested 5,000 deep": DEEP.encode(),
    "nested 5,000 deep inside an object": b'{"a":"\\u0000","b":' + DEEP.encode() + b"}",
    "duplicate keys": b'{"points": 1, "points": 1000, "order_ref": "x", "order_ref": "y"}',
    "NUL in a value": b'{"name": "a\\u0000", "order_ref": "\\u0000", "code": "\\u0000", "url": "\\u0000"}',
    "NUL in a key": b'{"a\\u0000": 1}',
    "lone surrogate": b'{"name": "\\ud800", "order_ref": "\\udfff", "code": "\\ud800", "reason": "\\ud800"}',
    "not JSON": b"{",
    "not UTF-8": b"\xff\xfe\x00",
    "empty": b"",
    "huge numbers in every usual field": json.dumps(
        {
            "points": 2**70,
            "amount": {"amount": 2**70, "currency": "CNY"},
            "ttl_seconds": 2**70,
            "order_ref": "H1",
            "stock": 2**70,
            "price": {"amount": -(2**70), "currency": "CNY"},
            "rank": 2**70,
            "threshold": 2**70,
            "limit": 2**70,
        }
    ).encode(),
    "floats": b'{"points": 1.5, "order_ref": "F", "amount": {"amount": 1.5, "currency": "X"}}',
    "wrong types everywhere": b'{"points": "1", "order_ref": 1, "amount": [], "items": {}, "name": {}}',
}
HOSTILE_PATH_VALUES = ["%00", "x" * 2_000, "..%2F..", "%F0%9F%98%80", "-1", "99999999999999999999999999"]
HOSTILE_QUERY = "limit=99999999999999999999&cursor=%00&tier=%ff&phone=%00&member_number=%ud800"


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation the app documents (the OpenAPI document is generated from its routes), and GraphQL."""
    found = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith("/v1")
    ]
    return [*found, ("POST", "/graphql")]


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


@pytest.fixture
async def master_key(app: FastAPI) -> str:
    return await make_key(app, Scope.admin, rate_limit=UNLIMITED)


@pytest.fixture
async def member_id(app: FastAPI, client: httpx.AsyncClient, master_key: str) -> str:
    """A real member with points, so that routes taking a member id get past their look-up."""
    await set_program(client, master_key)
    member = await enrol(client, master_key)
    await earn(client, master_key, member["id"], 10_000)
    return str(member["id"])


def _assert_answered(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", what
        assert response.json()["code"], what


async def test_hostile_bodies_on_every_route_are_never_a_500(
    app: FastAPI, client: httpx.AsyncClient, master_key: str, member_id: str
) -> None:
    routes = _routes(app)
    assert len(routes) > 50  # the routes really were found
    headers = {**bearer(master_key), "Content-Type": "application/json"}
    for method, path in routes:
        if method in ("GET", "HEAD"):
            continue
        url = _fill(path, member_id)
        for name, body in HOSTILE_BODIES.items():
            response = await client.request(method, url, content=body, headers=headers)
            _assert_answered(response, f"{method} {path} with {name}")


async def test_hostile_path_and_query_values_on_every_route_are_never_a_500(
    app: FastAPI, client: httpx.AsyncClient, master_key: str, member_id: str
) -> None:
    headers = {**bearer(master_key), "Content-Type": "application/json"}
    for method, path in _routes(app):
        values = [str(uuid.uuid4())] + (HOSTILE_PATH_VALUES if "{" in path else [])
        for value in values:
            url = f"{_fill(path, value)}?{HOSTILE_QUERY}"
            body = None if method in ("GET", "HEAD") else b"{}"
            response = await client.request(method, url, content=body, headers=headers)
            _assert_answered(response, f"{method} {url[:120]}")
