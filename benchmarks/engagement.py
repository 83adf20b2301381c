"""#20's figures on a kept PostgreSQL benchmark database (run.py --keep NAME, with purchases from
ledger_history.py): the lifecycle job over every member (all made due at once), the RFM job, and the
analytics overview's latency over a year.

    .venv/bin/python benchmarks/engagement.py bench_1m

Each job runs as `loyalty-api jobs NAME` in its own process: what it handled, its own time and the
process's peak memory (--overview-only leaves the jobs out). The overview is driven by `wrk` with one
connection, then four, for --seconds each, through `loyalty-api serve` with an admin key made for the run
(revoked at the end). The database must be at the latest migration (`loyalty-api migrate`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import PG_SERVER, cpu_seconds, free_port, server  # noqa: E402
from benchmarks.wrk import TARGETS_LUA, parse_wrk, wrk  # noqa: E402


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


async def drive_overview(env: dict[str, str], key: str, seconds: float) -> None:
    now = datetime.now(UTC)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    window = f"from={(now - timedelta(days=365)).strftime(stamp)}&to={now.strftime(stamp)}"
    tmp = Path(tempfile.mkdtemp(prefix="loyalty-engagement-"))
    script = tmp / "targets.lua"
    script.write_text(TARGETS_LUA)
    targets = tmp / "overview.txt"
    targets.write_text(f"GET\t/v1/analytics/overview?{window}\n")
    port = free_port()
    command = [sys.executable, "-m", "loyalty_api.cli", "serve", "--port", str(port)]
    async with server(command, env, port, "/healthz") as process:
        for clients in (1, 4):
            before = cpu_seconds(process.pid)
            out = await wrk(
                script,
                f"http://127.0.0.1:{port}",
                ["overview", str(targets), key],
                seconds=seconds,
                clients=clients,
            )
            run = parse_wrk("overview", out, cpu_seconds(process.pid) - before)
            print(
                f"analytics overview, {clients} connection(s): {run.rate:.1f} req/s, "
                f"p50 {run.p50_ms:.0f} ms, p99 {run.p99_ms:.0f} ms, {run.non_2xx} errors, "
                f"API CPU {run.cpu_ms_per_request:.0f} ms/req"
            )


def measure(name: str, seconds: float, *, with_jobs: bool) -> None:
    state = json.loads((Path(tempfile.gettempdir()) / f"{name}.json").read_text())
    url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "LOYALTY_DATABASE_URL": url, "LOYALTY_ENCRYPTION_KEY": state["encryption_key"]}
    if with_jobs:
        print(f"{name}: {asyncio.run(make_all_due(url))}; every member made due for the lifecycle job")
        for job in ("member-lifecycle", "rfm-segments", "rfm-segments"):  # the second: nothing changed
            print(run_job(env, job))
    key = cli(env, "keys", "create", "--name", "bench-analytics", "--scope", "admin").strip().splitlines()[-1]
    try:
        asyncio.run(drive_overview(env, key, seconds))
    finally:
        cli(env, "keys", "revoke", key.split("_")[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", help="the kept database's name (run.py --keep NAME)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--overview-only", action="store_true", help="leave the jobs out")
    args = parser.parse_args()
    measure(args.database, args.seconds, with_jobs=not args.overview_only)


if __name__ == "__main__":
    main()
