"""GraphQL's `Date` (a member's birthday) reads a calendar date as REST does: `YYYY-MM-DD`, nothing else.
Strawberry's default parser (`date.fromisoformat`) also takes ISO 8601's compact and week forms, so
`"1990W011"` was stored as 1 January 1990 and `"2020-W01"` as 30 December 2019, where REST refuses both: a
variable in another form does not fit its type (`BAD_USER_INPUT`) and nothing is written."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.builders import enrol
from tests.conftest import bearer
from tests.graphql.helpers import USER_ERRORS, graphql
from tests.inspect_db import table_counts

NOT_A_CALENDAR_DATE = [
    pytest.param("19900517", id="compact"),
    pytest.param("1990-W20-4", id="week-and-day"),
    pytest.param("1990W204", id="compact-week-and-day"),
    pytest.param("1990-W20", id="week"),
]

ENROL = (
    "mutation($input: EnrolMemberInput!) { loyaltyEnrolMember(input: $input) "
    f"{{ member {{ id birthday }} {USER_ERRORS} }} }}"
)
UPDATE = (
    "mutation($input: UpdateMemberInput!) { loyaltyUpdateMember(input: $input) "
    f"{{ member {{ id birthday }} {USER_ERRORS} }} }}"
)


class TestABirthdaysForm:
    @pytest.mark.parametrize("written", NOT_A_CALENDAR_DATE)
    async def test_another_form_is_refused_as_rest_refuses_it_and_enrols_no_one(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, written: str
    ) -> None:
        rest = await client.post("/v1/members", json={"birthday": written}, headers=bearer(pos_key))
        assert (rest.status_code, rest.json()["code"]) == (422, "validation_error"), rest.text
        body = await graphql(client, pos_key, ENROL, input={"birthday": written})
        assert body.get("data") is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
        assert ".birthday" in body["errors"][0]["message"]
        assert await table_counts(app, "members") == {"members": 0}

    @pytest.mark.parametrize("written", NOT_A_CALENDAR_DATE)
    async def test_another_form_leaves_the_birthday_as_it_was(
        self, client: httpx.AsyncClient, pos_key: str, written: str
    ) -> None:
        member = await enrol(client, pos_key, birthday="1985-01-01")
        body = await graphql(client, pos_key, UPDATE, input={"memberId": member["id"], "birthday": written})
        assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["BAD_USER_INPUT"], body
        found = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert found.json()["birthday"] == "1985-01-01"

    async def test_a_calendar_date_is_taken_as_rest_takes_it(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = await graphql(client, pos_key, ENROL, input={"birthday": "1990-05-17"})
        payload = body["data"]["loyaltyEnrolMember"]
        assert payload["userErrors"] == [] and payload["member"]["birthday"] == "1990-05-17"
        found = await client.get(f"/v1/members/{payload['member']['id']}", headers=bearer(pos_key))
        assert found.json()["birthday"] == "1990-05-17"

    async def test_another_form_written_in_the_document_is_refused_before_it_runs(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = await graphql(
            client, pos_key, 'mutation { loyaltyEnrolMember(input: {birthday: "1990W204"}) { replayed } }'
        )
        assert body.get("data") is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"], body
        assert await table_counts(app, "members") == {"members": 0}
