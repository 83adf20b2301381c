"""A partner key reaches the partner routes only, and through them only the members linked to its own partner.

The routes are read from the app, so a route added tomorrow is covered the day it lands: a partner key on any
other route is 403 `scope_not_allowed`; partner A naming partner B's customer, or the member's id or number,
on any partner route is 404 with nothing of the member in the answer, and so is GraphQL. Unlinking, from
either side, ends the partner's access at once."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from loyalty_api.auth.principal import Scope
from loyalty_api.http.problems import all_routes
from loyalty_api.http.transaction import required_scopes
from loyalty_api.partners import service as partners
from tests.builders import add_partner, enrol, make_partner_key
from tests.conftest import START, UNLIMITED, bearer
from tests.graphql.helpers import graphql
from tests.partners.helpers import JOINT_VIEW
from tests.points.helpers import cny, set_program
from tests.subscriptions.helpers import add_plan, subscribe_paid

# Every route a partner key may call. A new one must be added here on purpose, after its BOLA case is known.
PARTNER_ALLOWED = {
    ("GET", "/v1/event-types"),
    ("POST", "/v1/partner/links"),
    ("DELETE", "/v1/partner/links/{ref}"),
    ("GET", "/v1/partner/members/{ref}"),
    ("POST", "/v1/partner/members/{ref}/earn"),
    ("POST", "/v1/partner/members/{ref}/refunds"),
    ("POST", "/v1/partner/members/{ref}/exchanges-in"),
    ("GET", "/v1/partner/exchanges/{exchange_id}"),
    ("POST", "/v1/partner/exchanges/{exchange_id}/confirm"),
    ("POST", "/v1/partner/exchanges/{exchange_id}/fail"),
    ("GET", "/v1/partner/settlements"),
    ("POST", "/v1/partner/perks/{code}/redeem"),
    ("POST", "/v1/partner/perk-codes"),
    ("GET", "/v1/partner/perk-codes/{perk}"),
    ("POST", "/v1/partner/members/{ref}/benefit-uses"),
}
# Of those, the partner's own routes, for partner keys alone: they name members by the partner's reference.
PARTNER_OWN = {op for op in PARTNER_ALLOWED if op[1].startswith("/v1/partner/")}
PERSONAL = {"phone", "email", "name", "birthday", "member_number", "external_ids", "referral_code"}
WITH_BODY = {"POST", "PUT", "PATCH"}


def _api_routes(app: FastAPI) -> list[APIRoute]:
    return [r for r in all_routes(app.routes) if r.path_format.startswith("/v1/")]


def _operations(app: FastAPI) -> list[tuple[str, APIRoute]]:
    return sorted(
        ((method, route) for route in _api_routes(app) for method in route.methods or ()),
        key=lambda op: (op[1].path_format, op[0]),
    )


def _plausible(route: APIRoute, name: str) -> str:
    """A value the path parameter would accept: a UUID for ids, a number for numbers, a code otherwise."""
    [param] = [p for p in route.dependant.path_params if p.name == name]
    if name.endswith("_id"):
        return str(uuid.uuid4())
    if param.field_info.annotation is int:
        return "1"
    return "some-code"


def _path(route: APIRoute, values: dict[str, str]) -> str:
    return route.path_format.format(**{p.name: values[p.name] for p in route.dependant.path_params})


def _problem_code(response: httpx.Response) -> str | None:
    try:
        code = response.json().get("code")
    except ValueError:
        return None
    return code if isinstance(code, str) else None


class TestPartnerKeyReachesOnlyPartnerRoutes:
    def test_the_routes_open_to_a_partner_key_are_exactly_the_known_ones(self, app: FastAPI) -> None:
        allowed = {(m, r.path_format) for m, r in _operations(app) if Scope.partner in required_scopes(r)}
        assert allowed == PARTNER_ALLOWED
        # the partner's own routes answer partner keys only: an operator acts through the member's routes
        own = {
            (m, r.path_format): required_scopes(r)
            for m, r in _operations(app)
            if r.path_format.startswith("/v1/partner/")
        }
        assert own == dict.fromkeys(PARTNER_OWN, frozenset({Scope.partner}))

    async def test_a_partner_key_on_every_other_route_is_refused_with_scope_notallowed_scopes(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        key = await make_partner_key(app, rate_limit=UNLIMITED)
        called: list[str] = []
        failures: list[str] = []
        for method, route in _operations(app):
            if (method, route.path_format) in PARTNER_ALLOWED:
                continue
            path = _path(route, {p.name: _plausible(route, p.name) for p in route.dependant.path_params})
            body: dict[str, Any] | None = {} if method in WITH_BODY else None
            response = await client.request(method, path, json=body, headers=bearer(key))
            called.append(f"{method} {route.path_format}")
            if response.status_code != 403 or _problem_code(response) != "scope_not_allowed":
                failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        assert failures == []
        # the walk saw the other routes, the members' partner routes among them
        assert len(called) > 50
        assert {"POST /v1/members/{member_id}/partner-link-codes", "GET /v1/partners"} <= set(called)


@dataclass(frozen=True)
class Partners:
    """Partner A and partner B, a key each, and a member linked to B only, as B's customer `B-1`."""

    a_key: str
    b_key: str
    b_code: str
    member: dict[str, Any]


# Both partners offer everything, so a refusal of A's is about the member, never about what A offers.
OFFERS_ALL = partners.Terms(earn_rate=Decimal(1), exchange_out_rate=Decimal(1), exchange_in_rate=Decimal(1))


async def _issue_code(client: httpx.AsyncClient, key: str, member_id: str, partner: str) -> str:
    issued = await client.post(
        f"/v1/members/{member_id}/partner-link-codes",
        json={"partner": partner, "grants": ["basic", "points"]},
        headers=bearer(key),
    )
    assert issued.status_code == 201, issued.text
    code: str = issued.json()["code"]
    return code


async def _link(client: httpx.AsyncClient, partner_key: str, code: str, ref: str) -> httpx.Response:
    return await client.post(
        "/v1/partner/links", json={"code": code, "partner_customer_ref": ref}, headers=bearer(partner_key)
    )


async def _linked_to_b(app: FastAPI, client: httpx.AsyncClient, pos_key: str) -> Partners:
    a_id = await add_partner(app, code="cafe-a", terms=OFFERS_ALL)
    b_id = await add_partner(app, code="bookshop-b", terms=OFFERS_ALL)
    a_key = await make_partner_key(app, partner_id=a_id, rate_limit=UNLIMITED)
    b_key = await make_partner_key(app, partner_id=b_id, rate_limit=UNLIMITED)
    member = await enrol(client, pos_key, name="林晓", email="lin@example.com", birthday="1990-05-17")
    linked = await _link(client, b_key, await _issue_code(client, pos_key, member["id"], "bookshop-b"), "B-1")
    assert linked.status_code == 201, linked.text
    return Partners(a_key=a_key, b_key=b_key, b_code="bookshop-b", member=member)


def _leaks(response: httpx.Response, secrets: set[str], sent: set[str]) -> list[str]:
    """The secrets found in the answer, leaving out what the caller sent itself (the path, in `instance`)."""
    text = response.text
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        answer.pop("instance", None)
        text = json.dumps(answer, ensure_ascii=False)
    return sorted(s for s in secrets - sent if s in text)


class TestPartnerCannotReachAnotherPartnersMember:
    async def test_every_partner_route_answers_404_and_nothing_of_the_member(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
    ) -> None:
        await set_program(client, admin_key)
        world = await _linked_to_b(app, client, pos_key)
        member = world.member
        # B's business with the member: a purchase there, and points the member sent B, pending.
        earned = await client.post(
            "/v1/partner/members/B-1/earn",
            json={"order_ref": "B-O-1", "amount": cny(10_000)},
            headers=bearer(world.b_key),
        )
        assert earned.status_code == 201, earned.text
        sent = await client.post(
            f"/v1/members/{member['id']}/exchanges",
            json={"partner": world.b_code, "points": 10},
            headers=bearer(pos_key),
        )
        assert sent.status_code == 201, sent.text
        b_exchange = sent.json()["id"]
        # and a paid plan that includes B's perk, which the member holds, and one from B's pool of codes
        b_pooled = {"partner": world.b_code, "name": "B pooled", "source": "pool", "perk": "b-pass"}
        await add_plan(
            client,
            admin_key,
            "with-b",
            partner_perks=[{"partner": world.b_code, "name": "B perk"}, b_pooled],
        )
        uploaded = await client.post(
            "/v1/partner/perk-codes",
            json={"perk": "b-pass", "codes": ["B-POOL-1"]},
            headers=bearer(world.b_key),
        )
        assert uploaded.status_code == 200, uploaded.text
        await subscribe_paid(client, ecommerce_key, member["id"], "with-b")
        perks = await client.get(f"/v1/members/{member['id']}/partner-perks", headers=bearer(pos_key))
        codes = {p["source"]: p["code"] for p in perks.json()["items"]}
        b_perk, b_pool_code = codes["ours"], codes["pool"]
        assert b_pool_code == "B-POOL-1"
        secrets = {
            member["id"],
            member["member_number"],
            member["phone"],
            "林晓",
            "lin@example.com",
            "1990-05-17",
            world.b_code,
        }
        # What A puts in a path parameter: B's customer's reference, and the member's own id and number; for
        # an exchange, B's exchange with the member.
        guesses = ["B-1", member["id"], member["member_number"]]
        guesses_for = {
            "exchange_id": ([b_exchange], "exchange_not_found"),
            "code": ([b_perk, b_pool_code], "perk_not_found"),
            "perk": (["b-pass"], "perk_pool_not_found"),
        }
        # A body for each partner route that takes one, and the answer A must get; a new route needs a line.
        bodies: dict[tuple[str, str], tuple[dict[str, Any], str]] = {
            ("POST", "/v1/partner/links"): (
                {
                    "code": await _issue_code(client, pos_key, member["id"], world.b_code),
                    "partner_customer_ref": "B-1",
                },
                "link_code_invalid",
            ),
            ("POST", "/v1/partner/members/{ref}/earn"): (
                {"order_ref": "A-O-1", "amount": cny(10_000)},
                "link_not_found",
            ),
            ("POST", "/v1/partner/members/{ref}/refunds"): (
                {"order_ref": "B-O-1", "full": True},
                "link_not_found",
            ),
            ("POST", "/v1/partner/members/{ref}/exchanges-in"): (
                {"partner_ref": "A-T-1", "partner_points": 10},
                "link_not_found",
            ),
            ("POST", "/v1/partner/exchanges/{exchange_id}/confirm"): ({}, "exchange_not_found"),
            ("POST", "/v1/partner/exchanges/{exchange_id}/fail"): ({}, "exchange_not_found"),
            ("POST", "/v1/partner/perks/{code}/redeem"): ({}, "perk_not_found"),
            # A cannot add codes to B's pool (nor learn that it exists)
            ("POST", "/v1/partner/perk-codes"): ({"perk": "b-pass", "codes": ["A-1"]}, "perk_pool_not_found"),
            ("POST", "/v1/partner/members/{ref}/benefit-uses"): (
                {"benefit_id": str(uuid.uuid4()), "use_ref": "A-U-1"},
                "link_not_found",
            ),
        }
        # A's own statement names nobody: it must show none of B's business.
        own_only = {("GET", "/v1/partner/settlements")}
        failures: list[str] = []
        called: set[tuple[str, str]] = set()
        for method, route in _operations(app):
            if not route.path_format.startswith("/v1/partner/"):
                continue
            called.add((method, route.path_format))
            if (method, route.path_format) in own_only:
                continue
            names = [p.name for p in route.dependant.path_params]
            body, code = bodies.get((method, route.path_format), (None, "link_not_found"))
            if method in WITH_BODY and body is None:
                failures.append(f"{method} {route.path_format}: no body for it in `bodies`; add one")
                continue
            tried = guesses
            if names and names[0] in guesses_for:
                tried, code = guesses_for[names[0]]
            for guess in tried if names else ["-"]:
                path = _path(route, dict.fromkeys(names, guess))
                response = await client.request(method, path, json=body, headers=bearer(world.a_key))
                sent = {guess} if names else set()
                if response.status_code != 404 or _problem_code(response) != code:
                    failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
                elif leaked := _leaks(response, secrets, sent):
                    failures.append(f"{method} {path}: the answer shows {leaked}: {response.text[:300]}")
        period = {
            "from": (START - timedelta(days=1)).isoformat(),
            "to": (START + timedelta(days=1)).isoformat(),
        }
        statement = await client.get("/v1/partner/settlements", params=period, headers=bearer(world.a_key))
        assert statement.status_code == 200, statement.text
        assert statement.json()["net_points"] == 0
        assert statement.json()["earned"]["entries"] == statement.json()["exchanged_out"]["entries"] == 0
        assert _leaks(statement, secrets, set()) == []
        assert failures == []
        assert called == PARTNER_OWN
        # and B's link, purchase and pending exchange are untouched by all of it
        read = await client.get("/v1/partner/members/B-1", headers=bearer(world.b_key))
        assert read.status_code == 200, read.text
        assert read.json()["member_id"] == member["id"]
        exchange = await client.get(f"/v1/partner/exchanges/{b_exchange}", headers=bearer(world.b_key))
        assert exchange.json()["status"] == "pending"
        kept = await client.get(f"/v1/members/{member['id']}/partner-perks", headers=bearer(pos_key))
        assert [p["status"] for p in kept.json()["items"]] == ["issued", "issued"]
        b_pool = await client.get("/v1/partner/perk-codes/b-pass", headers=bearer(world.b_key))
        assert b_pool.json() == {"perk": "b-pass", "available": 0, "owed": 0}
        b_statement = await client.get("/v1/partner/settlements", params=period, headers=bearer(world.b_key))
        assert (b_statement.json()["earned"]["points"], b_statement.json()["exchanged_out"]["points"]) == (
            100,
            10,
        )

    async def test_a_code_given_for_b_does_not_link_for_a_and_still_links_for_b(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        world = await _linked_to_b(app, client, pos_key)
        other = await enrol(client, pos_key, name="王芳")
        code = await _issue_code(client, pos_key, other["id"], world.b_code)

        refused = await _link(client, world.a_key, code, "A-9")
        assert refused.status_code == 404
        assert refused.json()["code"] == "link_code_invalid"
        assert _leaks(refused, {other["id"], other["member_number"], other["phone"], "王芳"}, set()) == []
        assert (await client.get("/v1/partner/members/A-9", headers=bearer(world.a_key))).status_code == 404

        # A's try did not spend the member's consent: B links with the same code
        linked = await _link(client, world.b_key, code, "B-2")
        assert linked.status_code == 201, linked.text
        assert linked.json()["member_id"] == other["id"]

    async def test_a_replayed_idempotency_key_does_not_hand_a_bs_link(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        world = await _linked_to_b(app, client, pos_key)
        other = await enrol(client, pos_key, name="王芳")
        body = {
            "code": await _issue_code(client, pos_key, other["id"], world.b_code),
            "partner_customer_ref": "B-2",
        }
        linked = await client.post(
            "/v1/partner/links", json=body, headers=bearer(world.b_key, idempotency_key="link-B-2")
        )
        assert linked.status_code == 201, linked.text

        # A sends the very same request, key and body, as if it had overheard them
        copied = await client.post(
            "/v1/partner/links", json=body, headers=bearer(world.a_key, idempotency_key="link-B-2")
        )
        assert copied.status_code == 404
        assert copied.json()["code"] == "link_code_invalid"
        assert "idempotent-replayed" not in copied.headers
        assert (
            _leaks(copied, {other["id"], other["member_number"], other["phone"], world.b_code}, set()) == []
        )

    async def test_graphql_refuses_a_partner_key_the_member_by_id_and_as_an_entity(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        world = await _linked_to_b(app, client, pos_key)
        member = world.member
        secrets = {member["id"], member["member_number"], member["phone"], "林晓", "lin@example.com"}
        entities = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id name } } }"
        asks: list[tuple[str, dict[str, Any]]] = [
            (f'{{ loyaltyMember(id: "{member["id"]}") {{ id name phone memberNumber }} }}', {}),
            (entities, {"r": [{"__typename": "Member", "id": member["id"]}]}),
            (entities, {"r": [{"__typename": "Member", "memberNumber": member["member_number"]}]}),
        ]
        for query, variables in asks:
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=bearer(world.a_key)
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert [e["extensions"]["code"] for e in body["errors"]] == ["scope_not_allowed"], body
            data = body.get("data") or {}
            assert all(value in (None, [None]) for value in data.values()), body
            assert sorted(s for s in secrets if s in response.text) == [], response.text

    async def test_graphql_refuses_b_too_though_the_member_is_linked_to_it(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        world = await _linked_to_b(app, client, pos_key)
        body = await graphql(
            client, world.b_key, f'{{ loyaltyMember(id: "{world.member["id"]}") {{ id name phone }} }}'
        )
        assert [e["extensions"]["code"] for e in body["errors"]] == ["scope_not_allowed"]
        assert world.member["phone"] not in json.dumps(body)


class TestUnlinkEndsAccessAtOnce:
    async def test_the_partner_unlinks_and_reads_nothing_more(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        world = await _linked_to_b(app, client, pos_key)
        member = world.member

        read = await client.get("/v1/partner/members/B-1", headers=bearer(world.b_key))
        assert read.status_code == 200, read.text
        view = read.json()
        assert set(view) == JOINT_VIEW
        assert not set(view) & PERSONAL
        assert (view["member_id"], view["partner_customer_ref"]) == (member["id"], "B-1")
        for personal in (member["phone"], "林晓", "lin@example.com", "1990-05-17", member["member_number"]):
            assert personal not in read.text

        unlinked = await client.delete("/v1/partner/links/B-1", headers=bearer(world.b_key))
        assert unlinked.status_code == 204, unlinked.text

        after = await client.get("/v1/partner/members/B-1", headers=bearer(world.b_key))
        assert after.status_code == 404
        assert after.json()["code"] == "link_not_found"
        assert member["id"] not in after.text
        again = await client.delete("/v1/partner/links/B-1", headers=bearer(world.b_key))
        assert (again.status_code, again.json()["code"]) == (404, "link_not_found")
        links = await client.get(f"/v1/members/{member['id']}/partner-links", headers=bearer(pos_key))
        assert links.status_code == 200, links.text
        assert links.json()["items"] == []

    async def test_the_member_unlinks_at_our_till_and_the_partner_reads_nothing_more(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        world = await _linked_to_b(app, client, pos_key)
        second = await enrol(client, pos_key, name="王芳")
        code = await _issue_code(client, pos_key, second["id"], world.b_code)
        assert (await _link(client, world.b_key, code, "B-2")).status_code == 201
        assert (await client.get("/v1/partner/members/B-2", headers=bearer(world.b_key))).status_code == 200

        unlinked = await client.delete(
            f"/v1/members/{second['id']}/partner-links/{world.b_code}", headers=bearer(pos_key)
        )
        assert unlinked.status_code == 204, unlinked.text

        after = await client.get("/v1/partner/members/B-2", headers=bearer(world.b_key))
        assert after.status_code == 404
        assert after.json()["code"] == "link_not_found"
        assert second["id"] not in after.text
        gone = await client.delete("/v1/partner/links/B-2", headers=bearer(world.b_key))
        assert (gone.status_code, gone.json()["code"]) == (404, "link_not_found")
        # the other member's link with B stands
        first = await client.get("/v1/partner/members/B-1", headers=bearer(world.b_key))
        assert first.status_code == 200, first.text
        assert first.json()["member_id"] == world.member["id"]
