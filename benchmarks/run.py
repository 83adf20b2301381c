"""One command: seed a database with many members, start the real service (uvicorn) and drive it with
concurrent clients, next to a minimal raw-asyncpg baseline, interleaved, and print medians.

    apt-get install wrk                                     # the load generator (--driver wrk, the default)
    .venv/bin/python benchmarks/run.py                      # PostgreSQL and SQLite, 100,000 members
    .venv/bin/python benchmarks/run.py --database sqlite --members 20000 --seconds 10
    .venv/bin/python benchmarks/run.py --database postgres --members 2000 --seconds 5 --rounds 1  # smoke

`wrk` (C, about 0.05 ms of CPU a request) drives each scenario from a file of requests (benchmarks/wrk.py);
`--driver aiohttp` uses the older Python driver, which takes CPU from the servers on two cores and
flattens every ratio. Each of earn, quote and lookup runs beside its raw-asyncpg baseline
(benchmarks/baseline_app.py) on PostgreSQL.

PostgreSQL comes from LOYALTY_BENCH_PG_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres);
a database of its own is created there and dropped afterwards, unless `--keep NAME` keeps it for later runs
(seed 10,000,000 members once with `--keep big --seed-only`, then measure with `--keep big`).

`--pgbouncer` (PostgreSQL) also serves ours through a PgBouncer in transaction pooling mode, which it starts
itself (Debian's `pgbouncer`), and drives each scenario against that server too, in the same rounds: what the
pooler costs a request.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.seed import (  # noqa: E402
    SEEDED_ONE_BY_ONE,
    clone_members,
    sample_members,
    seed,
    seed_shoppers,
)
from benchmarks.wrk import TARGETS_LUA, parse_wrk, wrk  # noqa: E402

from loyalty_api import crypto  # noqa: E402
from loyalty_api.campaigns import service as campaigns  # noqa: E402
from loyalty_api.clock import SystemClock  # noqa: E402
from loyalty_api.db.engine import Database, create_engine  # noqa: E402
from loyalty_api.db.migrations import upgrade  # noqa: E402
from loyalty_api.db.uow import UnitsOfWork  # noqa: E402
from loyalty_api.offers import FixedDiscount  # noqa: E402
from loyalty_api.settings import Settings  # noqa: E402
from loyalty_api.worker.schedule import JOBS  # noqa: E402

PG_SERVER = os.environ.get("LOYALTY_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


@dataclass
class Reply:
    status: int


@dataclass
class Result:
    label: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu: float = float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu / self.requests * 1000 if self.requests else float("nan")

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)


@dataclass
class Measured:
    """What wrk reports of one run, in the shape the report reads."""

    rps: float
    p50: float
    p99: float
    errors: int
    cpu_ms_per_request: float
    database_cpu_ms_per_request: float = float("nan")
    idle_share: float = float("nan")


def state_file(name: str) -> Path:
    """Where `--keep NAME` keeps what later runs need of the seeded database (its keys, sample, shoppers)."""
    return Path(tempfile.gettempdir()) / f"{name}.json"


def kept_state(name: str) -> dict[str, Any]:
    """What `--keep NAME` kept; exits with how to seed it when there is none."""
    found = state_file(name)
    if not found.exists():
        sys.exit(
            f"no kept database {name}: seed it with `run.py --database postgres --keep {name} --seed-only`"
        )
    state: dict[str, Any] = json.loads(found.read_text())
    return state


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds(database: str) -> float:
    """The CPU time of the PostgreSQL backends serving `database` (a backend's process title names its
    database), so that other databases' work on the machine is left out. Backends that ended during the
    run, and the server's shared processes (the WAL writer's flushes), are not counted."""
    total = 0
    for process in Path("/proc").glob("[0-9]*"):
        try:
            title = (process / "cmdline").read_bytes().decode(errors="replace").split()
            if title[:1] != ["postgres:"] or database not in title:
                continue
            fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # ended since listed
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_idle() -> tuple[int, int]:
    """The machine's busy and idle time so far, in clock ticks over every core (/proc/stat)."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return sum(ticks[:8]) - idle, idle


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                if (await client.get(url, timeout=1)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


class Client:
    """A thin aiohttp wrapper: httpx's async pool tops out near 200 requests/s here, below the server."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def post(self, path: str, *, json: Any, headers: dict[str, str] | None = None) -> Reply:
        async with self.session.post(self.base + path, json=json, headers=headers) as response:
            await response.read()
            return Reply(response.status)

    async def get(
        self, path: str, *, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        async with self.session.get(self.base + path, params=params, headers=headers) as response:
            await response.read()
            return Reply(response.status)


Request = Callable[[Client, int], Awaitable[Reply]]


async def drive(label: str, base: str, make: Request, *, concurrency: int, seconds: float) -> Result:
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = Client(session, base)
        deadline = time.perf_counter() + seconds

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await make(client, next(counter))
                latencies.append(time.perf_counter() - started)
                if response.status >= 400:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(label, len(latencies), errors, elapsed, latencies)


@asynccontextmanager
async def server(command: list[str], env: dict[str, str], port: int, ready_path: str):  # type: ignore[no-untyped-def]
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}{ready_path}", process)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _pgbouncer_config(server_url: str, port: int) -> Path:
    """A PgBouncer configuration in a folder of its own, owned by `postgres` when we are root (PgBouncer
    will not run as root): transaction pooling in front of the server of `server_url`, as .ci/run's."""
    target = make_url(server_url)
    folder = Path(tempfile.mkdtemp(prefix="loyalty-bench-pgbouncer-"))
    config = folder / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n* = host={target.host} port={target.port or 5432}\n\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = trust\n"
        f"auth_file = {folder}/userlist.txt\npool_mode = transaction\nmax_client_conn = 1000\n"
        f"default_pool_size = 24\nlogfile = {folder}/pgbouncer.log\npidfile = {folder}/pgbouncer.pid\n"
    )
    (folder / "userlist.txt").write_text(f'"{target.username}" ""\n')
    if os.getuid() == 0:
        for path in (folder, *folder.iterdir()):
            shutil.chown(path, "postgres")
    return config


@asynccontextmanager
async def pgbouncer(server_url: str):  # type: ignore[no-untyped-def]
    """A PgBouncer in transaction pooling mode in front of the PostgreSQL server of `server_url`; yields its
    port."""
    port = free_port()
    config = _pgbouncer_config(server_url, port)
    command = ["pgbouncer", *(["-u", "postgres"] if os.getuid() == 0 else []), str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


# The checkout quote's cart: ten items, two of them shoes (a coupon is 5 % off shoes), and shipping.
QUOTE_ITEMS = [
    ("SHOE-1", "shoes", 1, 39_900),
    ("SHOE-2", "shoes", 1, 25_900),
    ("SOCK", "apparel", 3, 1_990),
    ("TEE", "apparel", 2, 7_900),
    ("CAP", "apparel", 1, 4_900),
    ("BOTTLE", "outdoor", 1, 5_900),
    ("BAG", "outdoor", 1, 19_900),
    ("LACES", "shoes", 2, 900),
    ("INSOLE", "shoes", 1, 3_900),
    ("BAND", "apparel", 4, 1_500),
]
QUOTE_CART = {
    "subtotal": {"amount": sum(q * p for _, _, q, p in QUOTE_ITEMS), "currency": "CNY"},
    "shipping": {"amount": 1_000, "currency": "CNY"},
    "items": [
        {"sku": sku, "category": category, "quantity": q, "unit_price": {"amount": p, "currency": "CNY"}}
        for sku, category, q, p in QUOTE_ITEMS
    ],
}


def quote_body(member_id: str, codes: list[str]) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "cart": QUOTE_CART,
        "coupon_codes": codes,
        "points_to_use": 5_000,
        "channel": "online",
    }


def scenarios(
    key: str, members: list[tuple[str, str]], shoppers: list[tuple[str, list[str]]], run_id: str
) -> dict[str, Request]:
    headers = {"Authorization": f"Bearer {key}"}
    rng = random.Random(1)

    def earn(client: Client, n: int) -> Awaitable[Reply]:
        member_id, _ = rng.choice(members)
        body = {
            "order_ref": f"{run_id}-E{n}",
            "amount": {"amount": rng.randrange(100, 100_000), "currency": "CNY"},
        }
        return client.post(f"/v1/members/{member_id}/earn", json=body, headers=headers)

    def redeem(client: Client, n: int) -> Awaitable[Reply]:
        member_id, _ = rng.choice(members)
        body = {"points": 100, "order_ref": f"{run_id}-R{n}"}
        return client.post(f"/v1/members/{member_id}/redeem", json=body, headers=headers)

    def lookup(client: Client, n: int) -> Awaitable[Reply]:
        _, number = rng.choice(members)
        return client.get("/v1/members/lookup", params={"member_number": number}, headers=headers)

    def quote(client: Client, n: int) -> Awaitable[Reply]:
        member_id, codes = rng.choice(shoppers)
        return client.post("/v1/checkout/quote", json=quote_body(member_id, codes), headers=headers)

    return {"earn": earn, "redeem": redeem, "lookup": lookup, "quote": quote}


def target_lines(
    key: str, members: list[tuple[str, str]], shoppers: list[tuple[str, list[str]]]
) -> dict[str, tuple[list[str], list[str] | None]]:
    """Per scenario, wrk's request lines for ours and for its baseline (None when it has none)."""
    rng = random.Random(3)
    sample = rng.sample(members, min(len(members), SAMPLE))

    def earn_body() -> str:
        amount = {"amount": rng.randrange(100, 100_000), "currency": "CNY"}
        return json.dumps({"order_ref": "@REF@", "amount": amount})

    redeem = json.dumps({"points": 100, "order_ref": "@REF@"})
    quotes = [json.dumps(quote_body(member_id, codes)) for member_id, codes in shoppers]
    return {
        "earn": (
            [f"POST\t/v1/members/{m}/earn\t{earn_body()}" for m, _ in sample],
            [f"POST\t/earn/{m}\t{earn_body()}" for m, _ in sample],
        ),
        "redeem": ([f"POST\t/v1/members/{m}/redeem\t{redeem}" for m, _ in sample], None),
        "lookup": (
            [f"GET\t/v1/members/lookup?member_number={n}" for _, n in sample],
            [f"GET\t/lookup?member_number={n}" for _, n in sample],
        ),
        "quote": (
            [f"POST\t/v1/checkout/quote\t{body}" for body in quotes],
            [f"POST\t/quote\t{body}" for body in quotes],
        ),
    }


async def drive_wrk(
    label: str,
    url: str,
    script: Path,
    lines: Path,
    key: str,
    process: subprocess.Popen[bytes],
    args: Any,
    database: str | None,
) -> Measured:
    """One wrk run, with the server's CPU and, on PostgreSQL (`database` named), its backends'."""
    cpu_before, database_before, (busy_before, idle_before) = (
        cpu_seconds(process.pid),
        math.nan if database is None else database_cpu_seconds(database),
        machine_busy_idle(),
    )
    out = await wrk(
        script, url, [uuid.uuid4().hex[:8], str(lines), key], seconds=args.seconds, clients=args.concurrency
    )
    busy_after, idle_after = machine_busy_idle()
    busy, idle = busy_after - busy_before, idle_after - idle_before
    database_cpu = math.nan if database is None else database_cpu_seconds(database) - database_before
    run = parse_wrk(label, out, cpu_seconds(process.pid) - cpu_before)
    return Measured(
        run.rate,
        run.p50_ms,
        run.p99_ms,
        run.non_2xx,
        run.cpu_ms_per_request,
        database_cpu / run.requests * 1000 if run.requests else float("nan"),
        idle / (busy + idle) if busy + idle else float("nan"),
    )


def baselines(
    members: list[tuple[str, str]], shoppers: list[tuple[str, list[str]]], run_id: str
) -> dict[str, tuple[str, Request]]:
    """Per scenario that has one: the baseline's label and its request."""
    rng = random.Random(2)

    def earn(client: Client, n: int) -> Awaitable[Reply]:
        member_id, _ = rng.choice(members)
        body = {
            "order_ref": f"{run_id}-B{n}",
            "amount": {"amount": rng.randrange(100, 100_000), "currency": "CNY"},
        }
        return client.post(f"/earn/{member_id}", json=body)

    def quote(client: Client, n: int) -> Awaitable[Reply]:
        member_id, codes = rng.choice(shoppers)
        return client.post("/quote", json=quote_body(member_id, codes))

    return {"earn": ("baseline earn", earn), "quote": ("baseline quote", quote)}


async def bench(database: str, args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="loyalty-bench-"))
    admin_engine = None
    kept = args.keep is not None and database == "postgres"
    if database == "postgres":
        name = args.keep if kept else f"loyalty_bench_{uuid.uuid4().hex[:8]}"
        admin_engine = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    kept_file = state_file(args.keep)
    try:
        if kept and kept_file.exists():
            state = kept_state(args.keep)
            print(f"\n== {database}: the seeded database {name} again ({state['members']:,} members)")
        else:
            state = await _seed_database(database, url, admin_engine, args)
            if kept:
                kept_file.write_text(json.dumps(state))
        if args.seed_only:
            return
        if args.campaign:
            await time_campaigns(url, state["encryption_key"])
            return
        key_material, key = state["encryption_key"], state["key"]
        members = [tuple(pair) for pair in state["sample"]]
        shoppers = [(member_id, codes) for member_id, codes in state["shoppers"]]
        print(f"{args.concurrency} clients, {args.seconds:.0f} s per run, {args.rounds} interleaved rounds")

        env = {**os.environ, "LOYALTY_DATABASE_URL": url, "LOYALTY_ENCRYPTION_KEY": key_material}
        port = free_port()
        ours_cmd = [sys.executable, "-m", "loyalty_api.cli", "serve", "--port", str(port)]
        results: dict[str, list[Result | Measured]] = {}
        async with server(ours_cmd, env, port, "/healthz") as ours:
            base_port = free_port()
            baseline_cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.baseline_app:app",
                "--port",
                str(base_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ]
            baseline_env = {**env, "BASELINE_DSN": url.replace("postgresql+asyncpg", "postgresql")}
            pooled_port = free_port()
            async with (
                (
                    server(baseline_cmd, baseline_env, base_port, "/docs")
                    if database == "postgres"
                    else _nothing()
                ) as baseline,
                _pooled(args, url, env, pooled_port) as pooled,
            ):
                if args.driver == "wrk":
                    peak_rss = await _rounds_with_wrk(
                        args,
                        tmp,
                        key,
                        members,
                        shoppers,
                        (ours, port),
                        (baseline, base_port),
                        (pooled, pooled_port),
                        results,
                        name if database == "postgres" else None,
                    )
                else:
                    peak_rss = await _rounds_with_aiohttp(
                        args, key, members, shoppers, (ours, port), (baseline, base_port), results
                    )
        report(results, peak_rss)
        if args.jobs:
            time_jobs(env)
    finally:
        if admin_engine is not None:
            if not kept:
                async with admin_engine.connect() as connection:
                    await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await admin_engine.dispose()


@asynccontextmanager
async def _pooled(args: argparse.Namespace, url: str, env: dict[str, str], port: int):  # type: ignore[no-untyped-def]
    """With --pgbouncer on PostgreSQL, ours again, through a PgBouncer (LISTEN straight to the database, as
    docs/scaling.md says); else nothing."""
    if not args.pgbouncer or not url.startswith("postgresql"):
        yield None
        return
    async with pgbouncer(url) as bouncer_port:
        env = {
            **env,
            "LOYALTY_DATABASE_URL": make_url(url)
            .set(port=bouncer_port)
            .render_as_string(hide_password=False),
            "LOYALTY_DATABASE_POOLER": "pgbouncer",
            "LOYALTY_LISTEN_DATABASE_URL": url,
        }
        command = [sys.executable, "-m", "loyalty_api.cli", "serve", "--port", str(port)]
        async with server(command, env, port, "/healthz") as process:
            yield process


async def _analyze(engine: Any) -> None:
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("ANALYZE"))


async def _seed_database(
    database: str, url: str, admin_engine: Any, args: argparse.Namespace
) -> dict[str, Any]:
    """Create (PostgreSQL), migrate and seed the database; what a run needs of it: the keys, a sample of
    the members (the requests pick from it) and the shoppers."""
    if admin_engine is not None:
        async with admin_engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{make_url(url).database}"'))
    key_material = crypto.generate_key()
    settings = Settings(database_url=url, encryption_key=key_material)
    engine = create_engine(url)
    started = time.perf_counter()
    await upgrade(engine)
    cloned = database == "postgres" and args.members > SEEDED_ONE_BY_ONE
    key, members = await seed(engine, settings, SEEDED_ONE_BY_ONE if cloned else args.members)
    shoppers = await seed_shoppers(engine, settings, members, min(args.shoppers, args.members))
    if cloned:
        await clone_members(engine, SEEDED_ONE_BY_ONE, args.members)
        await _analyze(engine)
        members = await sample_members(engine, SAMPLE)
    await engine.dispose()
    print(f"\n== {database}: {args.members:,} members seeded in {time.perf_counter() - started:.1f} s")
    return {
        "members": args.members,
        "encryption_key": key_material,
        "key": key,
        "sample": random.Random(3).sample(members, min(len(members), SAMPLE)),
        "shoppers": shoppers,
    }


# Requests pick their members from a random sample this large (each request a random one of it).
SAMPLE = 20_000
Served = tuple[Any, int]  # the server's process (None when not running) and its port


async def _rounds_with_wrk(
    args: argparse.Namespace,
    tmp: Path,
    key: str,
    members: list[tuple[str, str]],
    shoppers: list[tuple[str, list[str]]],
    ours: Served,
    baseline: Served,
    pooled: Served,
    results: dict[str, list[Result | Measured]],
    database: str | None,
) -> float:
    """The rounds; `database` names the PostgreSQL database served (None on SQLite)."""
    script = tmp / "targets.lua"
    script.write_text(TARGETS_LUA)
    files: dict[str, tuple[Path, Path | None]] = {}
    for label, (lines, base_lines) in target_lines(key, members, shoppers).items():
        (tmp / f"{label}.txt").write_text("\n".join(lines) + "\n")
        base_file = None
        if base_lines is not None:
            base_file = tmp / f"baseline-{label}.txt"
            base_file.write_text("\n".join(base_lines) + "\n")
        files[label] = (tmp / f"{label}.txt", base_file)
    peak_rss = 0.0
    wanted = [label for label in files if label in args.scenarios.split(",")]
    for round_no in range(args.rounds):
        # Within a round, ours and its baseline run back to back, the order turning every round.
        for label in wanted:
            ours_file, base_file = files[label]
            runs = [(label, ours, ours_file, key)]
            if base_file is not None and baseline[0] is not None:
                runs.append((f"baseline {label}", baseline, base_file, ""))
            if pooled[0] is not None:
                runs.append((f"{label} pgbouncer", pooled, ours_file, key))
            if round_no % 2:
                runs.reverse()
            for run_label, (process, port), requests, run_key in runs:
                url = f"http://127.0.0.1:{port}"
                measured = await drive_wrk(run_label, url, script, requests, run_key, process, args, database)
                results.setdefault(run_label, []).append(measured)
            peak_rss = max(peak_rss, rss_mib(ours[0].pid))
    return peak_rss


async def _rounds_with_aiohttp(
    args: argparse.Namespace,
    key: str,
    members: list[tuple[str, str]],
    shoppers: list[tuple[str, list[str]]],
    ours: Served,
    baseline: Served,
    results: dict[str, list[Result | Measured]],
) -> float:
    peak_rss = 0.0
    for round_no in range(args.rounds):
        run_id = f"{uuid.uuid4().hex[:6]}{round_no}"
        paired = baselines(members, shoppers, run_id)
        for label, make in scenarios(key, members, shoppers, run_id).items():
            if label not in args.scenarios.split(","):
                continue
            process, port = ours
            cpu_before = cpu_seconds(process.pid)
            result = await drive(
                label, f"http://127.0.0.1:{port}", make, concurrency=args.concurrency, seconds=args.seconds
            )
            result.server_cpu = cpu_seconds(process.pid) - cpu_before
            results.setdefault(label, []).append(result)
            peak_rss = max(peak_rss, rss_mib(process.pid))
            base_process, base_port = baseline
            if label in paired and base_process is not None:
                base_label, base_make = paired[label]
                cpu_before = cpu_seconds(base_process.pid)
                base = await drive(
                    base_label,
                    f"http://127.0.0.1:{base_port}",
                    base_make,
                    concurrency=args.concurrency,
                    seconds=args.seconds,
                )
                base.server_cpu = cpu_seconds(base_process.pid) - cpu_before
                results.setdefault(base_label, []).append(base)
    return peak_rss


@asynccontextmanager
async def _nothing():  # type: ignore[no-untyped-def]
    yield None


def report(results: dict[str, list[Result | Measured]], peak_rss: float) -> None:
    print(
        f"{'scenario':<15}{'req/s (median)':>16}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
        f"{'CPU ms/req':>12}{'DB ms/req':>11}{'idle':>6}   per-round req/s"
    )
    for label, runs in results.items():
        rps = statistics.median(r.rps for r in runs)
        p50 = statistics.median(r.p50 for r in runs)
        p99 = statistics.median(r.p99 for r in runs)
        errors = sum(r.errors for r in runs)
        cpu = statistics.median(r.cpu_ms_per_request for r in runs)
        # wrk's runs only: the aiohttp driver's Result has neither
        database = statistics.median(getattr(r, "database_cpu_ms_per_request", math.nan) for r in runs)
        idle = statistics.median(getattr(r, "idle_share", math.nan) for r in runs)
        rounds = ", ".join(f"{r.rps:.0f}" for r in runs)
        print(
            f"{label:<15}{rps:>16.0f}{p50:>10.1f}{p99:>10.1f}{errors:>8}{cpu:>12.2f}{database:>11.2f}"
            f"{idle:>6.0%}   {rounds}"
        )
    for label in ("earn", "quote", "lookup"):
        base_label = f"baseline {label}"
        if base_label not in results:
            continue
        ratios = [o.rps / b.rps for o, b in zip(results[label], results[base_label], strict=True)]
        ratio = statistics.median(r.rps for r in results[label]) / statistics.median(
            r.rps for r in results[base_label]
        )
        print(
            f"{label} / {base_label}: {ratio:.2f} (median of medians); per round: "
            + ", ".join(f"{r:.2f}" for r in ratios)
        )
    for label in ("earn", "redeem", "lookup", "quote"):
        pooled = results.get(f"{label} pgbouncer")
        if pooled is None:
            continue
        rps = statistics.median(r.rps for r in pooled) / statistics.median(r.rps for r in results[label])
        cpu = statistics.median(r.cpu_ms_per_request for r in pooled) / statistics.median(
            r.cpu_ms_per_request for r in results[label]
        )
        print(
            f"{label} through PgBouncer / {label}: {rps:.2f} of the req/s, {cpu:.2f}× the API's CPU a request"
        )
    print(f"peak RSS of the API process under load: {peak_rss:.0f} MiB")


def time_jobs(env: dict[str, str]) -> None:
    """Each scheduled job once (`loyalty-api jobs NAME`, run until it finds nothing to do), in a process of
    its own: what it handled and in how long (the job's own time, start-up left out), and the process's peak
    resident memory."""
    print(f"{'job':<28}{'peak RSS MiB':>14}   handled, time")
    for job in JOBS:
        process = subprocess.Popen(
            [sys.executable, "-m", "loyalty_api.cli", "jobs", job.name],
            env={**env, "LOYALTY_LOG_LEVEL": "WARNING"},
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        output = process.stdout.read().decode().strip()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            output = f"FAILED (exit {process.returncode}; its error is above)"
        print(f"{job.name:<28}{usage.ru_maxrss / 1024:>14.0f}   {output}")


CAMPAIGN_ACTIONS: tuple[tuple[str, campaigns.Action], ...] = (
    (
        "coupon",
        campaigns.CouponAction(
            coupon_name="Benchmark: 10 off", coupon=FixedDiscount(amount=1_000), valid_days=30
        ),
    ),
    ("points", campaigns.PointsAction(points=100, reason="benchmark campaign")),
)


async def _create_campaign(url: str, key_material: str, name: str, action: campaigns.Action) -> None:
    """A campaign over every active member (no filter), made through the service as the API makes it."""
    engine = create_engine(url)
    settings = Settings(database_url=url, encryption_key=key_material)
    units = UnitsOfWork(Database(engine), SystemClock(), crypto.Vault(key_material), settings)
    try:
        async with units.begin() as uow:
            await campaigns.create_campaign(uow, name=name, action=action)
    finally:
        await engine.dispose()


def _run_campaigns_job(env: dict[str, str]) -> tuple[str, float]:
    """`loyalty-api jobs run-campaigns` in a process of its own: what it printed, its peak RSS in MiB."""
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty_api.cli", "jobs", "run-campaigns"], env=env, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    output = process.stdout.read().decode().strip()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        output = f"FAILED (exit {os.waitstatus_to_exitcode(status)}; its error is above)"
    return output, usage.ru_maxrss / 1024


async def time_campaigns(url: str, key_material: str) -> None:
    """`--campaign`: a coupon campaign over every member, run to completion by `loyalty-api jobs
    run-campaigns` in a process of its own; then a points campaign the same way. Each: members reached, the
    job's own time (start-up left out) and the process's peak resident memory."""
    env = {
        **os.environ,
        "LOYALTY_DATABASE_URL": url,
        "LOYALTY_ENCRYPTION_KEY": key_material,
        "LOYALTY_LOG_LEVEL": "WARNING",
    }
    print(f"{'campaign':<28}{'peak RSS MiB':>14}   reached, time")
    for label, action in CAMPAIGN_ACTIONS:
        await _create_campaign(url, key_material, f"benchmark {label}", action)
        output, peak_mib = await asyncio.to_thread(_run_campaigns_job, env)
        print(f"{label:<28}{peak_mib:>14.0f}   {output}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--driver", choices=["wrk", "aiohttp"], default="wrk")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--shoppers", type=int, default=200, help="members with two coupons each, for the checkout quote"
    )
    parser.add_argument(
        "--scenarios",
        default="earn,redeem,lookup,quote",
        help="comma-separated: which of earn, redeem, lookup, quote to drive (with their baselines)",
    )
    parser.add_argument(
        "--keep",
        metavar="NAME",
        help="PostgreSQL: seed database NAME once and keep it (its keys and a sample of its members in "
        "$TMPDIR/NAME.json); later runs with the same NAME reuse it",
    )
    parser.add_argument("--seed-only", action="store_true", help="seed (with --keep) and stop")
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="PostgreSQL: also serve ours through a PgBouncer in transaction pooling mode (started here) and "
        "drive each scenario against it in the same rounds",
    )
    parser.add_argument(
        "--jobs", action="store_true", help="afterwards, time each scheduled job once, with its peak memory"
    )
    parser.add_argument(
        "--campaign",
        action="store_true",
        help="instead of the load: run a coupon campaign, then a points campaign, over every member, each "
        "to completion, with its time and peak memory",
    )
    args = parser.parse_args()
    for database in ["postgres", "sqlite"] if args.database == "both" else [args.database]:
        asyncio.run(bench(database, args))


if __name__ == "__main__":
    main()


__all__ = ["Any"]
