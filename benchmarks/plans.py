"""Which of the till's statements PostgreSQL plans anew at every execution.

asyncpg prepares each statement once per connection; PostgreSQL then plans it for each execution's
parameters (a custom plan) or once for all (a generic plan), choosing after five executions by comparing
their estimated costs. A custom plan costs the planning every time: about 1.3 ms of the database's CPU for
the lookup's read of a member's account, four times its execution. This drives `--requests` requests of a
scenario through the app in-process with one pooled connection, then lists that connection's prepared
statements with how often each was planned each way.

    .venv/bin/python benchmarks/run.py --database postgres --keep small --members 20000 --seed-only
    # -m: run as a file, its folder first on the path, benchmarks/graphql.py would shadow graphql
    .venv/bin/python -m benchmarks.plans small --scenario lookup
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", help="the kept database's name (run.py --keep NAME)")
    parser.add_argument("--scenario", choices=("earn", "lookup", "quote"), default="lookup")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks import instructions

    plans: list[tuple[str, int, int]] = []

    async def listed(app: object) -> None:
        engine = app.state.units.database.engine  # type: ignore[attr-defined]
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
                    "ORDER BY custom_plans DESC"
                )
            )
            plans.extend((str(row[0]), int(row[1]), int(row[2])) for row in rows)

    await instructions.drive(
        args.database, args.scenario, args.requests, baseline=False, pool_size=1, after=listed
    )
    for statement, generic, custom in plans:
        shape = " ".join(statement.split())
        print(f"generic {generic:>5}  custom {custom:>5}  {shape[:160]}")


if __name__ == "__main__":
    asyncio.run(main())
