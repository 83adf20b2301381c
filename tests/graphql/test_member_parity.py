"""Members through GraphQL give what REST gives: lookups, the member list, enrolment, updates, tier status and
history, under the same scopes and rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import add_tier, enrol, unique_phone
from tests.conftest import bearer
from tests.graphql.helpers import graphql, mutate
from tests.points.helpers import earn, set_program

MEMBER = (
    "id memberNumber status points name phone email birthday channel marketingConsent leaderboardOptIn "
    "referralCode "
    "referredBy externalIds { system externalId } tier { code name rank } lifecycle { stage since } "
    "createdAt updatedAt partnerLinks { partner partnerName grants linkedAt }"
)


def as_rest(member: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL member in REST's shape, to compare field for field."""
    return {
        "id": member["id"],
        "member_number": member["memberNumber"],
        "status": member["status"],
        "points": member["points"],
        "name": member["name"],
        "phone": member["phone"],
        "email": member["email"],
        "birthday": member["birthday"],
        "channel": member["channel"],
        "marketing_consent": member["marketingConsent"],
        "leaderboard_opt_in": member["leaderboardOptIn"],
        "referral_code": member["referralCode"],
        "referred_by": member["referredBy"],
        "external_ids": {e["system"]: e["externalId"] for e in member["externalIds"]},
        "tier": member["tier"],
        "lifecycle": member["lifecycle"],
        "created_at": member["createdAt"],
        "updated_at": member["updatedAt"],
        "partner_links": [
            {
                "partner": k["partner"],
                "partner_name": k["partnerName"],
                "grants": k["grants"],
                "linked_at": k["linkedAt"],
            }
            for k in member["partnerLinks"]
        ],
    }


class TestReads:
    async def test_a_member_reads_as_rest_reads_them(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key, email="Graph@Example.com", external_ids={"shop": "S-9"})
        body = await graphql(
            client, pos_key, f"query($id: ID!) {{ loyaltyMember(id: $id) {{ {MEMBER} }} }}", id=member["id"]
        )
        rest = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert as_rest(body["data"]["loyaltyMember"]) == rest.json()

    async def test_lookup_by_each_identifier(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key, email="lookup@example.com", external_ids={"crm": "C-77"})
        query = """query($n: String, $p: String, $e: String, $s: String, $x: String) {
          loyaltyMemberLookup(
            memberNumber: $n, phone: $p, email: $e, externalSystem: $s, externalId: $x
          ) { id }
        }"""
        for identifier in (
            {"n": member["member_number"]},
            {"p": member["phone"]},
            {"e": "LOOKUP@example.com"},
            {"s": "crm", "x": "C-77"},
        ):
            body = await graphql(client, pos_key, query, **identifier)
            assert body["data"]["loyaltyMemberLookup"] == {"id": member["id"]}, identifier
        nobody = await graphql(client, pos_key, query, e="nobody@example.com")
        assert nobody["data"]["loyaltyMemberLookup"] is None
        # A system name enrolment would refuse is refused, as REST refuses it, not missed.
        spaced = await graphql(client, pos_key, query, s=" crm ", x="C-77")
        assert [e["extensions"]["code"] for e in spaced["errors"]] == ["validation_error"]
        two = await graphql(client, pos_key, query, n=member["member_number"], e="lookup@example.com")
        rest = await client.get(
            "/v1/members/lookup",
            params={"member_number": member["member_number"], "email": "lookup@example.com"},
            headers=bearer(pos_key),
        )
        assert two["errors"][0]["extensions"]["code"] == rest.json()["code"]

    async def test_a_lookup_leaves_out_the_identifiers_sent_empty_as_rest_does(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        query = """query($n: String, $p: String, $e: String, $q: String) {
          loyaltyMemberLookup(memberNumber: $n, phone: $p, email: $e, qrCode: $q) { id } }"""
        body = await graphql(client, pos_key, query, n=member["member_number"], p="", e="", q="")
        assert body.get("data", {}).get("loyaltyMemberLookup") == {"id": member["id"]}, body

    async def test_strings_the_database_would_refuse_are_refused_first(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        nul = await graphql(
            client,
            admin_key,
            '{ loyaltyMemberLookup(externalSystem: "pos", externalId: "a\\u0000b") { id } }',
        )
        assert [e["extensions"]["code"] for e in nul["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
        long = await graphql(
            client,
            admin_key,
            "query($x: String) { loyaltyMembers(tier: $x) { edges { cursor } } }",
            x="t" * 33,
        )
        assert [e["extensions"]["code"] for e in long["errors"]] == ["validation_error"]
        assert "tier" in long["errors"][0]["message"]

    async def test_the_member_list_pages_as_rest_pages(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        for _ in range(3):
            await enrol(client, admin_key)
        query = """query($after: String) { loyaltyMembers(first: 2, after: $after) {
          edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"""
        seen: list[str] = []
        after = None
        while True:
            page = (await graphql(client, admin_key, query, after=after))["data"]["loyaltyMembers"]
            rest = await client.get(
                "/v1/members",
                params={"limit": 2, **({"cursor": after} if after else {})},
                headers=bearer(admin_key),
            )
            assert [e["node"]["id"] for e in page["edges"]] == [m["id"] for m in rest.json()["items"]]
            assert page["pageInfo"]["hasNextPage"] is (rest.json()["next_cursor"] is not None)
            # The end cursor is the last edge's on every page (REST's next cursor while there is one).
            assert page["edges"][-1]["cursor"] == page["pageInfo"]["endCursor"]
            assert rest.json()["next_cursor"] in (None, page["pageInfo"]["endCursor"])
            seen += [e["node"]["id"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) >= 3

    async def test_the_member_list_filters_as_rest_filters(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        july = await enrol(client, pos_key, birthday="1990-07-17")
        await enrol(client, pos_key, birthday="1990-03-17")
        await enrol(client, pos_key)
        await earn(client, pos_key, july["id"], 10_000)  # a purchase: active, the others new
        query = """query($month: Int, $stage: LifecycleStage, $segment: RfmSegment) {
          loyaltyMembers(first: 100, birthdayMonth: $month, lifecycle: $stage, segment: $segment) {
          edges { node { id } } } }"""
        for graph, rest in [
            ({"month": 7}, {"birthday_month": 7}),
            ({"stage": "active"}, {"lifecycle": "active"}),
            ({"month": 7, "stage": "new"}, {"birthday_month": 7, "lifecycle": "new"}),
            ({"segment": "champions"}, {"segment": "champions"}),
        ]:
            page = (await graphql(client, admin_key, query, **graph))["data"]["loyaltyMembers"]
            listed = await client.get("/v1/members", params={"limit": 100, **rest}, headers=bearer(admin_key))
            assert [e["node"]["id"] for e in page["edges"]] == [m["id"] for m in listed.json()["items"]]
        active = (await graphql(client, admin_key, query, stage="active"))["data"]["loyaltyMembers"]["edges"]
        assert july["id"] in [e["node"]["id"] for e in active]
        new_in_july = await graphql(client, admin_key, query, month=7, stage="new")
        assert july["id"] not in [e["node"]["id"] for e in new_in_july["data"]["loyaltyMembers"]["edges"]]
        refused = await graphql(client, admin_key, query, month=13)
        assert refused["errors"][0]["extensions"]["code"] == "validation_error"

    async def test_an_empty_tier_is_no_filter_as_in_rest(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await add_tier(client, admin_key, "member", rank=0)
        member_id = (await enrol(client, admin_key))["id"]
        query = "query($tier: String) { loyaltyMembers(tier: $tier) { edges { node { id } } } }"
        body = await graphql(client, admin_key, query, tier="")
        assert "errors" not in body, body
        assert [e["node"]["id"] for e in body["data"]["loyaltyMembers"]["edges"]] == [member_id]

    async def test_a_tier_spelled_as_no_tier_code_is_refused_as_rest_refuses_it(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await add_tier(client, admin_key, "gold", rank=0)
        await enrol(client, admin_key)
        query = "query($tier: String) { loyaltyMembers(tier: $tier) { edges { node { id } } } }"
        body = await graphql(client, admin_key, query, tier="GOLD")
        assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["validation_error"], body
        assert [e["field"] for e in body["errors"][0]["extensions"]["errors"]] == ["tier"]

    async def test_a_tier_no_tier_has_is_refused_as_rest_refuses_it(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await add_tier(client, admin_key, "gold", rank=0)
        await enrol(client, admin_key)
        query = "query($tier: String) { loyaltyMembers(tier: $tier) { edges { node { id } } } }"
        body = await graphql(client, admin_key, query, tier="platinum")
        assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["validation_error"], body
        assert [e["field"] for e in body["errors"][0]["extensions"]["errors"]] == ["tier"]

    async def test_the_member_list_is_for_admin_keys(self, client: httpx.AsyncClient, pos_key: str) -> None:
        body = await graphql(client, pos_key, "{ loyaltyMembers { edges { node { id } } } }")
        assert body["errors"][0]["extensions"]["code"] == "scope_not_allowed"

    async def test_a_page_larger_than_the_cap_is_refused(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        body = await graphql(client, admin_key, "{ loyaltyMembers(first: 101) { edges { node { id } } } }")
        assert body["errors"][0]["extensions"]["code"] == "validation_error"
        assert "first" in body["errors"][0]["message"]

    async def test_tier_status_and_history_match_rest(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "gql-bronze", rank=41)  # the member enters below silver
        await add_tier(client, admin_key, "gql-silver", rank=42, threshold=100)
        member = await enrol(client, pos_key)
        earned = await client.post(
            f"/v1/members/{member['id']}/earn",
            json={"order_ref": "T-GQL-1", "amount": {"amount": 100_000, "currency": "CNY"}},
            headers=bearer(pos_key),
        )
        assert earned.status_code == 200, earned.text
        query = """query($id: ID!) { loyaltyMember(id: $id) {
          tierStatus { tier { code } since keptUntil overrideUntil ladderVersion
            next { tier { code } metric value threshold remaining } keep { tier { code } by } }
          tierHistory(first: 5) {
            edges { node { fromTier { code } toTier { code } change reason createdAt } }
          }
        } }"""
        found = (await graphql(client, pos_key, query, id=member["id"]))["data"]["loyaltyMember"]
        status = (await client.get(f"/v1/members/{member['id']}/tier", headers=bearer(pos_key))).json()
        history = (
            await client.get(f"/v1/members/{member['id']}/tier/history", headers=bearer(pos_key))
        ).json()
        assert found["tierStatus"]["tier"]["code"] == status["tier"]["code"]
        assert found["tierStatus"]["since"] == status["since"]
        assert found["tierStatus"]["keptUntil"] == status["kept_until"]
        assert found["tierStatus"]["ladderVersion"] == status["ladder_version"]
        assert (found["tierStatus"]["next"] is None) == (status["next"] is None)
        changes = [e["node"] for e in found["tierHistory"]["edges"]]
        assert changes[0]["toTier"] == found["tierStatus"]["tier"] and changes[0]["change"] == "upgrade"
        assert [(c["toTier"]["code"], c["change"], c["createdAt"]) for c in changes] == [
            (c["to_tier"]["code"], c["change"], c["created_at"]) for c in history["items"]
        ]


class TestMutations:
    async def test_enrol_answers_what_rest_reads(self, client: httpx.AsyncClient, pos_key: str) -> None:
        phone = unique_phone()
        payload = await mutate(
            client,
            pos_key,
            "loyaltyEnrolMember",
            f"member {{ {MEMBER} }}",
            input={"phone": phone, "name": "图", "externalIds": [{"system": "pos", "externalId": "P-1"}]},
            idempotency_key=f"enrol-{phone}",
        )
        assert payload["userErrors"] == []
        member = payload["member"]
        rest = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert as_rest(member) == rest.json()
        again = await mutate(
            client,
            pos_key,
            "loyaltyEnrolMember",
            f"member {{ {MEMBER} }}",
            input={"phone": phone, "name": "图", "externalIds": [{"system": "pos", "externalId": "P-1"}]},
            idempotency_key=f"enrol-{phone}",
        )
        assert again["replayed"] is True and again["member"] == member

    async def test_enrol_refusals_are_user_errors(self, client: httpx.AsyncClient, pos_key: str) -> None:
        taken = await enrol(client, pos_key)
        clash = await mutate(
            client, pos_key, "loyaltyEnrolMember", "member { id }", input={"phone": taken["phone"]}
        )
        assert clash["member"] is None and [e["code"] for e in clash["userErrors"]] == ["member_exists"]
        # The field REST names (`"field": "phone"`) is the user error's field, as for any other refusal.
        assert [e["field"] for e in clash["userErrors"]] == ["phone"]
        bad = await mutate(
            client, pos_key, "loyaltyEnrolMember", "member { id }", input={"email": "not-an-email"}
        )
        assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [("email", "validation_error")]
        both = await mutate(
            client,
            pos_key,
            "loyaltyEnrolMember",
            "member { id }",
            input={"email": "not-an-email", "phone": "12345"},
        )
        assert sorted((e["field"], e["code"]) for e in both["userErrors"]) == [
            ("email", "validation_error"),
            ("phone", "validation_error"),
        ]
        # As REST answers it: the message says nothing of the value (the checker's own quotes the `_`).
        quoted = await mutate(
            client, pos_key, "loyaltyEnrolMember", "member { id }", input={"email": "a@13800138000_x.com"}
        )
        rest = await client.post(
            "/v1/members", json={"email": "a@13800138000_x.com"}, headers=bearer(pos_key)
        )
        assert [e["message"] for e in quoted["userErrors"]] == [rest.json()["errors"][0]["message"]]
        assert "13800138000" not in str(quoted) and "_" not in quoted["userErrors"][0]["message"]

    async def test_a_contact_or_external_id_another_member_has_is_the_field_at_fault(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """A form shows `member_exists` beside the field REST names: the e-mail, the external ids."""
        taken = await enrol(client, pos_key, email="taken@example.cn", external_ids={"crm": "C-9"})
        other = await enrol(client, pos_key)
        answers = [
            await mutate(
                client,
                pos_key,
                "loyaltyUpdateMember",
                "member { id }",
                input={"memberId": other["id"], **change},
            )
            for change in (
                {"email": "taken@example.cn"},
                {"externalIds": [{"system": "crm", "externalId": "C-9"}]},
                {"phone": taken["phone"], "name": "x"},
            )
        ]
        assert [[(e["field"], e["code"]) for e in a["userErrors"]] for a in answers] == [
            [("email", "member_exists")],
            [("externalIds", "member_exists")],
            [("phone", "member_exists")],
        ]

    async def test_control_characters_are_refused_as_rest_refuses_them(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        # A tab, spelled `\t` in the document's string literal, would reach receipts and CSV exports.
        query = (
            'mutation { loyaltyEnrolMember(input: {name: "Tab\\there"}) '
            "{ member { id } userErrors { field code } } }"
        )
        body = await graphql(client, pos_key, query)
        payload = body["data"]["loyaltyEnrolMember"]
        rest = await client.post("/v1/members", json={"name": "Tab\there"}, headers=bearer(pos_key))
        assert payload == {"member": None, "userErrors": [{"field": "name", "code": rest.json()["code"]}]}
        assert rest.status_code == 422

    async def test_update_changes_what_is_sent_and_clears_what_is_null(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key, email="old@example.com", external_ids={"pos": "U-1"})
        payload = await mutate(
            client,
            pos_key,
            "loyaltyUpdateMember",
            f"member {{ {MEMBER} }}",
            input={
                "memberId": member["id"],
                "name": "新名",
                "email": None,
                "externalIds": [
                    {"system": "pos", "externalId": None},
                    {"system": "web", "externalId": "W-1"},
                ],
            },
        )
        assert payload["userErrors"] == []
        rest = (await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))).json()
        assert as_rest(payload["member"]) == rest
        assert (rest["name"], rest["email"], rest["phone"]) == ("新名", None, member["phone"])
        assert rest["external_ids"] == {"web": "W-1"}

    @pytest.mark.parametrize("mutation", ["loyaltyUpdateMember", "loyaltyEnrolMember"])
    async def test_a_system_named_twice_is_refused_as_rest_refuses_a_key_twice(
        self, client: httpx.AsyncClient, pos_key: str, mutation: str
    ) -> None:
        member = await enrol(client, pos_key, external_ids={"pos": "U-1"})
        twice = [{"system": "pos", "externalId": "U-2"}, {"system": "pos", "externalId": None}]
        given = {"memberId": member["id"]} if mutation == "loyaltyUpdateMember" else {"name": "图"}
        payload = await mutate(
            client, pos_key, mutation, f"member {{ {MEMBER} }}", input={**given, "externalIds": twice}
        )
        assert payload["member"] is None
        assert payload["userErrors"] == [
            {"field": "externalIds.pos", "code": "validation_error", "message": "names this system twice"}
        ]
        rest = (await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))).json()
        assert rest["external_ids"] == {"pos": "U-1"}  # nothing changed
        listed = await client.get(
            "/v1/members/lookup",
            params={"external_system": "pos", "external_id": "U-2"},
            headers=bearer(pos_key),
        )
        assert listed.status_code == 404

    async def test_changing_status_takes_an_admin_key(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        query = """mutation($input: UpdateMemberInput!) { loyaltyUpdateMember(input: $input) {
          member { status } userErrors { code } } }"""
        by_till = await graphql(
            client, pos_key, query, input={"memberId": member["id"], "status": "suspended"}
        )
        assert by_till["errors"][0]["extensions"]["code"] == "scope_not_allowed"
        by_admin = await graphql(
            client, admin_key, query, input={"memberId": member["id"], "status": "suspended"}
        )
        assert by_admin["data"]["loyaltyUpdateMember"]["member"]["status"] == "suspended"
        rest = await client.get(f"/v1/members/{member['id']}", headers=bearer(admin_key))
        assert rest.json()["status"] == "suspended"
