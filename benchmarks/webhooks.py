"""Webhook delivery: deliveries per second from the outbox to a local receiver with 1 and 2 workers, and the
time from commit to receipt at a steady event rate. Figures, not assertions.

    .venv/bin/python benchmarks/webhooks.py                 # 5,000 events per throughput run, 2 rounds
    .venv/bin/python benchmarks/webhooks.py --events 2000 --rounds 1

Needs PostgreSQL (LOYALTY_BENCH_PG_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres): a
database of its own is created there and dropped afterwards. Workers are real `loyalty-api worker`
processes; the receiver is an aiohttp server in this process that answers 204 at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from loyalty_api import crypto  # noqa: E402
from loyalty_api.clock import SystemClock  # noqa: E402
from loyalty_api.crypto import Vault  # noqa: E402
from loyalty_api.db.engine import Database, create_engine  # noqa: E402
from loyalty_api.db.migrations import upgrade  # noqa: E402
from loyalty_api.db.uow import UnitsOfWork  # noqa: E402
from loyalty_api.settings import Settings  # noqa: E402
from loyalty_api.webhooks.models import WebhookEndpoint  # noqa: E402
from loyalty_api.webhooks.repository import OutboxRepository  # noqa: E402
from loyalty_api.webhooks.secrets import new_secret  # noqa: E402

KEYS = 500  # distinct ordering keys (members): events of one key go out one after another


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}  # webhook-id → wall time of arrival
        self.lags: list[float] = []  # seconds from the event's commit to its arrival
        self._waiting: tuple[int, asyncio.Event] | None = None

    async def wait_for(self, count: int) -> None:
        """Until `count` distinct messages have arrived."""
        if len(self.arrivals) >= count:
            return
        self._waiting = (count, asyncio.Event())
        await self._waiting[1].wait()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        now = time.time()
        self.arrivals.setdefault(request.headers["webhook-id"], now)
        self.lags.append(now - datetime.fromisoformat(body["timestamp"]).timestamp())
        if self._waiting is not None and len(self.arrivals) >= self._waiting[0]:
            self._waiting[1].set()
        return web.Response(status=204)


@asynccontextmanager
async def database(server: str) -> AsyncIterator[str]:
    name = f"loyalty_bench_wh_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def emit(units: UnitsOfWork, count: int, *, start: int = 0) -> None:
    """`count` committed outbox events, as the services write them, 200 to a transaction."""
    for first in range(start, start + count, 200):
        async with units.begin() as uow:
            repo = OutboxRepository(uow.session)
            for n in range(first, min(first + 200, start + count)):
                await repo.insert_event(
                    event_type="points.adjusted",
                    occurred_at=uow.clock.now(),
                    aggregate_type="bench",
                    aggregate_id=str(n % KEYS),
                    member_id=None,
                    payload={"n": n, "points": 1, "reason": "benchmark"},
                )


def start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    command = [str(ROOT / ".venv" / "bin" / "loyalty-api"), "worker"]
    return [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=30)


async def run(args: argparse.Namespace) -> None:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async with database(args.pg) as url:
        key = crypto.generate_key()
        settings = Settings(database_url=url, encryption_key=key, webhook_allow_private_targets=True)
        engine_db = Database(create_engine(url))
        units = UnitsOfWork(engine_db, SystemClock(), Vault(key), settings)
        await upgrade(engine_db.engine)
        async with units.begin() as uow:
            now = uow.clock.now()
            uow.session.add(
                WebhookEndpoint(
                    url=f"http://127.0.0.1:{port}/hooks",
                    description="benchmark receiver",
                    event_types=[],
                    enabled=True,
                    secret_encrypted=uow.vault.encrypt(new_secret()),
                    previous_secret_encrypted=None,
                    previous_secret_until=None,
                    failing_since=None,
                    disabled_reason=None,
                    created_at=now,
                    updated_at=now,
                )
            )
        env = {
            **os.environ,
            "LOYALTY_DATABASE_URL": url,
            "LOYALTY_ENCRYPTION_KEY": key,
            "LOYALTY_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "LOYALTY_LOG_LEVEL": "WARNING",
        }
        throughput: dict[int, list[float]] = {1: [], 2: []}
        lags: dict[int, list[float]] = {1: [], 2: []}
        emitted = 0
        for _ in range(args.rounds):
            for workers in (1, 2):
                # Throughput: a backlog of events, then the workers drain it.
                await emit(units, args.events, start=emitted)
                emitted += args.events
                before = len(receiver.arrivals)
                began = time.time()
                procs = start_workers(workers, env)
                await receiver.wait_for(before + args.events)
                throughput[workers].append(args.events / (time.time() - began))
                # Latency: a steady trickle while the workers run.
                receiver.lags.clear()
                for _ in range(int(args.latency_seconds * 10)):
                    await emit(units, args.rate // 10, start=emitted)
                    emitted += args.rate // 10
                    await asyncio.sleep(0.1)
                await receiver.wait_for(emitted)
                lags[workers].extend(receiver.lags)
                stop(procs)
        await engine_db.dispose()
    await runner.cleanup()

    print(f"\n{args.events} events per drain, {args.rounds} rounds; latency at {args.rate} events/s")
    print("| workers | deliveries/s (median) | commit→receipt p50 ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    for workers in (1, 2):
        ordered = sorted(lags[workers])
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
        print(f"| {workers} | {statistics.median(throughput[workers]):.0f} | {p50:.0f} | {p99:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "LOYALTY_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=int, default=50, help="events per second in the latency run")
    parser.add_argument("--latency-seconds", type=float, default=10)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
