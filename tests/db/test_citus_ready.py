"""Ready to distribute by member (docs/scaling.md): every table is classified, and the till's statements are
each about one member.

On Citus, member-scoped tables are distributed by `member_id` and co-located; a statement that names one
member's id runs on that member's shard alone. Programme configuration is replicated to every node
(reference tables); the rest stays on the coordinator. A new table fails `test_every_table_is_classified`
until it is given a place here, and a member-scoped table fails the key rule unless its primary key and
unique constraints carry `member_id` or the exception below says why not."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import UniqueConstraint, event

from loyalty_api.schema import metadata
from tests.builders import enrol
from tests.checkout.helpers import add_benefit, add_tier, cart, give_points, item, quote
from tests.conftest import bearer
from tests.points.helpers import earn, set_program

# Distributed by member_id, co-located.
MEMBER_SCOPED = {
    "members",  # distributed by its id, the member id
    "member_external_ids",
    "member_rfm",
    "points_accounts",
    "ledger_entries",
    "point_lots",
    "point_stand_ins",
    "holds",
    "orders",
    "coupons",
    "reward_redemptions",
    "tier_changes",
    "subscriptions",
    "subscription_payments",
    "partner_links",
    "partner_link_codes",
    "partner_exchanges",
    "partner_perks",
    "partner_benefit_uses",
    "referral_rewards",  # by friend_id: the friend whose purchase it rewards
    "member_activities",
    "campaign_members",  # keyed by (campaign_id, member_id): a batch's INSERT … SELECT is per shard
}
# Programme configuration: small, read by every statement that joins it, changed by operators.
REFERENCE = {
    "programs",
    "point_value_changes",  # the programme's point value over time, joined by partners' statements
    "activity_rules",
    "tiers",
    "tier_ladder_versions",
    "benefits",
    "benefit_grants",
    "earning_rules",
    "rewards",
    "plans",
    "partners",
    "api_keys",
    "webhook_endpoints",
}
# On the coordinator: keyed by something other than a member (a request key, an event, a delivery), or a log.
COORDINATOR = {
    "idempotency_records",
    "outbox_events",
    "webhook_deliveries",
    "webhook_attempts",
    "webhook_delivery_counts",
    "audit_events",
    "partner_perk_codes",  # a partner's pool, each code handed to one member's perk
    "campaigns",  # an operator's campaign and its progress: one row, locked by the worker running a batch
    "job_marks",  # a row per scheduled job: how far it has looked
}

# Keys of member-scoped tables that lack the member, and why. Primary keys of `id` alone: the ids are
# time-ordered UUIDs made by the application, unique without the database's help, so on Citus the key widens
# to (member_id, id) as the table is distributed (docs/scaling.md, step 2), and rows are always reached with
# their member. Keys over something a caller types without naming the member (a card number, a coupon code,
# a partner's reference) need a lookup table distributed by that key (step 3). Others widen (steps 2, 5).
WIDENS = "id alone: widened to (member_id, id) when distributed"
LOOKUP = "typed without the member: a lookup table distributed by it holds its uniqueness"
KEY_EXCEPTIONS: dict[tuple[str, tuple[str, ...]], str] = {
    **{
        (table, ("id",)): WIDENS
        for table in (
            "coupons",
            "holds",
            "ledger_entries",
            "member_activities",
            "partner_benefit_uses",
            "partner_exchanges",
            "partner_link_codes",
            "partner_links",
            "partner_perks",
            "point_lots",
            "point_stand_ins",
            "reward_redemptions",
            "subscription_payments",
            "subscriptions",
            "tier_changes",
        )
    },
    **{
        key: LOOKUP
        for key in (
            ("members", ("member_number",)),
            ("members", ("phone_hash",)),
            ("members", ("email_hash",)),
            ("members", ("referral_code",)),
            ("member_external_ids", ("system", "external_id")),
            ("coupons", ("code",)),
            ("partner_links", ("partner_id", "partner_customer_ref")),
            ("partner_link_codes", ("code_hash",)),
            ("partner_perks", ("code",)),
            ("partner_exchanges", ("partner_id", "partner_ref")),
            ("partner_benefit_uses", ("partner_id", "use_ref")),
        )
    },
    ("coupons", ("issue_key",)): "the issue key names the member (birthday:…:member:year); widened with it",
    ("partner_perks", ("issue_key",)): "names the subscription and period; widened with the member",
    (
        "subscription_payments",
        ("subscription_id", "payment_ref"),
    ): "widened to (member_id, subscription_id, …)",
    ("subscription_payments", ("subscription_id", "period")): "widened to (member_id, subscription_id, …)",
    ("orders", ("order_ref",)): "an order earns once, whoever names it; distributed, the key becomes "
    "(member_id, order_ref): the same reference for two members is then two orders",
}


def _member_column(table_name: str) -> str:
    return {"members": "id", "referral_rewards": "friend_id"}.get(table_name, "member_id")


def test_every_table_is_classified() -> None:
    tables = set(metadata.tables)
    classified = MEMBER_SCOPED | REFERENCE | COORDINATOR
    assert tables - classified == set(), "a new table: is it member-scoped, reference or coordinator?"
    assert classified - tables == set()
    assert not (MEMBER_SCOPED & REFERENCE or MEMBER_SCOPED & COORDINATOR or REFERENCE & COORDINATOR)


def test_member_scoped_tables_carry_the_member_or_say_why_not() -> None:
    lacking: set[tuple[str, tuple[str, ...]]] = set()
    for name in sorted(MEMBER_SCOPED):
        table = metadata.tables[name]
        column = _member_column(name)
        assert column in table.c, f"{name} has no {column}"
        keys = [tuple(c.name for c in table.primary_key.columns)]
        keys += [
            tuple(c.name for c in con.columns)
            for con in table.constraints
            if isinstance(con, UniqueConstraint)
        ]
        keys += [tuple(c.name for c in index.columns) for index in table.indexes if index.unique]
        lacking |= {(name, key) for key in keys if column not in key}
    assert lacking - set(KEY_EXCEPTIONS) == set(), (
        "member-scoped keys without the member, and no reason given"
    )
    assert set(KEY_EXCEPTIONS) - lacking == set(), "a reason for a key that no longer needs one"


# --- The till's statements ----------------------------------------------------------------------------

_MEMBER_TABLES = re.compile(r"\b(" + "|".join(sorted(MEMBER_SCOPED, key=len, reverse=True)) + r")\b")


@contextmanager
def statements(app: FastAPI) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent through SQLAlchemy meanwhile, with their parameters. On SQLite that is every
    statement; on PostgreSQL the hot path's direct statements (db/direct.py) go past it, and are the same
    Core statements the SQLite run sees."""
    seen: list[tuple[str, Any]] = []
    engine = app.state.units.database.engine.sync_engine

    def note(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, _many: bool) -> None:
        seen.append((sql, params))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _mentions(params: Any, member_id: uuid.UUID) -> bool:
    forms = {member_id, str(member_id), member_id.hex}
    if isinstance(params, dict):
        values = list(params.values())
    elif isinstance(params, list | tuple):
        values = [v for p in params for v in (_flatten(p))]
    else:
        values = [params]
    return any(value in forms for value in values if isinstance(value, uuid.UUID | str))


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list | tuple):
        return [v for p in value for v in _flatten(p)]
    return [value]


async def test_the_tills_statements_each_name_the_one_member_they_touch(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    benefit = await add_benefit(client, admin_key, "九折", "percent_discount", percent="10")
    await add_tier(client, admin_key, "member", benefit_ids=[benefit])
    other = await enrol(client, pos_key)
    await earn(client, pos_key, other["id"], 10_000)
    member = await enrol(client, pos_key)
    await give_points(client, admin_key, member["id"], 5_000)
    member_id = uuid.UUID(member["id"])

    with statements(app) as seen:
        # What a till and a checkout do for one member, by id (lookup by card number: see below).
        await earn(client, pos_key, member["id"], 12_300)
        redeemed = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": 100, "order_ref": "R-1"},
            headers=bearer(pos_key),
        )
        assert redeemed.status_code == 200, redeemed.text
        await quote(client, pos_key, member["id"], cart(item("tea", 3_000), shipping=800))
        read = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert read.status_code == 200
    touching = [(sql, params) for sql, params in seen if _MEMBER_TABLES.search(sql)]
    assert touching, "the scenario touched no member-scoped table"
    elsewhere = [sql for sql, params in touching if not _mentions(params, member_id)]
    assert elsewhere == []

    # The lookup by an identifier names no member id: on Citus it reads the identifier's lookup table
    # first (LOOKUP). Pinned here so that a change to it is a decision.
    with statements(app) as seen:
        found = await client.get(
            f"/v1/members/lookup?member_number={member['member_number']}", headers=bearer(pos_key)
        )
        assert found.status_code == 200
    by_identifier = [
        sql for sql, params in seen if _MEMBER_TABLES.search(sql) and not _mentions(params, member_id)
    ]
    # (On PostgreSQL the lookup runs as a direct statement, which this does not see.)
    assert all(re.search(r"\bmembers\.member_number = ", sql) for sql in by_identifier), by_identifier
