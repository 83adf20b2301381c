from __future__ import annotations

import json
import re
from pathlib import Path

from loyalty_api.app import openapi_document

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_document_matches_the_app() -> None:
    current = openapi_document()
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == json.loads(current), (
        "openapi/openapi.json is stale: run `loyalty-api openapi --output openapi/openapi.json`"
    )


def test_every_v1_operation_documents_its_problems() -> None:
    document = json.loads(openapi_document())
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "401" in responses and "422" in responses, (method, path)
            # The edge refuses an over-long query string or headers before any route runs, on every path.
            assert "`uri_too_long`" in responses["414"]["description"], (method, path)
            assert "`headers_too_large`" in responses["431"]["description"], (method, path)
            assert "application/problem+json" in responses["422"]["content"], (method, path)


def test_every_state_changing_post_documents_its_idempotency_problems() -> None:
    document = json.loads(openapi_document())
    posts = [
        (path, operations["post"])
        for path, operations in document["paths"].items()
        if path.startswith("/v1/") and "post" in operations
    ]
    assert len(posts) > 10
    for path, operation in posts:
        described = json.dumps(operation["responses"])
        # They write nothing (http.transaction.QueryRoute): Idempotency-Key plays no part.
        if path in ("/v1/checkout/quote", "/v1/members/{member_id}/qr-code"):
            assert "idempotency_key_reused" not in described
            continue
        for code in ("idempotency_key_reused", "idempotency_request_in_flight", "invalid_idempotency_key"):
            assert code in described, (path, code)


# A code as an error response's description lists it: "`insufficient_points`: <title>; `…`: …".
LISTED_CODE = re.compile(r"(?:^|; )`([a-z0-9_]+)`:")


def test_no_operation_lists_a_code_twice() -> None:
    document = json.loads(openapi_document())
    repeated: dict[str, list[str]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = [
                code
                for response in operation["responses"].values()
                for code in LISTED_CODE.findall(response.get("description", ""))
            ]
            if twice := sorted({code for code in codes if codes.count(code) > 1}):
                repeated[f"{method.upper()} {path}"] = twice
    assert repeated == {}


def test_docs_list_every_section_in_their_order() -> None:
    document = json.loads(openapi_document())
    used = {
        tag for operations in document["paths"].values() for op in operations.values() for tag in op["tags"]
    }
    listed = [tag["name"] for tag in document["tags"]]
    assert listed[:2] == ["operations", "members"]
    assert used == set(listed), "name the new section in loyalty_api.app.DOCS_ORDER"


# Codes no operation lists, each for a reason; anything else the service can answer with must be documented on
# at least one operation, so a client reading openapi.json can handle it.
UNDOCUMENTED_CODES = {
    # Bases answered only through a subclass with a code of its own (`member_not_found`, `scope_not_allowed`,
    # …) or, for 401/403, by the HTTP layer where no route matched.
    "not_found": "base class",
    "conflict": "base class",
    "forbidden": "base class",
    "unauthenticated": "base class",
    # Answered by the HTTP layer for any path, routed or not: a document of the routes cannot place them.
    "bad_request": "the body could not be read, or a GraphQL request without a query",
    "route_not_found": "no route has the path",
    "method_not_allowed": "the path's routes do not take the method",
    "not_acceptable": "the Accept header allows nothing we send",
    "http_error": "an HTTP refusal without a code of its own",
    "internal_error": "a bug: never documented as an answer",
    # Given only by the CLI (`loyalty-api keys …`, `loyalty-api init`), never over HTTP.
    "api_key_not_found": "loyalty-api keys rotate|revoke",
    "partner_required": "loyalty-api keys create",
    "partner_key_not_alone": "loyalty-api keys create",
    "program_already_set_up": "loyalty-api init",
    # Given only by GraphQL, on a field whose figure is past its Long: REST sends any whole number.
    "long_out_of_range": "GraphQL's Long fields",
}


def test_every_problem_code_is_documented_on_some_operation() -> None:
    """A code the service answers with (a LoyaltyError subclass in the package, or a classless problem) is
    named in the responses of at least one operation, unless UNDOCUMENTED_CODES says why not."""
    from loyalty_api.http.problem_catalogue import build

    document = json.loads(openapi_document())
    documented = {
        code
        for operations in document["paths"].values()
        for operation in operations.values()
        for response in operation.get("responses", {}).values()
        for code in re.findall(r"`([a-z0-9_]+)`", response.get("description", ""))
    }
    catalogue = build()
    assert UNDOCUMENTED_CODES.keys() <= catalogue.keys(), "an allowed code the service no longer has"
    missing = sorted(catalogue.keys() - documented - UNDOCUMENTED_CODES.keys())
    assert missing == [], "name these codes in the `responses=` of the routes that raise them"


def test_every_answer_with_a_body_documents_its_schema() -> None:
    """A success that carries a body (any 2xx but 204) says what it is, so generated clients can read it:
    a repeated activity's 200 is the first ActivityRead, like the 201."""
    document = json.loads(openapi_document())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if status.startswith("2") and status != "204":
                    assert response.get("content"), (method, path, status)
    activity = document["paths"]["/v1/members/{member_id}/activities"]["post"]["responses"]
    for status in ("200", "201"):
        schema = activity[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ActivityRead"}, status


INT32 = (-(2**31), 2**31 - 1)


def _integers(node: object) -> list[dict[str, object]]:
    """Every integer schema in the document, not within examples or defaults (values, not schemas)."""
    found: list[dict[str, object]] = []
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if item.get("type") == "integer":
                found.append(item)
            pending.extend(v for k, v in item.items() if k not in ("examples", "example", "default"))
        elif isinstance(item, list):
            pending.extend(item)
    return found


def test_an_integer_wider_than_32_bits_says_int64() -> None:
    """An `integer` without a format is a 32-bit int to openapi-generator's Java, C#, Go and Kotlin clients
    (and Kiota's): money in minor units and points past 2,147,483,647 (21.5 million yuan in fen, which a
    request may send and an analytics figure soon passes) would not fit. So an integer whose bounds do not
    keep it within 32 bits says `int64`, as GraphQL calls points and money `Long`."""
    document = json.loads(openapi_document())
    integers = _integers(document)
    assert len(integers) > 300
    for schema in integers:
        least = schema.get("minimum", schema.get("exclusiveMinimum"))
        most = schema.get("maximum", schema.get("exclusiveMaximum"))
        narrow = least is not None and most is not None and INT32[0] <= least and most <= INT32[1]
        assert schema.get("format") == (None if narrow else "int64"), schema
    money = document["components"]["schemas"]["MoneyRead"]["properties"]["amount"]
    assert money["format"] == "int64"
