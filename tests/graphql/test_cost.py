"""Query cost: priced from list sizes before anything runs, refused over the limit, and spent from the key's
rate budget; introspection and GraphiQL off in production settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import limits.aio.storage.memory
import pytest
from fastapi import FastAPI
from strawberry.federation.schema_directives import ListSize

from graphql import (
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    is_list_type,
    parse,
)
from loyalty_api.app import create_app
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.graphql.cost import COST_PER_UNIT, cost_of, directive_of
from loyalty_api.graphql.schema import graphql_router
from loyalty_api.settings import Settings
from tests.builders import enrol, make_key
from tests.conftest import UNLIMITED, bearer
from tests.graphql.helpers import graphql
from tests.graphql.test_batching import counting


def members_query(first: int, subscriptions: int) -> str:
    return (
        f"{{ loyaltyMembers(first: {first}) {{ edges {{ node {{ id "
        f"subscriptions(first: {subscriptions}) {{ id }} }} }} }} }}"
    )


def codes(body: dict[str, object]) -> list[str]:
    errors = body.get("errors") or []
    assert isinstance(errors, list)
    return [e["extensions"]["code"] for e in errors]


@pytest.fixture(scope="module")
def schema(settings: Settings) -> GraphQLSchema:
    return graphql_router(settings).schema._schema


class TestPricing:
    def test_a_list_costs_its_items_times_its_size(self, schema: GraphQLSchema) -> None:
        small = cost_of(schema, parse(members_query(10, 5)), None, {})
        large = cost_of(schema, parse(members_query(10, 50)), None, {})
        # each of the 10 members' subscription lists grows by 45 items of cost 1
        assert large - small == 10 * 45
        variables = cost_of(
            schema,
            parse("query($n: Int!) { loyaltyMembers(first: $n) { edges { node { id } } } }"),
            None,
            {"n": 30},
        )
        literal = cost_of(schema, parse("{ loyaltyMembers(first: 30) { edges { node { id } } } }"), None, {})
        ten = cost_of(schema, parse("{ loyaltyMembers(first: 10) { edges { node { id } } } }"), None, {})
        # the connection, then per edge the edge and its node: only the edges are as many as `first`
        assert variables == literal == 1 + 30 * 2
        # GraphQL takes 30.0 for an Int and the resolver fetches 30: it is priced as 30, not as the default
        sent_as_float = cost_of(
            schema,
            parse("query($n: Int!) { loyaltyMembers(first: $n) { edges { node { id } } } }"),
            None,
            {"n": 30.0},
        )
        assert sent_as_float == literal
        assert literal - ten == 20 * 2

    def test_a_variable_left_out_is_priced_at_its_default(self, schema: GraphQLSchema) -> None:
        defaulted = "query($n: Int = 100) { loyaltyMembers(first: $n) { edges { node { id } } } }"
        literal = cost_of(schema, parse("{ loyaltyMembers(first: 100) { edges { node { id } } } }"), None, {})
        assert cost_of(schema, parse(defaulted), None, {}) == literal
        assert cost_of(schema, parse(defaulted), None, {"n": 5}) < literal  # one sent is the one priced
        entities = 'query($r: [_Any!]! = [{__typename: "Member", id: "x"}, {__typename: "Member", id: "y"}]) '
        entities += "{ _entities(representations: $r) { ... on Member { id } } }"
        one = parse("query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id } } }")
        assert cost_of(schema, parse(entities), None, {}) == 2 * cost_of(
            schema, one, None, {"r": [{"__typename": "Member", "id": "x"}]}
        )

    def test_entities_cost_one_member_per_representation(self, schema: GraphQLSchema) -> None:
        query = parse("query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id } } }")
        one = cost_of(schema, query, None, {"r": [{"__typename": "Member", "id": "x"}]})
        fifty = cost_of(schema, query, None, {"r": [{"__typename": "Member", "id": "x"}] * 50})
        assert fifty == 50 * one > 0

    def test_representations_are_priced_at_their_type_however_they_are_written(
        self, schema: GraphQLSchema
    ) -> None:
        """A PartnerMember is read on its own (its `@cost`): a representation is priced at that weight whether
        it comes as a list variable, as variables in a list written in the document, with its `__typename` a
        variable, or as one object standing for a list of one. Written the other ways, each was priced as an
        unknown type (1), so a hundred of them spent no more of the key's budget than one call."""
        selection = "{ ... on PartnerMember { grants } }"
        representation = {"__typename": "PartnerMember", "partnerCustomerRef": "GB-1"}
        as_variable = cost_of(
            schema,
            parse(f"query($r: [_Any!]!) {{ _entities(representations: $r) {selection} }}"),
            None,
            {"r": [representation] * 3},
        )
        written = [
            (
                f"query($a: _Any!) {{ _entities(representations: [$a, $a, $a]) {selection} }}",
                {"a": representation},
            ),
            (
                "query($t: String!) { _entities(representations: ["
                + ", ".join(['{__typename: $t, partnerCustomerRef: "GB-1"}'] * 3)
                + f"]) {selection} }}",
                {"t": "PartnerMember"},
            ),
        ]
        assert as_variable > 3 * 2  # five statements each, not one
        for query, variables in written:
            assert cost_of(schema, parse(query), None, variables) == as_variable, query
        alone = '{__typename: "PartnerMember", partnerCustomerRef: "GB-1"}'
        one = f"{{ _entities(representations: {alone}) {selection} }}"
        assert cost_of(schema, parse(one), None, {}) * 3 == as_variable


class TestLimit:
    async def test_a_document_over_the_limit_is_refused_before_it_runs(
        self, client: httpx.AsyncClient, app: FastAPI, admin_key: str
    ) -> None:
        limit = Settings.model_fields["graphql_max_cost"].default
        with counting(app) as counted:
            body = await graphql(client, admin_key, members_query(100, 100))
        assert counted.statements == []  # nothing was read (the key check aside)
        assert body["data"] is None
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
        assert body["errors"][0]["extensions"]["cost"] > limit
        within = await graphql(client, admin_key, members_query(100, 10))
        assert within.get("errors") is None
        # The same sizes as Int variables sent as JSON floats: coerced to 100, and priced so
        # (they were priced at the argument's default, 20, and ran).
        sized = (
            "query($n: Int!) { loyaltyMembers(first: $n) { edges { node { id ledger(first: $n) "
            "{ edges { node { id } } } coupons(first: $n) { edges { node { id } } } } } } }"
        )
        with counting(app) as counted:
            floated = await graphql(client, admin_key, sized, n=100.0)
        assert counted.statements == []
        assert codes(floated) == ["GRAPHQL_VALIDATION_FAILED"]
        assert floated["errors"][0]["extensions"]["cost"] > limit

    async def test_the_cost_is_spent_from_the_keys_budget(
        self, client: httpx.AsyncClient, app: FastAPI, schema: GraphQLSchema
    ) -> None:
        key = await make_key(app, Scope.admin, rate_limit="60/minute")
        query = members_query(50, 100)  # 1 + 50 × (1 + 1 + 100) = 5101: 1 unit for the call, 50 more
        assert cost_of(schema, parse(query), None, {}) // COST_PER_UNIT == 51
        first = await graphql(client, key, query)
        assert first.get("errors") is None
        second = await client.post(
            "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {key}"}
        )
        refused = second.json()
        # Refused by the edge (429) or, once the call's unit was still there, by the cost (rate_limited).
        assert second.status_code == 429 or codes(refused) == ["rate_limited"]
        cheap = await make_key(app, Scope.admin, rate_limit=UNLIMITED)
        assert (await graphql(client, cheap, query)).get("errors") is None


class TestMutationsSpendAsRestCalls:
    async def test_each_mutation_of_a_document_spends_a_unit(
        self, client: httpx.AsyncClient, app: FastAPI, pos_key: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        member = await enrol(client, pos_key)
        # The counters' clock stands 20 s into a minute: the wait below depends on where in its minute the
        # call is counted (a call counted across a minute's turn spends in two windows).
        monkeypatch.setattr(limits.aio.storage.memory, "time", SimpleNamespace(time=lambda: 1_800_000_020.0))

        def earns(count: int, prefix: str) -> str:
            return (
                "mutation { "
                + " ".join(
                    f'e{i}: loyaltyEarnPoints(input: {{memberId: "{member["id"]}", orderRef: "{prefix}-{i}", '
                    f'amount: {{amount: 1000, currency: "CNY"}}}}) {{ earned {{ balance }} }}'
                    for i in range(count)
                )
                + " }"
            )

        # A budget of 15: the call's unit and its tokens' (7 for this document) leave 7 for the 12 writes.
        key = await make_key(app, Scope.pos, rate_limit="15/minute")
        too_many = await graphql(client, key, earns(12, "MU"))
        assert codes(too_many) == ["rate_limited"] and too_many["data"] is None
        # REST's Retry-After: the writes' 11 units (the call's first is spent) wait out this minute's 40 s
        # left, then 22.5 s of the next, until the 8 spent weigh under 5; the next whole second after that.
        assert too_many["errors"][0]["extensions"]["retryAfter"] == 63
        points = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
        assert points.json()["balance"] == 0  # refused before any of them ran
        other = await make_key(app, Scope.pos, rate_limit="15/minute")
        within = await graphql(client, other, earns(5, "MW"))
        assert "errors" not in within and len(within["data"]) == 5
        # Inside a fragment, each mutation spends its unit all the same.
        fragment_key = await make_key(app, Scope.pos, rate_limit="15/minute")
        inline = earns(12, "MF").replace("mutation { ", "mutation { ... on Mutation { ", 1) + " }"
        too_many = await graphql(client, fragment_key, inline)
        assert codes(too_many) == ["rate_limited"] and too_many["data"] is None
        spread_key = await make_key(app, Scope.pos, rate_limit="15/minute")
        named = earns(12, "MS").replace(
            "mutation { ", "mutation { ...Earns } fragment Earns on Mutation { ", 1
        )
        too_many = await graphql(client, spread_key, named)
        assert codes(too_many) == ["rate_limited"] and too_many["data"] is None
        points = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
        assert points.json()["balance"] == 50  # the five within budget; none of the refused


@asynccontextmanager
async def production_client(settings: Settings, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """The service with production settings: introspection and GraphiQL at their defaults."""
    defaults = {
        name: Settings.model_fields[name].default for name in ("graphql_introspection", "graphql_ide")
    }
    production = create_app(settings.model_copy(update=defaults), clock=clock)
    async with production.router.lifespan_context(production):
        transport = httpx.ASGITransport(app=production, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as http:
            yield http


class TestSwitches:
    async def test_production_settings_have_no_introspection_and_no_graphiql(
        self, settings: Settings, clock: FrozenClock, pos_key: str, client: httpx.AsyncClient
    ) -> None:
        introspection = "{ __schema { queryType { name } } }"
        async with production_client(settings, clock) as production:
            closed = await graphql(production, pos_key, introspection)
            page = await production.get("/graphql", headers={"Accept": "text/html"})
            member = await graphql(production, pos_key, '{ loyaltyMember(id: "x") { id } }')
        assert closed["data"] is None and set(codes(closed)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert page.status_code == 404
        assert codes(member) == ["validation_error"]  # everything else answers as before
        opened = await graphql(client, pos_key, introspection)  # the test app has both on
        assert opened["data"]["__schema"]["queryType"]["name"] == "Query"


def test_every_list_of_objects_has_a_size(schema: GraphQLSchema) -> None:
    """A list without `@listSize` would be priced as one item: every list of objects says its size (a
    connection's `edges` take theirs from the connection's field)."""
    unsized = [
        f"{kind.name}.{name}"
        for kind in schema.type_map.values()
        if isinstance(kind, GraphQLObjectType) and not kind.name.startswith("__")
        for name, found in kind.fields.items()
        if is_list_type(get_nullable_type(found.type))
        and is_composite_type(get_named_type(found.type))
        and directive_of(found, ListSize) is None
        and not (name == "edges" and kind.name.endswith("Connection"))
        and name != "_entities"  # priced by its representations
    ]
    assert unsized == []
