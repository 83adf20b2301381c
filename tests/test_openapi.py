from __future__ import annotations

import json
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
        if path == "/v1/checkout/quote":  # reads only: Idempotency-Key plays no part
            assert "idempotency_key_reused" not in described
            continue
        for code in ("idempotency_key_reused", "idempotency_request_in_flight", "invalid_idempotency_key"):
            assert code in described, (path, code)


def test_docs_list_every_section_in_their_order() -> None:
    document = json.loads(openapi_document())
    used = {
        tag for operations in document["paths"].values() for op in operations.values() for tag in op["tags"]
    }
    listed = [tag["name"] for tag in document["tags"]]
    assert listed[:2] == ["operations", "members"]
    assert used == set(listed), "name the new section in loyalty_api.app.DOCS_ORDER"
