"""A member consents with a short-lived code; the partner links its customer with it and sees the joint view:
tier, paid membership and, if granted, points, never personal data."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.partners.errors import PartnerNotFound
from tests.builders import add_partner, enrol, make_key, make_partner_key
from tests.conftest import UNLIMITED, bearer
from tests.graphql.helpers import graphql
from tests.inspect_db import events
from tests.partners.helpers import JOINT_VIEW
from tests.points.helpers import earn, set_program


async def _partner(app: FastAPI, client: httpx.AsyncClient, admin_key: str, code: str) -> str:
    """A partner made over the API, and a key for it."""
    made = await client.post(
        "/v1/partners", json={"code": code, "name": code.title()}, headers=bearer(admin_key)
    )
    assert made.status_code == 201, made.text
    return await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]), rate_limit=UNLIMITED)


async def _code(
    client: httpx.AsyncClient, key: str, member_id: str, partner: str, *grants: str
) -> dict[str, Any]:
    body: dict[str, Any] = {"partner": partner} | ({"grants": list(grants)} if grants else {})
    issued = await client.post(f"/v1/members/{member_id}/partner-link-codes", json=body, headers=bearer(key))
    assert issued.status_code == 201, issued.text
    code: dict[str, Any] = issued.json()
    return code


async def _link(client: httpx.AsyncClient, partner_key: str, code: str, ref: str) -> httpx.Response:
    body = {"code": code, "partner_customer_ref": ref}
    return await client.post("/v1/partner/links", json=body, headers=bearer(partner_key))


class TestLinking:
    async def test_a_consented_link_shows_the_joint_view_and_never_personal_data(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        cafe = await _partner(app, client, admin_key, "cafe-one")
        member = await enrol(client, pos_key, name="林晓", email="lin@example.com")
        await earn(client, pos_key, member["id"], 50_000)
        code = await _code(client, pos_key, member["id"], "cafe-one", "basic", "points")
        assert code["grants"] == ["basic", "points"]

        linked = await _link(client, cafe, code["code"].lower(), "CAFE-77")  # any case, as typed
        assert linked.status_code == 201, linked.text
        view = linked.json()
        assert set(view) == JOINT_VIEW
        ours = (await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))).json()
        assert (view["member_id"], view["tier"], view["status"]) == (member["id"], ours["tier"], "active")
        assert (
            view["points"]
            == {"balance": ours["points"], "available": ours["points"]}
            != {
                "balance": 0,
                "available": 0,
            }
        )
        for personal in (member["phone"], "林晓", "lin@example.com", member["member_number"]):
            assert personal not in linked.text
        read = await client.get("/v1/partner/members/CAFE-77", headers=bearer(cafe))
        assert read.json() == view
        links = await client.get(f"/v1/members/{member['id']}/partner-links", headers=bearer(pos_key))
        assert [(k["partner"], k["partner_customer_ref"]) for k in links.json()["items"]] == [
            ("cafe-one", "CAFE-77")
        ]

    async def test_points_stay_hidden_unless_granted(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        shop = await _partner(app, client, admin_key, "shop-basic")
        member = await enrol(client, pos_key)
        code = await _code(client, pos_key, member["id"], "shop-basic")
        view = (await _link(client, shop, code["code"], "S-1")).json()
        assert view["grants"] == ["basic"] and view["points"] is None

    async def test_a_code_links_once_for_its_partner_within_its_minutes(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        mine = await _partner(app, client, admin_key, "books-a")
        other = await _partner(app, client, admin_key, "books-b")
        member, second = await enrol(client, pos_key), await enrol(client, pos_key)

        for_other = await _code(client, pos_key, member["id"], "books-b")
        refused = await _link(client, mine, for_other["code"], "A-1")  # another partner's code
        assert (refused.status_code, refused.json()["code"]) == (404, "link_code_invalid")

        code = await _code(client, pos_key, member["id"], "books-a")
        assert (await _link(client, mine, code["code"], "A-1")).status_code == 201
        reused = await _link(client, mine, code["code"], "A-2")
        assert (reused.status_code, reused.json()["code"]) == (404, "link_code_invalid")
        unknown = await _link(client, mine, "2222-3333-4444", "A-3")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "link_code_invalid")

        late = await _code(client, pos_key, second["id"], "books-a")
        clock.advance(timedelta(minutes=10, seconds=1))
        expired = await _link(client, mine, late["code"], "A-4")
        assert (expired.status_code, expired.json()["code"]) == (404, "link_code_invalid")
        too_late_for_b = await _link(client, other, for_other["code"], "B-1")  # issued before those minutes
        assert too_late_for_b.status_code == 404

    async def test_a_link_sent_again_without_a_key_is_answered_as_made(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        # The partner's answer was lost; its system sends the same code and reference again.
        shop = await _partner(app, client, admin_key, "books-r")
        member = await enrol(client, pos_key)
        code = await _code(client, pos_key, member["id"], "books-r")
        first = await _link(client, shop, code["code"], "R-1")
        assert first.status_code == 201, first.text

        again = await _link(client, shop, code["code"], "R-1")

        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        linked = [e for e in await events(app, "partner.linked") if e["payload"]["partner"] == "books-r"]
        assert len(linked) == 1
        # The used code links nothing else: another reference is still told the code is invalid.
        other_ref = await _link(client, shop, code["code"], "R-2")
        assert (other_ref.status_code, other_ref.json()["code"]) == (404, "link_code_invalid")

    async def test_a_member_links_once_per_partner_and_a_reference_names_one_member(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        gym = await _partner(app, client, admin_key, "gym-one")
        member, other = await enrol(client, pos_key), await enrol(client, pos_key)
        first = await _code(client, pos_key, member["id"], "gym-one")
        assert (await _link(client, gym, first["code"], "G-1")).status_code == 201
        again = await _code(client, pos_key, member["id"], "gym-one")
        twice = await _link(client, gym, again["code"], "G-2")
        assert (twice.status_code, twice.json()["code"]) == (409, "already_linked")
        theirs = await _code(client, pos_key, other["id"], "gym-one")
        taken = await _link(client, gym, theirs["code"], "G-1")
        assert (taken.status_code, taken.json()["code"]) == (409, "already_linked")

    async def test_a_suspended_partner_reaches_no_member_until_active_again(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        spa = await _partner(app, client, admin_key, "spa-one")
        member = await enrol(client, pos_key)
        code = await _code(client, pos_key, member["id"], "spa-one")
        assert (await _link(client, spa, code["code"], "SPA-1")).status_code == 201
        suspend = {"name": "Spa One", "status": "suspended"}
        assert (
            await client.put("/v1/partners/spa-one", json=suspend, headers=bearer(admin_key))
        ).status_code == 200
        refused = await client.get("/v1/partner/members/SPA-1", headers=bearer(spa))
        assert (refused.status_code, refused.json()["code"]) == (409, "partner_not_active")
        reactivate = {"name": "Spa One", "status": "active"}
        await client.put("/v1/partners/spa-one", json=reactivate, headers=bearer(admin_key))
        assert (await client.get("/v1/partner/members/SPA-1", headers=bearer(spa))).status_code == 200

    async def test_a_code_is_issued_only_for_a_member_there_and_active(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await _partner(app, client, admin_key, "tea-one")
        member = await enrol(client, pos_key)
        body = {"partner": "tea-one"}

        async def ask(member_id: str) -> tuple[int, str | None]:
            path = f"/v1/members/{member_id}/partner-link-codes"
            answered = await client.post(path, json=body, headers=bearer(pos_key))
            return answered.status_code, answered.json().get("code") if answered.status_code >= 400 else None

        assert await ask(str(uuid.uuid4())) == (404, "member_not_found")
        for status, answer in (("suspended", (409, "member_not_active")), ("active", (201, None))):
            changed = await client.patch(
                f"/v1/members/{member['id']}", json={"status": status}, headers=bearer(admin_key)
            )
            assert changed.status_code == 200, changed.text
            assert await ask(member["id"]) == answer
        erased = await client.post(f"/v1/members/{member['id']}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text
        assert await ask(member["id"]) == (404, "member_not_found")


class TestRefsThePartnersPathsCanName:
    async def test_a_ref_with_a_slash_is_refused_at_link_time(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        cafe = await _partner(app, client, admin_key, "cafe-slash")
        member = await enrol(client, pos_key)
        code = await _code(client, pos_key, member["id"], "cafe-slash")
        # GET /v1/partner/members/AB%2F12 would reach no route: the link would lead nowhere over REST.
        for unreachable in ("AB/12", ".", ".."):  # clients drop a `.` or `..` segment from the path
            refused = await _link(client, cafe, code["code"], unreachable)
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["field"] == "partner_customer_ref"
        linked = await _link(client, cafe, code["code"], "AB.12~x")  # any other visible ASCII
        assert linked.status_code == 201, linked.text
        read = await client.get("/v1/partner/members/AB.12~x", headers=bearer(cafe))
        assert read.status_code == 200, read.text


class TestEvents:
    async def test_registering_linking_and_unlinking_each_emit_their_event(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        key = await _partner(app, client, admin_key, "evt-books")
        rename = {"name": "Evt Books", "status": "active"}
        await client.put("/v1/partners/evt-books", json=rename, headers=bearer(admin_key))
        member = await enrol(client, pos_key)
        code = await _code(client, pos_key, member["id"], "evt-books", "points")
        assert (await _link(client, key, code["code"], "EV-1")).status_code == 201
        assert (await client.delete("/v1/partner/links/EV-1", headers=bearer(key))).status_code == 204

        async def emitted(event_type: str) -> list[dict[str, Any]]:
            return [e for e in await events(app, event_type) if e["payload"]["partner"] == "evt-books"]

        changed = [(e["payload"]["change"], e["payload"]["name"]) for e in await emitted("partner.changed")]
        assert changed == [("created", "Evt-Books"), ("replaced", "Evt Books")]
        [linked] = await emitted("partner.linked")
        assert (linked["payload"]["member_id"], linked["payload"]["grants"]) == (
            member["id"],
            ["basic", "points"],
        )
        [unlinked] = await emitted("partner.unlinked")
        assert (unlinked["payload"]["partner_customer_ref"], unlinked["payload"]["by"]) == ("EV-1", "partner")

    async def test_the_same_partner_put_again_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        """PUT takes no Idempotency-Key (a repeat sets the same values): the partner sent again, its joint
        benefits in another order, keeps its `updated_at` and receivers hear of one change."""
        await _partner(app, client, admin_key, "same-books")
        first_benefit = await client.post(
            "/v1/benefits",
            json={"name": "Free coffee", "kind": "priority_service", "properties": {"description": "one"}},
            headers=bearer(admin_key),
        )
        second_benefit = await client.post(
            "/v1/benefits",
            json={"name": "Free cake", "kind": "priority_service", "properties": {"description": "two"}},
            headers=bearer(admin_key),
        )
        assert first_benefit.status_code == second_benefit.status_code == 201, first_benefit.text
        body = {
            "name": "Same Books",
            "status": "active",
            "earn_rate": "0.5",
            "exchange_timeout_seconds": 600,
            "benefit_ids": [first_benefit.json()["id"], second_benefit.json()["id"]],
        }
        clock.advance(timedelta(minutes=1))
        first = await client.put("/v1/partners/same-books", json=body, headers=bearer(admin_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(minutes=5))
        body["benefit_ids"].reverse()
        again = await client.put(
            "/v1/partners/same-books", json=body | {"earn_rate": "0.50"}, headers=bearer(admin_key)
        )
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        changed = [
            e["payload"]["change"]
            for e in await events(app, "partner.changed")
            if e["payload"]["partner"] == "same-books"
        ]
        assert changed == ["created", "replaced"]


class TestPartnerKeys:
    async def test_a_partner_key_names_a_partner_that_exists(self, app: FastAPI) -> None:
        with pytest.raises(PartnerNotFound):
            await make_key(app, Scope.partner, partner_id=uuid.uuid4())
        assert (await make_partner_key(app, partner_id=await add_partner(app))).startswith("lk_")


class TestLinksInTheProfile:
    async def test_the_members_profile_lists_their_links_without_the_partners_reference(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        cafe = await _partner(app, client, admin_key, "cafe-one")
        gym = await _partner(app, client, admin_key, "gym-two")
        member = await enrol(client, pos_key)
        other = await enrol(client, pos_key)
        for key, partner, ref, grants in (
            (cafe, "cafe-one", "CAFE-77", ()),
            (gym, "gym-two", "GYM-5", ("points",)),
        ):
            code = await _code(client, pos_key, member["id"], partner, "basic", *grants)
            assert (await _link(client, key, code["code"], ref)).status_code == 201

        profile = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert profile.status_code == 200, profile.text
        links = profile.json()["partner_links"]
        assert [(k["partner"], k["partner_name"], k["grants"]) for k in links] == [
            ("cafe-one", "Cafe-One", ["basic"]),
            ("gym-two", "Gym-Two", ["basic", "points"]),
        ]
        assert all(set(k) == {"partner", "partner_name", "grants", "linked_at"} for k in links)
        assert "CAFE-77" not in profile.text and "GYM-5" not in profile.text
        # the desk finds the reference where the links are managed
        listed = await client.get(f"/v1/members/{member['id']}/partner-links", headers=bearer(pos_key))
        assert [k["partner_customer_ref"] for k in listed.json()["items"]] == ["CAFE-77", "GYM-5"]
        # the till's lookup answers without them; a member linked to no one has none
        found = await client.get(
            "/v1/members/lookup", params={"member_number": member["member_number"]}, headers=bearer(pos_key)
        )
        assert found.status_code == 200 and "partner_links" not in found.json()
        alone = await client.get(f"/v1/members/{other['id']}", headers=bearer(pos_key))
        assert alone.json()["partner_links"] == []

        # GraphQL: the same links, for both members in one query
        query = (
            "query($a: ID!, $b: ID!) { a: loyaltyMember(id: $a) { partnerLinks { partner partnerName grants"
            " linkedAt } } b: loyaltyMember(id: $b) { partnerLinks { partner } } }"
        )
        body = await graphql(client, pos_key, query, a=member["id"], b=other["id"])
        assert "errors" not in body, body
        assert body["data"]["a"]["partnerLinks"] == [
            {
                "partner": k["partner"],
                "partnerName": k["partner_name"],
                "grants": k["grants"],
                "linkedAt": k["linked_at"],
            }
            for k in links
        ]
        assert body["data"]["b"]["partnerLinks"] == []

        # unlinked at our till: gone from the profile at once
        gone = await client.delete(
            f"/v1/members/{member['id']}/partner-links/cafe-one", headers=bearer(pos_key)
        )
        assert gone.status_code == 204
        after = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert [k["partner"] for k in after.json()["partner_links"]] == ["gym-two"]
