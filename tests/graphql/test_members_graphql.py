from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import enrol, full_width
from tests.conftest import bearer

MEMBER_FIELDS = (
    "id memberNumber status points name phone tier { code name } externalIds { system externalId }"
)


async def graphql(client: httpx.AsyncClient, key: str | None, query: str, **variables: Any) -> dict[str, Any]:
    headers = bearer(key) if key else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestMemberQueries:
    async def test_member_by_id_matches_rest(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key, name="图谱", external_ids={"pos": "G-1"})
        body = await graphql(
            client,
            pos_key,
            f"query($id: ID!) {{ loyaltyMember(id: $id) {{ {MEMBER_FIELDS} }} }}",
            id=member["id"],
        )
        assert "errors" not in body
        found = body["data"]["loyaltyMember"]
        assert found["id"] == member["id"]
        assert found["memberNumber"] == member["member_number"]
        assert found["name"] == "图谱"
        assert found["phone"] == member["phone"]
        assert found["externalIds"] == [{"system": "pos", "externalId": "G-1"}]

    async def test_member_by_number(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key)
        body = await graphql(
            client,
            pos_key,
            "query($n: String!) { loyaltyMemberByNumber(memberNumber: $n) { id } }",
            n=member["member_number"],
        )
        assert body["data"]["loyaltyMemberByNumber"] == {"id": member["id"]}

    async def test_member_by_number_typed_in_full_width_digits(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        wide = full_width(member["member_number"])
        by_number = "query($n: String!) { loyaltyMemberByNumber(memberNumber: $n) { id } }"
        body = await graphql(client, pos_key, by_number, n=wide)
        assert body["data"]["loyaltyMemberByNumber"] == {"id": member["id"]}
        lookup = "query($n: String) { loyaltyMemberLookup(memberNumber: $n) { id } }"
        body = await graphql(client, pos_key, lookup, n=wide)
        assert body["data"]["loyaltyMemberLookup"] == {"id": member["id"]}

    async def test_unknown_member_is_null(self, client: httpx.AsyncClient, pos_key: str) -> None:
        body = await graphql(
            client, pos_key, '{ loyaltyMember(id: "01a20000-0000-7000-8000-000000000000") { id } }'
        )
        assert body["data"]["loyaltyMember"] is None

    async def test_mistyped_number_is_an_error_with_the_rest_code(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = await graphql(client, pos_key, '{ loyaltyMemberByNumber(memberNumber: "1234567890") { id } }')
        assert body["errors"][0]["extensions"]["code"] == "invalid_member_number"

    async def test_without_a_key_the_query_is_refused_before_it_is_read(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        query = {
            "query": "query($id: ID!) { loyaltyMember(id: $id) { id phone } }",
            "variables": {"id": member["id"]},
        }
        response = await client.post("/graphql", json=query)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_api_key"
        assert member["phone"] not in response.text

    async def test_billing_key_is_refused(
        self, client: httpx.AsyncClient, pos_key: str, billing_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        body = await graphql(
            client, billing_key, "query($id: ID!) { loyaltyMember(id: $id) { id } }", id=member["id"]
        )
        assert body["errors"][0]["extensions"]["code"] == "scope_not_allowed"


class TestFederation:
    async def test_service_sdl_declares_the_member_entity(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = await graphql(client, pos_key, "{ _service { sdl } }")
        sdl = body["data"]["_service"]["sdl"]
        assert "specs.apollo.dev/federation/v2" in sdl
        assert 'type Member @key(fields: "id") @key(fields: "memberNumber")' in sdl

    async def test_entities_resolve_by_id_and_by_member_number(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        first = await enrol(client, pos_key)
        second = await enrol(client, pos_key)
        query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id memberNumber } } }"
        body = await graphql(
            client,
            pos_key,
            query,
            r=[
                {"__typename": "Member", "id": first["id"]},
                {"__typename": "Member", "memberNumber": second["member_number"]},
            ],
        )
        assert "errors" not in body, body
        assert body["data"]["_entities"] == [
            {"id": first["id"], "memberNumber": first["member_number"]},
            {"id": second["id"], "memberNumber": second["member_number"]},
        ]

    async def test_a_representation_named_twice_resolves_each_time(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """One representation in two places (a variable written twice in the list, or one list given to two
        aliased `_entities`) is the same member each time, as two copies of it are: the first resolution
        took its `__typename` away, so the second was UNKNOWN_TYPENAME "None"."""
        member = await enrol(client, pos_key)
        representation = {"__typename": "Member", "id": member["id"]}
        twice = await graphql(
            client,
            pos_key,
            "query($a: _Any!) { _entities(representations: [$a, $a]) { ... on Member { id } } }",
            a=representation,
        )
        assert "errors" not in twice, twice
        assert twice["data"]["_entities"] == [{"id": member["id"]}] * 2
        aliased = await graphql(
            client,
            pos_key,
            "query($r: [_Any!]!) { a: _entities(representations: $r) { ... on Member { id } } "
            "b: _entities(representations: $r) { ... on Member { id } } }",
            r=[representation],
        )
        assert "errors" not in aliased, aliased
        assert aliased["data"] == {"a": [{"id": member["id"]}], "b": [{"id": member["id"]}]}

    async def test_a_field_named_as_the_resolvers_own_arguments_is_ignored(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """A representation's fields beyond its keys are ignored, `cls` and `info` too: those were passed on
        beside the resolver's own `cls` (a TypeError, INTERNAL_SERVER_ERROR for input)."""
        member = await enrol(client, pos_key)
        query = "query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Member { id } } }"
        extra = {"cls": "Member", "info": 1, "self": 1}
        body = await graphql(
            client,
            pos_key,
            query,
            r=[
                {"__typename": "Member", "id": member["id"], **extra},
                {"__typename": "Tier", "code": "none-such", **extra},
                {"__typename": "Coupon", "code": "NONE-SUCH", **extra},
            ],
        )
        assert "errors" not in body, body
        assert body["data"]["_entities"] == [{"__typename": "Member", "id": member["id"]}, None, None]


class TestTierEntity:
    @pytest.mark.parametrize("code", ["GOLD", "gold tier", "x" * 33, ""])
    async def test_a_code_no_tier_can_have_is_the_validation_error_rest_answers_not_null(
        self, client: httpx.AsyncClient, pos_key: str, code: str
    ) -> None:
        """GET /v1/tiers/GOLD is 422 validation_error on `code` (codes are lower case); the Tier entity
        answered null, as for a tier that does not exist."""
        if code:  # a path cannot name an empty code
            rest = await client.get(f"/v1/tiers/{code}", headers=bearer(pos_key))
            assert (rest.status_code, rest.json()["code"]) == (422, "validation_error"), rest.text
        query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Tier { code } } }"
        body = await graphql(client, pos_key, query, r=[{"__typename": "Tier", "code": code}])
        assert body["data"]["_entities"] == [None]
        [error] = body["errors"]
        assert (error["extensions"]["code"], error["path"]) == ("validation_error", ["_entities", 0])
        assert [e["field"] for e in error["extensions"]["errors"]] == ["code"]


class TestLongPoints:
    async def test_a_balance_past_2_to_the_31_reads_exactly(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        for _ in range(3):  # one adjustment may add at most 10^9 points
            response = await client.post(
                f"/v1/members/{member['id']}/adjustments",
                json={"points": 1_000_000_000, "reason": "a very loyal member"},
                headers=bearer(admin_key),
            )
            assert response.status_code == 201, response.text
        rest = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert rest.json()["points"] == 3_000_000_000 > 2**31

        body = await graphql(
            client, pos_key, "query($id: ID!) { loyaltyMember(id: $id) { id points } }", id=member["id"]
        )
        assert "errors" not in body, body
        assert body["data"]["loyaltyMember"] == {"id": member["id"], "points": 3_000_000_000}

    async def test_the_schema_types_points_as_long(self, client: httpx.AsyncClient, pos_key: str) -> None:
        body = await graphql(
            client, pos_key, '{ __type(name: "Member") { fields { name type { ofType { name } } } } }'
        )
        fields = {f["name"]: f["type"]["ofType"] for f in body["data"]["__type"]["fields"]}
        assert fields["points"] == {"name": "Long"}
