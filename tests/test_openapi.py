from __future__ import annotations

import json
from pathlib import Path

from loyalty_api.http.openapi import openapi_document

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
