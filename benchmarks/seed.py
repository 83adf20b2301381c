"""Bulk-load a benchmark database: a two-tier ladder, members with encrypted personal data on its lowest tier,
points accounts with an opening balance (ledger entry and lot behind it, so the ledger invariant holds), and
an API key; then, through the services, coupons for the checkout quote's shoppers.

Seeding members goes around the services on purpose: a hundred thousand enrolments one by one would take
longer than the benchmark itself. The rows are the ones the services would write (enrolment puts a member on
the lowest tier). The ladder, the rewards and the shoppers' coupons go through the services.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import Scope
from loyalty_api.benefits import service as benefits
from loyalty_api.benefits.service import BenefitDefinition
from loyalty_api.clock import SystemClock
from loyalty_api.crypto import Vault
from loyalty_api.db.engine import Database
from loyalty_api.db.ids import new_id
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.demo.seed import DEMO_PROGRAM
from loyalty_api.members.birthday_keys import birthday_keys
from loyalty_api.members.member_number import luhn_check_digit
from loyalty_api.members.models import Member
from loyalty_api.offers import FixedDiscount, FreeShipping, PercentDiscount
from loyalty_api.points.models import LedgerEntry, PointLot, PointsAccount
from loyalty_api.program.service import put_program
from loyalty_api.rewards import service as rewards
from loyalty_api.rewards.service import RewardDefinition
from loyalty_api.settings import Settings
from loyalty_api.tiers import service as tiers
from loyalty_api.tiers.ladder import Metric, Window
from loyalty_api.tiers.service import TierDefinition

OPENING_POINTS = 1_000_000
CHUNK = 20_000
PERSONAL_POOL = 1_000


def member_number(n: int) -> str:
    payload = f"{100_000_000 + n:09d}"
    return payload + luhn_check_digit(payload)


async def seed(engine: AsyncEngine, settings: Settings, members: int) -> tuple[str, list[tuple[str, str]]]:
    """Returns a till's API key (`pos` and `ecommerce`) and (member id, member number) pairs."""
    assert settings.encryption_key is not None
    vault = Vault(settings.encryption_key.get_secret_value())
    units = _units(engine, settings)
    async with units.begin() as uow:
        await put_program(uow, DEMO_PROGRAM)
        # A till's scopes: a key that also held `admin` would have every write audited, which no till pays.
        # A rate of its own far above what the machine serves: the benchmark measures the service, and the
        # rate limiter counts every call without ever refusing one.
        key = await auth_service.create_key(
            uow,
            name="benchmark",
            scopes=[Scope.pos, Scope.ecommerce],
            rate_limit="1000000/second",
        )
        tier = await _ladder(uow)
    now = datetime.now(UTC)
    rng = random.Random(7)
    pool = _personal_pool(vault, rng)
    pairs: list[tuple[str, str]] = []
    for start in range(0, members, CHUNK):
        member_rows, accounts, entries, lots = [], [], [], []
        for n in range(start, min(start + CHUNK, members)):
            member_id, entry_id = new_id(), new_id()
            number = member_number(n)
            pairs.append((str(member_id), number))
            member_rows.append(
                {
                    "id": member_id,
                    "member_number": number,
                    "status": "active",
                    "tier_id": tier,
                    "tier_since": now,
                    **pool[n % len(pool)],
                    "phone_hash": vault.blind_index("phone", f"+86139{n:08d}"),
                    "email_encrypted": None,
                    "email_hash": None,
                    "channel": "store",
                    "marketing_consent": False,
                    "referral_code": f"B{n:07d}",
                    "referred_by_id": None,
                    # Returning customers, as most of a till's are: active, their stage due in 30 days.
                    "lifecycle_stage": "active",
                    "lifecycle_since": now,
                    "lifecycle_due_at": now + timedelta(days=30),
                    "lifecycle_assessed_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            accounts.append(
                {
                    "member_id": member_id,
                    "balance": OPENING_POINTS,
                    "held": 0,
                    "lifetime_earned": 0,
                    "updated_at": now,
                }
            )
            entries.append(
                {
                    "id": entry_id,
                    "member_id": member_id,
                    "type": "adjust",
                    "amount": OPENING_POINTS,
                    "balance_after": OPENING_POINTS,
                    "held_change": 0,
                    "held_after": 0,
                    "order_ref": None,
                    "hold_id": None,
                    "details": {"reason": "benchmark opening balance"},
                    "actor_key_id": None,
                    "created_at": now,
                }
            )
            lots.append(
                {
                    "id": new_id(),
                    "member_id": member_id,
                    "entry_id": entry_id,
                    "order_ref": None,
                    "points": OPENING_POINTS,
                    "remaining": OPENING_POINTS,
                    "created_at": now,
                    "expires_at": None,
                }
            )
        await _write(
            engine,
            [
                (Member.__table__, member_rows),
                (PointsAccount.__table__, accounts),
                (LedgerEntry.__table__, entries),
                (PointLot.__table__, lots),
            ],
        )
    return key.token, pairs


# Members past this many are copied by the database from the first ones (see clone_members).
SEEDED_ONE_BY_ONE = 100_000

_LUHN = """
CREATE OR REPLACE FUNCTION pg_temp.luhn(payload text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE total int := 0; digit int; position int := 0;
BEGIN
  FOR i IN REVERSE length(payload)..1 LOOP
    digit := substr(payload, i, 1)::int;
    IF position % 2 = 0 THEN digit := digit * 2; IF digit > 9 THEN digit := digit - 9; END IF; END IF;
    total := total + digit; position := position + 1;
  END LOOP;
  RETURN ((10 - total % 10) % 10)::text;
END $$
"""
# The values every statement below reads (typed: asyncpg sends untyped text otherwise), and the members'
# numbers n.
_SERIES = """
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n,
        (SELECT CAST(:ms AS bigint) AS ms, CAST(:now AS timestamptz) AS now,
                CAST(:due AS timestamptz) AS due, CAST(:points AS bigint) AS points) AS v
"""


def _id(kind: str) -> str:
    """A version-7-shaped id for member n: the seed's millisecond, then n; `kind` keeps a member's, its
    ledger entry's and its lot's ids apart."""
    return f"(lpad(to_hex(v.ms + n / 1000), 12, '0') || '7{kind}8' || lpad(to_hex(n), 15, '0'))::uuid"


_CLONE = [
    """
    CREATE TEMP TABLE template ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY id) - 1 AS k, tier_id, phone_encrypted, name_encrypted,
           birthday_encrypted, birthday_day_key, birthday_month_key
    FROM members ORDER BY id LIMIT 1000
    """,
    f"""
    INSERT INTO members (id, member_number, status, tier_id, tier_since, phone_encrypted, phone_hash,
        name_encrypted, birthday_encrypted, birthday_day_key, birthday_month_key, channel, marketing_consent,
        referral_code, lifecycle_stage, lifecycle_since, lifecycle_due_at, lifecycle_assessed_at, created_at,
        updated_at)
    SELECT {_id("001")}, (100000000 + n)::text || pg_temp.luhn((100000000 + n)::text), 'active',
        t.tier_id, v.now, t.phone_encrypted, md5('phone' || n) || md5('hash' || n), t.name_encrypted,
        t.birthday_encrypted, t.birthday_day_key, t.birthday_month_key, 'store', false,
        'B' || lpad(n::text, 8, '0'), 'active', v.now, v.due, v.now, v.now, v.now
    {_SERIES}, template t WHERE t.k = n % 1000
    """,
    f"""
    INSERT INTO points_accounts (member_id, balance, held, lifetime_earned, updated_at)
    SELECT {_id("001")}, v.points, 0, 0, v.now {_SERIES}
    """,
    f"""
    INSERT INTO ledger_entries (id, member_id, type, amount, balance_after, held_change, held_after, details,
        created_at)
    SELECT {_id("002")}, {_id("001")}, 'adjust', v.points, v.points, 0, 0,
        '{{"reason": "benchmark opening balance"}}'::jsonb, v.now {_SERIES}
    """,
    f"""
    INSERT INTO point_lots (id, member_id, entry_id, points, remaining, created_at)
    SELECT {_id("003")}, {_id("001")}, {_id("002")}, v.points, v.points, v.now {_SERIES}
    """,
]
CLONE_CHUNK = 500_000


async def clone_members(engine: AsyncEngine, first: int, last: int) -> None:
    """Members `first` to `last - 1` copied by PostgreSQL from the first thousand seeded one by one (their
    encrypted personal data and birthday keys, their tier), each with their own id, card number (with its
    check digit), phone hash and referral code, account, opening ledger entry and lot, as `seed` writes
    them: ten million members in minutes instead of hours."""
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    for start in range(first, last, CLONE_CHUNK):
        async with engine.begin() as connection:
            await connection.execute(text(_LUHN))
            values = {
                "ms": ms,
                "now": now,
                "due": now + timedelta(days=30),
                "points": OPENING_POINTS,
                "first": start,
                "last": min(start + CLONE_CHUNK, last) - 1,
            }
            for statement in _CLONE:
                await connection.execute(text(statement), values)


async def sample_members(engine: AsyncEngine, count: int) -> list[tuple[str, str]]:
    """(member id, card number) of `count` members drawn at random from the whole base."""
    async with engine.connect() as connection:
        total = (await connection.execute(text("SELECT count(*) FROM members"))).scalar_one()
        percent = min(100.0, 100.0 * count * 2 / max(total, 1))
        rows = await connection.execute(
            text(f"SELECT id, member_number FROM members TABLESAMPLE BERNOULLI ({percent}) LIMIT :n"),
            {"n": count},
        )
        return [(str(member_id), number) for member_id, number in rows]


def _personal_pool(vault: Vault, rng: random.Random) -> list[dict[str, Any]]:
    """Encrypted personal data for PERSONAL_POOL people, which the members share in turn: encrypting ten
    million phones, names and birthdays would take most of a large seed, and a member's ciphertext costs
    the same to decrypt whoever's it is. Each member's phone hash is still their own (lookups and the
    uniqueness of phones work), so a member's stored phone decrypts to another member's number."""
    pool = []
    for k in range(PERSONAL_POOL):
        birthday = date(rng.randrange(1950, 2005), rng.randrange(1, 13), rng.randrange(1, 29))
        day_key, month_key = birthday_keys(vault, birthday)
        pool.append(
            {
                "phone_encrypted": vault.encrypt(f"+86139{k:08d}"),
                "name_encrypted": vault.encrypt(f"会员{k}"),
                "birthday_encrypted": vault.encrypt(birthday.isoformat()),
                "birthday_day_key": day_key,
                "birthday_month_key": month_key,
            }
        )
    return pool


async def _write(engine: AsyncEngine, batches: list[tuple[Any, list[dict[str, Any]]]]) -> None:
    """Insert each table's rows: on PostgreSQL with COPY (ten times the speed of a multi-row INSERT here),
    on SQLite with executemany."""
    async with engine.begin() as connection:
        if connection.dialect.name != "postgresql":
            for table, rows in batches:
                await connection.execute(insert(table), rows)
            return
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        for table, rows in batches:
            columns = list(rows[0])
            records = [
                tuple(json.dumps(v) if isinstance(v, dict) else v for v in (row[c] for c in columns))
                for row in rows
            ]
            await driver.copy_records_to_table(table.name, records=records, columns=columns)


def _units(engine: AsyncEngine, settings: Settings) -> UnitsOfWork:
    assert settings.encryption_key is not None
    vault = Vault(settings.encryption_key.get_secret_value())
    return UnitsOfWork(Database(engine), SystemClock(), vault, settings)


async def _ladder(uow: UnitOfWork) -> uuid.UUID:
    """Everyone's tier, giving 10 % off and free shipping from 50 yuan (what the quote applies), and a tier
    above it."""
    given = [
        await benefits.create_benefit(uow, BenefitDefinition(name=name, properties=properties, active=True))
        for name, properties in [
            ("会员九折", PercentDiscount(percent=Decimal(10))),
            ("满50包邮", FreeShipping(min_subtotal=5_000)),
        ]
    ]
    tier = await tiers.create_tier(
        uow,
        "member",
        TierDefinition(
            name="会员",
            rank=0,
            metric=Metric.spend,
            window=Window.calendar_year,
            window_days=None,
            threshold=0,
            points_multiplier=Decimal(1),
            grace_days=0,
            benefit_ids=[b.id for b in given],
        ),
    )
    # A tier above that nobody reaches in a run: every earn checks the member's qualifying spend, as it
    # does for most members of a real ladder.
    await tiers.create_tier(
        uow,
        "gold",
        TierDefinition(
            name="金卡",
            rank=1,
            metric=Metric.spend,
            window=Window.calendar_year,
            window_days=None,
            threshold=10**12,
            points_multiplier=Decimal("1.5"),
            grace_days=30,
            benefit_ids=[],
        ),
    )
    return tier.id


async def seed_shoppers(
    engine: AsyncEngine, settings: Settings, members: list[tuple[str, str]], count: int
) -> list[tuple[str, list[str]]]:
    """For the checkout quote: `count` of the members each buy two coupons with points (10 yuan off, and
    5 % off shoes) through the rewards service. Returns (member id, [coupon codes])."""
    units = _units(engine, settings)
    offers = [
        ("减10元", FixedDiscount(amount=1_000)),
        ("鞋类95折", PercentDiscount(percent=Decimal(5), categories=["shoes"])),
    ]
    async with units.begin() as uow:
        reward_ids = [
            (
                await rewards.create_reward(
                    uow,
                    RewardDefinition(
                        name=name,
                        description=None,
                        cost_points=100,
                        per_member_limit=None,
                        coupon=offer,
                        coupon_valid_days=365,
                        active=True,
                        valid_from=None,
                        valid_until=None,
                    ),
                    stock=None,
                )
            ).id
            for name, offer in offers
        ]
    shoppers = []
    for member_id, _ in members[:count]:
        codes = []
        for reward_id in reward_ids:
            async with units.begin() as uow:
                bought = await rewards.redeem_reward(uow, member_id=uuid.UUID(member_id), reward_id=reward_id)
            codes.append(bought.coupon.coupon.code)
        shoppers.append((member_id, codes))
    return shoppers


__all__ = ["seed", "seed_shoppers", "uuid"]
