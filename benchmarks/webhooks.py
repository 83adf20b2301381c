"""Webhook delivery (issue #18): real `loyalty-api worker` processes send outbox events to a receiver in this
process. Figures, not assertions. Scenarios (`--scenarios`, each with 1 and 2 workers, `--workers`):

- drain: a backlog of `--events` events, then the workers start and send it all: deliveries per second from
  the first arrival to the last, and from the workers' start (start-up included).
- steady: `--rate` events a second (default 100) for `--seconds`: commit → receipt p50 / p99.
- saturation: events written one per transaction as fast as one writer can for `--saturation-seconds`: the
  rates written and delivered, and commit → receipt p50 / p99.
- outage: the steady rate runs; after 5 s the receiver answers 503 (`--outage-mode refuse`: refuses
  connections) for `--outage-seconds`, then comes back: the time from its return until every event written
  so far has arrived, and the longest any event waited.
- kill: a backlog of `--events` with the steady writer running; once half the backlog has arrived and
  deliveries are leased, the worker that sent the latest message is killed (SIGKILL) and a fresh one started
  at once, as a supervisor would (`--no-restart`: the other workers carry on alone): the time from the kill
  until every event written before it has arrived, and the longest any event waited.

Every scenario counts duplicates (a message that arrived again) and out-of-order arrivals: each event's
payload carries its ordering key and a per-key counter, and a first arrival whose counter is below one already
seen for its key is out of order. Waits end after `--timeout` seconds ("not caught up after N s").

    .venv/bin/python benchmarks/webhooks.py
    .venv/bin/python benchmarks/webhooks.py --events 1000 --rounds 1 --outage-seconds 10 --timeout 60
    .venv/bin/python benchmarks/webhooks.py --scenarios drain,steady --workers 2 --rate 200
    git archive c062f7a | tar -x -C /tmp/before      # the tree before #18: its workers, migrations, outbox
    .venv/bin/python benchmarks/webhooks.py --tree /tmp/before --timeout 60

Workers get LOYALTY_DATABASE_URL, LOYALTY_ENCRYPTION_KEY, LOYALTY_WEBHOOK_ALLOW_PRIVATE_TARGETS=true (the
receiver is on loopback) and LOYALTY_LOG_LEVEL=WARNING, and no other LOYALTY_* variable; their logs are
summarised at the end.

Needs PostgreSQL (LOYALTY_BENCH_PG_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres): a
migrated database with the endpoint registered is made once, every scenario run gets a fresh copy of it
(CREATE DATABASE … TEMPLATE), and all are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ROOT = Path(__file__).resolve().parents[1]


def _tree() -> Path:
    """`--tree DIR`: whose code the workers run and this process migrates and writes with (default: this
    checkout; e.g. `git archive` of an earlier commit unpacked somewhere), read before the imports below."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--tree", type=Path, default=ROOT)
    return Path(pre.parse_known_args()[0].tree).resolve()


TREE = _tree()
sys.path.insert(0, str(TREE / "src"))

from loyalty_api import crypto  # noqa: E402
from loyalty_api.clock import SystemClock  # noqa: E402
from loyalty_api.crypto import Vault  # noqa: E402
from loyalty_api.db.engine import Database, create_engine  # noqa: E402
from loyalty_api.db.migrations import upgrade  # noqa: E402
from loyalty_api.db.uow import UnitsOfWork  # noqa: E402
from loyalty_api.outbox.repository import OutboxRepository, event_row  # noqa: E402
from loyalty_api.settings import Settings  # noqa: E402
from loyalty_api.webhooks.models import WebhookEndpoint  # noqa: E402
from loyalty_api.webhooks.secrets import new_secret  # noqa: E402

SCENARIOS = ("drain", "steady", "saturation", "outage", "kill")
BACKLOG_PER_TRANSACTION = 200
LEAD_SECONDS = 5.0  # of normal service before the outage
POLL_SECONDS = 0.05  # how often a wait looks at the arrivals (arrival times themselves are exact)

# Read straight from the database for context; None if the schema has changed under them.
LEASED_NOW = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND leased_until > now()"
PENDING_NOW = (
    "SELECT count(*), count(*) FILTER (WHERE attempts > 0),"
    " extract(epoch FROM max(next_attempt_at) FILTER (WHERE attempts > 0))"
    " FROM webhook_deliveries WHERE status = 'pending'"
)


# --- the receiver -------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one scenario run received."""

    arrivals: dict[str, float] = field(default_factory=dict)  # webhook-id → wall time of its first arrival
    answered: int = 0  # messages answered 204, repeats included
    duplicates: int = 0  # messages that had arrived before
    out_of_order: int = 0  # first arrivals whose per-key counter is below one already seen for that key
    refused: int = 0  # requests answered 503 or cut off while the receiver was down
    cut_off: int = 0  # requests whose sender went away before the body had arrived
    last_sender_port: int | None = None  # the client port of the latest message: which worker sent it
    _last_seq: dict[int, int] = field(default_factory=dict)


class Receiver:
    """The endpoint. Per message it reads the body, parses its JSON for the ordering key and counter, and
    notes the first arrival: no signature check (the tests verify signatures; this measures time), no I/O."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.down: str | None = None  # None: up; "503"; "refuse"

    async def handle(self, request: web.Request) -> web.Response:
        tally = self.tally
        try:
            body = await request.read()
        except ConnectionResetError:
            tally.cut_off += 1  # the sender went away mid-request (killed)
            return web.Response(status=400)
        now = time.time()
        if self.down is not None:
            tally.refused += 1
            if self.down == "refuse":
                # A request on a connection opened before the outage: cut the connection, answer nothing.
                request.protocol.force_close()
            return web.Response(status=503)
        event_id = request.headers["webhook-id"]
        tally.answered += 1
        peer = request.transport.get_extra_info("peername") if request.transport else None
        tally.last_sender_port = peer[1] if peer else None
        if event_id in tally.arrivals:
            tally.duplicates += 1
            return web.Response(status=204)
        tally.arrivals[event_id] = now
        data = json.loads(body)["data"]
        key, seq = data["key"], data["seq"]
        if seq < tally._last_seq.get(key, -1):
            tally.out_of_order += 1
        else:
            tally._last_seq[key] = seq
        return web.Response(status=204)


class ReceiverServer:
    """The receiver on a loopback port that stays the same all run (the endpoint's URL names it)."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        app = web.Application()
        app.router.add_post("/hooks", receiver.handle)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.site: web.TCPSite | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        await self.runner.setup()
        await self._listen()
        self.port = self.runner.addresses[0][1]

    async def _listen(self) -> None:
        self.site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await self.site.start()

    async def go_down(self, mode: str) -> None:
        self.receiver.down = mode
        if mode == "refuse":
            # New connections are refused; open ones are closed (a request on one is cut off, see handle).
            assert self.site is not None and self.runner.server is not None
            await self.site.stop()
            self.site = None
            for connection in self.runner.server.connections:
                connection.force_close()

    async def come_back(self) -> None:
        if self.site is None:
            await self._listen()
        self.receiver.down = None

    async def stop(self) -> None:
        await self.runner.cleanup()


# --- events -------------------------------------------------------------------------------------------------


class Writer:
    """Writes events straight into the outbox, as the services do (the same row the API writes). Event n is
    about member key n % keys and is that key's (n // keys)-th: the payload carries both."""

    def __init__(self, units: UnitsOfWork, keys: int) -> None:
        self.units = units
        self.keys = keys
        self.written = 0
        self.order: list[str] = []  # event ids in commit order
        self.committed: dict[str, float] = {}  # event id → wall time just after its commit

    async def write(self, count: int) -> list[str]:
        """`count` events in one transaction."""
        ids: list[str] = []
        async with self.units.begin() as uow:
            repo = OutboxRepository(uow.session)
            now = uow.clock.now()
            for _ in range(count):
                n = self.written
                self.written += 1
                row = event_row(
                    event_type="points.adjusted",
                    occurred_at=now,
                    aggregate_type="bench",
                    aggregate_id=str(n % self.keys),
                    member_id=None,
                    payload={"key": n % self.keys, "seq": n // self.keys, "points": 1, "reason": "benchmark"},
                )
                await repo.insert_event(row)
                ids.append(str(row["id"]))
        at = time.time()
        for event_id in ids:
            self.committed[event_id] = at
        self.order.extend(ids)
        return ids

    async def backlog(self, count: int) -> list[str]:
        ids: list[str] = []
        for first in range(0, count, BACKLOG_PER_TRANSACTION):
            ids += await self.write(min(BACKLOG_PER_TRANSACTION, count - first))
        return ids

    async def run(self, rate: float | None, stop: asyncio.Event) -> None:
        """One event per transaction, `rate` a second (on a fixed schedule: a late one is written at once), or
        as fast as it goes (None), until `stop` is set."""
        began = time.monotonic()
        n = 0
        while not stop.is_set():
            if rate is not None:
                delay = began + n / rate - time.monotonic()
                if delay > 0:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                    if stop.is_set():
                        break
            await self.write(1)
            n += 1

    async def run_for(self, rate: float | None, seconds: float) -> float:
        """Write for `seconds`; returns the seconds it took (the last transaction may run over)."""
        stop = asyncio.Event()
        began = time.time()
        timer = asyncio.get_running_loop().call_later(seconds, stop.set)
        try:
            await self.run(rate, stop)
        finally:
            timer.cancel()
        return time.time() - began


# --- workers ------------------------------------------------------------------------------------------------


class Workers:
    """`loyalty-api worker` processes, each logging to a file of its own."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[asyncio.subprocess.Process] = []
        self.died: list[int] = []  # exit codes of workers that stopped before they were asked to

    async def start(self, count: int) -> None:
        command = str(ROOT / ".venv" / "bin" / "loyalty-api")
        for _ in range(count):
            log = self.logs / f"worker-{uuid.uuid4().hex[:8]}.log"
            with log.open("wb") as stderr:
                self.running.append(
                    await asyncio.create_subprocess_exec(
                        command,
                        "worker",
                        env=self.env,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=stderr,
                    )
                )

    async def kill_one(self, sending_from: int | None) -> bool:
        """SIGKILL the worker with a connection from port `sending_from` (the one that sent the latest
        message), else the first; whether it was the sender."""
        found = next((w for w in self.running if sending_from in local_ports(w.pid)), None)
        worker = found or self.running[0]
        self.running.remove(worker)
        worker.kill()
        await worker.wait()
        return found is not None

    async def stop(self) -> None:
        running, self.running = self.running, []
        for worker in running:
            if worker.returncode is None:
                worker.terminate()
            else:
                self.died.append(worker.returncode)
        for worker in running:
            try:
                await asyncio.wait_for(worker.wait(), timeout=30)
            except TimeoutError:
                worker.kill()
                await worker.wait()


def local_ports(pid: int) -> set[int]:
    """The local ports of a process's TCP sockets (Linux: its fds, then /proc/net/tcp*)."""
    inodes: set[str] = set()
    with suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with suppress(OSError):  # closed meanwhile
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# --- one scenario run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    units: UnitsOfWork
    writer: Writer
    tally: Tally
    workers: Workers


class Bench:
    def __init__(self, args: argparse.Namespace, server: ReceiverServer, logs: Path) -> None:
        self.args = args
        self.server = server
        self.logs = logs
        self.admin: AsyncEngine = create_async_engine(args.pg, isolation_level="AUTOCOMMIT")
        self.tag = uuid.uuid4().hex[:8]
        self.template = f"loyalty_bench_wh_{self.tag}"
        self.key = crypto.generate_key()
        self.runs = 0

    def url(self, name: str) -> str:
        return make_url(self.args.pg).set(database=name).render_as_string(hide_password=False)

    def worker_env(self, url: str) -> dict[str, str]:
        """The workers' settings, all explicit: nothing LOYALTY_* leaks in from this shell."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TREE / "src"), env.get("PYTHONPATH")) if p)
        env.update(
            LOYALTY_DATABASE_URL=url,
            LOYALTY_ENCRYPTION_KEY=self.key,
            LOYALTY_WEBHOOK_ALLOW_PRIVATE_TARGETS="true",  # the receiver is on loopback
            LOYALTY_LOG_LEVEL="WARNING",
        )
        return env

    async def _sql(self, statement: str) -> None:
        async with self.admin.connect() as connection:
            await connection.execute(text(statement))

    async def prepare(self) -> None:
        """The template: migrated, with the receiver registered as the one endpoint (every event type)."""
        await self._sql(f'CREATE DATABASE "{self.template}"')
        url = self.url(self.template)
        database = Database(create_engine(url, pool_size=1, max_overflow=0))
        try:
            await upgrade(database.engine)
            units = UnitsOfWork(database, SystemClock(), Vault(self.key), self.settings(url))
            async with units.begin() as uow:
                now = uow.clock.now()
                uow.session.add(
                    WebhookEndpoint(
                        url=self.server.url,
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
        finally:
            await database.dispose()

    def settings(self, url: str) -> Settings:
        return Settings(database_url=url, encryption_key=self.key, webhook_allow_private_targets=True)

    async def cleanup(self) -> None:
        await self._sql(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        await self.admin.dispose()

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[Run]:
        """A copy of the template, a writer on it, an empty tally, and no workers yet (stopped at the end)."""
        self.runs += 1
        name = f"{self.template}_{self.runs}"
        await self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        url = self.url(name)
        database = Database(create_engine(url, pool_size=2, max_overflow=0))
        units = UnitsOfWork(database, SystemClock(), Vault(self.key), self.settings(url))
        self.server.receiver.tally = tally = Tally()
        workers = Workers(self.worker_env(url), self.logs)
        try:
            yield Run(units, Writer(units, self.args.keys), tally, workers)
        finally:
            await workers.stop()
            if workers.died:
                print(f"  ! worker(s) exited on their own, codes {workers.died}", flush=True)
            await database.dispose()
            await self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def figure(self, run: Run, statement: str) -> tuple[Any, ...] | None:
        try:
            async with run.units.read() as uow:
                row = (await uow.session.execute(text(statement))).one()
        except Exception:
            return None
        return tuple(row)


async def wait_arrived(tally: Tally, ids: Sequence[str], deadline: float, enough: int | None = None) -> int:
    """Until `enough` (default: all) of `ids` have arrived, or the wall clock reaches `deadline`; returns how
    many have not arrived."""
    missing = [i for i in ids if i not in tally.arrivals]
    allowed = 0 if enough is None else len(ids) - enough
    while len(missing) > allowed and time.time() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        missing = [i for i in missing if i not in tally.arrivals]
    return len(missing)


async def warm_up(run: Run, deadline: float) -> None:
    """One event through, so the workers are up before anything is timed."""
    ids = await run.writer.write(1)
    if await wait_arrived(run.tally, ids, deadline):
        raise RuntimeError("the workers delivered nothing (see their logs)")


# --- results ------------------------------------------------------------------------------------------------


@dataclass
class Common:
    workers: int
    events: int  # events measured
    missing: int  # of those, never arrived within the timeout
    duplicates: int
    out_of_order: int


@dataclass
class Drain(Common):
    startup: float | None  # workers' start → first arrival, s
    rate_arrivals: float | None  # deliveries/s from the first arrival to the last
    rate_with_startup: float | None  # deliveries/s from the workers' start to the last arrival


@dataclass
class Latency(Common):
    written_rate: float
    delivered_rate: float | None  # from the first arrival to the last of the events measured
    lags: list[float]  # commit → receipt, s


@dataclass
class CatchUp(Common):
    caught_up: float | None  # the return (or kill) → every event written before it has arrived, s
    longest_wait: float  # the longest commit → receipt of any event (a lower bound while some are missing)
    context: str  # what the database held at that moment


def common(workers: int, tally: Tally, ids: Sequence[str], missing: int) -> Common:
    return Common(workers, len(ids), missing, tally.duplicates, tally.out_of_order)


def lags_of(run: Run, ids: Sequence[str]) -> list[float]:
    arrivals, committed = run.tally.arrivals, run.writer.committed
    return [arrivals[i] - committed[i] for i in ids if i in arrivals]


def longest_wait(run: Run, ids: Sequence[str]) -> float:
    now = time.time()
    arrivals, committed = run.tally.arrivals, run.writer.committed
    return max((arrivals.get(i, now) - committed[i] for i in ids), default=0.0)


def rate_between(run: Run, ids: Sequence[str]) -> float | None:
    times = [run.tally.arrivals[i] for i in ids if i in run.tally.arrivals]
    if len(times) < 2 or max(times) == min(times):
        return None
    return (len(times) - 1) / (max(times) - min(times))


def caught_up_after(run: Run, ids: Sequence[str], since: float, missing: int) -> float | None:
    if missing:
        return None
    return max(0.0, max((run.tally.arrivals[i] for i in ids), default=since) - since)


# --- scenarios ----------------------------------------------------------------------------------------------


async def drain(bench: Bench, workers: int) -> Drain:
    async with bench.fresh() as run:
        ids = await run.writer.backlog(bench.args.events)
        began = time.time()
        await run.workers.start(workers)
        missing = await wait_arrived(run.tally, ids, began + bench.args.timeout)
        times = [run.tally.arrivals[i] for i in ids if i in run.tally.arrivals]
        last = max(times, default=None)
        return Drain(
            **vars(common(workers, run.tally, ids, missing)),
            startup=min(times) - began if times else None,
            rate_arrivals=rate_between(run, ids),
            rate_with_startup=len(times) / (last - began) if last is not None and not missing else None,
        )


async def latency(bench: Bench, workers: int, rate: float | None, seconds: float) -> Latency:
    async with bench.fresh() as run:
        await run.workers.start(workers)
        await warm_up(run, time.time() + bench.args.timeout)
        first = len(run.writer.order)
        took = await run.writer.run_for(rate, seconds)
        ids = run.writer.order[first:]
        missing = await wait_arrived(run.tally, ids, time.time() + bench.args.timeout)
        return Latency(
            **vars(common(workers, run.tally, ids, missing)),
            written_rate=len(ids) / took,
            delivered_rate=rate_between(run, ids),
            lags=lags_of(run, ids),
        )


async def steady(bench: Bench, workers: int) -> Latency:
    return await latency(bench, workers, bench.args.rate, bench.args.seconds)


async def saturation(bench: Bench, workers: int) -> Latency:
    return await latency(bench, workers, None, bench.args.saturation_seconds)


class Writing:
    """The steady writer in the background."""

    def __init__(self, writer: Writer, rate: float) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(writer.run(rate, self._stop))

    async def stop(self) -> None:
        self._stop.set()
        await self._task


async def catch_up(
    run: Run, bench: Bench, workers: int, first: int, mark: int, since: float, context: str, writing: Writing
) -> CatchUp:
    """The events written before `since` (the return, the kill) are `order[first:mark]`: once they have all
    arrived (or the timeout has passed), the writer stops and the rest is waited for."""
    deadline = since + bench.args.timeout
    order = run.writer.order
    missing_before = await wait_arrived(run.tally, order[first:mark], deadline)
    await writing.stop()
    ids = order[first:]
    missing = await wait_arrived(run.tally, ids, deadline)
    return CatchUp(
        **vars(common(workers, run.tally, ids, missing)),
        caught_up=caught_up_after(run, order[first:mark], since, missing_before),
        longest_wait=longest_wait(run, ids),
        context=context,
    )


async def outage(bench: Bench, workers: int) -> CatchUp:
    args = bench.args
    async with bench.fresh() as run:
        await run.workers.start(workers)
        await warm_up(run, time.time() + args.timeout)
        first = len(run.writer.order)
        writing = Writing(run.writer, args.rate)
        try:
            await asyncio.sleep(LEAD_SECONDS)
            await bench.server.go_down(args.outage_mode)
            await asyncio.sleep(args.outage_seconds)
            pending = await bench.figure(run, PENDING_NOW)
            await bench.server.come_back()
            back, mark = time.time(), len(run.writer.order)
            seen = "answered 503" if args.outage_mode == "503" else "cut off (new connections: refused)"
            context = f"{run.tally.refused} requests {seen}"
            if pending is not None:
                count, tried, last_due = pending
                context += f"; at the return {count} deliveries pending, {tried} of them tried"
                if last_due is not None:
                    context += f", the last of those due {float(last_due) - back:.0f} s later"
            return await catch_up(run, bench, workers, first, mark, back, context, writing)
        finally:
            await bench.server.come_back()
            await writing.stop()


async def kill(bench: Bench, workers: int) -> CatchUp:
    args = bench.args
    async with bench.fresh() as run:
        backlog = await run.writer.backlog(args.events)
        began = time.time()
        await run.workers.start(workers)
        writing = Writing(run.writer, args.rate)
        try:
            # Mid-drain: half the backlog has arrived (or the timeout has passed).
            await wait_arrived(run.tally, backlog, began + args.timeout, enough=len(backlog) // 2)
            # … and deliveries are leased (sending, or sent and not settled yet): kill the latest sender then.
            leased = await bench.figure(run, LEASED_NOW)
            until = time.time() + 10
            while leased is not None and not leased[0] and time.time() < until:
                await asyncio.sleep(0.005)
                leased = await bench.figure(run, LEASED_NOW)
            killed, mark = time.time(), len(run.writer.order)
            was_sending = await run.workers.kill_one(run.tally.last_sender_port)
            if not args.no_restart or not run.workers.running:
                await run.workers.start(1)
            context = "killed the latest sender" if was_sending else "killed worker 1 (sender not found)"
            context += f"; {leased[0] if leased else '?'} deliveries leased at the kill"
            result = await catch_up(run, bench, workers, 0, mark, killed, context, writing)
            result.context += f"; {run.tally.cut_off} requests cut off by it"
            return result
        finally:
            await writing.stop()


# --- the run ------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def fmt(value: float | None, digits: int = 0, *, none: str = "–") -> str:
    return none if value is None else f"{value:,.{digits}f}"


def median_of(values: Sequence[float | None], digits: int = 0) -> str:
    """The median, and each round's figure in brackets when there are several."""
    known = [v for v in values if v is not None]
    if not known:
        return "–"
    text_ = fmt(statistics.median(known), digits)
    if len(values) > 1:
        text_ += " (" + ", ".join(fmt(v, digits) for v in values) + ")"
    return text_


COUNTS = ("duplicates", "out of order", "missing")


def counts(results: Sequence[Common]) -> tuple[int, int, str]:
    """Summed over the rounds."""
    missing = sum(r.missing for r in results)
    return (
        sum(r.duplicates for r in results),
        sum(r.out_of_order for r in results),
        f"{missing} of {sum(r.events for r in results)}" if missing else "0",
    )


def table(header: Sequence[str]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |")


def report_drain(args: argparse.Namespace, results: dict[int, list[Drain]]) -> None:
    print(f"\n### drain: a backlog of {args.events} events\n")
    table(
        [
            "workers",
            "deliveries/s, first → last arrival",
            "deliveries/s, start-up included",
            "start-up s (→ first arrival)",
            *COUNTS,
        ]
    )
    for w, rs in results.items():
        row(
            w,
            median_of([r.rate_arrivals for r in rs]),
            median_of([r.rate_with_startup for r in rs]),
            median_of([r.startup for r in rs], 1),
            *counts(rs),
        )


def report_latency(title: str, results: dict[int, list[Latency]]) -> None:
    print(f"\n### {title}\n")
    table(["workers", "written/s", "delivered/s", "commit → receipt p50 ms", "p99 ms", "max ms", *COUNTS])
    for w, rs in results.items():
        lags = [lag * 1000 for r in rs for lag in r.lags]
        row(
            w,
            median_of([r.written_rate for r in rs]),
            median_of([r.delivered_rate for r in rs]),
            fmt(percentile(lags, 50) if lags else None),
            fmt(percentile(lags, 99) if lags else None),
            fmt(max(lags, default=None)),
            *counts(rs),
        )


def report_catch_up(title: str, since: str, timeout: float, results: dict[int, list[CatchUp]]) -> None:
    print(f"\n### {title}\n")
    table(["workers", f"{since} → all written before it arrived, s", "longest wait, s", *COUNTS, "context"])
    for w, rs in results.items():
        caught = [r.caught_up for r in rs]
        shown = median_of(caught, 1)
        if None in caught:
            shown = f"not caught up after {timeout:g} s"
            if len(caught) > 1:
                shown += (
                    f" in {caught.count(None)} of {len(caught)} rounds (the others: {median_of(caught, 1)})"
                )
        at_least = "≥ " if any(r.missing for r in rs) else ""
        longest = at_least + fmt(max(r.longest_wait for r in rs), 1)
        row(w, shown, longest, *counts(rs), "; ".join(r.context for r in rs))


def report(args: argparse.Namespace, results: dict[str, dict[int, list[Any]]]) -> None:
    print(
        f"\n{args.rounds} round(s), medians (each round's figure in brackets), latency percentiles over all "
        f"rounds' events; {args.keys} ordering keys; waits cut at {args.timeout:g} s"
    )
    if "drain" in results:
        report_drain(args, results["drain"])
    if "steady" in results:
        title = f"steady: {args.rate:g} events/s for {args.seconds:g} s, one per transaction"
        report_latency(title, results["steady"])
    if "saturation" in results:
        title = (
            f"saturation: one writer, one event per transaction, flat out for {args.saturation_seconds:g} s"
        )
        report_latency(title, results["saturation"])
    if "outage" in results:
        answer = "answers 503" if args.outage_mode == "503" else "refuses connections"
        title = f"outage: {args.rate:g} events/s; the receiver {answer} for {args.outage_seconds:g} s"
        report_catch_up(title, "return", args.timeout, results["outage"])
    if "kill" in results:
        after = "the others carry on" if args.no_restart else "a fresh one started at once"
        title = (
            f"kill: a backlog of {args.events} and {args.rate:g} events/s; one worker SIGKILLed once half "
            f"the backlog has arrived, {after}"
        )
        report_catch_up(title, "kill", args.timeout, results["kill"])


def worker_logs(logs: Path) -> None:
    """What the workers logged (at WARNING and above), by level and message."""
    seen: Counter[str] = Counter()
    for log in sorted(logs.glob("worker-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
                seen[f"{entry.get('level', '?')}: {entry.get('message', '')}"] += 1
            except (ValueError, AttributeError):
                seen[f"(not JSON) {line[:100]}"] += 1
    if seen:
        print("\nWorker logs:")
        for message, n in seen.most_common(15):
            print(f"  {n:6} × {message}")


async def bench(args: argparse.Namespace) -> None:
    server = ReceiverServer(Receiver())
    await server.start()
    scenarios: dict[str, Callable[[Bench, int], Awaitable[Any]]] = {
        "drain": drain,
        "steady": steady,
        "saturation": saturation,
        "outage": outage,
        "kill": kill,
    }
    results: dict[str, dict[int, list[Any]]] = {
        name: {w: [] for w in args.worker_counts} for name in args.chosen
    }
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as logs:
        runner = Bench(args, server, Path(logs))
        shown = runner.worker_env("<a fresh database per run>")
        shown["LOYALTY_ENCRYPTION_KEY"] = "<a new key>"
        print(f"Code: {TREE}. Receiver: {server.url}. Workers: {ROOT / '.venv/bin/loyalty-api'} worker, with")
        for name, value in sorted(shown.items()):
            if name.startswith("LOYALTY_") or name == "PYTHONPATH":
                print(f"  {name}={value}")
        print("  and no other LOYALTY_* variable", flush=True)
        try:
            await runner.prepare()
            for round_ in range(1, args.rounds + 1):
                for name in args.chosen:
                    for w in args.worker_counts:
                        began = time.monotonic()
                        print(f"round {round_}: {name}, {w} worker(s) …", end=" ", flush=True)
                        results[name][w].append(await scenarios[name](runner, w))
                        print(f"{time.monotonic() - began:.0f} s", flush=True)
        finally:
            await runner.cleanup()
            await server.stop()
        report(args, results)
        worker_logs(Path(logs))


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
    parser.add_argument("--events", type=int, default=5000, help="backlog of the drain and kill scenarios")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=100, help="events/s of the steady writer")
    parser.add_argument("--seconds", type=float, default=20, help="length of the steady run")
    parser.add_argument("--saturation-seconds", type=float, default=10)
    parser.add_argument("--outage-seconds", type=float, default=20)
    parser.add_argument("--outage-mode", choices=("503", "refuse"), default="503")
    parser.add_argument("--no-restart", action="store_true", help="kill: no fresh worker (2+ workers only)")
    parser.add_argument("--timeout", type=float, default=400, help="longest wait for arrivals, per scenario")
    parser.add_argument(
        "--keys", type=int, default=500, help="ordering keys (members) events are spread over"
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"a subset of {','.join(SCENARIOS)}")
    parser.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the source tree to run (see _tree)")
    args = parser.parse_args()
    args.chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.worker_counts = [int(w) for w in args.workers.split(",")]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(bench(args))


if __name__ == "__main__":
    main()
