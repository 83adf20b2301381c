"""Grow the history of a kept PostgreSQL benchmark database (run.py --keep NAME): every member gets
--per-member more ledger entries from before their opening balance, alternately an earn of 100 points for an
order (with its row in `orders`: an amount of 10 to 1,010 yuan) and a redemption of 100, so balances, the
ledger invariant and lots stay as they were. A member's entries are spaced 1 to 36 days apart (by member),
so recency, frequency and spend differ between members as the RFM job needs. Ten a member over ten million
members is the hundred million entries #22 asks earn to be measured beside.

    .venv/bin/python benchmarks/ledger_history.py bench_10m --per-member 10

Written by PostgreSQL in chunks of members (INSERT ... SELECT), one transaction each, so a stopped run leaves
whole members behind and a rerun with --after (the last id printed) continues; run it once per database. It
prints the ledger's size at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

MEMBERS_PER_CHUNK = 200_000

# Entry k (1..per) of a member: (per - k + 1) gaps before the member's first entry, the gap 1 to 36 days by
# member; its id is version-7 shaped, its time part the entry's own millisecond, the rest from the member's id
# and k (unique, random-looking).
_GROW = """
WITH chunk AS (
    SELECT m.id, m.member_number, first.created_at AS opened, 1 + abs(hashtext(m.id::text)) % 36 AS gap
    FROM members m
    JOIN LATERAL (
        SELECT created_at FROM ledger_entries e WHERE e.member_id = m.id ORDER BY e.id LIMIT 1
    ) first ON true
    WHERE m.id > CAST(:after AS uuid) AND m.id <= CAST(:until AS uuid)
    ORDER BY m.id
    LIMIT :chunk
), entries AS (
    SELECT c.id AS member_id, k, CASE WHEN k % 2 = 1 THEN 'H' || c.member_number || '-' || k END AS order_ref,
        c.opened - make_interval(days => (CAST(:per AS int) - k + 1) * c.gap) AS at
    FROM chunk c, generate_series(1, CAST(:per AS int)) AS k
), ledger AS (
    INSERT INTO ledger_entries (id, member_id, type, amount, balance_after, held_change, held_after,
        order_ref, details, created_at)
    SELECT (lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7'
            || substr(md5(member_id::text || k), 1, 3) || '8'
            || substr(md5(member_id::text || k), 4, 15))::uuid,
        member_id,
        CASE WHEN k % 2 = 1 THEN 'earn' ELSE 'redeem' END,
        CASE WHEN k % 2 = 1 THEN 100 ELSE -100 END,
        CASE WHEN k % 2 = 1 THEN 100 ELSE 0 END,
        0, 0, order_ref, CAST('{"reason": "benchmark history"}' AS jsonb), at
    FROM entries
), purchases AS (
    INSERT INTO orders (order_ref, member_id, currency, amount_minor, points_earned, points_redeemed,
        refunded_minor, points_taken_back, points_given_back, points_shortfall, earned_at, purchased_at,
        redeemed_at, created_at, updated_at)
    SELECT order_ref, member_id, 'CNY', 1000 + abs(hashtext(order_ref)) % 100000, 100, 0, 0, 0, 0, 0, at, at,
        NULL, at, at
    FROM entries WHERE order_ref IS NOT NULL
)
SELECT max(id::text) FROM chunk
"""


async def grow(url: str, per_member: int, after: str, until: str) -> None:
    assert per_member % 2 == 0, "earns and redemptions in pairs: balances stay as they were"
    engine = create_async_engine(url)
    started = time.monotonic()
    chunks = 0
    while True:
        async with engine.begin() as connection:
            last = (
                await connection.execute(
                    text(_GROW),
                    {"after": after, "until": until, "chunk": MEMBERS_PER_CHUNK, "per": per_member},
                )
            ).scalar_one()
        if last is None:
            break
        after, chunks = last, chunks + 1
        print(
            f"chunk {chunks} of {MEMBERS_PER_CHUNK:,} members written, up to {after}, "
            f"{time.monotonic() - started:.0f} s"
        )
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE ledger_entries"))
        await connection.execute(text("ANALYZE orders"))
        count = (await connection.execute(text("SELECT count(*) FROM ledger_entries"))).scalar_one()
        size = (
            await connection.execute(text("SELECT pg_size_pretty(pg_total_relation_size('ledger_entries'))"))
        ).scalar_one()
    await engine.dispose()
    print(f"ledger_entries: {count:,} entries, {size} with indexes, in {time.monotonic() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", help="the kept database's name (run.py --keep NAME)")
    parser.add_argument("--per-member", type=int, default=10)
    parser.add_argument("--after", default="00000000-0000-0000-0000-000000000000", help="continue after id")
    parser.add_argument(
        "--until",
        default="ffffffff-ffff-ffff-ffff-ffffffffffff",
        help="stop after id: two runs over disjoint halves (--until M, --after M) keep both cores busy",
    )
    parser.add_argument("--server", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    asyncio.run(grow(f"{args.server}/{args.database}", args.per_member, args.after, args.until))


if __name__ == "__main__":
    main()
