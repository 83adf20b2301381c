"""Calling the GraphQL API from tests as a client would: a POST with a key, the JSON answer back."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer

USER_ERRORS = "userErrors { field code message }"


async def graphql(
    client: httpx.AsyncClient, api_key: str | None, query: str, **variables: Any
) -> dict[str, Any]:
    headers = bearer(api_key) if api_key else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def mutate(
    client: httpx.AsyncClient,
    api_key: str,
    mutation: str,
    fields: str,
    input: dict[str, Any],
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Run `mutation(input: $input, idempotencyKey: $key)` and answer its payload (no GraphQL errors)."""
    query = (
        f"mutation($input: {_input_type(mutation)}!, $key: String) "
        f"{{ {mutation}(input: $input, idempotencyKey: $key) {{ {fields} {USER_ERRORS} replayed }} }}"
    )
    body = await graphql(client, api_key, query, input=input, key=idempotency_key)
    assert "errors" not in body, body["errors"]
    payload: dict[str, Any] = body["data"][mutation]
    return payload


def _input_type(mutation: str) -> str:
    # loyaltyEarnPoints takes EarnPointsInput
    return mutation.removeprefix("loyalty") + "Input"
