"""What a read-only unit of work's way of holding its connection costs: the CPU per unit of one direct
statement on PostgreSQL, through the ORM session as the unit of work holds it, through a Core connection,
and through asyncpg's own pool, interleaved in one process. Run on a database kept by `run.py --keep NAME`
(any database with the schema will do: the statement looks up a member that does not exist).

    .venv/bin/python benchmarks/read_unit.py small --units 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from sqlalchemy import bindparam, make_url, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import PG_SERVER  # noqa: E402

from loyalty_api.db.direct import DirectStatement  # noqa: E402
from loyalty_api.db.engine import READ_ONLY, Database, create_engine  # noqa: E402
from loyalty_api.members.models import Member  # noqa: E402

STATUS = DirectStatement(select(Member.status).where(Member.id == bindparam("id")))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(args: argparse.Namespace) -> None:
    url = make_url(PG_SERVER).set(database=args.database)
    engine = create_engine(url.render_as_string(hide_password=False))
    database = Database(engine)
    reader = engine.execution_options(**{READ_ONLY: True})
    sql = str(STATUS.statement.compile(dialect=engine.dialect))
    pool = await asyncpg.create_pool(
        url.set(drivername="postgresql").render_as_string(hide_password=False), min_size=2, max_size=4
    )
    member_id = uuid.uuid4()

    async def session() -> None:
        held = database.session(read_only=True)
        await STATUS.fetch_all(held, {"id": member_id})
        await held.rollback()
        held.expunge_all()

    async def core() -> None:
        async with reader.connect() as connection:
            raw = await connection.get_raw_connection()
            await raw.driver_connection.fetch(sql, member_id)

    async def own_pool() -> None:
        async with pool.acquire() as connection:
            await connection.fetch(sql, member_id)

    ways: dict[str, Callable[[], Awaitable[None]]] = {
        "the ORM session (the unit of work's way)": session,
        "a Core connection": core,
        "asyncpg's own pool": own_pool,
    }
    found: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for _ in range(args.rounds):
            for name, unit in ways.items():
                for _ in range(200):  # warm: connections open, statements prepared
                    await unit()
                started = cpu_seconds()
                for _ in range(args.units):
                    await unit()
                found[name].append(1e6 * (cpu_seconds() - started) / args.units)
    finally:
        await pool.close()
        await engine.dispose()
    for name, figures in found.items():
        rounds = ", ".join(f"{figure:.0f}" for figure in figures)
        print(f"{name:42} median {statistics.median(figures):5.0f} µs CPU a unit ({rounds})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", help="a database with the schema (run.py --keep NAME)")
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
