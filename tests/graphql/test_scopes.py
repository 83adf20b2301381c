"""Every root field and mutation answers only the scopes its REST endpoint answers: a key without one of
them gets `scope_not_allowed` before anything is read or written. The table below is the contract; a root
field missing from it fails the first test, so a new field cannot ship without its scopes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from graphql.pyutils import Undefined

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_composite_type,
)
from loyalty_api.auth.principal import Scope
from loyalty_api.graphql.schema import graphql_router
from loyalty_api.settings import Settings
from tests.builders import make_key, make_partner_key
from tests.conftest import UNLIMITED
from tests.graphql.helpers import graphql

A, P, E, B = Scope.admin, Scope.pos, Scope.ecommerce, Scope.billing
TILLS = {A, P, E}
PLAN_READERS = {A, P, E, B}

QUERIES: dict[str, set[Scope]] = {
    "loyaltyMember": TILLS,
    "loyaltyMemberByNumber": TILLS,
    "loyaltyMemberLookup": TILLS,
    "loyaltyMembers": {A},
    "loyaltyCheckoutQuote": TILLS,
    "loyaltyHold": TILLS,
    "loyaltyRewards": TILLS,
    "loyaltyReward": TILLS,
    "loyaltyPartnerMember": {Scope.partner},
    "loyaltyPlans": PLAN_READERS,
    "loyaltyPlan": PLAN_READERS,
    "loyaltySubscription": PLAN_READERS,
    "loyaltyMemberSubscriptions": PLAN_READERS,
}
MUTATIONS: dict[str, set[Scope]] = {
    "loyaltyEnrolMember": TILLS,
    "loyaltyUpdateMember": TILLS,
    "loyaltyEarnPoints": TILLS,
    "loyaltyRedeemPoints": TILLS,
    "loyaltyHoldPoints": TILLS,
    "loyaltyCapturePoints": TILLS,
    "loyaltyReleasePoints": TILLS,
    "loyaltyRefundPoints": TILLS,
    "loyaltyAdjustPoints": {A},
    "loyaltyTransferPoints": {A, E},
    "loyaltyReverseTransfer": {A},
    "loyaltyRecordActivity": TILLS,
    "loyaltyRedeemReward": TILLS,
    "loyaltyUseCoupon": TILLS,
    "loyaltySubscribeToPlan": {A, E},
    "loyaltyCancelSubscription": {A, E},
    "loyaltyResumeSubscription": {A, E},
    "loyaltyChangeSubscriptionPlan": {A, E},
    "loyaltyRecordSubscriptionPayment": {B},
}
FEDERATION = {"_entities", "_service"}
SCOPES = (A, P, E, B, Scope.partner)


@pytest.fixture(scope="module")
def schema(settings: Settings) -> GraphQLSchema:
    return graphql_router(settings).schema._schema


def _roots(schema: GraphQLSchema) -> dict[str, tuple[str, GraphQLField]]:
    roots: dict[str, tuple[str, GraphQLField]] = {}
    for operation, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert root is not None
        for name, found in root.fields.items():
            if name not in FEDERATION:
                roots[name] = (operation, found)
    return roots


_SCALARS: dict[str, Any] = {
    "ID": "01a20000-0000-7000-8000-000000000000",
    "String": "x",
    "Int": 1,
    "Long": 1,
    "Float": 1.0,
    "Boolean": False,
    "DateTime": "2026-01-01T00:00:00Z",
    "Date": "2000-01-01",
    "JSON": {},
    "Decimal": "1",
}


def _value(kind: GraphQLInputType) -> Any:
    """A value of the type with only what it requires: enough to reach the scope check."""
    if isinstance(kind, GraphQLNonNull):
        return _value(kind.of_type)
    if isinstance(kind, GraphQLList):
        return []
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLInputObjectType):
        return {
            name: _value(f.type)
            for name, f in kind.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        }
    assert isinstance(kind, GraphQLScalarType)
    return _SCALARS[kind.name]


def _call(operation: str, name: str, found: GraphQLField) -> tuple[str, dict[str, Any]]:
    required = {a: arg for a, arg in found.args.items() if isinstance(arg.type, GraphQLNonNull)}
    declared = ", ".join(f"${a}: {arg.type}" for a, arg in required.items())
    passed = ", ".join(f"{a}: ${a}" for a in required)
    selection = " { __typename }" if is_composite_type(get_named_type(found.type)) else ""
    document = (
        f"{operation}{f'({declared})' if declared else ''} "
        f"{{ {name}{f'({passed})' if passed else ''}{selection} }}"
    )
    return document, {a: _value(arg.type) for a, arg in required.items()}


def test_every_root_field_has_its_scopes_in_the_table(schema: GraphQLSchema) -> None:
    assert set(_roots(schema)) == set(QUERIES) | set(MUTATIONS)


async def test_each_root_field_answers_its_scopes_only(
    client: httpx.AsyncClient, app: FastAPI, schema: GraphQLSchema
) -> None:
    keys = {
        scope: await make_partner_key(app, rate_limit=UNLIMITED)
        if scope is Scope.partner
        else await make_key(app, scope, rate_limit=UNLIMITED)
        for scope in SCOPES
    }
    wrong: list[str] = []
    for name, (operation, found) in _roots(schema).items():
        allowed = (QUERIES | MUTATIONS)[name]
        document, variables = _call(operation, name, found)
        for scope, key in keys.items():
            body = await graphql(client, key, document, **variables)
            codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
            refused = "scope_not_allowed" in codes
            if refused == (scope in allowed):
                wrong.append(f"{name} with a {scope} key: {'refused' if refused else 'answered'} {body}")
    assert wrong == []
