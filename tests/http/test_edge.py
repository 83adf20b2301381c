"""The edge: body cap, the key before the body, JSON it refuses, GraphQL before parsing, the time limit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.auth.principal import Scope
from loyalty_api.settings import Settings
from tests.apps import serving
from tests.builders import enrol, make_key
from tests.conftest import bearer
from tests.databases import is_postgres, side_engine
from tests.inspect_db import count
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import ledger
from tests.points.helpers import cny, earn, points, set_program

MIB = 1024 * 1024
CHUNK = 64 * 1024


class CountedBody:
    """A streamed request body that remembers how much of it the server pulled."""

    def __init__(self, total: int, byte: bytes = b" ") -> None:
        self.total = total
        self.byte = byte
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            chunk = self.byte * min(CHUNK, self.total - self.sent)
            self.sent += len(chunk)
            yield chunk


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


class TestBodyCap:
    async def test_a_declared_body_over_the_cap_is_refused_before_it_is_read(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = CountedBody(100 * MIB)
        response = await client.post(
            "/v1/members",
            content=body,
            headers={**bearer(pos_key), "Content-Type": "application/json", "Content-Length": str(100 * MIB)},
        )
        problem = assert_problem(response, 413, "payload_too_large")
        assert problem["max_bytes"] == MIB
        assert body.sent == 0
        assert await count(app, "members") == 0

    async def test_a_streamed_body_is_cut_at_the_cap(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = CountedBody(50 * MIB)  # chunked: no Content-Length to refuse it by
        response = await client.post(
            "/v1/members", content=body, headers={**bearer(pos_key), "Content-Type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")
        assert MIB < body.sent <= MIB + CHUNK
        assert await count(app, "members") == 0

    async def test_the_cap_applies_to_graphql(self, client: httpx.AsyncClient, pos_key: str) -> None:
        body = CountedBody(5 * MIB, b"a")
        response = await client.post(
            "/graphql", content=body, headers={**bearer(pos_key), "Content-Type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")
        assert body.sent <= MIB + CHUNK

    async def test_a_body_under_the_cap_goes_through(self, client: httpx.AsyncClient, pos_key: str) -> None:
        content = '{"name": "大"' + " " * (MIB - 100) + "}"  # whitespace is valid JSON
        response = await client.post(
            "/v1/members", content=content, headers={**bearer(pos_key), "Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text


class TestRequestLineAndHeaders:
    async def test_a_query_string_over_16_kib_is_414_before_the_key_is_checked(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/graphql", params={"query": "{ " + "a " * 9000 + "}"})
        assert_problem(response, 414, "uri_too_long")

    async def test_headers_over_32_kib_are_431(self, client: httpx.AsyncClient, pos_key: str) -> None:
        headers = {**bearer(pos_key), **{f"X-Filler-{i}": "f" * 1000 for i in range(40)}}
        response = await client.get("/v1/program", headers=headers)
        assert_problem(response, 431, "headers_too_large")


class TestKeyBeforeBody:
    @pytest.mark.parametrize("path", ["/v1/members", "/graphql", "/v1/nowhere"])
    async def test_without_a_key_no_byte_of_the_body_is_read(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        body = CountedBody(10 * MIB, b"a")
        response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert_problem(response, 401, "invalid_api_key")
        assert response.headers["www-authenticate"] == "Bearer"
        assert body.sent == 0

    async def test_a_wrong_key_reads_no_body_either(self, client: httpx.AsyncClient, pos_key: str) -> None:
        body = CountedBody(MIB // 2, b"a")
        wrong = pos_key[:-4] + "AAAA"
        response = await client.post("/graphql", content=body, headers=bearer(wrong))
        assert_problem(response, 401, "invalid_api_key")
        assert body.sent == 0

    async def test_a_key_sent_twice_is_refused_whichever_comes_first(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        # A proxy that checks one line and the service that reads the other must never disagree on who calls.
        admin = await make_key(app, Scope.admin)
        for first, second in [(pos_key, admin), (admin, pos_key), (pos_key, pos_key)]:
            response = await client.put(
                "/v1/program",
                json={"currency": "CNY"},
                headers=[("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")],
            )
            assert_problem(response, 401, "invalid_api_key")
            assert "sent 2 times" in response.json()["detail"]

    async def test_behind_a_root_path_the_api_still_needs_a_key(self, app: FastAPI, pos_key: str) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path="/loyalty")
        async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as proxied:
            refused = await proxied.post("/loyalty/graphql", json={"query": "{ __typename }"})
            assert_problem(refused, 401, "invalid_api_key")
            assert_problem(await proxied.get("/loyalty/v1/program"), 401, "invalid_api_key")
            served = await proxied.get("/loyalty/v1/program", headers=bearer(pos_key))
            assert served.status_code == 200, served.text

    async def test_the_public_pages_need_no_key(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200
        ide = await client.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 200
        assert "graphiql" in ide.text.lower()

    async def test_a_graphql_query_over_get_needs_a_key(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/graphql", params={"query": "{ __typename }"})
        assert_problem(response, 401, "invalid_api_key")


class TestHostileJson:
    @pytest.mark.parametrize(
        "content",
        [
            '{"a":"\\u0000","b":' + "[" * 1000 + "1" + "]" * 1000 + "}",
            # No escape in the text: only the nesting gives it away (the default limit is 32 levels).
            '{"name":"Li Na","external_ids":' + '{"a":' * 33 + "1" + "}" * 33 + "}",
        ],
        ids=["with-escapes", "plain-text"],
    )
    async def test_deep_nesting_is_422_not_500(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, content: str
    ) -> None:
        response = await client.post(
            "/v1/members", content=content, headers={**bearer(pos_key), "Content-Type": "application/json"}
        )
        problem = assert_problem(response, 422, "validation_error")
        assert {e["type"] for e in problem["errors"]} == {"json_too_deep"}
        assert await count(app, "members") == 0

    async def test_many_brackets_within_the_nesting_limit_are_taken(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        items = [
            {"sku": f"SKU-{n}", "quantity": 1, "unit_price": {"amount": 100, "currency": "CNY"}}
            for n in range(40)
        ]
        body = {
            "member_id": member["id"],
            "cart": {"subtotal": {"amount": 4_000, "currency": "CNY"}, "items": items},
        }
        response = await client.post("/v1/checkout/quote", json=body, headers=bearer(pos_key))
        assert response.status_code == 200, response.text
        assert response.json()["total"] == {"amount": 4_000, "currency": "CNY"}

    async def test_nesting_deeper_than_the_parser_goes_is_422(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        content = "[" * 200_000 + "]" * 200_000
        response = await client.post(
            "/v1/members", content=content, headers={**bearer(pos_key), "Content-Type": "application/json"}
        )
        assert_problem(response, 422, "validation_error")

    async def test_a_duplicate_key_is_refused_and_redeems_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 200_000, order_ref="D1")
        before = await points(client, pos_key, member["id"])
        content = '{"points": 1, "order_ref": "R-dup", "points": 1000}'
        response = await client.post(
            f"/v1/members/{member['id']}/redeem",
            content=content,
            headers={**bearer(pos_key), "Content-Type": "application/json"},
        )
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"] == [
            {
                "field": "points",
                "location": "body",
                "message": "appears twice in one object",
                "type": "json_duplicate_key",
            }
        ]
        assert await points(client, pos_key, member["id"]) == before

    @pytest.mark.parametrize(
        "number",
        [
            "1" * 5_000,  # past the digits Python's and pydantic's parsers convert
            "1" + "0" * 5_000 + ".0",
            "-" + "9" * 4_301 + "e2",
        ],
        ids=["integer", "whole-with-a-fraction", "exponent"],
    )
    async def test_a_number_of_thousands_of_digits_is_422_naming_its_field(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str, number: str
    ) -> None:
        """Valid JSON (nothing caps a number's length): refused as a value, like `1e400`, not as a body
        that does not parse (400 `malformed_json`), nor as one that "is not valid JSON" with no field."""
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 200_000, order_ref="N1")
        before = await points(client, pos_key, member["id"])
        response = await client.post(
            f"/v1/members/{member['id']}/redeem",
            content='{"points": ' + number + ', "order_ref": "R-long"}',
            headers={**bearer(pos_key), "Content-Type": "application/json"},
        )
        problem = assert_problem(response, 422, "validation_error")
        assert [(e["field"], e["type"]) for e in problem["errors"]] == [("points", "number_too_long")]
        assert len(response.content) < 1_000  # the number is not echoed
        assert await points(client, pos_key, member["id"]) == before

    async def test_a_lone_surrogate_is_422_not_500(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        response = await client.post(
            "/v1/members",
            content='{"name": "a\\ud800b"}',
            headers={**bearer(pos_key), "Content-Type": "application/json"},
        )
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["field"] == "name"
        assert await count(app, "members") == 0

    async def test_the_error_does_not_grow_with_the_input(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        long_key = "k" * 100_000
        content = json.dumps({"items": ["\u0000"] * 5000}).replace("items", long_key)
        response = await client.post(
            "/v1/members", content=content, headers={**bearer(pos_key), "Content-Type": "application/json"}
        )
        assert_problem(response, 422, "validation_error")
        assert len(response.content) < 10_000


class TestGraphQLBeforeParsing:
    @pytest.mark.parametrize("content", ["null", '"x"', "[]", "1", "{", "[[[[", '{"query": 1}', ""])
    async def test_a_body_that_is_not_an_operation_is_a_problem_not_a_500(
        self, client: httpx.AsyncClient, pos_key: str, content: str
    ) -> None:
        response = await client.post(
            "/graphql", content=content, headers={**bearer(pos_key), "Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/problem+json"

    async def test_a_document_over_the_token_limit_is_refused_before_parsing(
        self, client: httpx.AsyncClient, pos_key: str, settings: Settings
    ) -> None:
        aliases = "{" + " ".join(f"a{i}: __typename" for i in range(1000)) + "}"  # 3,002 tokens
        response = await client.post("/graphql", json={"query": aliases}, headers=bearer(pos_key))
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["type"] == "graphql_too_many_tokens"
        over = "{" + " ".join(f"a{i}:__typename" for i in range(400)) + "}"  # 1,202 tokens in 7 KB
        over_get = await client.get("/graphql", params={"query": over}, headers=bearer(pos_key))
        assert_problem(over_get, 422, "validation_error")
        under = "{" + " ".join(f"a{i}: __typename" for i in range(300)) + "}"  # 902 tokens
        # 300 aliases are refused on their own (LOYALTY_GRAPHQL_MAX_ALIASES): here only the token limit counts
        async with serving(settings, graphql_max_aliases=1_000) as (_, lenient):
            response = await lenient.post("/graphql", json={"query": under}, headers=bearer(pos_key))
        assert response.status_code == 200
        assert len(response.json()["data"]) == 300

    async def test_error_messages_never_echo_the_document(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        marker = "Z" * 20_000
        for document in (
            f"{{ {marker} }}",
            f'{{ loyaltyMember(id: "{marker}") {{ id }} }}',
            f"{{ a {marker}",
            marker,
            # A quote escaped inside the value: the guard cuts the whole of it, not from that quote on.
            f'{{ loyaltyMembers(first: "{marker[:100]}\\"{marker[:100]}") {{ edges {{ cursor }} }} }}',
        ):
            response = await client.post("/graphql", json={"query": document}, headers=bearer(pos_key))
            assert response.status_code in (200, 400), response.text
            assert "Z" * 50 not in response.text
            assert len(response.content) < 2_000

    async def test_the_sdl_is_public_only_when_a_setting_says_so(
        self, app: FastAPI, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        sdl_query = {"query": "{ _service { sdl } }"}
        refused = await client.post("/graphql", json=sdl_query)
        assert_problem(refused, 401, "invalid_api_key")
        async with serving(settings, graphql_public_sdl=True) as (_, anonymous):
            response = await anonymous.post("/graphql", json=sdl_query)
            assert response.status_code == 200
            assert "@key" in response.json()["data"]["_service"]["sdl"]
            # Anything beyond the SDL still needs a key.
            member = await anonymous.post("/graphql", json={"query": '{ loyaltyMember(id: "x") { id } }'})
            assert member.json()["errors"][0]["extensions"]["code"] == "invalid_api_key"
            big = await anonymous.post("/graphql", json={"query": "{ _service { sdl } }" + " " * 20_000})
            assert_problem(big, 413, "payload_too_large")


@pytest.mark.skipif(not is_postgres(), reason="holds a row lock from a second PostgreSQL connection")
@pytest.mark.usefixtures("app")  # the session's app migrates the database these tests serve again
class TestTimeLimit:
    async def test_a_request_stuck_past_the_limit_is_cut_off_and_its_key_is_free_again(
        self, settings: Settings
    ) -> None:
        _, till, member = await prepared(settings, purchase=10_000)
        async with serving(settings, request_timeout_seconds=1.0) as (app, client):
            before = await points(client, till, member["id"])
            headers = bearer(till) | {"Idempotency-Key": "till-3-receipt-9"}
            body = {"points": 30, "order_ref": "R-slow"}
            engine = side_engine(settings)
            try:
                async with engine.connect() as gate:  # another transaction holds the account's lock
                    await gate.execute(
                        text("SELECT 1 FROM points_accounts WHERE member_id = :m FOR UPDATE"),
                        {"m": uuid.UUID(member["id"])},
                    )
                    stuck = await client.post(
                        f"/v1/members/{member['id']}/redeem", json=body, headers=headers
                    )
                    await gate.rollback()
            finally:
                await engine.dispose()
            problem = assert_problem(stuck, 503, "request_timed_out")
            assert stuck.headers["retry-after"] == "1"
            assert "rolled back" in problem["detail"]
            assert await points(client, till, member["id"]) == before
            # The retry with the same key runs: the cut-off request's claim lasted no longer than the limit.
            retried = await client.post(f"/v1/members/{member['id']}/redeem", json=body, headers=headers)
            assert retried.status_code == 200, retried.text
            assert (await points(client, till, member["id"]))["balance"] == before["balance"] - 30
            await assert_ledger_invariant(app, member["id"])

    async def test_a_graphql_mutation_stuck_past_the_limit_is_cut_off_and_its_key_is_free_again(
        self, settings: Settings
    ) -> None:
        _, till, member = await prepared(settings, purchase=10_000)
        async with serving(settings, request_timeout_seconds=1.0) as (app, client):
            before = await points(client, till, member["id"])
            redeem = {
                "query": "mutation($input: RedeemPointsInput!) { loyaltyRedeemPoints(input: $input, "
                'idempotencyKey: "till-3-receipt-10") { redeemed { balance } userErrors { code } } }',
                "variables": {"input": {"memberId": member["id"], "points": 30, "orderRef": "R-slow-g"}},
            }
            engine = side_engine(settings)
            try:
                async with engine.connect() as gate:  # another transaction holds the account's lock
                    await gate.execute(
                        text("SELECT 1 FROM points_accounts WHERE member_id = :m FOR UPDATE"),
                        {"m": uuid.UUID(member["id"])},
                    )
                    stuck = await client.post("/graphql", json=redeem, headers=bearer(till))
                    await gate.rollback()
            finally:
                await engine.dispose()
            # Cut off by the mutation's own limit; on a machine slow enough that its rollback outlasts the
            # grace, by the edge's backstop (a problem, not a GraphQL answer): the same code either way.
            answer = stuck.json()
            code = answer["errors"][0]["extensions"]["code"] if stuck.status_code == 200 else answer["code"]
            assert code == "request_timed_out", answer
            assert await points(client, till, member["id"]) == before
            retried = (await client.post("/graphql", json=redeem, headers=bearer(till))).json()
            assert retried["data"]["loyaltyRedeemPoints"]["redeemed"]["balance"] == before["balance"] - 30
            await assert_ledger_invariant(app, member["id"])

    async def test_a_commit_under_way_when_the_backstop_falls_is_finished_and_answered(
        self, settings: Settings
    ) -> None:
        """The route's own limit covers the endpoint; its commit is never cut off, so the till is not told
        `request_timed_out` (rolled back) for an earn that landed: over REST and over GraphQL."""
        _, till, member = await prepared(settings, purchase=0)
        async with serving(settings, request_timeout_seconds=1.0) as (app, client):
            before = await points(client, till, member["id"])
            async with commits_slowed(settings):
                rest = await client.post(
                    f"/v1/members/{member['id']}/earn",
                    json={"amount": cny(2500), "order_ref": "R-slow-commit"},
                    headers=bearer(till),
                )
                graphql = await client.post(
                    "/graphql",
                    json={
                        "query": "mutation($input: EarnPointsInput!) { loyaltyEarnPoints(input: $input) "
                        "{ earned { pointsEarned } userErrors { code } } }",
                        "variables": {
                            "input": {
                                "memberId": member["id"],
                                "orderRef": "G-slow-commit",
                                "amount": cny(2500),
                            }
                        },
                    },
                    headers=bearer(till),
                )
            assert rest.status_code == 200, rest.text
            assert graphql.status_code == 200 and "errors" not in graphql.json(), graphql.text
            earned = (
                rest.json()["points_earned"]
                + graphql.json()["data"]["loyaltyEarnPoints"]["earned"]["pointsEarned"]
            )
            after = await points(client, till, member["id"])
            assert after["balance"] == before["balance"] + earned > before["balance"]
            await assert_ledger_invariant(app, member["id"])

    async def test_each_mutation_after_a_commit_keeps_its_own_limit(self, settings: Settings) -> None:
        """Once the first mutation of a document has committed, the backstop stands down; a later one whose
        Idempotency-Key is held elsewhere is still cut off at its own limit (it waited as long as the key was
        held)."""
        admin, till, member = await prepared(settings, purchase=10_000)
        async with serving(settings, request_timeout_seconds=1.0) as (app, client):
            redeem = (
                "mutation($m: ID!) { second: loyaltyRedeemPoints(input: {memberId: $m, points: 10, "
                'orderRef: "G-R1"}, idempotencyKey: "K-1") { redeemed { balance } userErrors { code } } }'
            )
            done = await client.post(
                "/graphql", json={"query": redeem, "variables": {"m": member["id"]}}, headers=bearer(till)
            )
            assert "errors" not in done.json(), done.text
            both = redeem.replace(
                "mutation($m: ID!) {",
                'mutation($m: ID!) { first: loyaltyEarnPoints(input: {memberId: $m, orderRef: "G-E1", '
                'amount: {amount: 1000, currency: "CNY"}}) { earned { pointsEarned } } ',
            )
            engine = side_engine(settings)
            try:
                async with engine.connect() as gate:  # another request holds the key's record
                    await gate.execute(text("SELECT 1 FROM idempotency_records WHERE key = 'K-1' FOR UPDATE"))
                    answering = asyncio.create_task(
                        client.post(
                            "/graphql",
                            json={"query": both, "variables": {"m": member["id"]}},
                            headers=bearer(till),
                        )
                    )
                    await asyncio.wait({answering}, timeout=20)
                    assert answering.done(), "the second mutation waited past its limit"
                    await gate.rollback()
            finally:
                await engine.dispose()
            answer = answering.result().json()
            # A payload is never null: the error takes the document's data with it, the first earn stays.
            assert [e["extensions"]["code"] for e in answer["errors"]] == ["request_timed_out"]
            [earned] = [e for e in await ledger(client, admin, member["id"]) if e["order_ref"] == "G-E1"]
            assert earned["amount"] == 10
            await assert_ledger_invariant(app, member["id"])


async def prepared(settings: Settings, *, purchase: int) -> tuple[str, str, dict[str, Any]]:
    """An admin key, a till key and a member who earned on `purchase` (if any), set up under the default
    limit: on a loaded machine a request on a fresh database may itself outlast the 1 s limit under test."""
    async with serving(settings) as (app, client):
        admin, till = await make_key(app, Scope.admin), await make_key(app, Scope.pos)
        await set_program(client, admin)
        member = await enrol(client, till)
        if purchase:
            await earn(client, till, member["id"], purchase)
    return admin, till, member


@asynccontextmanager
async def commits_slowed(settings: Settings) -> AsyncIterator[None]:
    """Inside, a commit that wrote a ledger entry takes longer than a 1 s limit and its grace together."""
    engine = side_engine(settings)
    try:
        async with engine.begin() as ddl:
            await ddl.execute(text(SLOW_COMMIT))
            await ddl.execute(text(SLOW_COMMIT_TRIGGER))
        try:
            yield
        finally:
            async with engine.begin() as ddl:
                await ddl.execute(text("DROP TRIGGER slow_commit ON ledger_entries"))
                await ddl.execute(text("DROP FUNCTION slow_commit()"))
    finally:
        await engine.dispose()


SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(2.5); RETURN NULL; END $$
"""
SLOW_COMMIT_TRIGGER = """
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ledger_entries
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()
"""
