"""GraphQL's `DateTime` reads an instant as REST does: an RFC 3339 date-time with seconds and a zone (`Z` or
`±HH:MM`). A variable in another form does not fit its type (`BAD_USER_INPUT`, nothing done); an instant
without a zone has the form and is refused by its field, as REST refuses it (`validation_error` naming it)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.builders import enrol
from tests.conftest import bearer
from tests.graphql.helpers import USER_ERRORS, graphql
from tests.inspect_db import table_counts

NOT_RFC_3339 = [
    pytest.param("2026-03-16T09:00:00+0100", id="offset-without-colon"),
    pytest.param("2026-03-16T09:00Z", id="no-seconds"),
    pytest.param("2026-03-15T24:00:00Z", id="hour-24"),
    pytest.param("2026-03-16T09:00:00,5Z", id="decimal-comma"),
]

REASON = "must be RFC 3339 with seconds and a zone"

EARN = (
    "mutation($input: EarnPointsInput!) { loyaltyEarnPoints(input: $input) "
    f"{{ earned {{ orderRef pointsEarned balance }} {USER_ERRORS} }} }}"
)
LEDGER = (
    "query($id: ID!, $since: DateTime, $until: DateTime) { loyaltyMember(id: $id) "
    "{ ledger(first: 10, since: $since, until: $until) { edges { node { type orderRef } } } } }"
)


def _earn_input(member_id: str, order_ref: str, occurred_at: str) -> dict[str, Any]:
    return {
        "memberId": member_id,
        "orderRef": order_ref,
        "amount": {"amount": 10_000, "currency": "CNY"},
        "occurredAt": occurred_at,
    }


async def _earn_refs(client: httpx.AsyncClient, key: str, member_id: str, **bounds: str) -> list[str]:
    body = await graphql(client, key, LEDGER, id=member_id, **bounds)
    assert "errors" not in body, body["errors"]
    edges = body["data"]["loyaltyMember"]["ledger"]["edges"]
    return [edge["node"]["orderRef"] for edge in edges if edge["node"]["type"] == "earn"]


class TestAnInputsInstant:
    @pytest.mark.parametrize("written", NOT_RFC_3339)
    async def test_another_form_is_bad_user_input_and_earns_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, written: str
    ) -> None:
        member = await enrol(client, pos_key)
        body = await graphql(client, pos_key, EARN, input=_earn_input(member["id"], "G-1", written))
        assert body.get("data") is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
        # The message names the field and says why (graphql-core: "Variable '$input' has invalid value at
        # .occurredAt: Expected value of type 'DateTime', but encountered error '…'; found: '…'").
        message = body["errors"][0]["message"]
        assert "$input" in message and ".occurredAt" in message, message
        assert REASON in message, message
        points = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
        assert points.json()["balance"] == 0
        assert await table_counts(app, "orders") == {"orders": 0}

    async def test_no_zone_is_refused_by_the_field(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        body = await graphql(
            client, pos_key, EARN, input=_earn_input(member["id"], "G-1", "2026-03-16T09:00:00")
        )
        payload = body["data"]["loyaltyEarnPoints"]
        assert payload["earned"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            ("occurredAt", "validation_error")
        ]
        assert await table_counts(app, "orders") == {"orders": 0}

    @pytest.mark.parametrize(
        ("written", "stored"),
        [
            pytest.param("2026-03-16T09:00:00Z", "2026-03-16T09:00:00Z", id="Z"),
            pytest.param("2026-03-16T10:00:00+01:00", "2026-03-16T09:00:00Z", id="plus-01:00"),
            pytest.param("2026-03-16T17:30:00.25+08:00", "2026-03-16T09:30:00.250000Z", id="fraction"),
        ],
    )
    async def test_rfc_3339_is_taken_as_rest_takes_it(
        self, client: httpx.AsyncClient, pos_key: str, written: str, stored: str
    ) -> None:
        member = await enrol(client, pos_key)
        body = await graphql(client, pos_key, EARN, input=_earn_input(member["id"], "G-1", written))
        assert "errors" not in body, body["errors"]
        payload = body["data"]["loyaltyEarnPoints"]
        assert payload["userErrors"] == [] and payload["earned"]["pointsEarned"] > 0
        ledger = await client.get(
            f"/v1/members/{member['id']}/ledger", params={"type": "earn"}, headers=bearer(pos_key)
        )
        [entry] = ledger.json()["items"]
        assert entry["details"]["occurred_at"] == stored


class TestAnArgumentsInstant:
    @pytest.mark.parametrize("written", NOT_RFC_3339)
    async def test_another_form_is_bad_user_input(
        self, client: httpx.AsyncClient, pos_key: str, written: str
    ) -> None:
        member = await enrol(client, pos_key)
        body = await graphql(client, pos_key, LEDGER, id=member["id"], since=written)
        assert body.get("data") is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
        message = body["errors"][0]["message"]
        assert "$since" in message and REASON in message, message

    async def test_another_form_written_in_the_document_is_refused_before_it_runs(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        query = (
            'query($id: ID!) { loyaltyMember(id: $id) { ledger(first: 10, since: "2026-03-16T09:00+01:00") '
            "{ edges { node { type } } } } }"
        )
        body = await graphql(client, pos_key, query, id=member["id"])
        assert body.get("data") is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"], body
        assert "DateTime" in body["errors"][0]["message"]

    async def test_rfc_3339_bounds_the_ledger_to_the_microsecond(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        body = await graphql(
            client, pos_key, EARN, input=_earn_input(member["id"], "G-1", "2026-03-16T09:00:00Z")
        )
        assert body["data"]["loyaltyEarnPoints"]["userErrors"] == []
        # The earn's entry is written at the clock's now, 2026-03-16T10:00:00Z.
        for since, refs in (
            ("2026-03-16T10:00:00Z", ["G-1"]),
            ("2026-03-16T11:00:00+01:00", ["G-1"]),
            ("2026-03-16T10:59:59.999999+01:00", ["G-1"]),
            ("2026-03-16T10:00:00.000001Z", []),
        ):
            assert await _earn_refs(client, pos_key, member["id"], since=since) == refs, since
        assert await _earn_refs(client, pos_key, member["id"], until="2026-03-16T11:00:00.000001+01:00") == [
            "G-1"
        ]
