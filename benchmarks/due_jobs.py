"""#22's job times on a kept PostgreSQL benchmark database (run.py --keep NAME): the same number of members
made due for each job, whatever the size of the base, so runs at 100,000 and 10,000,000 members show whether
a job's time follows the work or the base.

    .venv/bin/python benchmarks/due_jobs.py bench_10m --due 10000

Made due, each for --due members drawn at random: their opening lot expires (expire-points takes its points
back), their tier's keeping time ends (review-tiers), their lifecycle stage is due (member-lifecycle). Each
job then runs as `loyalty-api jobs NAME` in its own process (its own time, its peak memory), and a second time
to show it finds nothing left. (expire-points counts the points it took back, the others members.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engagement import run_job  # noqa: E402
from benchmarks.run import PG_SERVER  # noqa: E402

_SAMPLE = """
CREATE TEMP TABLE due ON COMMIT DROP AS
SELECT id FROM members TABLESAMPLE SYSTEM_ROWS(:due)
"""
_MAKE_DUE = [
    "UPDATE point_lots SET expires_at = now() - interval '1 second' WHERE member_id IN (SELECT id FROM due)"
    " AND remaining > 0",
    "UPDATE members SET tier_window_end = now() - interval '1 year' WHERE id IN (SELECT id FROM due)",
    "UPDATE members SET lifecycle_due_at = now() - interval '1 second' WHERE id IN (SELECT id FROM due)",
]
JOBS = ("expire-points", "review-tiers", "member-lifecycle")


async def make_due(url: str, due: int) -> int:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE EXTENSION IF NOT EXISTS tsm_system_rows"))
        members = (await connection.execute(text("SELECT count(*) FROM members"))).scalar_one()
        await connection.execute(text(_SAMPLE), {"due": due})
        for statement in _MAKE_DUE:
            await connection.execute(text(statement))
    await engine.dispose()
    return int(members)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", help="the kept database's name (run.py --keep NAME)")
    parser.add_argument("--due", type=int, default=10_000)
    args = parser.parse_args()
    state = json.loads((Path(tempfile.gettempdir()) / f"{args.database}.json").read_text())
    url = make_url(PG_SERVER).set(database=args.database).render_as_string(hide_password=False)
    env = {**os.environ, "LOYALTY_DATABASE_URL": url, "LOYALTY_ENCRYPTION_KEY": state["encryption_key"]}
    members = asyncio.run(make_due(url, args.due))
    print(f"{args.database}: {members:,} members, {args.due:,} of them made due for each job")
    for job in JOBS:
        print(run_job(env, job))
        print(f"  again: {run_job(env, job)}")


if __name__ == "__main__":
    main()
