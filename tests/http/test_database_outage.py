"""While the database is out of reach (down, restarting, failing over), every call is answered 503
`database_unavailable` with Retry-After, logged as an outage rather than a bug; once it is back, a till's
retry with its Idempotency-Key does the work once."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.http import outage
from loyalty_api.http.errors import DatabaseUnavailable
from loyalty_api.settings import Settings
from loyalty_api.worker.runner import Worker
from loyalty_api.worker.schedule import Job
from tests.apps import serving
from tests.builders import enrol
from tests.conftest import bearer, units_of
from tests.databases import (
    CLOSINGS,
    account_locked,
    closed_database,
    is_postgres,
    side_engine,
    until_waiting_for_a_lock,
)
from tests.graphql.helpers import graphql
from tests.points.helpers import earn, points, set_program
from tests.relay import Relay

UNHANDLED = "unhandled error"
OUTAGE = "database unreachable"


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "2"


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "loyalty_api.errors"]


@asynccontextmanager
async def _behind_a_relay(
    settings: Settings, **changes: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Relay]]:
    """A second instance of the service whose database connections pass through a relay."""
    url = make_url(settings.database_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    port = await relay.start()
    relayed = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    try:
        async with serving(settings, database_url=relayed, **changes) as (app, client):
            yield app, client, relay
    finally:
        await relay.close()


async def test_a_database_that_refuses_connections_is_503_database_unavailable_not_an_internal_error(
    settings: Settings, pos_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens where the database should be: even the key cannot be checked."""
    caplog.set_level(logging.WARNING, logger="loyalty_api.errors")
    nowhere = "postgresql+asyncpg://postgres@127.0.0.1:9/loyalty"  # the discard port: nothing listens
    async with serving(settings, database_url=nowhere, listen_database_url=None) as (_, client):
        response = await client.get("/v1/members/lookup?member_number=1000000001", headers=bearer(pos_key))
    _assert_unavailable(response)
    assert OUTAGE in _messages(caplog)
    assert UNHANDLED not in _messages(caplog)


@pytest.mark.skipif(not is_postgres(), reason="SQLite's database is a file of the process's, not a server's")
async def test_a_database_dropped_or_renamed_while_serving_is_503_database_unavailable(
    settings: Settings, pos_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server answers, but the database the URL names is not there (dropped, renamed, being restored):
    every new connection's login is refused with `database … does not exist`, an outage until it is back."""
    caplog.set_level(logging.WARNING, logger="loyalty_api.errors")
    gone = make_url(settings.database_url).set(database=f"loyalty_gone_{uuid.uuid4().hex[:8]}")
    async with serving(
        settings, database_url=gone.render_as_string(hide_password=False), listen_database_url=None
    ) as (_, client):
        response = await client.get("/v1/members/lookup?member_number=1000000001", headers=bearer(pos_key))
    _assert_unavailable(response)
    assert OUTAGE in _messages(caplog)
    assert UNHANDLED not in _messages(caplog)


@pytest.mark.skipif(not is_postgres(), reason="SQLite's database is a file of the process's, not a server's")
@pytest.mark.parametrize("how", CLOSINGS)
async def test_a_database_closed_to_connections_is_503_database_unavailable(
    how: str, settings: Settings, pos_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator closes the database to connections for maintenance or a restore (`ALTER DATABASE …
    ALLOW_CONNECTIONS false`, or the CONNECT privilege revoked), or a DROP DATABASE was cut off partway
    (`cannot connect to invalid database`): each new connection's login is refused (SQLSTATE 55000, or
    42501), an outage until it is opened again or dropped and restored, not a bug."""
    caplog.set_level(logging.WARNING, logger="loyalty_api.errors")
    async with (
        closed_database(how) as closed,
        serving(settings, database_url=closed, listen_database_url=None) as (_, client),
    ):
        response = await client.get("/v1/members/lookup?member_number=1000000001", headers=bearer(pos_key))
    _assert_unavailable(response)
    assert OUTAGE in _messages(caplog)
    assert UNHANDLED not in _messages(caplog)


@pytest.mark.skipif(not is_postgres(), reason="SQLSTATE 55000 is PostgreSQL's")
async def test_a_statement_refused_as_not_in_prerequisite_state_is_a_bug_not_an_outage(
    units: UnitsOfWork,
) -> None:
    """SQLSTATE 55000 closes a database to logins, and refuses statements misused too (a sequence's currval
    before its nextval): such a statement is a bug, answered 500 and logged with its trace, not an outage."""
    uow = await units.start()
    try:
        await uow.session.execute(text("CREATE TEMPORARY SEQUENCE never_drawn"))
        with pytest.raises(DBAPIError) as caught:
            await uow.session.execute(text("SELECT currval('never_drawn')"))
    finally:
        await uow.rollback()
        await uow.close()
    assert getattr(caught.value.orig, "sqlstate", None) == "55000"
    assert outage.unavailable(caught.value) is None


@asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    """A server that takes connections and never answers on them (a host that drops what it is sent, as a
    cut network or a failed-over address does); yields its port."""
    taken: list[asyncio.StreamWriter] = []

    async def take(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        taken.append(writer)

    server = await asyncio.start_server(take, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in taken:
            writer.close()
        await server.wait_closed()


async def test_a_database_that_never_answers_a_connection_is_503_database_unavailable(
    settings: Settings, pos_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The driver's own connect timeout (`timeout` in the URL) runs out: an outage, not a bug."""
    caplog.set_level(logging.WARNING, logger="loyalty_api.errors")
    async with _silent_server() as port:
        silent = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/loyalty?timeout=0.3"
        async with serving(settings, database_url=silent, listen_database_url=None) as (_, client):
            response = await client.get(
                "/v1/members/lookup?member_number=1000000001", headers=bearer(pos_key)
            )
    _assert_unavailable(response)
    assert OUTAGE in _messages(caplog)
    assert UNHANDLED not in _messages(caplog)


@pytest.mark.skipif(not is_postgres(), reason="SQLite is a file of the process: it has no connection to lose")
async def test_while_the_database_is_away_calls_get_503_and_the_tills_retry_earns_once_when_it_is_back(
    settings: Settings, client: httpx.AsyncClient, pos_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    member = await enrol(client, pos_key)
    earn = {"order_ref": "R-outage-1", "amount": {"amount": 12_000, "currency": "CNY"}}
    with_key = bearer(pos_key, idempotency_key="till-7-receipt-1")
    caplog.set_level(logging.WARNING, logger="loyalty_api.errors")
    async with _behind_a_relay(settings) as (_, relayed, relay):
        # Connected, its pool and the key's check warm, before the database goes away.
        assert (await relayed.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))).status_code == 200
        await relay.cut()
        _assert_unavailable(await relayed.get(f"/v1/members/{member['id']}", headers=bearer(pos_key)))
        _assert_unavailable(
            await relayed.post(f"/v1/members/{member['id']}/earn", json=earn, headers=with_key)
        )
        _assert_unavailable(
            await relayed.post(
                "/v1/checkout/quote",
                json={
                    "member_id": member["id"],
                    "cart": {"subtotal": {"amount": 12_000, "currency": "CNY"}, "items": []},
                },
                headers=bearer(pos_key),
            )
        )
        await relay.restore()
        # The pool's connections died with the relay's; the service reconnects on its own.
        retried = await relayed.post(f"/v1/members/{member['id']}/earn", json=earn, headers=with_key)
        assert retried.status_code == 200, retried.text
        assert retried.json()["points_earned"] == 120
        replayed = await relayed.post(f"/v1/members/{member['id']}/earn", json=earn, headers=with_key)
        assert replayed.headers.get("idempotent-replayed") == "true"
    read = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
    assert read.json()["points"] == 120
    assert OUTAGE in _messages(caplog)
    assert UNHANDLED not in _messages(caplog)


@pytest.mark.skipif(not is_postgres(), reason="SQLite has no logins")
async def test_a_login_the_database_refuses_while_serving_is_503_until_it_is_let_back_in(
    settings: Settings, pos_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The service's role is locked out (a password rotated before the service's settings were, a role
    disabled): each new connection's login is refused, an outage until the operator mends it, not a bug."""
    role = f"loyalty_till_{uuid.uuid4().hex[:8]}"
    engine = side_engine(settings)
    async with engine.connect() as admin:
        await admin.execution_options(isolation_level="AUTOCOMMIT")
        url = make_url(settings.database_url)
        await admin.execute(text(f"CREATE ROLE {role} LOGIN IN ROLE {url.username}"))  # its tables' rights
        as_role = url.set(username=role).render_as_string(hide_password=False)
        caplog.set_level(logging.WARNING, logger="loyalty_api.errors")
        lookup = f"/v1/members/{uuid.uuid4()}"  # none such: 404 once the database answers
        try:
            async with _behind_a_relay(settings.model_copy(update={"database_url": as_role})) as (
                _,
                relayed,
                relay,
            ):
                assert (await relayed.get(lookup, headers=bearer(pos_key))).status_code == 404
                await admin.execute(text(f"ALTER ROLE {role} NOLOGIN"))
                await relay.cut()  # the connections logged in before are gone: new ones must log in
                await relay.restore()
                for _ in range(2):  # the first may meet a connection of the pool lost in the cut
                    _assert_unavailable(await relayed.get(lookup, headers=bearer(pos_key)))
                await admin.execute(text(f"ALTER ROLE {role} LOGIN"))
                assert (await relayed.get(lookup, headers=bearer(pos_key))).status_code == 404
        finally:
            await admin.execute(text(f"DROP ROLE {role}"))
    await engine.dispose()
    assert OUTAGE in _messages(caplog)
    assert UNHANDLED not in _messages(caplog)


async def _cache_listeners(units: UnitsOfWork) -> int:
    """How many instances have just begun to listen for this database's cache invalidations: their LISTEN
    done and answered (an instance's later probes replace it)."""
    async with units.read() as uow:
        found = await uow.session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'loyalty-api cache invalidations' AND state = 'idle' "
                "AND query LIKE 'LISTEN%'"
            )
        )
    return int(found or 0)


@asynccontextmanager
async def _keys_remembered_behind_a_relay(
    settings: Settings, units: UnitsOfWork
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Relay]]:
    """`_behind_a_relay`, where a key once checked stays in memory, so that the edge lets calls through to
    the resolvers, which meet the outage. It hears of invalidations past the relay, and listens before the
    block begins (it forgets everything when it starts listening)."""
    listen = settings.listen_database_url or settings.database_url
    listeners = await _cache_listeners(units)
    changes: dict[str, Any] = {"cache_seconds": 60, "listen_database_url": listen}
    async with _behind_a_relay(settings, **changes) as (app, relayed, relay):
        for _ in range(500):
            if await _cache_listeners(units) > listeners:
                break
            await asyncio.sleep(0.01)
        # The answer to its LISTEN is on its socket: a few turns of the event loop and it has forgotten
        # everything, before the key is remembered.
        await asyncio.sleep(0.1)
        yield app, relayed, relay


@pytest.mark.skipif(not is_postgres(), reason="SQLite is a file of the process: it has no connection to lose")
@pytest.mark.parametrize("outage", ["refused", "lost at BEGIN"])
async def test_a_graphql_field_read_while_the_database_is_away_is_database_unavailable_not_internal(
    outage: str,
    settings: Settings,
    units: UnitsOfWork,
    client: httpx.AsyncClient,
    pos_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = await enrol(client, pos_key)
    query = "query($id: ID!) { loyaltyMember(id: $id) { id points } }"
    caplog.set_level(logging.WARNING, logger="loyalty_api")
    async with _keys_remembered_behind_a_relay(settings, units) as (app, relayed, relay):
        assert "errors" not in await graphql(relayed, pos_key, query, id=member["id"])
        if outage == "refused":
            await relay.cut()
        else:  # the pooled connection goes as the snapshot's BEGIN goes out
            relay.dropping = True
        body = await graphql(relayed, pos_key, query, id=member["id"])
        # The request's unit of work was closed: no connection is left checked out of the pool.
        assert units_of(app).database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert body["data"] == {"loyaltyMember": None}
    assert [error["extensions"]["code"] for error in body["errors"]] == ["database_unavailable"]
    messages = [record.getMessage() for record in caplog.records]
    assert OUTAGE in messages
    assert "graphql resolver failed" not in messages


@pytest.mark.skipif(not is_postgres(), reason="SQLite is a file of the process: it has no connection to lose")
async def test_a_graphql_earn_while_the_database_is_away_is_database_unavailable_and_its_retry_earns_once(
    settings: Settings, units: UnitsOfWork, client: httpx.AsyncClient, pos_key: str
) -> None:
    member = await enrol(client, pos_key)
    earn = (
        "mutation($input: EarnPointsInput!, $key: String) { loyaltyEarnPoints(input: $input, "
        "idempotencyKey: $key) { earned { pointsEarned } userErrors { code } replayed } }"
    )
    given = {
        "memberId": member["id"],
        "orderRef": "G-outage-1",
        "amount": {"amount": 9_000, "currency": "CNY"},
    }
    async with _keys_remembered_behind_a_relay(settings, units) as (_, relayed, relay):
        read = "query($id: ID!) { loyaltyMember(id: $id) { id } }"
        assert "errors" not in await graphql(relayed, pos_key, read, id=member["id"])
        await relay.cut()
        refused = await graphql(relayed, pos_key, earn, input=given, key="till-9/0001")
        await relay.restore()
        retried = await graphql(relayed, pos_key, earn, input=given, key="till-9/0001")
        replayed = await graphql(relayed, pos_key, earn, input=given, key="till-9/0001")
    assert [error["extensions"]["code"] for error in refused["errors"]] == ["database_unavailable"]
    assert refused["errors"][0]["extensions"]["retryAfter"] >= 1  # REST's Retry-After
    assert retried["data"]["loyaltyEarnPoints"]["earned"]["pointsEarned"] == 90
    assert replayed["data"]["loyaltyEarnPoints"]["replayed"] is True
    points = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
    assert points.json()["points"] == 90


@pytest.mark.skipif(not is_postgres(), reason="SQLite is a file of the process: it has no connection to lose")
async def test_a_commit_whose_connection_the_server_ended_says_the_work_may_have_been_done(
    units: UnitsOfWork,
) -> None:
    """The server ends a unit's connection while it sits between statements (a restart, an idle timeout):
    asyncpg sees it close, and the COMMIT then fails with no SQLSTATE. That is the database out of reach, and
    its caller must not be told the work was not done (a COMMIT lost in flight may have landed)."""
    uow = await units.start()
    try:
        pid = await uow.session.scalar(text("SELECT pg_backend_pid()"))
        connection = await (await uow.session.connection()).get_raw_connection()
        engine = side_engine(units.settings)
        try:
            async with engine.connect() as killer:
                await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            await engine.dispose()
        for _ in range(500):
            if connection.driver_connection.is_closed():
                break
            await asyncio.sleep(0.01)
        with pytest.raises(DatabaseUnavailable) as caught:
            await outage.commit(uow)
    finally:
        await uow.rollback()
        await uow.close()
    assert "may have been done" in caught.value.detail


@pytest.mark.skipif(not is_postgres(), reason="SQLite is a file of the process: it has no connection to lose")
async def test_a_key_the_outage_left_claimed_is_named_with_the_wait_until_it_is_free(
    settings: Settings, units: UnitsOfWork, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """The database goes away while a redeem with an Idempotency-Key waits on a lock, and is still away when
    the service would free the key: the 503 says to retry when the key's hold ends, not in 2 s (the key is
    409 in flight until then), and the retry then redeems once."""
    await set_program(client, admin_key)
    member = await enrol(client, pos_key)
    await earn(client, pos_key, member["id"], 10_000, order_ref="E-1")
    before = (await points(client, pos_key, member["id"]))["balance"]
    redeem = {"points": 30, "order_ref": "R-outage-1"}
    with_key = bearer(pos_key, idempotency_key="till-3-receipt-9")
    async with _behind_a_relay(settings, request_timeout_seconds=4) as (_, relayed, relay):
        async with account_locked(settings, member["id"]) as watcher:
            waiting = asyncio.ensure_future(
                relayed.post(f"/v1/members/{member['id']}/redeem", json=redeem, headers=with_key)
            )
            await until_waiting_for_a_lock(watcher)  # the redeem waits for the account's lock
            await relay.cut()
            lost = await waiting
        await relay.restore()
        too_soon = await relayed.post(f"/v1/members/{member['id']}/redeem", json=redeem, headers=with_key)
        await asyncio.sleep(int(lost.headers["retry-after"]))
        retried = await relayed.post(f"/v1/members/{member['id']}/redeem", json=redeem, headers=with_key)
    assert lost.status_code == 503, lost.text
    assert lost.json()["code"] == "database_unavailable"
    assert 2 < int(lost.headers["retry-after"]) <= 4
    assert "idempotency_request_in_flight" in lost.json()["detail"]
    assert too_soon.status_code == 409
    assert too_soon.json()["code"] == "idempotency_request_in_flight"
    assert retried.status_code == 200, retried.text
    assert (await points(client, pos_key, member["id"]))["balance"] == before - 30


async def test_every_connection_busy_past_the_pools_wait_is_503_database_unavailable(
    settings: Settings, client: httpx.AsyncClient, pos_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An overload, or slow work holding every connection: a request that waits out the pool's wait for one
    is told to retry, as in an outage, not answered 500 and logged as a bug."""
    caplog.set_level(logging.WARNING, logger="loyalty_api")
    member = await enrol(client, pos_key)
    busy = {"database_pool_size": 1, "database_max_overflow": 0, "database_pool_timeout_seconds": 0.2}
    query = "query($id: ID!) { loyaltyMember(id: $id) { id points } }"
    async with serving(settings, **busy) as (app, busy_client):
        path = f"/v1/members/{member['id']}"
        engine = units_of(app).database.engine
        answers = []
        # The key's check at the edge (the process knows no key yet), then the route's own unit of work.
        for _ in range(2):
            async with engine.connect():  # the pool's only connection, held
                answers.append(await busy_client.get(path, headers=bearer(pos_key)))
            assert (await busy_client.get(path, headers=bearer(pos_key))).status_code == 200
        async with engine.connect():
            field = await graphql(busy_client, pos_key, query, id=member["id"])
    for answer in answers:
        _assert_unavailable(answer)
        assert "Every connection" in answer.json()["detail"]
    assert field["data"] == {"loyaltyMember": None}
    [error] = field["errors"]
    assert error["extensions"]["code"] == "database_unavailable" and "Every connection" in error["message"]
    assert _messages(caplog).count("every database connection busy") == 3
    messages = [record.getMessage() for record in caplog.records]
    assert UNHANDLED not in messages and "graphql resolver failed" not in messages


@pytest.mark.skipif(not is_postgres(), reason="a read-only unit holds a connection of its own on PostgreSQL")
async def test_a_read_waiting_for_a_connection_is_cut_off_at_the_requests_time_limit(
    settings: Settings, client: httpx.AsyncClient, pos_key: str
) -> None:
    """A read-only unit takes its connection as it starts (db/uow.py): that wait counts in the request's time
    limit, as a statement's wait did, so the caller hears at the limit, not at the end of the pool's longer
    wait."""
    member = await enrol(client, pos_key)
    busy = {
        "database_pool_size": 1,
        "database_max_overflow": 0,
        "database_pool_timeout_seconds": 5,
        "request_timeout_seconds": 0.3,
        "cache_seconds": 60,  # the edge's check of the key reads it from memory once it is known
    }
    async with serving(settings, **busy) as (app, busy_client):
        path = f"/v1/members/{member['id']}"
        for _ in range(2):  # the first notes the key's use, which makes the process read the key again
            assert (await busy_client.get(path, headers=bearer(pos_key))).status_code == 200
        async with units_of(app).database.engine.connect():  # the pool's only connection, held
            answer = await busy_client.get(path, headers=bearer(pos_key))
        assert (await busy_client.get(path, headers=bearer(pos_key))).status_code == 200
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "request_timed_out", answer.json()


@pytest.mark.skipif(not is_postgres(), reason="a read-only unit holds a connection of its own on PostgreSQL")
async def test_a_read_answered_from_memory_waits_for_no_connection(
    settings: Settings, client: httpx.AsyncClient, admin_key: str
) -> None:
    """The event types, and the programme and the ladder once read, are answered from memory: a read of them
    waits for no connection while every one is busy (a read-only unit takes its connection at its first
    statement), and neither does a query refused for its input."""
    await set_program(client, admin_key)
    busy = {
        "database_pool_size": 1,
        "database_max_overflow": 0,
        "database_pool_timeout_seconds": 5,
        "request_timeout_seconds": 0.3,
        "cache_seconds": 60,  # the edge's check of the key reads it from memory once it is known
    }
    paths = {"/v1/event-types": 200, "/v1/program": 200, "/v1/tiers": 200, "/v1/members?limit=201": 422}
    async with serving(settings, **busy) as (app, busy_client):
        for _ in range(2):  # the first notes the key's use, which makes the process read the key again
            for path in paths:
                await busy_client.get(path, headers=bearer(admin_key))
        async with units_of(app).database.engine.connect():  # the pool's only connection, held
            answers = {
                path: (await busy_client.get(path, headers=bearer(admin_key))).status_code for path in paths
            }
    assert answers == paths


@contextmanager
def _write_lock_held_elsewhere(settings: Settings) -> Iterator[sqlite3.Connection]:
    """SQLite's one write lock held by another process (a `loyalty-api` command, a migration, a shell with a
    transaction open) until the block ends, or until its ROLLBACK: a connection of the test's own, outside the
    app's pool."""
    database = make_url(settings.database_url).database
    assert database is not None
    other_process = sqlite3.connect(database, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        yield other_process
    finally:
        other_process.close()  # rolls its transaction back


_GRAPHQL_EARN = (
    "mutation($input: EarnPointsInput!, $key: String) { loyaltyEarnPoints(input: $input, "
    "idempotencyKey: $key) { earned { pointsEarned } userErrors { code } replayed } }"
)


@pytest.mark.skipif(is_postgres(), reason="SQLite's one write lock: PostgreSQL's writers lock rows")
async def test_a_write_lock_another_process_holds_is_503_at_the_requests_time_limit_and_the_retry_earns_once(
    settings: Settings,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another process holds SQLite's write lock (a `loyalty-api` command, a migration, a shell with a
    transaction open) past the request's time limit, well within SQLite's 30 s busy timeout: each earn (REST
    and GraphQL, with an Idempotency-Key or without) is cut off at the time limit and told to retry, as in an
    outage, not answered 500 and logged as a bug, and nothing of it is written. (Waiting in SQLite's busy
    handler, it outlasted the limit: an earn without a key was cut off by the edge's backstop as
    request_timed_out; one with a key waited out the 30 s.) Once the lock is free, each retry earns once."""
    await set_program(client, admin_key)
    member = await enrol(client, pos_key)
    path = f"/v1/members/{member['id']}/earn"
    keyed = {"order_ref": "R-busy-1", "amount": {"amount": 12_000, "currency": "CNY"}}
    unkeyed = {"order_ref": "R-busy-2", "amount": {"amount": 5_000, "currency": "CNY"}}
    with_key = bearer(pos_key, idempotency_key="till-7-receipt-busy")
    given = {"memberId": member["id"], "orderRef": "G-busy-1", "amount": {"amount": 9_000, "currency": "CNY"}}
    caplog.set_level(logging.WARNING, logger="loyalty_api")
    async with serving(settings, request_timeout_seconds=0.5) as (_, busy_client):
        # The service has been serving before the outage: a fresh process's first requests build what it keeps
        # (FastAPI's routes, compiled statements), which on a loaded machine alone takes longer than 0.5 s.
        earlier = {"order_ref": "R-before", "amount": {"amount": 1_000, "currency": "CNY"}}
        assert (await busy_client.post(path, json=earlier, headers=bearer(pos_key))).status_code == 200
        served = await graphql(busy_client, pos_key, _GRAPHQL_EARN, input={**given, "orderRef": "G-before"})
        assert served["data"]["loyaltyEarnPoints"]["earned"]["pointsEarned"] == 90
        with _write_lock_held_elsewhere(settings):
            refused = [
                await busy_client.post(path, json=unkeyed, headers=bearer(pos_key)),
                await busy_client.post(path, json=keyed, headers=with_key),
            ]
            refused_graphql = [
                await graphql(busy_client, pos_key, _GRAPHQL_EARN, input=given, key=key)
                for key in (None, "till-7/g")
            ]
        balance = (await points(client, pos_key, member["id"]))["balance"]
        retried = [
            await busy_client.post(path, json=unkeyed, headers=bearer(pos_key)),
            await busy_client.post(path, json=keyed, headers=with_key),
        ]
        replayed = await busy_client.post(path, json=keyed, headers=with_key)
        retried_graphql = await graphql(busy_client, pos_key, _GRAPHQL_EARN, input=given, key="till-7/g")
    for answer in refused:
        _assert_unavailable(answer)
    for field in refused_graphql:
        assert [error["extensions"]["code"] for error in field["errors"]] == ["database_unavailable"], field
    assert balance == 10 + 90  # what was earned before the outage
    assert [answer.status_code for answer in retried] == [200, 200], [answer.text for answer in retried]
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert retried_graphql["data"]["loyaltyEarnPoints"]["earned"]["pointsEarned"] == 90
    assert (await points(client, pos_key, member["id"]))["balance"] == 10 + 90 + 50 + 120 + 90
    messages = [record.getMessage() for record in caplog.records]
    assert UNHANDLED not in messages and "graphql resolver failed" not in messages


@pytest.mark.skipif(is_postgres(), reason="SQLite's one write lock: PostgreSQL's writers lock rows")
async def test_an_earn_behind_a_job_waiting_for_a_write_lock_held_elsewhere_earns_once_the_lock_is_free(
    settings: Settings,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another process holds SQLite's write lock while the worker of this process waits for it (webhook
    delivery, which takes the writer turn four times a second), and a till's earn arrives behind it. The job
    gives its wait up well within the earn's time limit and tries again later, so the earn gets this
    process's writer turn and waits for the lock itself: the other process lets it go within the earn's limit,
    and the earn is answered 200 and earns once. (The job waited out SQLite's 30 s busy timeout holding the
    writer turn, and the earn was cut off at its limit, 503 request_timed_out, the lock long free.)"""
    await set_program(client, admin_key)
    member = await enrol(client, pos_key)
    body = {"order_ref": "R-behind-job", "amount": {"amount": 12_000, "currency": "CNY"}}
    caplog.set_level(logging.INFO, logger="loyalty_api.worker")
    limit = 4.0
    async with serving(settings, request_timeout_seconds=limit) as (app, busy_client):
        worker = Worker(units_of(app), jobs=(), tick_seconds=0.05)
        with _write_lock_held_elsewhere(settings) as other_process:
            working = asyncio.create_task(worker.run())
            await asyncio.sleep(0.2)  # its first turn begins a unit of work at once: it waits for the lock
            earning = asyncio.create_task(
                busy_client.post(f"/v1/members/{member['id']}/earn", json=body, headers=bearer(pos_key))
            )
            for _ in range(int(limit * 100)):  # until the job gives its wait up, or the earn's limit is past
                if any(r.getMessage() == "job waits for the database" for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
            other_process.execute("ROLLBACK")
            earned = await earning
        worker.stop()
        await asyncio.wait_for(working, timeout=10)
    assert earned.status_code == 200, earned.text
    assert earned.json()["points_earned"] == 120
    assert (await points(client, pos_key, member["id"]))["balance"] == 120


@pytest.mark.skipif(is_postgres(), reason="SQLite's one write lock: PostgreSQL's writers lock rows")
async def test_a_job_that_met_a_write_lock_held_elsewhere_runs_again_soon_not_a_whole_interval_later(
    settings: Settings, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A job gives its wait for another process's write lock up within a second (so that requests behind it
    get the writer turn): an hourly job (birthdays, reminders, purges) that met a `loyalty-api` command's lock
    runs again moments after the lock is free, not an hour later."""
    ran: list[int] = []

    async def hourly(units: UnitsOfWork) -> int:
        async with units.begin():
            ran.append(1)
        return 0

    caplog.set_level(logging.INFO, logger="loyalty_api.worker")
    hourly_job = Job("hourly", timedelta(hours=1), hourly)
    worker = Worker(units_of(app), [hourly_job], tick_seconds=0.01, webhooks=False)
    with _write_lock_held_elsewhere(settings):
        working = asyncio.create_task(worker.run())
        for _ in range(500):
            if any(r.getMessage() == "job waits for the database" for r in caplog.records):
                break
            await asyncio.sleep(0.01)
    for _ in range(1000):  # ten seconds at most
        if ran:
            break
        await asyncio.sleep(0.01)
    worker.stop()
    await asyncio.wait_for(working, timeout=10)
    assert [r.getMessage() for r in caplog.records if r.name == "loyalty_api.worker"][:2] == [
        "worker started",
        "job waits for the database",
    ]
    assert ran == [1]
