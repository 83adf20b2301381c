"""0040 ties a fee's `unused` status to its unused_at with a CHECK, after making the rows already there meet
it: a fee left `unused` without a time (a cancel by the code before 0039, run after it) gets the time 0039
would have given it; a time on a fee not `unused` (a hand edit) goes, the status standing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.db.migrations import current_revision, downgrade, head_revision, upgrade
from loyalty_api.db.types import UTCDateTime
from loyalty_api.settings import Settings
from tests.builders import make_key
from tests.conftest import START
from tests.migrations.test_migrations import _migrated_service, diff_against_models
from tests.points.helpers import set_program
from tests.subscriptions.helpers import add_plan, new_paid_subscriber, pay, post_action

BEFORE = "0039"
CHECK = "ck_subscription_payments__unused_at_when_unused"

# subscription_payments as 0039 left it.
_PAYMENTS = sa.table(
    "subscription_payments",
    sa.column("payment_ref", sa.String()),
    sa.column("status", sa.String()),
    sa.column("unused_at", UTCDateTime()),
)
_OUTBOX = sa.table("outbox_events", sa.column("type", sa.String()), sa.column("member_id", sa.Uuid()))


async def _fees(engine: AsyncEngine) -> dict[str, tuple[str, datetime | None]]:
    p = _PAYMENTS.c
    async with engine.connect() as connection:
        found = await connection.execute(sa.select(p.payment_ref, p.status, p.unused_at))
        return {ref: (status, unused_at) for ref, status, unused_at in found}


def _shape(connection: Connection) -> dict[str, Any]:
    """subscription_payments' rows and every part of its schema but its CHECK constraints (which SQLite's
    rebuild of the table must keep as they were)."""
    inspector = sa.inspect(connection)
    table = "subscription_payments"
    rows = sorted(repr(tuple(row)) for row in connection.execute(sa.text(f"SELECT * FROM {table}")))
    if connection.dialect.name == "sqlite":
        indexes = connection.execute(
            sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t ORDER BY name"
            ),
            {"t": table},
        ).all()
    else:
        indexes = connection.execute(
            sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t ORDER BY indexname"),
            {"t": table},
        ).all()
    return {
        "rows": rows,
        "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
        "foreign_keys": sorted(inspector.get_foreign_keys(table), key=lambda fk: str(fk["name"])),
        "unique": inspector.get_unique_constraints(table),
        "primary_key": inspector.get_pk_constraint(table),
        "indexes": indexes,
    }


def _checks(connection: Connection) -> set[str]:
    return {str(c["name"]) for c in sa.inspect(connection).get_check_constraints("subscription_payments")}


async def _run(engine: AsyncEngine, look: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.run_sync(look)


class TestUnusedCheckRevision:
    async def test_rows_are_made_to_meet_the_check_and_down_and_up_keep_them(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        clock = FrozenClock(START)
        async with _migrated_service(tmp_path, settings, "unusedcheck", clock) as (app, client, engine):
            admin, shop, billing = [
                await make_key(app, s) for s in (Scope.admin, Scope.ecommerce, Scope.billing)
            ]
            await set_program(client, admin)
            await add_plan(client, admin, "plus", price=3_000, unit="month")
            # Each pays for plus at START and for its second month at START + 1 (one after a failure); all but
            # one cancel at START + 4, which names that fee `unused`; two resume at START + 6.
            names = ("event", "canceled_at", "recorded_at", "reinstated", "failed_stamped")
            subs = {name: (await new_paid_subscriber(client, shop, "plus"))[1] for name in names}
            first_fees = {sub["payment_ref"] for sub in subs.values()}
            clock.set(START + timedelta(days=1))
            await pay(
                client,
                billing,
                subs["failed_stamped"]["id"],
                period=2,
                amount=3_000,
                status="failed",
                payment_ref="F2-failed_stamped",
            )
            for name in names:
                await pay(client, billing, subs[name]["id"], period=2, amount=3_000, payment_ref=f"P2-{name}")
            clock.set(START + timedelta(days=4))
            for name in names[:4]:
                canceled = await post_action(
                    client, shop, subs[name]["id"], "cancel", {"at_period_end": True}
                )
                assert canceled.status_code == 200, canceled.text
            clock.set(START + timedelta(days=6))
            for name in ("event", "recorded_at"):  # their canceled_at cleared
                resumed = await post_action(client, shop, subs[name]["id"], "resume")
                assert resumed.status_code == 200, resumed.text

            await downgrade(engine, BEFORE)
            p = _PAYMENTS.c
            async with engine.begin() as connection:
                # Canceled by the code before 0039 (a process not yet replaced): `unused`, with no time.
                await connection.execute(
                    sa.update(_PAYMENTS)
                    .where(p.payment_ref.in_(["P2-event", "P2-canceled_at", "P2-recorded_at"]))
                    .values(unused_at=None)
                )
                # And the outbox has purged two of those cancels' events.
                for name in ("canceled_at", "recorded_at"):
                    await connection.execute(
                        sa.delete(_OUTBOX).where(
                            _OUTBOX.c.type == "subscription.canceled",
                            _OUTBOX.c.member_id == uuid.UUID(subs[name]["member_id"]),
                        )
                    )
                # By hand: a fee set back to succeeded, keeping its time; a time on a failure.
                await connection.execute(
                    sa.update(_PAYMENTS).where(p.payment_ref == "P2-reinstated").values(status="succeeded")
                )
                await connection.execute(
                    sa.update(_PAYMENTS)
                    .where(p.payment_ref == "F2-failed_stamped")
                    .values(unused_at=START + timedelta(days=5))
                )
            before = await _run(engine, _shape)
            assert CHECK not in await _run(engine, _checks)

            await upgrade(engine)

            assert await _fees(engine) == {
                "P2-event": ("unused", START + timedelta(days=4)),  # its event, though resumed
                "P2-canceled_at": ("unused", START + timedelta(days=4)),  # purged: the cancel stands
                "P2-recorded_at": ("unused", START + timedelta(days=1)),  # resumed and purged: recorded_at
                "P2-reinstated": ("succeeded", None),  # the status stands
                "P2-failed_stamped": ("succeeded", None),
                "F2-failed_stamped": ("failed", None),
                **{ref: ("succeeded", None) for ref in first_fees},
            }
            assert CHECK in await _run(engine, _checks)
            assert await diff_against_models(engine) == []
            at_head = await _run(engine, _shape)
            # SQLite's rebuild keeps the table's indexes, keys and columns; only the rows made to meet the
            # check differ.
            assert {k: v for k, v in at_head.items() if k != "rows"} == {
                k: v for k, v in before.items() if k != "rows"
            }

            await downgrade(engine, BEFORE)
            assert CHECK not in await _run(engine, _checks)
            assert await _run(engine, _shape) == at_head
            await upgrade(engine)
            assert await current_revision(engine) == head_revision()
            assert CHECK in await _run(engine, _checks)
            assert await _run(engine, _shape) == at_head
