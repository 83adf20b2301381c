from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_api.app import create_app
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock, SystemClock, format_instant
from loyalty_api.db.engine import create_engine
from loyalty_api.db.ids import new_id
from loyalty_api.db.migrations import alembic_config, current_revision, downgrade, head_revision, upgrade
from loyalty_api.db.types import JSONDocument, UTCDateTime
from loyalty_api.schema import metadata
from loyalty_api.settings import Settings
from loyalty_api.tiers.reminders import remind_tier_reviews
from tests.activities.helpers import add_activity_rule, record, record_reply
from tests.builders import add_tier, enrol, make_key
from tests.conftest import START, bearer, units_of
from tests.databases import fresh_database, is_postgres, listen_url, lock_waiters
from tests.inspect_db import events
from tests.partners.helpers import link, partner_earn, register_partner
from tests.points.helpers import earn, set_program
from tests.processes import CLI, clean_env
from tests.subscriptions.helpers import (
    NOTICE,
    add_plan,
    at,
    new_paid_subscriber,
    new_subscriber,
    pay,
    post_action,
    run_job,
    subscribe,
)
from tests.tiers.test_qualification import KEPT_2026, iso, put_override, standard_ladder, tier_of


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def diff_against_models(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(_diff)


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_tables)


class TestMigrations:
    def test_there_is_one_head(self) -> None:
        assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1

    async def test_upgrade_downgrade_upgrade_matches_the_models(self, tmp_path: Path) -> None:
        async with fresh_database(tmp_path, "migrations") as url:
            engine = create_engine(url)
            try:
                await upgrade(engine)
                assert await current_revision(engine) == head_revision()
                assert await diff_against_models(engine) == []
                assert await tables(engine) == set(metadata.tables)

                await downgrade(engine, "base")
                assert await tables(engine) == set()

                await upgrade(engine)
                assert await diff_against_models(engine) == []
            finally:
                await engine.dispose()

    def test_revision_files_follow_the_naming_scheme(self) -> None:
        folder = Path(__file__).resolve().parents[2] / "migrations" / "versions"
        names = [p.name for p in folder.glob("*.py")]
        assert names
        for name in names:
            date, _, slug = name.partition("_")
            assert len(date) == len("YYYY-MM-DD-HHMM") and date[4] == date[7] == date[10] == "-", name
            assert slug.endswith(".py") and slug[:-3].replace("_", "").isalnum(), name


# The tables as a revision left them, for rows written as the code of its time wrote them.
_API_KEYS_0025 = sa.table(
    "api_keys",
    sa.column("id", sa.Uuid()),
    sa.column("prefix", sa.String()),
    sa.column("secret_hash", sa.String()),
    sa.column("name", sa.String()),
    sa.column("scopes", JSONDocument),
    sa.column("created_at", UTCDateTime()),
    sa.column("expires_at", UTCDateTime()),
)
_AUDIT_EVENTS = sa.table(
    "audit_events",
    sa.column("id", sa.Uuid()),
    sa.column("at", UTCDateTime()),
    sa.column("channel", sa.String()),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("subject_type", sa.String()),
    sa.column("subject_id", sa.String()),
    sa.column("after", JSONDocument),
)


def _cli_on(settings: Settings, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert settings.encryption_key is not None
    env = clean_env(
        LOYALTY_DATABASE_URL=url,
        LOYALTY_DATABASE_POOLER=settings.database_pooler,
        LOYALTY_LISTEN_DATABASE_URL=listen_url(url) or url,
        LOYALTY_ENCRYPTION_KEY=settings.encryption_key.get_secret_value(),
    )
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(not is_postgres(), reason="locks the version table from a second PostgreSQL connection")
class TestMigrateFromTwoProcesses:
    async def test_two_migrates_at_once_both_succeed_and_upgrade_once(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        """A rolling deploy may run `loyalty-api migrate` on two hosts at once. The second must wait for the
        first and find nothing left to do, not run the same revision again over it."""
        head = head_revision()
        assert head is not None
        previous = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
        assert isinstance(previous, str)
        async with fresh_database(tmp_path, "twice") as url:
            engine = create_engine(url)
            try:
                await upgrade(engine, previous)
                async with engine.connect() as gate, engine.connect() as watcher:
                    await watcher.execution_options(isolation_level="AUTOCOMMIT")
                    # Reads of the version go on; its update waits: the first migrate to reach the update
                    # waits there, still in its transaction, however long the second takes to start.
                    await gate.execute(sa.text("LOCK TABLE alembic_version IN SHARE MODE"))
                    migrates = asyncio.gather(
                        asyncio.to_thread(_cli_on, settings, url, "migrate"),
                        asyncio.to_thread(_cli_on, settings, url, "migrate"),
                    )
                    deadline = asyncio.get_running_loop().time() + 60
                    while await lock_waiters(watcher) < 2 and not migrates.done():
                        assert asyncio.get_running_loop().time() < deadline, "the migrates never met"
                        await asyncio.sleep(0.05)
                    await gate.rollback()
                    results = await migrates
                for result in results:
                    assert result.returncode == 0, result.stderr[-3000:]
                    assert f"migrated to {head}" in result.stdout
                assert await current_revision(engine) == head
                assert await diff_against_models(engine) == []
            finally:
                await engine.dispose()


class TestKeyLifetimeBackfill:
    """0026 gives each key the lifetime it was made with; the audit log (since 0018) says what that was."""

    async def test_a_key_that_never_expired_stays_so_after_a_rotation_before_the_upgrade(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        now = SystemClock().now()  # the CLI's clock, which rotates these keys below
        rotated_at = now - timedelta(hours=1)
        ends = now + timedelta(hours=24)  # `keys rotate --overlap 25h`, an hour ago
        # (prefix, created, the expiry it was made with (None: never), its expiry now)
        keys: list[tuple[str, datetime, datetime | str | None, datetime]] = [
            ("a1a1a1a1", now - timedelta(days=365), None, ends),  # made with none, rotated: none
            ("a2a2a2a2", now - timedelta(days=365), "unrecorded", ends),  # made before the audit log
            ("c3c3c3c3", now - timedelta(days=10), now + timedelta(days=80), ends),  # made with 90d
        ]
        async with fresh_database(tmp_path, "lifetime") as url:
            engine = create_engine(url)
            try:
                await upgrade(engine, "0025")
                async with engine.begin() as connection:
                    for prefix, created, made_with, expires in keys:
                        await connection.execute(
                            _API_KEYS_0025.insert().values(
                                id=uuid.uuid4(),
                                prefix=prefix,
                                secret_hash="0" * 64,
                                name="Till 7",
                                scopes=["pos"],
                                created_at=created,
                                expires_at=expires,
                            )
                        )
                        # As cli.py wrote them then: keys_create with what _key_shown kept, keys_rotate with
                        # the old key's end and its successor (whose own rows are left out here).
                        entries = [
                            (
                                "keys_rotate",
                                rotated_at,
                                {"expires_at": format_instant(ends), "replaced_by": "ffffffff"},
                            )
                        ]
                        if made_with != "unrecorded":
                            made = {
                                "prefix": prefix,
                                "name": "Till 7",
                                "scopes": ["pos"],
                                "partner_id": None,
                                "rate_limit": None,
                                "expires_at": None if made_with is None else format_instant(made_with),
                                "allowed_networks": None,
                            }
                            entries.insert(0, ("keys_create", created, made))
                        for action, at, after in entries:
                            await connection.execute(
                                _AUDIT_EVENTS.insert().values(
                                    id=new_id(),
                                    at=at,
                                    channel="cli",
                                    actor="cli",
                                    action=action,
                                    subject_type="api_keys",
                                    subject_id=prefix,
                                    after=after,
                                )
                            )
                await upgrade(engine)
                async with engine.connect() as connection:
                    lifetimes = dict(
                        (
                            await connection.execute(sa.text("SELECT prefix, lifetime_seconds FROM api_keys"))
                        ).all()
                    )
            finally:
                await engine.dispose()
            assert lifetimes == {"a1a1a1a1": None, "a2a2a2a2": None, "c3c3c3c3": 90 * 86400}

            # Rotated again after the upgrade: the new key never expires, as the key it replaces never did.
            for prefix in ("a1a1a1a1", "a2a2a2a2"):
                rotated = _cli_on(settings, url, "keys", "rotate", prefix, "--overlap", "1h")
                assert rotated.returncode == 0, rotated.stderr
                assert "expiring" not in rotated.stdout
                new_prefix = rotated.stdout.strip().splitlines()[-1].split("_")[1]
                listed = _cli_on(settings, url, "keys", "list")
                [row] = [
                    line.split("\t") for line in listed.stdout.splitlines() if line.startswith(new_prefix)
                ]
                assert row[6] == "never"


@asynccontextmanager
async def _service_on(
    settings: Settings, url: str, clock: FrozenClock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on the database `url` at the time `clock` gives, driven over httpx."""
    app = create_app(settings.model_copy(update={"database_url": url}), clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as client,
    ):
        yield app, client


@asynccontextmanager
async def _migrated_service(
    tmp_path: Path, settings: Settings, name: str, clock: FrozenClock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, AsyncEngine]]:
    """A database of its own at the head revision, with the app on it at `clock`'s time: a revision's test
    makes its rows through the service, then goes down to before the revision and up again."""
    async with fresh_database(tmp_path, name) as url, _service_on(settings, url, clock) as (app, client):
        engine = units_of(app).database.engine
        await upgrade(engine)
        yield app, client, engine


class TestTrialNoticeBackfill:
    """0025 marks the trials already told they end, so that none is told twice."""

    async def test_a_trial_told_then_canceled_is_not_told_again_after_down_and_up(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START)
        async with _migrated_service(tmp_path, settings, "notice", clock) as (app, client, engine):
            admin, shop, billing = [
                await make_key(app, s) for s in (Scope.admin, Scope.ecommerce, Scope.billing)
            ]
            await set_program(client, admin)
            await add_plan(client, admin, "trial-plus", price=1_500, unit="month", trial_days=7)
            _, sub = await new_subscriber(client, shop, "trial-plus")
            assert sub["state"] == "trialing"
            clock.set(at(sub["period_end"]) - NOTICE)
            await run_job(app)  # trial_will_end, renewal_due
            await pay(client, billing, sub["id"], period=1, amount=1_500)
            # Canceled with the next period paid: the fee goes unused, and billing is to be asked again should
            # the cancel be undone (notice_sent_for back to -1). The trial was told all the same.
            canceled = await post_action(client, shop, sub["id"], "cancel", {"at_period_end": True})
            assert canceled.status_code == 200, canceled.text
            assert len(await events(app, "subscription.trial_will_end")) == 1

            await downgrade(engine, "0024")
            await upgrade(engine)

            resumed = await post_action(client, shop, sub["id"], "resume")
            assert resumed.status_code == 200, resumed.text
            await run_job(app)
            assert len(await events(app, "subscription.trial_will_end")) == 1
            assert len(await events(app, "subscription.renewal_due")) == 2  # billing is asked again


# api_keys and idempotency_records as 0029 left them.
_API_KEYS_BEFORE_LINEAGE = sa.table(
    "api_keys",
    sa.column("id", sa.Uuid()),
    sa.column("prefix", sa.String()),
    sa.column("secret_hash", sa.String()),
    sa.column("name", sa.String()),
    sa.column("scopes", JSONDocument),
    sa.column("created_at", UTCDateTime()),
)
_IDEMPOTENCY_RECORDS = sa.table(
    "idempotency_records",
    sa.column("id", sa.Uuid()),
    sa.column("owner", sa.String()),
    sa.column("key", sa.String()),
    sa.column("fingerprint", sa.String()),
    sa.column("state", sa.String()),
    sa.column("locked_until", UTCDateTime()),
    sa.column("expires_at", UTCDateTime()),
)


class TestKeyLineageBackfill:
    """0030 gives each key its line: its own prefix, or, for a key a rotation made, the line of the key it
    replaced, as the audit log's keys_rotate entries (since 0018) tell; a replacement's replies move to it."""

    async def test_rotations_on_record_join_their_keys_lines_and_replies_follow(self, tmp_path: Path) -> None:
        now = SystemClock().now()
        async with fresh_database(tmp_path, "lineage") as url:
            engine = create_engine(url)
            try:
                await upgrade(engine, "0029")
                async with engine.begin() as connection:
                    # a1 rotated to b2, b2 to c3; d4 made apart (same name); e5 replaced a key now gone.
                    for prefix in ("a1a1a1a1", "b2b2b2b2", "c3c3c3c3", "d4d4d4d4", "e5e5e5e5"):
                        await connection.execute(
                            _API_KEYS_BEFORE_LINEAGE.insert().values(
                                id=uuid.uuid4(),
                                prefix=prefix,
                                secret_hash="0" * 64,
                                name="Till 7",
                                scopes=["pos"],
                                created_at=now - timedelta(days=30),
                            )
                        )
                    rotations = [  # written as cli.py writes them, the later one first
                        ("b2b2b2b2", "c3c3c3c3", now - timedelta(hours=1)),
                        ("a1a1a1a1", "b2b2b2b2", now - timedelta(days=2)),
                        ("zzzzzzzz", "e5e5e5e5", now - timedelta(days=3)),
                    ]
                    for old, new, rotated_at in rotations:
                        await connection.execute(
                            _AUDIT_EVENTS.insert().values(
                                id=new_id(),
                                at=rotated_at,
                                channel="cli",
                                actor="cli",
                                action="keys_rotate",
                                subject_type="api_keys",
                                subject_id=old,
                                after={"expires_at": format_instant(now), "replaced_by": new},
                            )
                        )
                    # b2's own reply to "adj-2"; "adj-1" ran under a1 and again under b2 (the defect).
                    for owner, key in (("a1a1a1a1", "adj-1"), ("b2b2b2b2", "adj-1"), ("b2b2b2b2", "adj-2")):
                        await connection.execute(
                            _IDEMPOTENCY_RECORDS.insert().values(
                                id=new_id(),
                                owner=owner,
                                key=key,
                                fingerprint=f"{owner}-{key}",
                                state="completed",
                                locked_until=now,
                                expires_at=now + timedelta(hours=20),
                            )
                        )
                await upgrade(engine)
                async with engine.connect() as connection:
                    lines = dict(
                        (await connection.execute(sa.text("SELECT prefix, lineage FROM api_keys"))).all()
                    )
                    found = await connection.execute(
                        sa.text("SELECT owner, key, fingerprint FROM idempotency_records")
                    )
                    records = sorted(tuple(row) for row in found.all())
            finally:
                await engine.dispose()
        assert lines == {
            "a1a1a1a1": "a1a1a1a1",
            "b2b2b2b2": "a1a1a1a1",
            "c3c3c3c3": "a1a1a1a1",
            "d4d4d4d4": "d4d4d4d4",
            "e5e5e5e5": "e5e5e5e5",
        }
        assert records == [
            ("a1a1a1a1", "adj-1", "a1a1a1a1-adj-1"),  # the line's first answer is the one replayed
            ("a1a1a1a1", "adj-2", "b2b2b2b2-adj-2"),  # b2 still replays its own
            ("b2b2b2b2", "adj-1", "b2b2b2b2-adj-1"),  # the second run's, read by nobody, purged at expiry
        ]


class TestActivityRuleWindows:
    """0031 gives activity rules a window; on SQLite adding its CHECK rebuilds the table member activities
    reference, so the rules and what members were rewarded under them must survive down and up."""

    async def test_rules_and_the_activities_under_them_survive_down_and_up(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START)
        async with _migrated_service(tmp_path, settings, "windows", clock) as (app, client, engine):
            admin, till = [await make_key(app, s) for s in (Scope.admin, Scope.pos)]
            await set_program(client, admin)
            ends = format_instant(START + timedelta(days=3))
            rule = await add_activity_rule(client, admin, valid_until=ends)
            member = await enrol(client, till)
            done = await record(client, till, member["id"], "r-1")

            await downgrade(engine, "0030")
            await upgrade(engine)
            units_of(app).cache.clear()

            read = await client.get(f"/v1/activity-rules/{rule['id']}", headers=bearer(admin))
            # The window went with the columns on the way down; the rule and its activity stayed.
            assert read.json() == {**rule, "valid_until": None}
            again = await record_reply(client, till, member["id"], "r-1")
            assert (again.status_code, again.json()["id"]) == (200, done["id"])
            clock.set(START + timedelta(days=4))  # past the window it had: none now
            assert (await record(client, till, member["id"], "r-2"))["points_earned"] == 10
            empty = await client.patch(
                f"/v1/activity-rules/{rule['id']}",
                json={"valid_from": format_instant(START), "valid_until": format_instant(START)},
                headers=bearer(admin),
            )
            assert (empty.status_code, empty.json()["code"]) == (422, "validation_error")


class TestPointValueBackfill:
    """0032 records the programme's point value as its first change, so the statements of periods before the
    upgrade keep their values when the point value changes after it."""

    async def test_a_statement_from_before_the_upgrade_keeps_its_value_after_a_change(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START)
        async with _migrated_service(tmp_path, settings, "values", clock) as (app, client, engine):
            admin, till = [await make_key(app, s) for s in (Scope.admin, Scope.pos)]
            await set_program(client, admin, point_value_minor="1.5")
            partner = await register_partner(app, client, admin, "alpha", earn_rate="1.5")
            member = await enrol(client, till)
            await link(client, till, partner, member["id"], "alpha", "A-1")
            earned = await partner_earn(client, partner, "A-1", "E1", 10_000)  # 150 points, 225 fen
            assert earned.status_code == 201, earned.text
            await downgrade(engine, "0031")  # as the release before left it: no point values recorded
            await upgrade(engine)

            clock.advance(timedelta(days=1))
            await set_program(client, admin, point_value_minor="3")
            found = await client.get(
                "/v1/partners/alpha/settlements",
                params={"from": format_instant(START), "to": format_instant(clock.now())},
                headers=bearer(admin),
            )
            assert found.status_code == 200, found.text
            assert found.json()["earned"]["value"] == {"amount": 225, "currency": "CNY"}


_END_OF_2026 = datetime(2026, 12, 31, 16, tzinfo=UTC)  # 1 January 2027 in Shanghai, the programme's zone
# The members' tier dates as 0037 kept them (with the grace) and as 0038 keeps them (the window's end).
_TIER_DATES_0037 = ("tier_kept_until", "tier_reminded_until", "tier_earned_until")
_TIER_DATES_0038 = ("tier_window_end", "tier_reminded_window_end", "tier_earned_window_end")


async def _tier_dates(
    engine: AsyncEngine, columns: tuple[str, ...]
) -> dict[str, tuple[datetime | None, ...]]:
    members = sa.table("members", sa.column("id", sa.Uuid()), *(sa.column(c, UTCDateTime()) for c in columns))
    async with engine.connect() as connection:
        found = await connection.execute(sa.select(members))
        return {str(row[0]): tuple(row[1:]) for row in found}


class TestTierWindowEnds:
    """0038 keeps the end of the window a member's review judges instead of the date with the tier's grace:
    the date less the grace of the member's tier (or of the tier earned before an override); none under an
    override, whose end is the operator's date; a date of a tier deleted since as it was."""

    async def test_every_date_a_member_sees_is_the_same_after_down_and_up(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START)
        async with _migrated_service(tmp_path, settings, "tierdates", clock) as (app, client, engine):
            admin, pos = await make_key(app, Scope.admin), await make_key(app, Scope.pos)
            await set_program(client, admin, tier_reminder_days=30)
            await standard_ladder(client, admin)  # silver and gold: calendar years, 30 days of grace
            await add_tier(client, admin, "copper", rank=3, threshold=1_000_000, grace_days=7)
            await add_tier(
                client,
                admin,
                "platinum",
                rank=4,
                threshold=2_000_000,
                window="rolling_days",
                window_days=365,
                grace_days=10,
            )
            names = ("silver", "overridden", "deleted", "entry", "erased", "rolling", "told")
            member = {name: (await enrol(client, pos))["id"] for name in names}
            clock.set(START + timedelta(microseconds=123456))  # SQLite's date functions keep whole seconds
            await earn(client, pos, member["rolling"], 2_000_000)
            for name in ("silver", "overridden", "erased", "told"):
                await earn(client, pos, member[name], 150_000)
            await earn(client, pos, member["deleted"], 1_000_000)
            until = datetime(2027, 3, 1, tzinfo=UTC)
            for name in ("overridden", "deleted", "erased"):
                await put_override(client, admin, member[name], "gold", until, "promotion")
            gone = await client.delete("/v1/tiers/copper", headers=bearer(admin))
            assert gone.status_code == 204, gone.text
            erased = await client.post(f"/v1/members/{member['erased']}/erase", headers=bearer(admin))
            assert erased.status_code == 200, erased.text
            clock.set(_END_OF_2026 - timedelta(days=10))
            assert await remind_tier_reviews(units_of(app)) == 2  # silver's window ends in 10 days
            # Told of silver's window, then put on a tier of another grace: the date told of is silver's.
            await put_override(client, admin, member["told"], "platinum", until, "promotion")
            seen = {name: await tier_of(client, pos, member[name]) for name in names if name != "erased"}
            stored = await _tier_dates(engine, _TIER_DATES_0038)

            await downgrade(engine, "0037")
            assert await _tier_dates(engine, _TIER_DATES_0037) == {
                member["silver"]: (KEPT_2026, KEPT_2026, None),
                member["overridden"]: (until, None, KEPT_2026),
                member["deleted"]: (until, None, _END_OF_2026),  # copper's grace went with it
                member["entry"]: (None, None, None),
                member["erased"]: (None, None, None),  # erasure cleared the override (as 0041 does)
                member["rolling"]: (START + timedelta(days=375, microseconds=123456), None, None),
                member["told"]: (until, KEPT_2026, KEPT_2026),
            }
            await upgrade(engine)

            assert await _tier_dates(engine, _TIER_DATES_0038) == stored
            assert stored[member["silver"]] == (_END_OF_2026, _END_OF_2026, None)
            assert stored[member["overridden"]] == (None, None, _END_OF_2026)
            assert stored[member["told"]] == (None, _END_OF_2026, _END_OF_2026)
            assert {name: await tier_of(client, pos, member[name]) for name in seen} == seen
            assert seen["silver"]["kept_until"] == iso(KEPT_2026)
            assert seen["rolling"]["kept_until"] == "2027-03-26T10:00:00.123456Z"
            assert await remind_tier_reviews(units_of(app)) == 0  # told of that window already


_PAYMENTS_0039 = sa.table(
    "subscription_payments",
    sa.column("member_id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("unused_at", UTCDateTime()),
)
_OUTBOX = sa.table("outbox_events", sa.column("type", sa.String()), sa.column("member_id", sa.Uuid()))


async def _unused_at(engine: AsyncEngine) -> dict[str, datetime | None]:
    """Each member's `unused` fee: when a cancel named it."""
    p = _PAYMENTS_0039.c
    async with engine.connect() as connection:
        found = await connection.execute(sa.select(p.member_id, p.unused_at).where(p.status == "unused"))
        return {str(member_id): unused_at for member_id, unused_at in found}


class TestUnusedAtBackfill:
    """0039 keeps when a cancel named a fee `unused`: from the cancel's event while the outbox keeps it, else
    from the subscription's canceled_at while no resume has cleared it, else the fee's recorded_at (its
    member counted as leaving from the fee on, not as kept after the cancel)."""

    async def test_each_fee_canceled_before_the_upgrade_keeps_its_member_until_its_cancel_at_most(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START - timedelta(days=10))
        async with _migrated_service(tmp_path, settings, "unusedat", clock) as (app, client, engine):
            admin, shop, billing = [
                await make_key(app, s) for s in (Scope.admin, Scope.ecommerce, Scope.billing)
            ]
            await set_program(client, admin)
            await add_plan(client, admin, "plus", price=3_000, unit="month")
            await add_plan(client, admin, "trial", price=3_000, unit="month", trial_days=30)
            # Each pays for plus at START, moves to a trial paid ahead at START + 1 and cancels it at
            # START + 4; some resume it at START + 6; the outbox has purged the cancels of some.
            names = ("standing", "resumed", "standing_purged", "resumed_purged")
            plus = {name: await new_paid_subscriber(client, shop, "plus") for name in names}
            member = {name: plus[name][0]["id"] for name in names}
            trials = {}
            clock.set(START + timedelta(days=1))
            for name in names:
                ended = await post_action(
                    client, shop, plus[name][1]["id"], "cancel", {"at_period_end": False}
                )
                assert ended.status_code == 200, ended.text
                trials[name] = await subscribe(client, shop, member[name], "trial")
                await pay(client, billing, trials[name]["id"], period=1, amount=3_000)
            clock.set(START + timedelta(days=4))
            for name in names:
                canceled = await post_action(
                    client, shop, trials[name]["id"], "cancel", {"at_period_end": True}
                )
                assert canceled.status_code == 200, canceled.text
            clock.set(START + timedelta(days=6))
            for name in ("resumed", "resumed_purged"):
                resumed = await post_action(client, shop, trials[name]["id"], "resume")
                assert resumed.status_code == 200, resumed.text
            clock.set(START + timedelta(days=7))
            assert await _unused_at(engine) == {member[name]: START + timedelta(days=4) for name in names}

            await downgrade(engine, "0038")
            purged = [uuid.UUID(member[name]) for name in ("standing_purged", "resumed_purged")]
            async with engine.begin() as connection:
                await connection.execute(
                    sa.delete(_OUTBOX).where(
                        _OUTBOX.c.type == "subscription.canceled", _OUTBOX.c.member_id.in_(purged)
                    )
                )
            await upgrade(engine)

            assert await _unused_at(engine) == {
                member["standing"]: START + timedelta(days=4),  # its event
                member["resumed"]: START + timedelta(days=4),  # its event, though resumed
                member["standing_purged"]: START + timedelta(days=4),  # canceled_at
                member["resumed_purged"]: START + timedelta(days=1),  # recorded_at: the cancel's time is lost
            }
            window = {"from": format_instant(START), "to": format_instant(START + timedelta(days=3))}
            found = (await client.get("/v1/analytics/overview", params=window, headers=bearer(admin))).json()
            assert (found["paying_members_at_start"], found["churned_members"]) == (4, 1)
            window["to"] = format_instant(START + timedelta(days=7))
            found = (await client.get("/v1/analytics/overview", params=window, headers=bearer(admin))).json()
            assert (found["paying_members_at_start"], found["churned_members"]) == (4, 4)


_OVERRIDES_0040 = sa.table(
    "members",
    sa.column("id", sa.Uuid()),
    sa.column("tier_override_until", UTCDateTime()),
    sa.column("tier_earned_id", sa.Uuid()),
    sa.column("tier_earned_window_end", UTCDateTime()),
)


async def _overrides(engine: AsyncEngine) -> dict[str, tuple[Any, ...]]:
    """Each member's override: its end, the tier earned before it and that window's end."""
    async with engine.connect() as connection:
        found = await connection.execute(sa.select(_OVERRIDES_0040))
        return {str(row[0]): tuple(row[1:]) for row in found}


class TestErasedOverridesCleared:
    """0041 clears what erasure left of an override on the row (its end, the tier earned before it and that
    window's end), which no review acts on; other members keep theirs."""

    async def test_a_member_erased_before_the_upgrade_carries_no_override_after_it(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START)
        async with _migrated_service(tmp_path, settings, "erasedoverride", clock) as (app, client, engine):
            admin, pos = await make_key(app, Scope.admin), await make_key(app, Scope.pos)
            await set_program(client, admin)
            await standard_ladder(client, admin)
            names = ("erased", "overridden")
            member = {name: (await enrol(client, pos))["id"] for name in names}
            until = datetime(2026, 6, 1, tzinfo=UTC)
            for name in names:
                await earn(client, pos, member[name], 150_000)  # silver
                await put_override(client, admin, member[name], "gold", until, "promotion")
            before = await _overrides(engine)
            assert before[member["erased"]][0] == until
            erased = await client.post(f"/v1/members/{member['erased']}/erase", headers=bearer(admin))
            assert erased.status_code == 200, erased.text

            await downgrade(engine, "0040")
            # As the erasure of 0040's code left the row: the override as it was.
            left = dict(
                zip(
                    ("tier_override_until", "tier_earned_id", "tier_earned_window_end"),
                    before[member["erased"]],
                    strict=True,
                )
            )
            async with engine.begin() as connection:
                await connection.execute(
                    sa.update(_OVERRIDES_0040)
                    .where(_OVERRIDES_0040.c.id == uuid.UUID(member["erased"]))
                    .values(left)
                )
            assert await _overrides(engine) == before
            await upgrade(engine)

            assert await _overrides(engine) == before | {member["erased"]: (None, None, None)}
            assert (await tier_of(client, pos, member["overridden"]))["override_until"] == iso(until)


_REVISIONS_0042 = sa.table(
    "members",
    sa.column("id", sa.Uuid()),
    sa.column("tier_window_revision", sa.Integer()),
    sa.column("tier_earned_window_revision", sa.Integer()),
)


async def _window_revisions(engine: AsyncEngine) -> dict[str, tuple[Any, ...]]:
    """Each member's revisions of the windows their stored ends were worked out under: on their tier, and of
    the tier earned before an override."""
    async with engine.connect() as connection:
        found = await connection.execute(sa.select(_REVISIONS_0042))
        return {str(row[0]): tuple(row[1:]) for row in found}


class TestTierWindowRevisions:
    """0042 takes each end stored before as worked out under the window its tier has, its first revision."""

    async def test_ends_stored_before_the_upgrade_read_as_they_did(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START)
        async with _migrated_service(tmp_path, settings, "windowrevisions", clock) as (app, client, engine):
            admin, pos = await make_key(app, Scope.admin), await make_key(app, Scope.pos)
            await set_program(client, admin)
            await standard_ladder(client, admin)
            names = ("silver", "overridden", "entry")
            member = {name: (await enrol(client, pos))["id"] for name in names}
            for name in ("silver", "overridden"):
                await earn(client, pos, member[name], 150_000)
            until = datetime(2027, 3, 1, tzinfo=UTC)
            await put_override(client, admin, member["overridden"], "gold", until, "promotion")
            seen = {name: await tier_of(client, pos, member[name]) for name in names}

            await downgrade(engine, "0041")
            await upgrade(engine)

            assert await _window_revisions(engine) == {
                member["silver"]: (1, None),
                member["overridden"]: (None, 1),
                member["entry"]: (None, None),
            }
            assert {name: await tier_of(client, pos, member[name]) for name in names} == seen


_ORDERS_0050 = sa.table(
    "orders", sa.column("order_ref", sa.String()), sa.column("partner_customer_ref", sa.String())
)


async def _order_refs(engine: AsyncEngine) -> dict[str, str | None]:
    async with engine.connect() as connection:
        return {ref: customer for ref, customer in await connection.execute(sa.select(_ORDERS_0050))}


class TestPartnerOrderCustomerRefs:
    """0051 gives each purchase at a partner the reference its member is linked to the partner under
    now; a purchase of a member not linked now, and our own orders, keep none."""

    async def test_purchases_before_the_upgrade_take_their_members_link_and_no_other_partners(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START)
        async with _migrated_service(tmp_path, settings, "partnerrefs", clock) as (app, client, engine):
            admin, pos = await make_key(app, Scope.admin), await make_key(app, Scope.pos)
            await set_program(client, admin)
            # Codes a LIKE pattern would confuse: `a_b/%` matches `axb/O-1` as well.
            a_b = await register_partner(app, client, admin, "a_b", earn_rate="1")
            axb = await register_partner(app, client, admin, "axb", earn_rate="1")
            linked, left = (await enrol(client, pos))["id"], (await enrol(client, pos))["id"]
            await link(client, pos, a_b, linked, "a_b", "AB-1")
            await link(client, pos, axb, linked, "axb", "X-1")
            await link(client, pos, a_b, left, "a_b", "AB-2")
            for key, ref, order_ref in ((a_b, "AB-1", "O-1"), (axb, "X-1", "O-1"), (a_b, "AB-2", "O-2")):
                assert (await partner_earn(client, key, ref, order_ref, 10_000)).status_code == 201
            await earn(client, pos, linked, 10_000, order_ref="TILL-1")
            unlinked = await client.delete(f"/v1/members/{left}/partner-links/a_b", headers=bearer(pos))
            assert unlinked.status_code == 204, unlinked.text
            made = {"a_b/O-1": "AB-1", "axb/O-1": "X-1", "a_b/O-2": "AB-2", "TILL-1": None}
            assert await _order_refs(engine) == made

            await downgrade(engine, "0050")
            await upgrade(engine)

            assert await _order_refs(engine) == made | {"a_b/O-2": None}
            # Linked, as made: unlinked, it is refunded under its reference alone. Not linked at the upgrade:
            # by its order alone, as before.
            unlinked = await client.delete("/v1/partner/links/AB-1", headers=bearer(a_b))
            assert unlinked.status_code == 204, unlinked.text
            for ref, order_ref, status in (("AB-2", "O-1", 404), ("AB-1", "O-1", 200), ("ANY", "O-2", 200)):
                path = f"/v1/partner/members/{ref}/refunds"
                body = {"order_ref": order_ref, "full": True}
                refunded = await client.post(path, json=body, headers=bearer(a_b))
                assert refunded.status_code == status, refunded.text


_EXPIRIES = sa.table(
    "outbox_events",
    sa.column("id", sa.Uuid()),
    sa.column("type", sa.String()),
    sa.column("payload", JSONDocument),
)


class TestExpiredEndedAtBackfill:
    """0054 gives the subscription.expired events written before they carried `ended_at` the
    subscription's, so a webhook sent again from the outbox matches the payload's schema."""

    async def test_an_expiry_written_without_ended_at_gets_the_subscriptions(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START)
        async with _migrated_service(tmp_path, settings, "ended", clock) as (app, client, engine):
            admin, shop = [await make_key(app, s) for s in (Scope.admin, Scope.ecommerce)]
            await set_program(client, admin)
            await add_plan(client, admin, "plus", price=1_500, unit="month")
            _, sub = await new_paid_subscriber(client, shop, "plus")
            clock.advance(timedelta(days=3))
            ended = await post_action(client, shop, sub["id"], "cancel", {"at_period_end": False})
            assert ended.status_code == 200, ended.text

            await downgrade(engine, "0053")
            async with engine.begin() as connection:  # as the code before 0054 wrote it
                [(event_id, payload)] = (
                    await connection.execute(
                        sa.select(_EXPIRIES.c.id, _EXPIRIES.c.payload).where(
                            _EXPIRIES.c.type == "subscription.expired"
                        )
                    )
                ).all()
                older = {k: v for k, v in payload.items() if k != "ended_at"}
                await connection.execute(
                    sa.update(_EXPIRIES).where(_EXPIRIES.c.id == event_id).values(payload=older)
                )
            [before] = await events(app, "subscription.expired")
            assert "ended_at" not in before["payload"]
            await upgrade(engine)

            [expired] = await events(app, "subscription.expired")
            assert expired["payload"]["ended_at"] == ended.json()["ended_at"] == format_instant(clock.now())
            assert {k: v for k, v in expired["payload"].items() if k != "ended_at"} == older
