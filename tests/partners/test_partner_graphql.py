"""A partner's view through GraphQL: `loyaltyPartnerMember(ref)` and the `PartnerMember` entity its
supergraph joins by `partnerCustomerRef`, the same joint view as REST, for linked members only."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from graphql import parse
from loyalty_api.graphql.cost import cost_of
from loyalty_api.graphql.schema import graphql_router
from loyalty_api.settings import Settings
from tests.builders import enrol, make_partner_key
from tests.conftest import UNLIMITED, bearer, cache_kept
from tests.graphql.helpers import graphql
from tests.graphql.test_batching import counting
from tests.points.helpers import earn, set_program

VIEW = """partnerCustomerRef memberId status tier { code name rank } paidPlans
  jointBenefits { id name kind } points { balance available } grants linkedAt"""
BY_REF = f"query($ref: String!) {{ loyaltyPartnerMember(ref: $ref) {{ {VIEW} }} }}"
ENTITIES = f"query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on PartnerMember {{ {VIEW} }} }} }}"


async def _linked(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, code: str, ref: str
) -> tuple[str, dict[str, Any]]:
    """A partner, its key, and a member linked to it as `ref` with points granted."""
    made = await client.post("/v1/partners", json={"code": code, "name": code}, headers=bearer(admin_key))
    key = await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]), rate_limit=UNLIMITED)
    member = await enrol(client, pos_key)
    issued = await client.post(
        f"/v1/members/{member['id']}/partner-link-codes",
        json={"partner": code, "grants": ["basic", "points"]},
        headers=bearer(pos_key),
    )
    body = {"code": issued.json()["code"], "partner_customer_ref": ref}
    linked = await client.post("/v1/partner/links", json=body, headers=bearer(key))
    assert linked.status_code == 201, linked.text
    return key, member


def _rest_shape(found: dict[str, Any]) -> dict[str, Any]:
    return {
        "partner_customer_ref": found["partnerCustomerRef"],
        "member_id": found["memberId"],
        "status": found["status"],
        "tier": found["tier"],
        "paid_plans": found["paidPlans"],
        "joint_benefits": found["jointBenefits"],
        "points": found["points"],
        "grants": found["grants"],
        "linked_at": found["linkedAt"],
    }


class TestPartnerMember:
    async def test_the_partner_sees_what_rest_shows_it(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        key, member = await _linked(app, client, admin_key, pos_key, "gql-books", "GB-1")
        await earn(client, pos_key, member["id"], 30_000)
        by_ref = await graphql(client, key, BY_REF, ref="GB-1")
        rest = await client.get("/v1/partner/members/GB-1", headers=bearer(key))
        assert _rest_shape(by_ref["data"]["loyaltyPartnerMember"]) == rest.json()
        assert rest.json()["points"]["balance"] > 0
        joined = await graphql(
            client, key, ENTITIES, r=[{"__typename": "PartnerMember", "partnerCustomerRef": "GB-1"}]
        )
        assert joined["data"]["_entities"] == [by_ref["data"]["loyaltyPartnerMember"]]

    async def test_another_partner_and_other_keys_see_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        _, member = await _linked(app, client, admin_key, pos_key, "gql-cafe", "GC-1")
        other, _ = await _linked(app, client, admin_key, pos_key, "gql-gym", "GG-1")
        theirs = await graphql(client, other, BY_REF, ref="GC-1")
        assert theirs == {"data": {"loyaltyPartnerMember": None}}
        entity = await graphql(
            client, other, ENTITIES, r=[{"__typename": "PartnerMember", "partnerCustomerRef": "GC-1"}]
        )
        assert entity["data"]["_entities"] == [None] and member["id"] not in str(entity)
        till = await graphql(client, pos_key, BY_REF, ref="GC-1")
        assert till["errors"][0]["extensions"]["code"] == "scope_not_allowed"

    async def test_unlinking_ends_the_view_at_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        key, _ = await _linked(app, client, admin_key, pos_key, "gql-spa", "GS-1")
        assert (await graphql(client, key, BY_REF, ref="GS-1"))["data"]["loyaltyPartnerMember"] is not None
        assert (await client.delete("/v1/partner/links/GS-1", headers=bearer(key))).status_code == 204
        assert (await graphql(client, key, BY_REF, ref="GS-1"))["data"]["loyaltyPartnerMember"] is None


# References no partner can have linked: POST /v1/partner/links refuses them, and REST's
# GET /v1/partner/members/{ref} answers those a path can carry with 422 validation_error on `ref`.
NOT_A_REF = [
    pytest.param("GB 1", id="space"),
    pytest.param("GB/1", id="slash"),
    pytest.param("x" * 65, id="too-long"),
    pytest.param("", id="empty"),
    pytest.param("..", id="dot-dot"),
]


class TestPricing:
    async def test_representations_are_priced_at_no_less_than_the_reads_they_make(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings
    ) -> None:
        """Each PartnerMember of `_entities` is read on its own: a hundred of them, asking for one field, must
        spend the rate budget of the statements they run, not of one call (one unit for 500 statements let a
        partner key make the service read a hundred times what its budget bought)."""
        await set_program(client, admin_key)
        key, _ = await _linked(app, client, admin_key, pos_key, "gql-books", "GB-1")
        query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on PartnerMember { grants } } }"
        representations = [{"__typename": "PartnerMember", "partnerCustomerRef": "GB-1"}] * 100
        # What every request reads from the cache (the programme, the ladder) is read again when it ages
        # out, once a period, not once an entity: on a loaded machine the hundred entities outlasted the
        # two seconds it is kept and counted those rereads too (508 statements against a price of 500).
        with cache_kept(app):
            assert (await graphql(client, key, query, r=representations[:1])).get(
                "errors"
            ) is None  # loads it
            with counting(app) as counted:
                found = await graphql(client, key, query, r=representations)
        assert found.get("errors") is None and len(found["data"]["_entities"]) == 100
        schema = graphql_router(settings).schema._schema
        assert cost_of(schema, parse(query), None, {"r": representations}) >= len(counted.statements) > 100


class TestAReferenceNoPartnerCanLink:
    @pytest.mark.parametrize("ref", NOT_A_REF)
    async def test_is_the_validation_error_rest_answers_not_a_member_not_linked(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ref: str
    ) -> None:
        key, _ = await _linked(app, client, admin_key, pos_key, "gql-refs", "GB-1")
        if ref and ref != ".." and "/" not in ref:  # a path cannot name the others at all
            rest = await client.get(f"/v1/partner/members/{quote(ref, safe='')}", headers=bearer(key))
            assert (rest.status_code, rest.json()["code"]) == (422, "validation_error"), rest.text
        by_ref = await graphql(client, key, BY_REF, ref=ref)
        assert by_ref["data"] == {"loyaltyPartnerMember": None}
        [error] = by_ref["errors"]
        assert error["extensions"]["code"] == "validation_error"
        assert [e["field"] for e in error["extensions"]["errors"]] == ["ref"]
        assert error["message"].startswith("ref: ") and "x" * 65 not in error["message"]
        joined = await graphql(
            client, key, ENTITIES, r=[{"__typename": "PartnerMember", "partnerCustomerRef": ref}]
        )
        assert joined["data"]["_entities"] == [None]
        [error] = joined["errors"]
        assert (error["extensions"]["code"], error["path"]) == ("validation_error", ["_entities", 0])
        assert [e["field"] for e in error["extensions"]["errors"]] == ["partnerCustomerRef"]
