"""The exchange itself as the OpenAPI document describes it: methods, media types, strict JSON types, the
Idempotency-Key header and the problem schema."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.app import openapi_document
from tests.builders import add_tier, enrol
from tests.checkout.helpers import cart, item, quote_reply
from tests.conftest import bearer
from tests.inspect_db import table_counts
from tests.points.helpers import cny, earn, set_program


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
        [("grace_days", False), ("grace_days", "30"), ("grace_days", 30.5), ("rank", True)],
    )
    async def test_a_number_field_refuses_booleans_strings_and_fractions(
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

    @pytest.mark.parametrize("written", [0, "1773651600", "20260316"])
    async def test_an_instant_refuses_a_number_or_digits(
        self, client: httpx.AsyncClient, admin_key: str, written: int | str
    ) -> None:
        """Pydantic reads digits as a Unix time even in a strict body: "20260316" would be 23 August 1970."""
        body = {
            "name": "保温杯",
            "cost_points": 2000,
            "coupon": {"kind": "free_item", "sku": "THERMOS-01"},
            "valid_from": written,
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

    @pytest.mark.parametrize("name", ["\u202eanil", "Li \u202dNa\u202c", "\u2067李娜\u2069", "李\u202a娜"])
    async def test_names_refuse_bidirectional_controls(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, name: str
    ) -> None:
        # A back-office screen would show the text reordered: "\u202eanil" reads "lina".
        response = await client.post(
            "/v1/members", json={"phone": "13912345678", "name": name}, headers=bearer(pos_key)
        )
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {
                "field": "name",
                "location": "body",
                "message": "must not contain bidirectional controls (U+202A-U+202E, U+2066-U+2069)",
                "type": "string_bidi",
            }
        ]
        assert await table_counts(app, "members") == {"members": 0}

    @pytest.mark.parametrize("reason", [" ", "   ", "\u3000", "\u00a0\u200b"])
    async def test_a_blank_adjustment_reason_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, reason: str
    ) -> None:
        member = await enrol(client, admin_key)
        response = await client.post(
            f"/v1/members/{member['id']}/adjustments",
            json={"points": 100, "reason": reason},
            headers=bearer(admin_key),
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [("reason", "string_blank")]
        assert await table_counts(app, "ledger_entries") == {"ledger_entries": 0}

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/v1/benefits", {"name": "  ", "kind": "percent_discount", "properties": {"percent": "10"}}),
            (
                "/v1/rewards",
                {
                    "name": "\u3000",
                    "cost_points": 2000,
                    "coupon": {"kind": "free_item", "sku": "THERMOS-01"},
                    "description": "  ",
                },
            ),
            ("/v1/api-keys", {"name": "\u200b", "scopes": ["pos"]}),
        ],
    )
    async def test_other_required_texts_refuse_blanks(
        self, client: httpx.AsyncClient, admin_key: str, path: str, body: dict[str, Any]
    ) -> None:
        # A reward's description may be left out, but one sent is read on the menu: not blank either.
        response = await client.post(path, json=body, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        # (a benefit's fields are named under its kind: `percent_discount.name`)
        assert [(e["field"].rsplit(".", 1)[-1], e["type"]) for e in response.json()["errors"]] == [
            (field, "string_blank") for field in body if field in ("name", "description")
        ]

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
        response = await client.post("/v1/orders/T-1/refund", json={"full": False}, headers=bearer(pos_key))
        assert response.status_code == 422
        assert [e["message"] for e in response.json()["errors"]] == [
            "must be true when given: leave it out to refund by amount or by points"
        ]


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


class TestAnswerHeaders:
    """The headers a client acts on (those CORS lets a script read) are documented on the answers that
    carry them: X-Request-ID on every answer, Retry-After and the RateLimit pair on a 429, Retry-After on a
    503, Idempotent-Replayed on a replay."""

    @staticmethod
    def _documented(document: dict[str, Any], method: str, path: str, status: int) -> set[str]:
        response = document["paths"][path][method]["responses"][str(status)]
        headers = response.get("headers", {})
        components = document["components"].get("headers", {})
        return {
            name.lower()
            for name, header in headers.items()
            if components.get(header.get("$ref", "").rsplit("/", 1)[-1], header).get("required")
            or name == "Idempotent-Replayed"
        }

    @staticmethod
    def _carried(response: httpx.Response) -> set[str]:
        from loyalty_api.http.middleware import CORS_EXPOSED_HEADERS

        told = {name.lower() for name in CORS_EXPOSED_HEADERS} - {"allow"}
        return told & set(response.headers.keys())

    async def test_a_429_and_a_replay(
        self, app: FastAPI, client: httpx.AsyncClient, document: dict[str, Any]
    ) -> None:
        from loyalty_api.auth.principal import Scope
        from tests.builders import make_key

        key = await make_key(app, Scope.pos, rate_limit="2/minute")
        body = {"phone": "13912345678", "name": "李娜"}
        first = await client.post("/v1/members", json=body, headers=bearer(key, idempotency_key="k-1"))
        again = await client.post("/v1/members", json=body, headers=bearer(key, idempotency_key="k-1"))
        refused = await client.post("/v1/members", json=body, headers=bearer(key, idempotency_key="k-2"))
        assert (first.status_code, again.status_code, refused.status_code) == (201, 201, 429)
        assert self._carried(again) == {"x-request-id", "idempotent-replayed"}
        assert self._carried(refused) == {"x-request-id", "retry-after", "ratelimit", "ratelimit-policy"}
        for response in (again, refused):
            documented = self._documented(document, "post", "/v1/members", response.status_code)
            assert documented == self._carried(response), response.status_code
        # A refusal is replayed too.
        redeem = f"/v1/members/{first.json()['id']}/redeem"
        till = await make_key(app, Scope.pos)
        spend = {"points": 100, "order_ref": "R-1"}
        await client.post(redeem, json=spend, headers=bearer(till, idempotency_key="r-1"))
        replayed = await client.post(redeem, json=spend, headers=bearer(till, idempotency_key="r-1"))
        assert (replayed.status_code, replayed.json()["code"]) == (422, "insufficient_points")
        assert self._carried(replayed) == {"x-request-id", "idempotent-replayed"}
        assert self._documented(document, "post", "/v1/members/{member_id}/redeem", 422) == {
            "x-request-id",
            "idempotent-replayed",
        }

    def test_every_operation_documents_them(self, document: dict[str, Any]) -> None:
        for path, operations in document["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for method, operation in operations.items():
                responses = operation["responses"]
                assert self._documented(document, method, path, 429) == {
                    "x-request-id",
                    "retry-after",
                    "ratelimit",
                    "ratelimit-policy",
                }, (method, path)
                assert self._documented(document, method, path, 503) == {"x-request-id", "retry-after"}, (
                    method,
                    path,
                )
                replays = any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
                for status in (s for s in responses if s not in ("429", "503")):
                    documented = self._documented(document, method, path, int(status))
                    replayed = replays and status.startswith(("2", "4"))
                    expected = {"x-request-id"} | ({"idempotent-replayed"} if replayed else set())
                    assert documented == expected, (method, path, status)


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

    def test_a_reply_requires_every_field_it_always_writes(self, document: dict[str, Any]) -> None:
        """A field a reply always writes is `required`, else generated clients type it as possibly absent
        (`field?: number`, `Unset | int`). Schemas requests take too keep their defaults optional."""
        requests, replies = _requests_and_replies(document)
        reply_only = _closure(document, _named(replies)) - _closure(document, _named(requests))
        # Left out of a reply when there is nothing to say: a problem's `instance` and `errors`.
        sometimes_absent = {"Problem": {"instance", "errors"}, "FieldError": {"location"}}
        optional = {
            name: sorted(set(schema.get("properties", {})) - set(schema.get("required", [])))
            for name, schema in document["components"]["schemas"].items()
            if name in reply_only
        }
        assert {
            name: fields
            for name, fields in optional.items()
            if set(fields) - sometimes_absent.get(name, set())
        } == {}

    @pytest.mark.parametrize(
        ("systems", "status"),
        [
            (["crm"], 201),
            (["CRM"], 422),
            ([" crm"], 422),
            ([f"pos{n}" for n in range(20)], 201),
            ([f"pos{n}" for n in range(21)], 422),
        ],
    )
    async def test_external_ids_say_which_systems_and_how_many_are_taken(
        self,
        client: httpx.AsyncClient,
        pos_key: str,
        document: dict[str, Any],
        systems: list[str],
        status: int,
    ) -> None:
        """A system name is a key of `external_ids`: the document says its pattern (`propertyNames`) and how
        many there may be, which `patternProperties` alone did not (it admits any other key)."""
        schemas = document["components"]["schemas"]
        for model in ("MemberCreate", "ImportedMember", "MemberUpdate"):
            described = schemas[model]["properties"]["external_ids"]
            [systems_map] = [s for s in described.get("anyOf", [described]) if s.get("type") == "object"]
            assert "patternProperties" not in systems_map, model
            admitted = len(systems) <= systems_map["maxProperties"] and all(
                re.search(systems_map["propertyNames"]["pattern"], system) for system in systems
            )
            assert admitted == (status == 201), model
        body = {"name": "李娜", "external_ids": {system: "C-1001" for system in systems}}
        response = await client.post("/v1/members", json=body, headers=bearer(pos_key))
        assert response.status_code == status, response.text

    async def test_a_quotes_coupon_codes_say_they_are_distinct(
        self, client: httpx.AsyncClient, pos_key: str, document: dict[str, Any]
    ) -> None:
        described = document["components"]["schemas"]["QuoteRequest"]["properties"]["coupon_codes"]
        assert described.get("uniqueItems") is True
        member = await enrol(client, pos_key)
        body = {"member_id": member["id"], "cart": cart(item("CUP", 1000)), "coupon_codes": ["A-1", "A-1"]}
        response = await quote_reply(client, pos_key, body)
        assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text
        assert [e["field"] for e in response.json()["errors"]] == ["coupon_codes"]

    def test_a_refund_names_exactly_one_way(self, document: dict[str, Any]) -> None:
        refund = document["components"]["schemas"]["RefundRequest"]
        assert (refund["minProperties"], refund["maxProperties"]) == (1, 1)
        assert refund["properties"]["full"]["const"] is True


def _written(body: dict[str, Any], **numbers: str) -> str:
    """`body` as JSON text, each of `numbers` (a top-level field) written as the text given."""
    text = json.dumps({**body, **{name: f"@{name}@" for name in numbers}})
    for name, number in numbers.items():
        text = text.replace(f'"@{name}@"', number)
    return text


JSON_TEXT = {"Content-Type": "application/json"}


class TestWholeNumbers:
    """JSON Schema's `integer` is a value, whatever its spelling: 1.0 and 1e3 are integers, which a client
    obeying the document may send. The document's bounds apply to that exact integer."""

    @pytest.fixture
    def threshold(self, document: dict[str, Any]) -> dict[str, Any]:
        described: dict[str, Any] = document["components"]["schemas"]["TierWrite"]["properties"]["threshold"]
        assert described["type"] == "integer"
        return described

    @staticmethod
    def _tier_body(tier: dict[str, Any]) -> dict[str, Any]:
        keys = ("name", "rank", "metric", "window", "threshold", "points_multiplier", "grace_days")
        return {key: tier[key] for key in keys} | {"benefit_ids": []}

    async def test_an_integer_written_with_a_fraction_or_an_exponent_is_that_integer(
        self, client: httpx.AsyncClient, admin_key: str, threshold: dict[str, Any]
    ) -> None:
        most = int(threshold["maximum"])
        tier = await add_tier(client, admin_key, "silver", rank=1)
        body = _written(
            self._tier_body(tier), threshold=format(Decimal(most), "E"), grace_days="30.0", rank="2.5e1"
        )
        response = await client.put("/v1/tiers/silver", content=body, headers=bearer(admin_key) | JSON_TEXT)
        assert response.status_code == 200, response.text
        replaced = response.json()
        assert (replaced["threshold"], replaced["grace_days"], replaced["rank"]) == (most, 30, 25)
        assert all(type(replaced[key]) is int for key in ("threshold", "grace_days", "rank"))

    @pytest.mark.parametrize(
        ("beyond", "kind"),
        [
            # past the document's maximum, as an integer
            (lambda most: f"{most + 1}.0", "less_than_equal"),
            (lambda most: "0.5", "int_type"),
            (lambda most: f'"{most}"', "int_type"),
            # not an integer, but a float would round it to the maximum itself; an exponent past what a
            # Decimal holds, or a float reads as infinite: refused by the input guard as a number it does not
            # read as written, whatever the field
            (lambda most: f"{most - 1}.99999999", "number_not_exact"),
            (lambda most: "1e9999999999999999999", "number_not_exact"),
            (lambda most: "1e-9999999999999999999", "number_not_exact"),
            (lambda most: "1e400", "number_not_exact"),
        ],
    )
    async def test_a_number_the_document_does_not_admit_is_refused_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        threshold: dict[str, Any],
        beyond: Any,
        kind: str,
    ) -> None:
        tier = await add_tier(client, admin_key, "silver", rank=1, threshold=500)
        body = _written(self._tier_body(tier), threshold=beyond(int(threshold["maximum"])))
        response = await client.put("/v1/tiers/silver", content=body, headers=bearer(admin_key) | JSON_TEXT)
        assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text
        assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [("threshold", kind)]
        unchanged = await client.get("/v1/tiers/silver", headers=bearer(admin_key))
        assert unchanged.json()["threshold"] == 500

    async def test_money_and_quantities_in_a_nested_body_too(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        item = '{"sku": "A-1", "quantity": 2.0, "unit_price": {"amount": 6.495e3, "currency": "CNY"}}'
        body = (
            f'{{"order_ref": "T-1", "amount": {{"amount": 12990.0, "currency": "CNY"}}, "items": [{item}]}}'
        )
        response = await client.post(
            f"/v1/members/{member['id']}/earn", content=body, headers=bearer(pos_key) | JSON_TEXT
        )
        assert response.status_code == 200, response.text
        assert response.json()["points_earned"] == 129  # as for 12990 (tests/points: one point a yuan)


class TestMoneyMoreThanZero:
    """Where the service takes only an amount above zero (what was paid, refunded, an order's total), the
    document says so: `exclusiveMinimum`, not MoneyBody's `minimum` of 0."""

    def test_the_document_says_where_zero_is_refused(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]
        assert schemas["MoneyBody"]["properties"]["amount"]["minimum"] == 0
        positive = schemas["PositiveMoneyBody"]["properties"]["amount"]
        assert positive["exclusiveMinimum"] == 0 and "minimum" not in positive
        for model, field in (
            ("EarnRequest", "amount"),
            ("CaptureRequest", "order_total"),
            ("RefundRequest", "amount"),
            ("PartnerRefundRequest", "amount"),
        ):
            assert "#/components/schemas/PositiveMoneyBody" in json.dumps(
                schemas[model]["properties"][field]
            ), (model, field)

    async def test_the_least_the_document_admits_is_taken_and_its_bound_refused(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, document: dict[str, Any]
    ) -> None:
        bound = int(
            document["components"]["schemas"]["PositiveMoneyBody"]["properties"]["amount"]["exclusiveMinimum"]
        )
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        earn = f"/v1/members/{member['id']}/earn"
        refused = await client.post(
            earn, json={"order_ref": "T-1", "amount": cny(bound)}, headers=bearer(pos_key)
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), refused.text
        assert [(e["field"], e["type"]) for e in refused.json()["errors"]] == [
            ("amount.amount", "greater_than")
        ]
        assert await table_counts(app, "orders") == {"orders": 0}
        taken = await client.post(
            earn, json={"order_ref": "T-1", "amount": cny(bound + 1)}, headers=bearer(pos_key)
        )
        assert taken.status_code == 200, taken.text
        refund = await client.post(
            "/v1/orders/T-1/refund", json={"amount": cny(bound)}, headers=bearer(pos_key)
        )
        assert [(e["field"], e["type"]) for e in refund.json()["errors"]] == [
            ("amount.amount", "greater_than")
        ]


class TestInstantsInRange:
    """JSON Schema's `date-time` has no bounds: an instant's schema says in words which the service takes."""

    @pytest.fixture
    def bounds(self, document: dict[str, Any]) -> tuple[datetime, datetime]:
        described = document["components"]["schemas"]["Replay"]["properties"]["since"]
        assert described["format"] == "date-time"
        found = re.search(r"From (\S+) up to, not including, (\S+) ", described["description"])
        assert found is not None, described
        return datetime.fromisoformat(found[1]), datetime.fromisoformat(found[2])

    def test_every_instant_a_request_takes_says_its_range(self, document: dict[str, Any]) -> None:
        said = 0
        for schema in _request_schemas(document):
            if schema.get("format") == "date-time":
                assert "up to, not including," in schema.get("description", ""), schema
                said += 1
        assert said > 20

    async def test_the_range_said_is_the_range_taken(
        self, client: httpx.AsyncClient, admin_key: str, bounds: tuple[datetime, datetime]
    ) -> None:
        earliest, latest = bounds
        tick = timedelta(microseconds=1)
        for since, status in ((earliest, 200), (earliest - tick, 422), (latest - tick, 200), (latest, 422)):
            response = await client.get(
                "/v1/audit-events", params={"since": since.isoformat()}, headers=bearer(admin_key)
            )
            assert response.status_code == status, (since, response.text)
        await set_program(client, admin_key)
        reward = {"name": "券", "cost_points": 100, "coupon": {"kind": "fixed_discount", "amount": 1000}}
        for until, status in ((latest - tick, 201), (latest, 422)):
            response = await client.post(
                "/v1/rewards", json=reward | {"valid_until": until.isoformat()}, headers=bearer(admin_key)
            )
            assert response.status_code == status, (until, response.text)


# Instants that are not RFC 3339 date-times with seconds and a zone, which pydantic's parser took (all but
# 24:00, which it refused already): the service refuses each, wherever an instant is taken.
NOT_RFC_3339 = [
    pytest.param("2026-12-06T10:00:00+0100", id="offset-without-colon"),
    pytest.param("2026-12-06T10:00Z", id="no-seconds"),
    pytest.param("2026-12-06T24:00:00Z", id="hour-24"),
    pytest.param("2026-12-06T10:00:00,5Z", id="decimal-comma"),
]
# RFC 3339 date-times (the RFC lets `t` and `z` be lower case), each with the UTC form a reply writes.
RFC_3339 = [
    pytest.param("2026-12-06T10:00:00Z", "2026-12-06T10:00:00Z", id="Z"),
    pytest.param("2026-12-06T11:00:00+01:00", "2026-12-06T10:00:00Z", id="plus-01:00"),
    pytest.param("2026-12-06T10:00:00.123+01:00", "2026-12-06T09:00:00.123000Z", id="fraction-and-offset"),
    pytest.param("2026-12-06T04:30:00.5-05:30", "2026-12-06T10:00:00.500000Z", id="fraction-minus-05:30"),
    pytest.param("2026-12-06t10:00:00z", "2026-12-06T10:00:00Z", id="lower-case-t-z"),
    # RFC 3339 lets a space stand for `T` (its note to 5.6): Python's str() of a datetime, which httpx and
    # requests write for a datetime in a query string.
    pytest.param("2026-12-06 11:00:00+01:00", "2026-12-06T10:00:00Z", id="space-for-T"),
]


class TestInstantsInRFC3339Form:
    """Every instant a request takes is an RFC 3339 date-time with seconds and a zone (`Z` or `±HH:MM`): in a
    body, in a query string, and (tests/graphql/test_instants.py) in GraphQL. Pydantic's own parser also took
    `+0100`, `10:00Z` and `,5`."""

    @pytest.mark.parametrize(
        "written",
        # A space for the offset's `+` is taken in a query string only: JSON is not form-decoded.
        [*NOT_RFC_3339, pytest.param("2026-12-06T18:00:00 08:00", id="space-for-plus")],
    )
    async def test_a_body_refuses_another_form_and_creates_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, written: str
    ) -> None:
        await set_program(client, admin_key)
        reward = {"name": "券", "cost_points": 100, "coupon": {"kind": "fixed_discount", "amount": 1000}}
        response = await client.post(
            "/v1/rewards", json=reward | {"valid_until": written}, headers=bearer(admin_key)
        )
        assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text
        assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [
            ("valid_until", "datetime_parsing")
        ]
        assert await table_counts(app, "rewards") == {"rewards": 0}

    @pytest.mark.parametrize(("written", "stored"), RFC_3339)
    async def test_a_body_takes_rfc_3339_and_answers_in_utc(
        self, client: httpx.AsyncClient, admin_key: str, written: str, stored: str
    ) -> None:
        await set_program(client, admin_key)
        reward = {"name": "券", "cost_points": 100, "coupon": {"kind": "fixed_discount", "amount": 1000}}
        response = await client.post(
            "/v1/rewards", json=reward | {"valid_until": written}, headers=bearer(admin_key)
        )
        assert response.status_code == 201, response.text
        assert response.json()["valid_until"] == stored
        listed = await client.get("/v1/rewards", headers=bearer(admin_key))
        assert [r["valid_until"] for r in listed.json()["items"]] == [stored]

    @pytest.mark.parametrize("written", NOT_RFC_3339)
    async def test_a_query_string_refuses_another_form_naming_the_parameter(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, written: str
    ) -> None:
        member = await enrol(client, pos_key)
        ledger = await client.get(
            f"/v1/members/{member['id']}/ledger", params={"since": written}, headers=bearer(pos_key)
        )
        assert (ledger.status_code, ledger.json()["code"]) == (422, "validation_error"), ledger.text
        assert [(e["field"], e["type"]) for e in ledger.json()["errors"]] == [("since", "datetime_parsing")]
        # A time range whose parameter has another name in Python (`from`)
        overview = await client.get(
            "/v1/analytics/overview",
            params={"from": written, "to": "2026-12-07T00:00:00Z"},
            headers=bearer(admin_key),
        )
        assert (overview.status_code, overview.json()["code"]) == (422, "validation_error"), overview.text
        assert [e["field"] for e in overview.json()["errors"]] == ["from"]

    async def test_a_query_string_takes_rfc_3339_to_the_microsecond(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 10_000)  # at 2026-03-16T10:00:00Z, the frozen clock's now
        url = f"/v1/members/{member['id']}/ledger"
        for since, earns in (
            ("2026-03-16T10:00:00Z", 1),
            ("2026-03-16T11:00:00+01:00", 1),
            ("2026-03-16T09:59:59.999999Z", 1),
            ("2026-03-16T11:00:00.000001+01:00", 0),
            ("2026-03-16t10:00:00.000001z", 0),
            (datetime(2026, 3, 16, 10, tzinfo=UTC), 1),  # httpx writes `2026-03-16+10%3A00%3A00%2B00%3A00`
        ):
            response = await client.get(url, params={"since": since, "type": "earn"}, headers=bearer(pos_key))
            assert response.status_code == 200, (since, response.text)
            assert len(response.json()["items"]) == earns, since

    async def test_a_query_string_reads_a_space_before_the_offset_as_an_unencoded_plus(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """A client that writes `+08:00` into a URL without percent-encoding it sends a space (form decoding
        reads `+` as one); before the HH:MM that ends a date-time that space can only have been `+`."""
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 10_000)  # at 2026-03-16T10:00:00Z, the frozen clock's now
        url = f"/v1/members/{member['id']}/ledger"
        for since, earns in (
            ("2026-03-16T18:00:00+08:00", 1),
            ("2026-03-16T18:00:00.000001+08:00", 0),
            ("2026-03-16+18:00:00+08:00", 1),  # a space for `T` as well, both unencoded
            ("2026-03-16%2018:00:00.000001+08:00", 0),
        ):
            # The URL written by hand: httpx's params would percent-encode the `+`.
            response = await client.get(f"{url}?type=earn&since={since}", headers=bearer(pos_key))
            assert response.status_code == 200, (since, response.text)
            assert len(response.json()["items"]) == earns, since
        overview = await client.get(
            "/v1/analytics/overview?from=2026-03-16T08:00:00+08:00&to=2026-03-17T08:00:00+08:00",
            headers=bearer(admin_key),
        )
        assert overview.status_code == 200, overview.text

    @pytest.mark.parametrize(
        "written",
        [
            pytest.param("2026-03-16T18:00:00 0800", id="no-colon"),
            pytest.param("2026-03-16T18:00 08:00", id="no-seconds"),
            pytest.param("2026-03-16T18:00:00  08:00", id="two-spaces"),
            pytest.param("2026-03-16T18:00:00 08:00:00", id="offset-with-seconds"),
        ],
    )
    async def test_a_query_string_reads_only_that_space_as_a_plus(
        self, client: httpx.AsyncClient, pos_key: str, written: str
    ) -> None:
        member = await enrol(client, pos_key)
        ledger = await client.get(
            f"/v1/members/{member['id']}/ledger", params={"since": written}, headers=bearer(pos_key)
        )
        assert (ledger.status_code, ledger.json()["code"]) == (422, "validation_error"), ledger.text
        assert [(e["field"], e["type"]) for e in ledger.json()["errors"]] == [("since", "datetime_parsing")]

    def test_every_instant_a_request_takes_says_its_form_in_words_not_as_a_pattern(
        self, document: dict[str, Any]
    ) -> None:
        """A `pattern` beside `format: date-time` breaks generated clients: openapi-generator's C# models
        match it against a DateTime (they do not compile), its Java `@Pattern` on an OffsetDateTime fails when
        validated."""
        instants = [schema for schema in _request_schemas(document) if schema.get("format") == "date-time"]
        assert instants
        assert [schema["pattern"] for schema in instants if "pattern" in schema] == []
        form = "RFC 3339, with seconds and a zone (`Z` or `±HH:MM`)."
        assert [schema for schema in instants if form not in schema.get("description", "")] == []


class TestPlainText:
    """The input guard refuses control characters in every string of a request: the strings a request takes
    say so (a pattern, a format, or a list of values), so that a client obeying the document sends none."""

    def test_no_string_a_request_takes_admits_a_control_character(self, document: dict[str, Any]) -> None:
        checked = 0
        for schema in _request_schemas(document):
            if schema.get("type") != "string" or "format" in schema or "enum" in schema or "const" in schema:
                continue
            assert "pattern" in schema, schema
            for control in ("\x00", "\x07", "\t", "\n", "\x7f", "\x85", "\u202e", "\u2066"):
                assert re.search(schema["pattern"], f"a{control}b") is None, (schema, control)
            checked += 1
        assert checked > 100

    @pytest.mark.parametrize(
        ("name", "status"),
        [
            ("李娜", 201),
            (" 李娜 ", 201),
            ("\u200f李娜", 201),
            ("李\t娜", 422),
            ("李\x85娜", 422),
            ("\u202e李娜", 422),
            ("李\u2069娜", 422),
            ("   ", 422),
            ("\u3000\u200b", 422),
        ],
    )
    async def test_what_the_pattern_admits_is_taken(
        self, client: httpx.AsyncClient, pos_key: str, document: dict[str, Any], name: str, status: int
    ) -> None:
        [text] = [
            branch
            for branch in document["components"]["schemas"]["MemberCreate"]["properties"]["name"]["anyOf"]
            if branch.get("type") == "string"
        ]
        assert (re.search(text["pattern"], name) is not None) == (status == 201)
        response = await client.post(
            "/v1/members", json={"phone": None, "name": name}, headers=bearer(pos_key)
        )
        assert response.status_code == status, response.text


def _named(node: Any) -> set[str]:
    """The component schemas `node` refers to itself."""
    return {
        found["$ref"].rsplit("/", 1)[1]
        for found in _walk(node)
        if isinstance(found.get("$ref"), str) and found["$ref"].startswith("#/components/schemas/")
    }


def _closure(document: dict[str, Any], names: set[str]) -> set[str]:
    """`names` and every component schema they refer to, down through references."""
    components = document["components"]["schemas"]
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in components and name not in seen:
            seen.add(name)
            pending.extend(_named(components[name]))
    return seen


def _requests_and_replies(document: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """What /v1 requests take (bodies and query strings) and what every operation answers."""
    requests: list[Any] = []
    replies: list[Any] = []
    for path, operations in document["paths"].items():
        for operation in operations.values():
            replies.append(operation["responses"])
            if path.startswith("/v1/"):
                requests.append(operation.get("requestBody", {}).get("content", {}))
                requests.extend(p["schema"] for p in operation.get("parameters", []) if p["in"] == "query")
    return requests, replies


def _request_schemas(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every schema a /v1 request (its body or query string) alone takes, down through references; not those
    replies use too, which say nothing of what a request may send."""
    components = document["components"]["schemas"]
    requests, replies = _requests_and_replies(document)
    alone = _closure(document, _named(requests)) - _closure(document, _named(replies))
    inline = [_without_examples(node) for node in requests]
    return [s for node in [*inline, *(components[name] for name in alone)] for s in _subschemas(node)]


def _without_examples(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _without_examples(v) for k, v in node.items() if k not in ("examples", "example", "default")
        }
    return node


def _subschemas(node: Any) -> list[dict[str, Any]]:
    """`node` and the schemas within it, but not through references (nor into examples or defaults)."""
    found: list[dict[str, Any]] = []
    pending = [node]
    while pending:
        schema = pending.pop()
        if not isinstance(schema, dict) or "$ref" in schema:
            continue
        found.append(schema)
        for key in ("properties", "patternProperties"):
            pending.extend(schema.get(key, {}).values())
        for key in ("items", "additionalProperties", "not", "schema"):
            pending.append(schema.get(key))
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            pending.extend(schema.get(key, []))
        pending.extend(value for key, value in schema.items() if key.startswith("application/"))
    return found
