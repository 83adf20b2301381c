"""Every collection pages the same way: `?limit=` (1–200, default 50) and `?cursor=`, and a reply
`{items, next_cursor}` (with other fields beside them only where they mean something, like the ladder's
`version`). The document is checked for every list it has, and the small catalogues that used to come whole
are walked a page at a time."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.app import openapi_document
from loyalty_api.auth.principal import Scope
from loyalty_api.db.pagination import encode_key
from tests.activities.helpers import add_activity_rule
from tests.builders import add_partner, add_tier, enrol, make_key
from tests.campaigns.helpers import create as create_campaign
from tests.checkout.helpers import add_benefit
from tests.conftest import bearer
from tests.coupons.helpers import give_coupon
from tests.graphql.helpers import graphql
from tests.points.helpers import add_rule, earn, set_program
from tests.rewards.helpers import add_reward
from tests.subscriptions.helpers import add_plan, subscribe
from tests.webhooks.endpoint_helpers import create_endpoint
from tests.webhooks.test_deliveries_api import replay

JSON = {"Accept": "application/json"}  # `/problems` answers HTML to a browser

# Lists the document must have, so the check below cannot pass by finding none.
KNOWN_LISTS = {
    "/v1/analytics/points",
    "/v1/members",
    "/v1/members/{member_id}/ledger",
    "/v1/members/{member_id}/coupons",
    "/v1/members/{member_id}/subscriptions",
    "/v1/members/{member_id}/tier/history",
    "/v1/subscriptions/{subscription_id}/payments",
    "/v1/rewards",
    "/v1/tiers",
    "/v1/tier-versions",
    "/v1/benefits",
    "/v1/plans",
    "/v1/earning-rules",
    "/v1/event-types",
    "/v1/webhook-endpoints",
    "/v1/webhook-endpoints/{endpoint_id}/deliveries",
    "/problems",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(openapi_document())
    return loaded


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _lists(document: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Every GET whose 200 reply has an `items` array: path -> (operation, reply schema)."""
    found = {}
    for path, operations in document["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        content = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        reply = _resolved(document, content["schema"])
        items = reply.get("properties", {}).get("items")
        if items is not None and _resolved(document, items).get("type") == "array":
            found[path] = (operation, reply)
    return found


class TestDocument:
    def test_every_list_takes_limit_and_cursor_and_answers_next_cursor(
        self, document: dict[str, Any]
    ) -> None:
        lists = _lists(document)
        assert set(lists) >= KNOWN_LISTS
        for path, (operation, reply) in lists.items():
            query = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
            assert {"limit", "cursor"} <= set(query), path
            limit = query["limit"]["schema"]
            assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 200, 50), path
            assert "next_cursor" in reply["properties"], path
            assert "next_cursor" in reply.get("required", []), path


async def walk(client: httpx.AsyncClient, key: str, path: str, *, limit: int) -> list[list[dict[str, Any]]]:
    """The pages of a list, following `next_cursor` until it is null."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        response = await client.get(path, params=params, headers=bearer(key))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 500, "the cursor does not move on"


async def whole(client: httpx.AsyncClient, key: str, path: str) -> dict[str, Any]:
    response = await client.get(path, params={"limit": 200}, headers=bearer(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["next_cursor"] is None
    return body


async def assert_pages_one_by_one(client: httpx.AsyncClient, key: str, path: str, count: int) -> None:
    """`?limit=1` gives one item a page and, through the cursor, every item once, in the list's order."""
    everything = (await whole(client, key, path))["items"]
    assert len(everything) == count
    pages = await walk(client, key, path, limit=1)
    assert [len(page) for page in pages] == [1] * count
    assert [item for page in pages for item in page] == everything


class TestPagingThrough:
    async def test_benefits(self, client: httpx.AsyncClient, admin_key: str, pos_key: str) -> None:
        for percent in ("5", "10", "15"):
            await add_benefit(client, admin_key, f"{percent}% off", "percent_discount", percent=percent)
        await assert_pages_one_by_one(client, pos_key, "/v1/benefits", 3)

    async def test_plans(self, client: httpx.AsyncClient, admin_key: str, pos_key: str) -> None:
        await set_program(client, admin_key)
        for code in ("plus", "kids", "family"):
            await add_plan(client, admin_key, code)
        await assert_pages_one_by_one(client, pos_key, "/v1/plans", 3)
        codes = [p["code"] for p in (await whole(client, pos_key, "/v1/plans"))["items"]]
        assert codes == ["family", "kids", "plus"]

    async def test_tiers_keep_the_ladder_version_beside_the_page(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        for rank, code in enumerate(("member", "silver", "gold")):
            await add_tier(client, admin_key, code, rank=rank)
        await assert_pages_one_by_one(client, pos_key, "/v1/tiers", 3)
        first = (await client.get("/v1/tiers", params={"limit": 1}, headers=bearer(pos_key))).json()
        assert set(first) == {"version", "items", "next_cursor"}
        assert (first["version"], first["items"][0]["code"]) == (3, "member")

    async def test_earning_rules_highest_priority_first_ties_oldest_first(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        for name, priority in (("a", 0), ("b", 5), ("c", 0), ("d", -3), ("e", 5)):
            await add_rule(
                client,
                admin_key,
                name=name,
                kind="member_day",
                priority=priority,
                properties={"weekday": 3, "multiplier": "2"},
            )
        await assert_pages_one_by_one(client, admin_key, "/v1/earning-rules", 5)
        names = [r["name"] for r in (await whole(client, admin_key, "/v1/earning-rules"))["items"]]
        assert names == ["b", "e", "a", "c", "d"]

    async def test_event_types_a_fixed_catalogue_still_pages(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        everything = (await whole(client, pos_key, "/v1/event-types"))["items"]
        pages = await walk(client, pos_key, "/v1/event-types", limit=7)
        assert [item for page in pages for item in page] == everything
        assert len(pages) == -(-len(everything) // 7)

    async def test_the_problem_catalogue_pages_as_json(self, client: httpx.AsyncClient) -> None:
        headers = {"Accept": "application/json"}
        first = (await client.get("/problems", params={"limit": 2}, headers=headers)).json()
        assert len(first["items"]) == 2 and first["next_cursor"] is not None
        second = await client.get(
            "/problems", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
        )
        assert second.status_code == 200, second.text
        assert second.json()["items"][0]["code"] > first["items"][1]["code"]

    async def test_an_item_added_between_pages_is_neither_repeated_nor_skips_another(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        for code in ("b-plan", "d-plan"):
            await add_plan(client, admin_key, code)
        first = (await client.get("/v1/plans", params={"limit": 1}, headers=bearer(pos_key))).json()
        await add_plan(client, admin_key, "a-plan")  # sorts before the page already read
        await add_plan(client, admin_key, "c-plan")
        rest = await client.get(
            "/v1/plans", params={"limit": 5, "cursor": first["next_cursor"]}, headers=bearer(pos_key)
        )
        assert [p["code"] for p in rest.json()["items"]] == ["c-plan", "d-plan"]


class TestRefused:
    @pytest.mark.parametrize(
        "path", ["/v1/benefits", "/v1/plans", "/v1/tiers", "/v1/earning-rules", "/v1/event-types"]
    )
    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"cursor": "not*a*cursor"}])
    async def test_a_bad_limit_or_cursor_is_a_422(
        self, client: httpx.AsyncClient, admin_key: str, path: str, params: dict[str, Any]
    ) -> None:
        response = await client.get(path, params=params, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize("path", ["/v1/plans", "/v1/tiers", "/v1/earning-rules", "/v1/event-types"])
    async def test_a_cursor_of_another_list_is_refused_not_misread(
        self, client: httpx.AsyncClient, admin_key: str, path: str
    ) -> None:
        # A benefit's cursor is an id: 16 bytes that are no rank, plan code or priority and id.
        cursor = "AZrf0Ef7cWy1Ilo0JwVrDg"
        response = await client.get(path, params={"cursor": cursor}, headers=bearer(admin_key))
        assert response.status_code == 422, response.text

    @pytest.mark.parametrize("path", ["/v1/leaderboard", "/v1/plans", "/v1/event-types"])
    async def test_a_cursor_forged_with_a_nul_in_its_text_is_a_422(
        self, client: httpx.AsyncClient, admin_key: str, path: str
    ) -> None:
        # Cursors are only base64 of their key: PostgreSQL's text cannot hold the NUL, a 500 when sent on.
        forged = {
            "/v1/leaderboard": encode_key((1000, "a\x00b", 1, 1)),
            "/v1/plans": encode_key(("a\x00b",)),
            "/v1/event-types": encode_key(("a\x00b",)),
        }[path]
        response = await client.get(path, params={"cursor": forged}, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "cursor"


class TestACursorPagesOnlyItsOwnList:
    """A cursor of one member's list (one endpoint's deliveries) given for another's, or for another of the
    member's lists, is refused: read as a place in that list, it gave a page of it that started somewhere in
    its middle, its newest rows left out without a word."""

    async def _member_with_two_of_each(self, app: FastAPI, client: httpx.AsyncClient, key: str) -> str:
        member_id: str = (await enrol(client, key))["id"]
        for _ in range(2):
            await earn(client, key, member_id, 100_00)
            await give_coupon(app, member_id)
        return member_id

    async def test_another_members_cursor_or_another_lists_is_a_422(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        ann = await self._member_with_two_of_each(app, client, admin_key)
        bo = await self._member_with_two_of_each(app, client, admin_key)
        lists = ("ledger", "coupons")
        cursors = {}
        for name in lists:
            first = await client.get(
                f"/v1/members/{ann}/{name}", params={"limit": 1}, headers=bearer(admin_key)
            )
            cursors[name] = first.json()["next_cursor"]
            own = await client.get(
                f"/v1/members/{ann}/{name}", params={"cursor": cursors[name]}, headers=bearer(admin_key)
            )
            assert own.status_code == 200 and len(own.json()["items"]) == 1, own.text
        for name in lists:
            for given in lists:
                for member_id in {ann, bo} - ({ann} if given == name else set()):
                    response = await client.get(
                        f"/v1/members/{member_id}/{name}",
                        params={"cursor": cursors[given]},
                        headers=bearer(admin_key),
                    )
                    assert response.status_code == 422, (name, given, member_id == ann, response.text)
                    assert response.headers["content-type"] == "application/problem+json"
                    problem = response.json()
                    assert problem["code"] == "validation_error"
                    assert [e["field"] for e in problem["errors"]] == ["cursor"]
        # The member's other lists take no cursor of their ledger either.
        for name in ("tier/history", "subscriptions", "exchanges", "partner-perks", "partner-links"):
            response = await client.get(
                f"/v1/members/{ann}/{name}", params={"cursor": cursors["ledger"]}, headers=bearer(admin_key)
            )
            assert response.status_code == 422, (name, response.text)
            assert response.json()["errors"][0]["field"] == "cursor"

    async def test_graphql_takes_only_the_members_own_cursor(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        ann = await self._member_with_two_of_each(app, client, admin_key)
        bo = await self._member_with_two_of_each(app, client, admin_key)
        query = "query($id: ID!, $after: String) { loyaltyMember(id: $id) { ledger(first: 1, after: $after) "
        query += "{ edges { cursor } } } }"
        edge = (await graphql(client, admin_key, query, id=ann))["data"]["loyaltyMember"]["ledger"]["edges"][
            0
        ]
        own = await graphql(client, admin_key, query, id=ann, after=edge["cursor"])
        assert "errors" not in own and len(own["data"]["loyaltyMember"]["ledger"]["edges"]) == 1
        other = await graphql(client, admin_key, query, id=bo, after=edge["cursor"])
        assert [e["extensions"]["code"] for e in other["errors"]] == ["validation_error"]

    async def test_another_endpoints_deliveries_cursor_is_a_422(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        one, other = [await create_endpoint(client, admin_key, event_types=["member.enrolled"]) for _ in "ab"]
        for _ in range(2):
            await enrol(client, admin_key)
        for endpoint in (one, other):
            assert await replay(client, admin_key, endpoint["id"]) == 2
        path = "/v1/webhook-endpoints/{}/deliveries"
        first = await client.get(path.format(one["id"]), params={"limit": 1}, headers=bearer(admin_key))
        cursor = first.json()["next_cursor"]
        own = await client.get(path.format(one["id"]), params={"cursor": cursor}, headers=bearer(admin_key))
        assert own.status_code == 200 and own.json()["items"], own.text
        response = await client.get(
            path.format(other["id"]), params={"cursor": cursor}, headers=bearer(admin_key)
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "cursor"


class TestAWholeListsCursorPagesOnlyThatList:
    """A cursor of one whole list (the members, the rewards) given for another is refused: each was a bare
    id, so the other list read it as a place in itself and gave a page that started somewhere in its
    middle, the rows before the place left out without a word. Lists keyed alike by a code (plans, event
    types, problems) did the same."""

    BY_ID = (
        "/v1/members",
        "/v1/rewards",
        "/v1/benefits",
        "/v1/partners",
        "/v1/activity-rules",
        "/v1/campaigns",
        "/v1/webhook-endpoints",
        "/v1/api-keys",
        "/v1/audit-events",
    )
    BY_CODE = ("/v1/plans", "/v1/event-types", "/problems")

    async def _two_of_each(self, app: FastAPI, client: httpx.AsyncClient, admin_key: str) -> None:
        await set_program(client, admin_key)
        await make_key(app, Scope.pos)
        for n in range(2):
            await enrol(client, admin_key)
            await add_reward(client, admin_key, name=f"reward {n}")
            await add_benefit(client, admin_key, f"{n + 5}% off", "percent_discount", percent=str(n + 5))
            await add_partner(app, f"partner-{n}")
            await add_activity_rule(client, admin_key, type=f"visit_{n}", name=f"visit {n}")
            await create_campaign(client, admin_key, name=f"campaign {n}")
            await create_endpoint(client, admin_key)
            await add_plan(client, admin_key, f"plan-{n}")
            await add_tier(client, admin_key, f"tier-{n}", rank=n)
            await add_rule(
                client,
                admin_key,
                name=f"member day {n}",
                kind="member_day",
                properties={"weekday": n + 1, "multiplier": "2"},
            )

    async def _second_page_cursor(self, client: httpx.AsyncClient, admin_key: str, path: str) -> str:
        first = await client.get(path, params={"limit": 1}, headers=bearer(admin_key) | JSON)
        assert first.status_code == 200, first.text
        cursor: str = first.json()["next_cursor"]
        assert cursor is not None, path
        own = await client.get(path, params={"limit": 1, "cursor": cursor}, headers=bearer(admin_key) | JSON)
        assert own.status_code == 200 and len(own.json()["items"]) == 1, (path, own.text)
        return cursor

    async def test_rest_refuses_every_other_lists_cursor(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await self._two_of_each(app, client, admin_key)
        for group in (self.BY_ID, self.BY_CODE):
            cursors = {path: await self._second_page_cursor(client, admin_key, path) for path in group}
            for path in group:
                for given, cursor in cursors.items():
                    if given == path:
                        continue
                    response = await client.get(
                        path, params={"cursor": cursor}, headers=bearer(admin_key) | JSON
                    )
                    assert response.status_code == 422, (path, given, response.text)
                    assert response.headers["content-type"] == "application/problem+json"
                    problem = response.json()
                    assert problem["code"] == "validation_error", (path, given)
                    assert [e["field"] for e in problem["errors"]] == ["cursor"], (path, given)

    async def test_graphql_refuses_another_lists_cursor_as_after(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await self._two_of_each(app, client, admin_key)
        query = "query($after: String) { %s(first: 1, after: $after) { edges { cursor } } }"
        cursors = {}
        for name in ("loyaltyMembers", "loyaltyRewards", "loyaltyPlans"):
            body = await graphql(client, admin_key, query % name)
            cursors[name] = body["data"][name]["edges"][0]["cursor"]
            own = await graphql(client, admin_key, query % name, after=cursors[name])
            assert "errors" not in own and len(own["data"][name]["edges"]) == 1, (name, own)
        cursors["/v1/benefits"] = await self._second_page_cursor(client, admin_key, "/v1/benefits")
        for name in ("loyaltyMembers", "loyaltyRewards", "loyaltyPlans"):
            for given, cursor in cursors.items():
                if given == name:
                    continue
                body = await graphql(client, admin_key, query % name, after=cursor)
                assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["validation_error"], (
                    name,
                    given,
                    body,
                )
                assert [e["field"] for e in body["errors"][0]["extensions"]["errors"]] == ["after"]
        # REST and GraphQL page the same list with the same cursor.
        rest = await client.get(
            "/v1/members", params={"limit": 5, "cursor": cursors["loyaltyMembers"]}, headers=bearer(admin_key)
        )
        assert rest.status_code == 200 and len(rest.json()["items"]) == 1, rest.text

    async def test_a_cursor_stays_url_safe_and_fits_the_query(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await self._two_of_each(app, client, admin_key)
        for path in (*self.BY_ID, *self.BY_CODE, "/v1/earning-rules", "/v1/tiers", "/v1/tier-versions"):
            first = await client.get(path, params={"limit": 1}, headers=bearer(admin_key) | JSON)
            cursor = first.json()["next_cursor"]
            if cursor is None:
                continue
            # base64url, and no longer than `?cursor=` takes (64): the list's scope makes it longer
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cursor), (path, cursor)


async def test_an_empty_cursor_is_the_first_page(client: httpx.AsyncClient, admin_key: str) -> None:
    # `?cursor=` is what a URL template gives before there is a next_cursor
    for path in ("/v1/event-types", "/v1/members", "/v1/benefits"):
        empty = await client.get(path, params={"cursor": "", "limit": 2}, headers=bearer(admin_key))
        first = await client.get(path, params={"limit": 2}, headers=bearer(admin_key))
        assert empty.status_code == 200, empty.text
        assert empty.json() == first.json()


class TestAnEmptyQueryValueIsLeftOut:
    """`?tier=` is what a generated client or a URL template sends for an optional value it has none of, as
    `?cursor=` before there is a next page: every list reads an empty value as the parameter left out (no
    filter, the default). `?tier=` and the audit log's filters answered an empty page, and `status`,
    `lifecycle`, `segment` and the others 422."""

    async def _path_ids(self, app: FastAPI, client: httpx.AsyncClient, admin_key: str) -> dict[str, str]:
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "member", rank=0)
        member_id: str = (await enrol(client, admin_key))["id"]
        await earn(client, admin_key, member_id, 100_00)
        await give_coupon(app, member_id)
        await add_plan(client, admin_key, "plus", trial_days=7)
        subscription = await subscribe(client, admin_key, member_id, "plus")
        endpoint = await create_endpoint(client, admin_key, event_types=["member.enrolled"])
        await enrol(client, admin_key)
        assert await replay(client, admin_key, endpoint["id"]) == 2
        campaign = await create_campaign(client, admin_key)
        return {
            "member_id": member_id,
            "subscription_id": subscription["id"],
            "endpoint_id": endpoint["id"],
            "campaign_id": campaign["id"],
        }

    async def test_every_optional_parameter_of_every_list(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, document: dict[str, Any]
    ) -> None:
        ids = await self._path_ids(app, client, admin_key)
        # The values a list needs (the window of a report), sent with each call.
        required = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
        headers = bearer(admin_key, accept="application/json")  # /problems answers a browser with a page
        tried = set()
        for path, (operation, _) in _lists(document).items():
            url = path.format_map(ids)
            query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            given = {p["name"]: required[p["name"]] for p in query if p.get("required")}
            left_out = await client.get(url, params=given, headers=headers)
            assert left_out.status_code == 200, (path, left_out.text)
            for parameter in query:
                if parameter.get("required"):
                    continue
                # The document says so: "" is taken, though it is no enum value, tier code or instant.
                assert parameter.get("allowEmptyValue") is True, (path, parameter["name"])
                empty = await client.get(url, params={**given, parameter["name"]: ""}, headers=headers)
                assert empty.status_code == 200, (path, parameter["name"], empty.text)
                assert empty.json() == left_out.json(), (path, parameter["name"])
                tried.add(parameter["name"])
        assert {"tier", "status", "lifecycle", "segment", "subject_type", "action", "type", "since"} <= tried

    async def test_an_empty_filter_beside_a_given_one_filters_by_that_one(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await add_tier(client, admin_key, "member", rank=0)
        member_id = (await enrol(client, admin_key))["id"]
        listed = await client.get(
            "/v1/members",
            params={"tier": "member", "status": "", "lifecycle": "", "segment": "", "birthday_month": ""},
            headers=bearer(admin_key),
        )
        assert listed.status_code == 200, listed.text
        assert [m["id"] for m in listed.json()["items"]] == [member_id]


class TestAnIntegerIsWrittenInDigits:
    """An integer parameter (`?limit=`, `?birthday_month=`, a ladder version in a path) is read from its
    decimal digits alone: `?limit=1.0` was 1 and `?limit=1_0` 10 (Python's reading of an integer's text,
    underscores and all), where `?limit=abc` is 422. Each is 422 as `abc` is, naming the parameter."""

    SPELLINGS = ("1.0", "1_0", "10.00", " 10", "10 ", "+10", "1e1")

    @staticmethod
    def _integers(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """Every GET's integer parameter: (path, operation, parameter)."""
        found = []
        for path, operations in document["paths"].items():
            operation = operations.get("get")
            for parameter in [] if operation is None else operation.get("parameters", []):
                schema = parameter["schema"]
                types = {schema.get("type"), *(part.get("type") for part in schema.get("anyOf", []))}
                if "integer" in types:
                    found.append((path, operation, parameter))
        return found

    @staticmethod
    def _request(
        path: str, operation: dict[str, Any], parameter: dict[str, Any], value: str
    ) -> tuple[str, dict[str, str]]:
        """The URL and query of a call giving `value` for `parameter`, and what else the operation needs."""
        window = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
        query = {
            p["name"]: window[p["name"]]
            for p in operation["parameters"]
            if p["in"] == "query" and p.get("required")
        }
        ids = {name: str(uuid.uuid4()) for name in re.findall(r"{(\w+)}", path)}  # ids, mostly
        ids |= {
            p["name"]: "3"
            for p in operation["parameters"]
            if p["in"] == "path" and "format" not in p["schema"]
        }
        if parameter["in"] == "path":
            return path.format_map(ids | {parameter["name"]: value}), query
        return path.format_map(ids), query | {parameter["name"]: value}

    async def test_every_integer_parameter_refuses_another_spelling(
        self, client: httpx.AsyncClient, admin_key: str, document: dict[str, Any]
    ) -> None:
        headers = bearer(admin_key, accept="application/json")
        integers = self._integers(document)
        assert {(path, p["name"]) for path, _, p in integers} >= {
            ("/v1/members", "limit"),
            ("/v1/members", "birthday_month"),
            ("/v1/members/{member_id}/ledger", "limit"),
            ("/v1/audit-events", "limit"),
            ("/v1/analytics/points", "limit"),
            ("/v1/tier-versions/{version}", "version"),
        }
        for path, operation, parameter in integers:
            name = parameter["name"]
            url, query = self._request(path, operation, parameter, "abc")
            refused = await client.get(url, params=query, headers=headers)
            assert refused.status_code == 422, (path, name, refused.text)
            [expected] = [e for e in refused.json()["errors"] if e["field"] == name]
            for spelling in self.SPELLINGS:
                url, query = self._request(path, operation, parameter, spelling)
                answer = await client.get(url, params=query, headers=headers)
                assert answer.status_code == 422, (path, name, spelling, answer.text)
                assert answer.json()["code"] == "validation_error"
                errors = [e for e in answer.json()["errors"] if e["field"] == name]
                assert errors == [expected], (path, spelling)

    async def test_digits_are_taken_with_leading_zeros(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """A month written with two digits, as dates write it, is that month; a number below 1 is out of
        range, as it was."""
        await enrol(client, admin_key)
        for params in ({"limit": "007"}, {"birthday_month": "03"}):
            answer = await client.get("/v1/members", params=params, headers=bearer(admin_key))
            assert answer.status_code == 200, (params, answer.text)
        below = await client.get("/v1/members", params={"limit": "-1"}, headers=bearer(admin_key))
        assert below.status_code == 422
        assert below.json()["errors"][0]["type"] == "greater_than_equal"
