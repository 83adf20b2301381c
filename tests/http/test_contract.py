"""The exchange itself as the OpenAPI document describes it: methods, media types, strict JSON types, the
Idempotency-Key header and the problem schema."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.app import openapi_document
from tests.builders import add_tier, enrol
from tests.conftest import bearer
from tests.inspect_db import table_counts


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(openapi_document())
    return loaded


class TestMethods:
    async def test_a_method_the_path_lacks_is_405_naming_every_method_it_has(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        member = await enrol(client, admin_key)
        response = await client.delete(f"/v1/members/{member['id']}", headers=bearer(admin_key))
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["allow"] == "GET, HEAD, PATCH"
        assert response.json()["code"] == "method_not_allowed"
        assert response.json()["allowed_methods"] == ["GET", "HEAD", "PATCH"]
        # and PATCH, which Allow names, does work there
        patched = await client.patch(
            f"/v1/members/{member['id']}", json={"name": "王芳"}, headers=bearer(admin_key)
        )
        assert patched.status_code == 200, patched.text

    async def test_allow_lists_the_methods_of_every_route_on_the_path(
        self, client: httpx.AsyncClient, admin_key: str, document: dict[str, Any]
    ) -> None:
        response = await client.put("/v1/tiers", headers=bearer(admin_key))
        documented = {method.upper() for method in document["paths"]["/v1/tiers"]}
        assert "GET" in documented
        assert response.status_code == 405
        assert response.headers["allow"] == ", ".join(sorted(documented | {"HEAD"}))

    async def test_head_answers_as_get_without_the_body(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        got = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        head = await client.head(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert head.status_code == 200
        assert head.content == b""
        for header in ("content-type", "content-length", "cache-control"):
            assert head.headers[header] == got.headers[header], header
        assert head.headers["x-request-id"] != got.headers["x-request-id"]

    async def test_head_is_refused_as_get_would_be(self, client: httpx.AsyncClient, pos_key: str) -> None:
        unauthenticated = await client.head("/v1/tiers")
        assert unauthenticated.status_code == 401 and unauthenticated.content == b""
        beyond_the_scope = await client.head("/v1/members", headers=bearer(pos_key))  # an admin's list
        assert beyond_the_scope.status_code == 403 and beyond_the_scope.content == b""
        on_a_post_path = await client.head("/v1/checkout/quote", headers=bearer(pos_key))
        assert on_a_post_path.status_code == 405
        assert on_a_post_path.headers["allow"] == "POST"


class TestStrictTypes:
    @pytest.mark.parametrize(
        ("field", "value"),
        [("grace_days", False), ("grace_days", "30"), ("grace_days", 30.0), ("rank", True)],
    )
    async def test_a_number_field_refuses_booleans_strings_and_floats(
        self, client: httpx.AsyncClient, admin_key: str, field: str, value: Any
    ) -> None:
        tier = await add_tier(client, admin_key, "silver", rank=1, grace_days=30)
        body = {key: tier[key] for key in ("name", "rank", "metric", "window", "threshold", "grace_days")}
        body.update({"points_multiplier": "1", "benefit_ids": [], field: value})
        response = await client.put("/v1/tiers/silver", json=body, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == [field]
        unchanged = await client.get("/v1/tiers/silver", headers=bearer(admin_key))
        assert unchanged.json()["grace_days"] == 30

    async def test_an_instant_refuses_a_number(self, client: httpx.AsyncClient, admin_key: str) -> None:
        body = {
            "name": "保温杯",
            "cost_points": 2000,
            "coupon": {"kind": "free_item", "sku": "THERMOS-01"},
            "valid_from": 0,
        }
        response = await client.post("/v1/rewards", json=body, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["valid_from"]

    async def test_a_flag_refuses_a_number(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        body = {"name": "包邮", "kind": "free_shipping", "properties": {}, "active": 1}
        response = await client.post("/v1/benefits", json=body, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert await table_counts(app, "benefits") == {"benefits": 0}


class TestKindAndProperties:
    async def test_properties_of_another_kind_are_refused(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        body = {
            "name": "九折",
            "kind": "percent_discount",
            "properties": {"kind": "free_item", "percent": "10"},
        }
        response = await client.post("/v1/benefits", json=body, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert await table_counts(app, "benefits") == {"benefits": 0}

    async def test_kind_may_be_repeated_in_properties_or_left_out(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        for properties in ({"percent": "10"}, {"kind": "percent_discount", "percent": "10"}):
            body = {"name": "九折", "kind": "percent_discount", "properties": properties}
            response = await client.post("/v1/benefits", json=body, headers=bearer(admin_key))
            assert response.status_code == 201, response.text
            assert response.json()["properties"]["percent"] == "10"


class TestTexts:
    @pytest.mark.parametrize(
        "name", ["李\x07娜", "李\t娜", "李娜\n", "李\x7f娜", "李\x85娜", "Li\x07Na", "Li\x7fNa"]
    )
    async def test_names_refuse_control_characters(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, name: str
    ) -> None:
        response = await client.post(
            "/v1/members", json={"phone": "13912345678", "name": name}, headers=bearer(pos_key)
        )
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {
                "field": "name",
                "location": "body",
                "message": "must not contain control characters (tabs, line breaks and the like)",
                "type": "string_control",
            }
        ]
        assert await table_counts(app, "members") == {"members": 0}

    @pytest.mark.parametrize("text", ["null", "[]", '"earn"', "12850"])
    async def test_a_body_that_is_json_but_not_an_object_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, text: str
    ) -> None:
        member = await enrol(client, pos_key)
        response = await client.post(
            f"/v1/members/{member['id']}/earn",
            content=text,
            headers={**bearer(pos_key), "Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert await table_counts(app, "ledger_entries") == {"ledger_entries": 0}

    async def test_messages_carry_no_library_prefix(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key)
        body = {"order_ref": "T-1", "amount": {"amount": 0, "currency": "CNY"}}
        response = await client.post(f"/v1/members/{member['id']}/earn", json=body, headers=bearer(pos_key))
        assert response.status_code == 422
        assert [e["message"] for e in response.json()["errors"]] == ["must be more than zero"]


class TestDocument:
    def test_every_operation_that_honours_idempotency_declares_the_header(
        self, document: dict[str, Any]
    ) -> None:
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
                honours = "idempotency_key_reused" in json.dumps(operation["responses"])
                assert ("Idempotency-Key" in declared) == honours, (method, path)

    def test_problems_are_described_under_problem_json_only(self, document: dict[str, Any]) -> None:
        for path, operations in document["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for method, operation in operations.items():
                for status, response in operation["responses"].items():
                    if status.startswith(("4", "5")):
                        assert list(response["content"]) == ["application/problem+json"], (
                            method,
                            path,
                            status,
                        )
                        schema = response["content"]["application/problem+json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/Problem"}
        assert "code" in document["components"]["schemas"]["Problem"]["required"]

    def test_body_operations_list_400_and_415(self, document: dict[str, Any]) -> None:
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if "requestBody" in operation and path.startswith("/v1/"):
                    codes = json.dumps(operation["responses"])
                    assert "malformed_json" in codes and "unsupported_media_type" in codes, (method, path)

    def test_one_schema_per_model_for_requests_and_replies(self, document: dict[str, Any]) -> None:
        # openapi-python-client gives `X-Input` and `X-Output` both the class name X, and drops one
        split = [name for name in document["components"]["schemas"] if name.endswith(("-Input", "-Output"))]
        assert split == []

    def test_union_members_require_their_discriminator(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]
        checked = 0
        for schema in _walk(document):
            discriminator = schema.get("discriminator")
            if discriminator is None:
                continue
            for ref in discriminator["mapping"].values():
                member = schemas[ref.rsplit("/", 1)[1]]
                assert discriminator["propertyName"] in member["required"], ref
                checked += 1
        assert checked > 10


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            found.append(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


class TestOrder:
    async def test_a_key_without_the_scope_is_refused_before_its_body_is_judged(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        response = await client.put("/v1/program", json={}, headers=bearer(pos_key))
        assert response.status_code == 403
        assert response.json()["code"] == "scope_not_allowed"

    async def test_errors_in_a_kind_name_only_that_kind(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        body = {"name": "九折", "kind": "percent_discount", "properties": {"percent": "abc"}}
        response = await client.post("/v1/benefits", json=body, headers=bearer(admin_key))
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["percent_discount.properties.percent"]

    def test_every_operation_with_a_body_checks_its_caller_first(self) -> None:
        # The strict body check is raised by `require`: a route taking a body without it would skip the check.
        from tests.http.test_examples import WITH_BODY, _route, _scopes

        assert all(_scopes(_route(method, path)) for method, path in WITH_BODY)


class TestSchemaAsStrictAsValidation:
    def test_fields_that_cannot_be_cleared_are_not_nullable(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]
        for model, field in (
            ("MemberUpdate", "status"),
            ("MemberUpdate", "marketing_consent"),
            ("MemberUpdate", "external_ids"),
            ("WebhookEndpointUpdate", "enabled"),
            ("WebhookEndpointUpdate", "url"),
            ("RefundRequest", "points"),
        ):
            described = schemas[model]["properties"][field]
            assert {"type": "null"} not in described.get("anyOf", []), (model, field, described)
            assert described.get("type") != "null", (model, field)
            assert "default" not in described, (model, field)

    def test_a_refund_names_exactly_one_way(self, document: dict[str, Any]) -> None:
        refund = document["components"]["schemas"]["RefundRequest"]
        assert (refund["minProperties"], refund["maxProperties"]) == (1, 1)
        assert refund["properties"]["full"]["const"] is True
