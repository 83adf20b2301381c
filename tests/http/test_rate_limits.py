"""Rate limits: per key (scope defaults, the key's own rate), contact lookups, failed keys; memory, Redis."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import coredis
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import Scope
from loyalty_api.http import rate_limits
from loyalty_api.members import member_number
from loyalty_api.profiles import service as profiles
from loyalty_api.settings import Settings
from tests.apps import client_for, serving
from tests.builders import enrol, make_key, unique_phone
from tests.conftest import bearer, units_of
from tests.databases import lock_waiters, side_engine

REDIS_ENV = "LOYALTY_TEST_REDIS_URL"


@pytest.fixture(autouse=True)
def _tables_emptied_after(app: FastAPI) -> None:
    """Tests here serve apps of their own on the test database: asking for `app` has conftest's clean-up
    empty the tables after them too, as after every other test."""


needs_redis = pytest.mark.skipif(
    not os.environ.get(REDIS_ENV), reason=f"{REDIS_ENV} is not set (.ci/run starts Redis and sets it)"
)


def assert_limited(response: httpx.Response, budget: str, quota: int, window: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    wait = int(response.headers["retry-after"])
    # A call costing much of the budget can wait into the next window, until what was spent in this one
    # weighs little enough.
    assert 1 <= wait <= 2 * window
    assert response.headers["ratelimit-policy"] == f'"{budget}";q={quota};w={window}'
    assert response.headers["ratelimit"] == f'"{budget}";r=0;t={wait}'


def random_address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def get_program(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.get("/v1/program", headers=bearer(key))


async def assert_one_phone_left(client: httpx.AsyncClient, key: str, path: str) -> None:
    """The key's contact-lookup budget (1/minute) is whole: the member at `path` takes one new phone, then
    no other."""
    assert (await client.patch(path, json={"phone": unique_phone()}, headers=bearer(key))).status_code == 200
    assert_limited(
        await client.patch(path, json={"phone": unique_phone()}, headers=bearer(key)), "contact-lookup", 1, 60
    )


async def another_writer_can_write(settings: Settings) -> bool:
    """Whether a writer outside the service could write now, without waiting: on SQLite take the database's
    write lock, on PostgreSQL lock every member's row."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        probe = sqlite3.connect(url.database or "", timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return False
        finally:
            probe.close()
        return True
    engine = side_engine(settings)
    try:
        async with engine.connect() as probe:
            await probe.execute(text("SELECT 1 FROM members FOR UPDATE NOWAIT"))
            await probe.rollback()
    except DBAPIError:
        return False
    finally:
        await engine.dispose()
    return True


async def writes_waiting(settings: Settings, expected: int) -> int:
    """How many sessions of the PostgreSQL test database wait for a lock, once `expected` do or after five
    seconds (the caller's assertion then says what went wrong)."""
    engine = side_engine(settings)
    try:
        async with engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            for _ in range(500):
                if await lock_waiters(watcher) >= expected:
                    break
                await asyncio.sleep(0.01)
            return await lock_waiters(watcher)
    finally:
        await engine.dispose()


@asynccontextmanager
async def relayed(redis: str, probe: Callable[[], Awaitable[None]]) -> AsyncIterator[str]:
    """A relay to `redis` that awaits `probe` whenever a command about the contact-lookup budget comes
    through, before passing it on; yields the relay's URL."""
    target = urlsplit(redis)

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, watched: bool) -> None:
        try:
            while chunk := await source.read(65536):
                if watched and b"contact-lookup" in chunk:
                    await probe()
                sink.write(chunk)
                await sink.drain()
        finally:
            sink.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(target.hostname, target.port or 6379)
        await asyncio.gather(
            pump(reader, upstream_writer, watched=True),
            pump(upstream_reader, writer, watched=False),
            return_exceptions=True,
        )

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}{target.path or '/0'}"
    finally:
        server.close()


class TestPerKey:
    async def test_a_key_over_its_own_rate_gets_429_and_others_go_on(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        limited = await make_key(app, Scope.pos, rate_limit="5/minute")
        answers = [await get_program(client, limited) for _ in range(6)]
        assert [a.status_code for a in answers[:5]] == [200] * 5
        assert_limited(answers[5], "key", 5, 60)
        assert (await get_program(client, pos_key)).status_code == 200

    async def test_scope_defaults_come_from_settings(self, settings: Settings) -> None:
        async with serving(settings, rate_limit_pos="3/minute") as (app, client):
            till = await make_key(app, Scope.pos)
            office = await make_key(app, Scope.admin)
            both = await make_key(app, Scope.pos, Scope.admin)
            statuses = [(await get_program(client, till)).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            # A key with several scopes gets the most generous of their budgets.
            assert {(await get_program(client, key)).status_code for key in [office, both] * 5} == {200}

    async def test_a_graphql_call_costs_more_the_longer_its_document(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        key = await make_key(app, Scope.pos, rate_limit="12/minute")
        long_query = {"query": "{" + " ".join(f"a{i}: __typename" for i in range(166)) + "}"}  # 500 tokens
        first = await client.post("/graphql", json=long_query, headers=bearer(key))
        assert first.status_code == 200  # 1 unit for the call and 10 for its 500 tokens: 11 of 12
        assert_limited(await client.post("/graphql", json=long_query, headers=bearer(key)), "key", 12, 60)
        short = await make_key(app, Scope.pos, rate_limit="12/minute")
        statuses = [
            (
                await client.post("/graphql", json={"query": "{ __typename }"}, headers=bearer(short))
            ).status_code
            for _ in range(12)
        ]
        assert statuses == [200] * 12

    async def test_a_document_refused_for_its_length_costs_what_one_at_the_limit_would(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        key = await make_key(app, Scope.pos, rate_limit="22/minute")
        aliases = {"query": "{" + " ".join(f"a{i}: __typename" for i in range(1000)) + "}"}
        refused = await client.post("/graphql", json=aliases, headers=bearer(key))
        assert refused.status_code == 422  # 1 unit for the call, 20 for 1,000 tokens: 21 of 22
        small = {"query": "{ __typename }"}
        assert (await client.post("/graphql", json=small, headers=bearer(key))).status_code == 200
        assert_limited(await client.post("/graphql", json=small, headers=bearer(key)), "key", 22, 60)

    async def test_a_body_cut_at_the_cap_costs_a_unit_per_64_kib_read(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        key = await make_key(app, Scope.pos, rate_limit="20/minute")

        async def two_mib() -> AsyncIterator[bytes]:
            for _ in range(32):
                yield b" " * 65536

        streamed = await client.post(
            "/v1/members", content=two_mib(), headers={**bearer(key), "Content-Type": "application/json"}
        )
        assert streamed.status_code == 413  # 1 unit for the call, 16 for the 1 MiB read: 17 of 20
        assert [(await get_program(client, key)).status_code for _ in range(4)] == [200, 200, 200, 429]

    async def test_a_bad_rate_is_refused_when_the_key_is_made(self, app: FastAPI) -> None:
        from loyalty_api.errors import InvalidField

        with pytest.raises(InvalidField):
            await make_key(app, Scope.pos, rate_limit="lots")

    async def test_with_limits_off_nothing_is_refused(self, settings: Settings) -> None:
        async with serving(settings, rate_limits_enabled=False) as (app, client):
            key = await make_key(app, Scope.pos, rate_limit="1/minute")
            assert {(await get_program(client, key)).status_code for _ in range(5)} == {200}


class TestContactLookups:
    async def test_lookups_by_phone_or_email_have_a_small_budget_of_their_own(
        self, settings: Settings
    ) -> None:
        async with serving(settings, rate_limit_contact_lookup="3/minute") as (app, client):
            key = await make_key(app, Scope.pos)
            member = await enrol(client, key, email="walker@example.cn")
            tries: list[dict[str, Any]] = [
                {"phone": member["phone"]},
                {"email": "walker@example.cn"},
                {"phone": "+8613900000001"},
            ]
            answers = [await client.get("/v1/members/lookup", params=p, headers=bearer(key)) for p in tries]
            assert [a.status_code for a in answers] == [200, 200, 404]
            fourth = await client.get(
                "/v1/members/lookup", params={"phone": member["phone"]}, headers=bearer(key)
            )
            assert_limited(fourth, "contact-lookup", 3, 60)
            assert member["phone"] not in fourth.text
            # The card number is what a till scans: it is not limited by this budget.
            by_card = await client.get(
                "/v1/members/lookup", params={"member_number": member["member_number"]}, headers=bearer(key)
            )
            assert by_card.status_code == 200
            other_key = await make_key(app, Scope.pos)
            fresh = await client.get(
                "/v1/members/lookup", params={"phone": member["phone"]}, headers=bearer(other_key)
            )
            assert fresh.status_code == 200


class TestContactConflicts:
    """A write's 409 `member_exists` on a phone or e-mail tells the caller that someone is a member, as a
    look-up by it would, and an update's 200 that no one is: they spend the same budget, so no key tests
    numbers at its full rate by writes."""

    async def test_enrolments_and_updates_that_find_a_contact_taken_spend_the_contact_lookup_budget(
        self, settings: Settings
    ) -> None:
        async with serving(settings, rate_limit_contact_lookup="2/minute") as (app, client):
            walker, till = await make_key(app, Scope.pos), await make_key(app, Scope.pos)
            taken = await enrol(client, till, email="taken@example.cn")
            # New customers with new phones and e-mails spend nothing, however many.
            own = [await enrol(client, walker, email=f"new{n}@example.cn") for n in range(3)]
            tries = [
                await client.post("/v1/members", json={"phone": taken["phone"]}, headers=bearer(walker)),
                await client.patch(
                    f"/v1/members/{own[0]['id']}", json={"email": "taken@example.cn"}, headers=bearer(walker)
                ),
            ]
            assert [t.json()["code"] for t in tries] == ["member_exists", "member_exists"]
            for body in ({"phone": taken["phone"]}, {"phone": unique_phone()}):
                refused = await client.post("/v1/members", json=body, headers=bearer(walker))
                assert_limited(refused, "contact-lookup", 2, 60)
            patched = await client.patch(
                f"/v1/members/{own[1]['id']}", json={"email": "taken@example.cn"}, headers=bearer(walker)
            )
            assert_limited(patched, "contact-lookup", 2, 60)
            # Writes that name no phone or e-mail go on, and other keys are not held up.
            assert (await client.post("/v1/members", json={}, headers=bearer(walker))).status_code == 201
            assert (await enrol(client, till, email="another@example.cn"))["email"] == "another@example.cn"

    async def test_a_graphql_enrolment_finding_a_contact_taken_spends_it_too(
        self, settings: Settings
    ) -> None:
        mutation = (
            "mutation($p: String!) { loyaltyEnrolMember(input: {phone: $p}) "
            "{ member { id } userErrors { code } } }"
        )
        async with serving(settings, rate_limit_contact_lookup="1/minute") as (app, client):
            walker, till = await make_key(app, Scope.pos), await make_key(app, Scope.pos)
            taken = await enrol(client, till)
            answers = []
            for _ in range(2):
                body = {"query": mutation, "variables": {"p": taken["phone"]}}
                answers.append((await client.post("/graphql", json=body, headers=bearer(walker))).json())
            assert answers[0]["data"]["loyaltyEnrolMember"]["userErrors"] == [{"code": "member_exists"}]
            assert answers[1]["errors"][0]["extensions"]["code"] == "rate_limited"
            assert (
                await client.get(
                    "/v1/members/lookup", params={"phone": taken["phone"]}, headers=bearer(walker)
                )
            ).status_code == 429

    async def test_an_update_spends_it_for_each_phone_or_email_it_sets_taken_or_not(
        self, settings: Settings
    ) -> None:
        """One member's phone can be set again and again: were only the conflicts counted, each 200 would
        tell at the key's full rate that a number is no one's."""
        update = (
            "mutation($m: ID!, $p: String!) { loyaltyUpdateMember(input: {memberId: $m, phone: $p}) "
            "{ member { id } userErrors { code } } }"
        )
        async with serving(settings, rate_limit_contact_lookup="3/minute") as (app, client):
            walker = await make_key(app, Scope.pos)
            own = (await enrol(client, walker))["id"]
            path = f"/v1/members/{own}"
            tries = [{"phone": unique_phone()}, {"phone": unique_phone(), "email": "free@example.cn"}]
            answers = [await client.patch(path, json=body, headers=bearer(walker)) for body in tries]
            assert [a.status_code for a in answers] == [200, 200]
            assert_limited(
                await client.patch(path, json={"phone": unique_phone()}, headers=bearer(walker)),
                "contact-lookup",
                3,
                60,
            )
            body = {"query": update, "variables": {"m": own, "p": unique_phone()}}
            answer = await client.post("/graphql", json=body, headers=bearer(walker))
            graphql = answer.json()
            assert graphql["errors"][0]["extensions"]["code"] == "rate_limited"
            # The wait REST's Retry-After gives, on the field and on the answer.
            wait = graphql["errors"][0]["extensions"]["retryAfter"]
            assert 1 <= wait <= 60 and answer.headers["retry-after"] == str(wait)
            # Clearing a contact or changing anything else names none.
            cleared = await client.patch(path, json={"email": None, "name": "Li"}, headers=bearer(walker))
            assert cleared.status_code == 200, cleared.text

    async def test_an_update_setting_the_members_own_phone_or_email_spends_nothing(
        self, settings: Settings
    ) -> None:
        """A system syncing members may send the whole record: the member's own phone and e-mail, which the
        key can read (`GET /v1/members/{id}`), tell it nothing when set again."""
        update = (
            "mutation($m: ID!, $p: String!, $e: String!) { loyaltyUpdateMember(input: "
            '{memberId: $m, phone: $p, email: $e, name: "Li"}) { member { id } userErrors { code } } }'
        )
        async with serving(settings, rate_limit_contact_lookup="1/minute") as (app, client):
            walker = await make_key(app, Scope.pos)
            member = await enrol(client, walker, email="own@example.cn")
            path = f"/v1/members/{member['id']}"
            # As another system writes them: the number in its national form, the address in capitals.
            same = {"phone": member["phone"].removeprefix("+86"), "email": "OWN@example.cn", "name": "Li"}
            statuses = [
                (await client.patch(path, json=same, headers=bearer(walker))).status_code for _ in "abc"
            ]
            assert statuses == [200, 200, 200]
            body = {
                "query": update,
                "variables": {"m": member["id"], "p": member["phone"], "e": "own@example.cn"},
            }
            graphql = (await client.post("/graphql", json=body, headers=bearer(walker))).json()
            assert graphql["data"]["loyaltyUpdateMember"] == {
                "member": {"id": member["id"]},
                "userErrors": [],
            }
            # The budget is whole: one look-up by phone, then none.
            by_phone = {"phone": member["phone"]}
            assert (
                await client.get("/v1/members/lookup", params=by_phone, headers=bearer(walker))
            ).status_code == 200
            assert_limited(
                await client.get("/v1/members/lookup", params=by_phone, headers=bearer(walker)),
                "contact-lookup",
                1,
                60,
            )

    async def test_an_update_finding_no_member_spends_nothing(self, settings: Settings) -> None:
        """An update of a member that does not exist (or was erased) sets no phone: it tells nothing of the
        number, and spends nothing, over REST as over GraphQL."""
        update = (
            "mutation($m: ID!, $p: String!) { loyaltyUpdateMember(input: {memberId: $m, phone: $p}) "
            "{ member { id } userErrors { code } } }"
        )
        async with serving(settings, rate_limit_contact_lookup="1/minute") as (app, client):
            walker = await make_key(app, Scope.pos)
            nobody = str(uuid.uuid4())
            rest = await client.patch(
                f"/v1/members/{nobody}", json={"phone": unique_phone()}, headers=bearer(walker)
            )
            assert rest.json()["code"] == "member_not_found"
            body = {"query": update, "variables": {"m": nobody, "p": unique_phone()}}
            graphql = (await client.post("/graphql", json=body, headers=bearer(walker))).json()
            assert graphql["data"]["loyaltyUpdateMember"]["userErrors"] == [{"code": "member_not_found"}]
            await assert_one_phone_left(client, walker, f"/v1/members/{(await enrol(client, walker))['id']}")

    async def test_an_update_the_key_may_not_make_spends_nothing(self, settings: Settings) -> None:
        """An update refused for what it asks (a pos key suspending a member) sets no phone: it tells nothing
        of the number, and spends nothing, over GraphQL as over REST."""
        update = (
            "mutation($m: ID!, $p: String!) { loyaltyUpdateMember(input: "
            "{memberId: $m, phone: $p, status: suspended}) { member { id } userErrors { code } } }"
        )
        async with serving(settings, rate_limit_contact_lookup="1/minute") as (app, client):
            walker = await make_key(app, Scope.pos)
            path = f"/v1/members/{(await enrol(client, walker))['id']}"
            suspending = {"phone": unique_phone(), "status": "suspended"}
            rest = await client.patch(path, json=suspending, headers=bearer(walker))
            assert rest.json()["code"] == "scope_not_allowed"
            body = {"query": update, "variables": {"m": path.rsplit("/", 1)[1], "p": unique_phone()}}
            graphql = (await client.post("/graphql", json=body, headers=bearer(walker))).json()
            assert graphql["errors"][0]["extensions"]["code"] == "scope_not_allowed"
            await assert_one_phone_left(client, walker, path)

    async def test_writes_that_lose_a_race_for_a_phone_spend_it(self, settings: Settings) -> None:
        """An enrolment and an update naming a phone that another enrolment, not yet committed, is giving a
        member: on PostgreSQL they do not see it when they look and find it taken at their own write (the
        unique constraint); the 409 `member_exists` they get then spends the budget as any other."""
        async with serving(settings, rate_limit_contact_lookup="2/minute") as (app, client):
            walker = await make_key(app, Scope.pos)
            own = (await enrol(client, walker))["id"]
            phone = unique_phone()
            async with app.state.units.begin() as uow:
                await profiles.enrol(
                    uow,
                    phone=phone,
                    email=None,
                    name=None,
                    birthday=None,
                    channel="store",
                    external_ids={},
                    marketing_consent=False,
                    referral_code=None,
                )
                racing = [
                    asyncio.create_task(
                        client.post("/v1/members", json={"phone": phone}, headers=bearer(walker))
                    ),
                    asyncio.create_task(
                        client.patch(f"/v1/members/{own}", json={"phone": phone}, headers=bearer(walker))
                    ),
                ]
                if make_url(settings.database_url).get_backend_name() == "postgresql":
                    # Both at their insert, waiting for this one's outcome (on SQLite they wait for its end).
                    assert await writes_waiting(settings, 2) == 2
            lost = await asyncio.gather(*racing)
            assert [r.json()["code"] for r in lost] == ["member_exists", "member_exists"]
            assert_limited(
                await client.get("/v1/members/lookup", params={"phone": phone}, headers=bearer(walker)),
                "contact-lookup",
                2,
                60,
            )

    @needs_redis
    @pytest.mark.usefixtures("patient_storage")
    async def test_the_budget_is_counted_before_the_write_begins(self, settings: Settings) -> None:
        """Counting in Redis is a round trip, up to the storage's time limit when Redis is in trouble: an
        enrolment or update naming a phone counts before its write begins, so that no other write waits on
        it meanwhile (on SQLite, every other writer)."""
        free_to_write: list[bool] = []

        async def probe() -> None:
            free_to_write.append(await another_writer_can_write(settings))

        async with (
            relayed(os.environ[REDIS_ENV], probe) as redis,
            serving(settings, rate_limit_storage=redis) as (app, client),
        ):
            walker = await make_key(app, Scope.pos)
            member = await enrol(client, walker)
            patched = await client.patch(
                f"/v1/members/{member['id']}", json={"phone": unique_phone()}, headers=bearer(walker)
            )
            assert patched.status_code == 200, patched.text
        assert len(free_to_write) >= 2 and all(free_to_write), free_to_write

    async def test_a_refusal_for_the_budget_leaves_the_idempotency_key_free(self, settings: Settings) -> None:
        async with serving(settings, rate_limit_contact_lookup="1/minute") as (app, client):
            walker, till = await make_key(app, Scope.pos), await make_key(app, Scope.pos)
            taken = await enrol(client, till)
            conflict = await client.post(
                "/v1/members", json={"phone": taken["phone"]}, headers=bearer(walker)
            )
            assert conflict.status_code == 409
            keyed = {**bearer(walker), "Idempotency-Key": "enrol-after-the-wait"}
            body = {"phone": unique_phone()}
            assert_limited(
                await client.post("/v1/members", json=body, headers=keyed), "contact-lookup", 1, 60
            )
            await app.state.rate_limiter.reset()  # the minute has passed
            assert (await client.post("/v1/members", json=body, headers=keyed)).status_code == 201


class TestLookupMisses:
    async def test_lookups_that_find_no_one_have_a_budget_and_then_every_lookup_waits(
        self, settings: Settings
    ) -> None:
        async with serving(settings, rate_limit_lookup_misses="3/minute") as (app, client):
            walker, till = await make_key(app, Scope.pos), await make_key(app, Scope.pos)
            member = await enrol(client, till)
            guesses = [member_number.generate() for _ in range(3)]  # valid check digits, nobody's cards
            misses = [
                (await client.get("/v1/members/lookup", params={"member_number": n}, headers=bearer(walker)))
                for n in guesses
            ]
            assert [m.status_code for m in misses] == [404, 404, 404]
            found = {"member_number": member["member_number"]}
            after = await client.get("/v1/members/lookup", params=found, headers=bearer(walker))
            assert_limited(after, "lookup-misses", 3, 60)
            assert (
                await client.get("/v1/members/lookup", params=found, headers=bearer(till))
            ).status_code == 200

    async def test_graphql_lookups_by_card_count_their_misses_too(self, settings: Settings) -> None:
        query = "query($n: String!) { loyaltyMemberByNumber(memberNumber: $n) { id } }"
        async with serving(settings, rate_limit_lookup_misses="2/minute") as (app, client):
            walker = await make_key(app, Scope.pos)
            answers = []
            for _ in range(3):
                body = {"query": query, "variables": {"n": member_number.generate()}}
                answers.append((await client.post("/graphql", json=body, headers=bearer(walker))).json())
            assert [a["data"]["loyaltyMemberByNumber"] for a in answers] == [None, None, None]
            assert "errors" not in answers[0] and "errors" not in answers[1]
            assert answers[2]["errors"][0]["extensions"]["code"] == "rate_limited"

    async def test_one_graphql_request_tries_no_more_numbers_than_the_misses_budget(
        self, settings: Settings
    ) -> None:
        # Aliases and `_entities` resolve their lookups together: the batch stops where the budget does.
        entities = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id } } }"
        aliased = " ".join(
            f'n{i}: loyaltyMemberByNumber(memberNumber: "{member_number.generate()}") {{ id }}'
            for i in range(5)
        )
        async with serving(settings, rate_limit_lookup_misses="3/minute") as (app, client):
            walker = await make_key(app, Scope.pos)
            numbers = [{"__typename": "Member", "memberNumber": member_number.generate()} for _ in range(8)]
            body = {"query": entities, "variables": {"r": numbers}}
            answer = (await client.post("/graphql", json=body, headers=bearer(walker))).json()
            assert answer["data"]["_entities"] == [None] * 8
            refused = sorted(e["path"][1] for e in answer["errors"])
            assert refused == [3, 4, 5, 6, 7]  # three numbers tried, the rest refused
            assert {e["extensions"]["code"] for e in answer["errors"]} == {"rate_limited"}
            other = await make_key(app, Scope.pos)
            answer = (
                await client.post("/graphql", json={"query": f"{{ {aliased} }}"}, headers=bearer(other))
            ).json()
            assert sum(1 for v in answer["data"].values() if v is None) == 5
            assert len(answer["errors"]) == 2 and answer["errors"][0]["extensions"]["code"] == "rate_limited"

    async def test_members_found_in_one_graphql_request_cost_nothing_of_the_misses_budget(
        self, settings: Settings
    ) -> None:
        """A supergraph joins orders to members by card number: forty members in one `_entities` are forty
        answers (they were cut at the misses budget, found or not, and refused `rate_limited`)."""
        entities = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id } } }"
        async with serving(settings, rate_limit_lookup_misses="3/minute") as (app, client):
            till = await make_key(app, Scope.pos)
            members = [await enrol(client, till) for _ in range(40)]
            numbers = [{"__typename": "Member", "memberNumber": m["member_number"]} for m in members]
            answer = (
                await client.post(
                    "/graphql", json={"query": entities, "variables": {"r": numbers}}, headers=bearer(till)
                )
            ).json()
            assert answer.get("errors") is None, answer["errors"][:2]
            assert [found["id"] for found in answer["data"]["_entities"]] == [m["id"] for m in members]
            # Misses among them spend the budget in order, as REST calls one after another would: the
            # third miss spends it, and every number after it is refused, found or not.
            unknown = [{"__typename": "Member", "memberNumber": member_number.generate()} for _ in range(3)]
            mixed = [numbers[0], unknown[0], numbers[1], unknown[1], unknown[2], numbers[2], numbers[3]]
            answer = (
                await client.post(
                    "/graphql", json={"query": entities, "variables": {"r": mixed}}, headers=bearer(till)
                )
            ).json()
            ids = [None if found is None else found["id"] for found in answer["data"]["_entities"]]
            assert ids == [members[0]["id"], None, members[1]["id"], None, None, None, None]
            assert sorted(e["path"][1] for e in answer["errors"]) == [5, 6]
        async with serving(settings, rate_limits_enabled=False) as (app, client):
            till = await make_key(app, Scope.pos)
            walk = [{"__typename": "Member", "memberNumber": member_number.generate()} for _ in range(40)]
            answer = (
                await client.post(
                    "/graphql", json={"query": entities, "variables": {"r": walk}}, headers=bearer(till)
                )
            ).json()
            assert answer.get("errors") is None and answer["data"]["_entities"] == [None] * 40


class TestFailedAuthentication:
    async def test_an_address_that_keeps_failing_gets_429_and_a_real_key_from_it_still_works(
        self, settings: Settings
    ) -> None:
        async with serving(settings, rate_limit_unauthenticated_per_address="5/minute") as (app, _):
            attacker, neighbour = client_for(app, "203.0.113.9"), client_for(app, "198.51.100.7")
            guesses = [f"lk_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}" for _ in range(6)]
            answers = [await get_program(attacker, guess) for guess in guesses]
            assert [a.status_code for a in answers[:5]] == [401] * 5
            assert_limited(answers[5], "unauthenticated", 5, 60)
            assert (await attacker.get("/v1/program")).status_code == 429  # no key at all counts too
            assert (await get_program(neighbour, guesses[0])).status_code == 401
            till = await make_key(app, Scope.pos)  # not in the process's memory yet: it is looked up
            assert (await get_program(attacker, till)).status_code == 200
            await attacker.aclose()
            await neighbour.aclose()

    async def test_wrong_secrets_for_one_prefix_are_refused_from_any_address(
        self, settings: Settings
    ) -> None:
        async with serving(settings, rate_limit_failed_auth_per_prefix="3/minute") as (app, _):
            real = await make_key(app, Scope.pos)
            prefix = real.split("_")[1]
            statuses = []
            for _ in range(4):
                async with client_for(app, random_address()) as somewhere:
                    statuses.append(
                        (await get_program(somewhere, f"lk_{prefix}_{uuid.uuid4().hex}")).status_code
                    )
            assert statuses == [401, 401, 401, 429]

    async def test_the_right_secret_is_never_refused_once_its_key_is_in_memory(
        self, settings: Settings
    ) -> None:
        async with serving(settings, rate_limit_failed_auth_per_prefix="3/minute") as (app, client):
            real = await make_key(app, Scope.pos)
            prefix = real.split("_")[1]
            assert (await get_program(client, real)).status_code == 200
            wrong = [
                (await get_program(client, f"lk_{prefix}_{uuid.uuid4().hex}")).status_code for _ in range(4)
            ]
            assert wrong == [401, 401, 401, 429]
            assert (await get_program(client, real)).status_code == 200

    async def test_ipv6_addresses_count_by_their_64(self, settings: Settings) -> None:
        async with serving(settings, rate_limit_unauthenticated_per_address="3/minute") as (app, _):
            statuses = []
            for host in range(1, 5):  # four hosts of one /64, as one machine can have them all
                async with client_for(app, f"2001:db8:1:2::{host:x}") as neighbour:
                    statuses.append((await neighbour.get("/v1/program")).status_code)
            assert statuses == [401, 401, 401, 429]
            async with client_for(app, "2001:db8:1:3::1") as elsewhere:
                assert (await elsewhere.get("/v1/program")).status_code == 401

    async def test_ipv4_clients_of_a_dual_stack_listener_count_each_on_their_own(
        self, settings: Settings
    ) -> None:
        async with serving(settings, rate_limit_unauthenticated_per_address="3/minute") as (app, _):
            statuses = []
            # `serve --host ::` sees IPv4 peers as IPv4-mapped IPv6 addresses, all in one /64.
            for host in ("::ffff:203.0.113.9", "::ffff:198.51.100.7", "::ffff:192.0.2.1", "::ffff:8.8.8.8"):
                async with client_for(app, host) as client:
                    statuses.append((await client.get("/v1/program")).status_code)
            assert statuses == [401] * 4
            async with client_for(app, "203.0.113.9") as same:  # the first one, seen over IPv4: its budget
                statuses = [(await same.get("/v1/program")).status_code for _ in range(3)]
            assert statuses == [401, 401, 429]


class TestRotatedKeys:
    """During a rotation's overlap the old key and its replacement are one caller: they spend one budget
    each of the key's, or a client could double its rate, its contact lookups and its misses by sending with
    both."""

    @pytest.mark.parametrize("storage", ["memory://", pytest.param(REDIS_ENV, marks=needs_redis)])
    @pytest.mark.usefixtures("patient_storage")
    async def test_a_key_and_its_replacement_share_its_budgets(
        self, settings: Settings, storage: str
    ) -> None:
        budgets = {"rate_limit_contact_lookup": "2/minute", "rate_limit_lookup_misses": "2/minute"}
        where = os.environ[storage] if storage == REDIS_ENV else storage
        async with serving(settings, rate_limit_storage=where, **budgets) as (app, client):
            member = await enrol(client, await make_key(app, Scope.pos))
            old = await make_key(app, Scope.pos, rate_limit="6/minute")
            async with units_of(app).begin() as uow:
                rotation = await auth_service.rotate_key(
                    uow, prefix=old.split("_")[1], overlap=timedelta(hours=1)
                )
            new = rotation.issued.token
            by_phone, nobody = {"phone": member["phone"]}, {"member_number": member_number.generate()}
            calls = [
                (old, by_phone),
                (new, by_phone),
                (old, by_phone),
                (old, nobody),
                (new, nobody),
                (new, nobody),
            ]
            answers = [
                await client.get("/v1/members/lookup", params=params, headers=bearer(key))
                for key, params in calls
            ]
            assert [a.status_code for a in answers] == [200, 200, 429, 404, 404, 429]
            assert_limited(answers[2], "contact-lookup", 2, 60)
            assert_limited(answers[5], "lookup-misses", 2, 60)
            # Six calls between them: the key's own budget is spent for both.
            assert_limited(await get_program(client, old), "key", 6, 60)
            assert_limited(await get_program(client, new), "key", 6, 60)


class TestRevokedKeys:
    async def test_a_key_revoked_through_one_process_stops_working_in_another(
        self, settings: Settings
    ) -> None:
        async with (
            serving(settings, cache_seconds=0.2) as (first, _),
            serving(settings, cache_seconds=0.2) as (_, elsewhere),
        ):
            key = await make_key(first, Scope.pos)
            assert (await get_program(elsewhere, key)).status_code == 200  # now in that process's memory
            async with first.state.units.begin() as uow:
                await auth_service.revoke_key(uow, prefix=key.split("_")[1])
            await asyncio.sleep(0.3)
            assert [(await get_program(elsewhere, key)).status_code for _ in range(3)] == [401, 401, 401]


@pytest.fixture
def patient_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis may take longer than the storage's time limit to answer on a loaded CI machine, and a call it
    did not count would pass: these tests are about what two apps share, the time limit has its own test
    (test_a_storage_that_never_answers_lets_calls_through)."""
    monkeypatch.setattr(rate_limits, "STORAGE_TIMEOUT_SECONDS", 10.0)


class TestRetryAfter:
    """A client that waits a 429's Retry-After is let through then, and not a second sooner."""

    @pytest.mark.parametrize(
        ("rate", "cost"), [("2/minute", 1), ("5 per 10 seconds", 1), ("10/minute", 4), ("100/hour", 30)]
    )
    async def test_a_refused_call_goes_through_once_its_retry_after_has_passed(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch, rate: str, cost: int
    ) -> None:
        # The counter reads the wall clock: time here is one the test moves.
        now = [1_800_000_000.0]
        monkeypatch.setattr(time, "time", lambda: now[0])
        limiter = rate_limits.RateLimiter(settings)
        budget = rate_limits.Budget.of("key", rate)
        refused = 0
        for step in random.Random(rate).choices([0.0, 0.007, 0.03, 0.1, 0.22, 0.49], k=300):
            now[0] += step * budget.rate.get_expiry()
            try:
                await limiter.spend(budget, "till", cost=cost)
            except rate_limits.RateLimited as refusal:
                refused += 1
                # Whole seconds: the wait is at most a second (and a hair) longer than it must be.
                wait = int(refusal.headers["Retry-After"])
                now[0] += wait - 1.01
                with pytest.raises(rate_limits.RateLimited):
                    await limiter.spend(budget, "till", cost=cost)
                now[0] += 1.01
                await limiter.spend(budget, "till", cost=cost)
        assert refused > 10

    @needs_redis
    @pytest.mark.usefixtures("patient_storage")
    async def test_in_redis_too(self, settings: Settings) -> None:
        # Redis keeps its own time: a short window, waited for real.
        async with serving(settings, rate_limit_storage=os.environ[REDIS_ENV]) as (app, client):
            key = await make_key(app, Scope.pos, rate_limit="3 per 2 seconds")
            for _ in range(2):
                # At most the budget goes through (fewer when part of it is still spent), then a 429.
                answers = [await get_program(client, key) for _ in range(4)]
                answer = next(a for a in answers if a.status_code != 200)
                assert_limited(answer, "key", 3, 2)
                await asyncio.sleep(int(answer.headers["retry-after"]))
                assert (await get_program(client, key)).status_code == 200


class TestStorage:
    @needs_redis
    @pytest.mark.usefixtures("patient_storage")
    async def test_processes_sharing_redis_share_one_budget(self, settings: Settings) -> None:
        redis = os.environ[REDIS_ENV]
        async with (
            serving(settings, rate_limit_storage=redis) as (one, first),
            serving(settings, rate_limit_storage=redis) as (_, second),
        ):
            key = await make_key(one, Scope.pos, rate_limit="4/minute")
            statuses = [(await get_program(c, key)).status_code for c in (first, second) * 3]
            assert statuses == [200, 200, 200, 200, 429, 429]

    @needs_redis
    @pytest.mark.usefixtures("patient_storage")
    async def test_a_password_written_percent_encoded_reaches_redis_decoded(self, settings: Settings) -> None:
        """A cloud provider's password may hold `@`, `:` or `/`, which a URL can only carry encoded. Sent as
        written, Redis refuses it, and the limits stop counting (they let calls through when the storage
        fails)."""
        redis = urlsplit(os.environ[REDIS_ENV])
        user, password = f"loyalty_test_{uuid.uuid4().hex[:8]}", "s3cr@t:p/w"
        admin = coredis.Redis(host=redis.hostname or "127.0.0.1", port=redis.port or 6379)
        await admin.acl_setuser(user, "on", f">{password}", "~*", "+@all")
        try:
            encoded = f"redis://{user}:{quote(password, safe='')}@{redis.hostname}:{redis.port or 6379}/0"
            async with serving(settings, rate_limit_storage=encoded) as (app, client):
                key = await make_key(app, Scope.pos, rate_limit="2/minute")
                statuses = [(await get_program(client, key)).status_code for _ in range(3)]
        finally:
            await admin.acl_deluser([user])
        assert statuses == [200, 200, 429]

    async def test_processes_in_memory_each_count_their_own(self, settings: Settings) -> None:
        async with serving(settings) as (one, first), serving(settings) as (_, second):
            key = await make_key(one, Scope.pos, rate_limit="4/minute")
            statuses = [(await get_program(c, key)).status_code for c in (first, second) * 3]
            assert statuses == [200] * 6

    @needs_redis
    @pytest.mark.usefixtures("patient_storage")
    async def test_contact_lookups_and_failures_are_counted_in_redis_too(self, settings: Settings) -> None:
        redis = os.environ[REDIS_ENV]
        changes = {"rate_limit_storage": redis, "rate_limit_unauthenticated_per_address": "2/minute"}
        address = random_address()
        async with (
            serving(settings, **changes) as (one, _),
            serving(settings, **changes) as (two, _),
            client_for(one, address) as first,
            client_for(two, address) as second,
        ):
            statuses = [(await c.get("/v1/program")).status_code for c in (first, second, first)]
        assert statuses == [401, 401, 429]

    async def test_a_storage_that_never_answers_lets_calls_through(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # takes the connection and never answers

        caplog.set_level(logging.WARNING, logger="loyalty_api.rate_limits")
        hanging = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = hanging.sockets[0].getsockname()[1]
        try:
            async with serving(settings, rate_limit_storage=f"redis://127.0.0.1:{port}/0") as (app, client):
                key = await make_key(app, Scope.pos, rate_limit="1/minute")
                assert {(await get_program(client, key)).status_code for _ in range(3)} == {200}
        finally:
            hanging.close()
        assert "rate limit storage unreachable" in [r.message for r in caplog.records]

    async def test_an_unreachable_storage_lets_calls_through(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="loyalty_api.rate_limits")
        async with serving(settings, rate_limit_storage="redis://127.0.0.1:9/0") as (app, client):
            key = await make_key(app, Scope.pos, rate_limit="1/minute")
            assert {(await get_program(client, key)).status_code for _ in range(3)} == {200}
        assert [r.message for r in caplog.records] == ["rate limit storage unreachable"]
