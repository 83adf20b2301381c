"""#20's figures on a kept PostgreSQL benchmark database (run.py --keep NAME, with purchases from
ledger_history.py): the lifecycle job over every member (all made due at once), the RFM job, and the
analytics overview's latency.

    .venv/bin/python benchmarks/engagement.py bench_1m

Each job runs as `loyalty-api jobs NAME` in its own process: what it handled, its own time and the
process's peak memory (--overview-only leaves the jobs out). The overview, over a year and over 30 days,
is asked --requests times each, one request at a time, through `loyalty-api serve` with an admin key made
for the run (revoked at the end). The database must be at the latest migration (`loyalty-api migrate`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import PG_SERVER, free_port, server  # noqa: E402


def run_job(env: dict[str, str], name: str) -> str:
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty_api.cli", "jobs", name],
        env={**env, "LOYALTY_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode().strip()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        output = f"FAILED (its error is above): {output}"
    return f"{output}; peak RSS {usage.ru_maxrss / 1024:.0f} MiB"


def cli(env: dict[str, str], *arguments: str) -> str:
    command = [sys.executable, "-m", "loyalty_api.cli", *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


async def make_all_due(url: str) -> str:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        members = (await connection.execute(text("SELECT count(*) FROM members"))).scalar_one()
        orders = (await connection.execute(text("SELECT count(*) FROM orders"))).scalar_one()
        await connection.execute(text("UPDATE members SET lifecycle_due_at = now() - interval '1 second'"))
    await engine.dispose()
    return f"{members:,} members, {orders:,} orders"


async def time_overview(env: dict[str, str], key: str, requests: int) -> None:
    """The overview over the last year and the last 30 days, asked `requests` times each, one at a time (a
    report is read by an operator, not a crowd): each answer's time, and the median."""
    now = datetime.now(UTC)
    port = free_port()
    command = [sys.executable, "-m", "loyalty_api.cli", "serve", "--port", str(port)]
    async with (
        server(command, env, port, "/healthz"),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client,
    ):
        for days in (365, 30):
            window = {"from": (now - timedelta(days=days)).isoformat(), "to": now.isoformat()}
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                answer = await client.get(
                    "/v1/analytics/overview", params=window, headers={"Authorization": f"Bearer {key}"}
                )
                assert answer.status_code == 200, answer.text
                times.append(time.perf_counter() - started)
            print(
                f"analytics overview over {days} days: median {statistics.median(times):.2f} s "
                f"({', '.join(f'{t:.2f}' for t in times)})"
            )


def measure(name: str, requests: int, *, with_jobs: bool) -> None:
    state = json.loads((Path(tempfile.gettempdir()) / f"{name}.json").read_text())
    url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "LOYALTY_DATABASE_URL": url, "LOYALTY_ENCRYPTION_KEY": state["encryption_key"]}
    if with_jobs:
        print(f"{name}: {asyncio.run(make_all_due(url))}; every member made due for the lifecycle job")
        for job in ("member-lifecycle", "rfm-segments", "rfm-segments"):  # the second: nothing changed
            print(run_job(env, job))
    key = cli(env, "keys", "create", "--name", "bench-analytics", "--scope", "admin").strip().splitlines()[-1]
    try:
        asyncio.run(time_overview(env, key, requests))
    finally:
        cli(env, "keys", "revoke", key.split("_")[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", help="the kept database's name (run.py --keep NAME)")
    parser.add_argument("--requests", type=int, default=5, help="how many times each overview is asked")
    parser.add_argument("--overview-only", action="store_true", help="leave the jobs out")
    args = parser.parse_args()
    measure(args.database, args.requests, with_jobs=not args.overview_only)


if __name__ == "__main__":
    main()
