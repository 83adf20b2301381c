"""The edge under load: what the rate limiter costs an earn, and what a flood does to a till's earn.

    .venv/bin/python benchmarks/edge.py                                  # PostgreSQL, 20,000 members
    .venv/bin/python benchmarks/edge.py --members 5000 --seconds 8 --rounds 3
    git archive 6b73cf4 | tar -x -C /tmp/before    # a source tree from before a change, to compare with:
    .venv/bin/python benchmarks/edge.py --before /tmp/before

Two `loyalty-api serve` processes on one database, one with the rate limiter on (in-process memory, the
default) and one with it off; with `--before PATH`, a third from another source tree (its `src/` first on
PYTHONPATH, given this tree's migrations: the same database, so that tree must read this schema). `wrk`
drives earn (a random member, a new receipt each time) against each in turn, interleaved round by round in a
turning order, and the servers' CPU time per request is read from /proc. A further run per round drives the
limiter-on server's earn while an attacker, with a key of its own (default budget), floods it: `wrk` sending
GraphQL documents of 1,000 aliases, and raw sockets sending 50 MB bodies, half declared by Content-Length,
half streamed chunked. A pause follows each flood. Prints medians.

Needs `wrk` (Debian: `apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import PG_SERVER, _nothing, cpu_seconds, free_port, server  # noqa: E402
from benchmarks.seed import seed  # noqa: E402
from benchmarks.wrk import Run, parse_wrk, wrk  # noqa: E402

from loyalty_api import crypto  # noqa: E402
from loyalty_api.auth import service as auth_service  # noqa: E402
from loyalty_api.auth.principal import Scope  # noqa: E402
from loyalty_api.clock import SystemClock  # noqa: E402
from loyalty_api.db.engine import Database, create_engine  # noqa: E402
from loyalty_api.db.migrations import upgrade  # noqa: E402
from loyalty_api.db.uow import UnitsOfWork  # noqa: E402
from loyalty_api.settings import Settings  # noqa: E402

EARN_LUA = r"""
local made = 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
end
function init(args)
  tag, key = args[1], args[3]
  ids = {}
  for line in io.lines(args[2]) do ids[#ids + 1] = line end
  math.randomseed(tid * 7919 + os.time())
  counter = 0
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local body = '{"order_ref":"' .. tag .. '-' .. tid .. '-' .. counter ..
    '","amount":{"amount":12990,"currency":"CNY"}}'
  return wrk.format("POST", "/v1/members/" .. ids[math.random(#ids)] .. "/earn", nil, body)
end
"""

ALIASES_LUA = r"""
function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
  local fields = {}
  for i = 1, 1000 do fields[i] = "a" .. i .. ": __typename" end
  wrk.body = '{"query": "{ ' .. table.concat(fields, " ") .. ' }"}'
end
"""

FIFTY_MB = 50 * 1024 * 1024
# A pause after each flood run, for PostgreSQL to write out what it took in.
SETTLE_SECONDS = 5


def _generators_cpu() -> float:
    """CPU seconds used so far by this process (the body pourer) and its finished children (wrk)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def big_body(port: int, key: str, *, chunked: bool) -> None:
    """One 50 MB body, declared by Content-Length or streamed chunked, poured until the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {FIFTY_MB}"
    writer.write(
        f"POST /v1/members HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n".encode()
    )
    chunk = b"a" * 65536

    async def pour() -> None:
        try:
            for _ in range(FIFTY_MB // len(chunk)):
                writer.write(b"10000\r\n" + chunk + b"\r\n" if chunked else chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass

    pouring = asyncio.create_task(pour())
    try:
        await asyncio.wait_for(reader.read(200), timeout=30)
    except (TimeoutError, ConnectionError, OSError):
        pass
    finally:
        pouring.cancel()
        writer.close()


async def big_bodies(port: int, key: str, until: float) -> int:
    """50 MB bodies one after another until `until`, declared and chunked in turn; how many were sent."""
    sent = 0
    while time.monotonic() < until:
        await big_body(port, key, chunked=sent % 2 == 1)
        sent += 1
    return sent


async def prepare(url: str, members: int) -> tuple[str, str, list[str], str]:
    key_material = crypto.generate_key()
    settings = Settings(database_url=url, encryption_key=key_material)
    engine = create_engine(url)
    await upgrade(engine)
    till_key, pairs = await seed(engine, settings, members)
    await engine.dispose()
    database = Database(create_engine(url))
    units = UnitsOfWork(database, SystemClock(), crypto.Vault(key_material), settings)
    async with units.begin() as uow:
        attacker = await auth_service.create_key(uow, name="attacker", scopes=[Scope.pos, Scope.ecommerce])
    await database.dispose()
    return key_material, till_key, [member_id for member_id, _ in pairs], attacker.token


async def bench(args: argparse.Namespace) -> None:
    name = f"loyalty_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp(prefix="loyalty-edge-"))
    try:
        key_material, till_key, member_ids, attacker_key = await prepare(url, args.members)
        (tmp / "ids").write_text("\n".join(member_ids) + "\n")
        (tmp / "earn.lua").write_text(EARN_LUA)
        (tmp / "aliases.lua").write_text(ALIASES_LUA)
        env = {**os.environ, "LOYALTY_DATABASE_URL": url, "LOYALTY_ENCRYPTION_KEY": key_material}
        on_port, off_port = free_port(), free_port()
        on_cmd = [sys.executable, "-m", "loyalty_api.cli", "serve", "--port", str(on_port)]
        off_cmd = [sys.executable, "-m", "loyalty_api.cli", "serve", "--port", str(off_port)]
        off_env = {**env, "LOYALTY_RATE_LIMITS_ENABLED": "false"}
        before_port = free_port()
        before_cmd = [sys.executable, "-m", "loyalty_api.cli", "serve", "--port", str(before_port)]
        before_env = None
        if args.before:
            # The earlier tree serves this database, so it must know its schema is current: it gets our
            # migrations (its serve refuses a database at a revision it does not know).
            shutil.copytree(ROOT / "migrations", Path(args.before) / "migrations", dirs_exist_ok=True)
            before_env = {**env, "PYTHONPATH": f"{args.before}/src"}
        print(
            f"\n== PostgreSQL, {args.members:,} members; earn with {args.clients} clients, "
            f"{args.seconds:g} s per run, {args.rounds} interleaved rounds"
        )
        runs: dict[str, list[Run]] = {}
        flood_counts: list[tuple[int, int]] = []
        generators: list[
            float
        ] = []  # CPU seconds of the load generators (both wrk, the body pourer) per flood run
        async with (
            server(on_cmd, env, on_port, "/healthz") as on,
            server(off_cmd, off_env, off_port, "/healthz") as off,
            server(before_cmd, before_env, before_port, "/healthz") if before_env else _nothing() as before,
        ):
            servers = [("limiter on", on, on_port), ("limiter off", off, off_port)]
            if before is not None:
                servers.append(("before", before, before_port))
            for round_ in range(args.rounds):
                # The order turns each round, so that no server always runs first (right after the flood,
                # while PostgreSQL is still catching up with it).
                turn = round_ % len(servers)
                for label, process, port in servers[turn:] + servers[:turn]:
                    cpu_then = cpu_seconds(process.pid)
                    out = await wrk(
                        tmp / "earn.lua",
                        f"http://127.0.0.1:{port}",
                        [f"r{round_}{port}", str(tmp / "ids"), till_key],
                        seconds=args.seconds,
                        clients=args.clients,
                    )
                    runs.setdefault(label, []).append(
                        parse_wrk(label, out, cpu_seconds(process.pid) - cpu_then)
                    )
                # The same earn on the limiter-on server while an attacker floods it.
                until = time.monotonic() + args.seconds + 1
                cpu_then, generators_then = cpu_seconds(on.pid), _generators_cpu()
                earn_out, flood_out, bodies = await asyncio.gather(
                    wrk(
                        tmp / "earn.lua",
                        f"http://127.0.0.1:{on_port}",
                        [f"f{round_}", str(tmp / "ids"), till_key],
                        seconds=args.seconds,
                        clients=args.clients,
                    ),
                    wrk(
                        tmp / "aliases.lua",
                        f"http://127.0.0.1:{on_port}/graphql",
                        [attacker_key],
                        seconds=args.seconds,
                        clients=8,
                    ),
                    asyncio.gather(*(big_bodies(on_port, attacker_key, until) for _ in range(2))),
                )
                label = "limiter on, under flood"
                runs.setdefault(label, []).append(parse_wrk(label, earn_out, cpu_seconds(on.pid) - cpu_then))
                flood = parse_wrk("flood", flood_out, 0.0)
                flood_counts.append((flood.requests, sum(bodies)))
                generators.append(_generators_cpu() - generators_then)
                await asyncio.sleep(SETTLE_SECONDS)
                print(
                    f"  round {round_ + 1}: " + ", ".join(f"{k} {v[-1].rate:.0f}/s" for k, v in runs.items())
                )
        report(runs, flood_counts, args.seconds)
        print(
            f"the flood run's load generators (the till's wrk, the attacker's wrk and body pourer) used "
            f"{statistics.median(generators):.1f} s of CPU per {args.seconds:g} s run (median), on the same "
            f"{os.cpu_count()} cores as the server and PostgreSQL"
        )
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def report(runs: dict[str, list[Run]], flood_counts: list[tuple[int, int]], seconds: float) -> None:
    print("\n| earn | req/s | p50 ms | p99 ms | server CPU ms/req | non-2xx |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, found in runs.items():
        print(
            f"| {label} | {statistics.median(r.rate for r in found):.0f} "
            f"| {statistics.median(r.p50_ms for r in found):.1f} "
            f"| {statistics.median(r.p99_ms for r in found):.1f} "
            f"| {statistics.median(r.cpu_ms_per_request for r in found):.3f} "
            f"| {sum(r.non_2xx for r in found)} |"
        )
    on, off = runs["limiter on"], runs["limiter off"]
    cpu_ratios = [a.cpu_ms_per_request / b.cpu_ms_per_request for a, b in zip(on, off, strict=True)]
    rate_ratios = [a.rate / b.rate for a, b in zip(on, off, strict=True)]
    if "before" in runs:
        then = [a.cpu_ms_per_request / b.cpu_ms_per_request for a, b in zip(on, runs["before"], strict=True)]
        print(
            f"\nlimiter on / before, per round: CPU per earn {', '.join(f'{r:.2f}' for r in then)} "
            f"(median {statistics.median(then):.2f})"
        )
    print(
        f"limiter on / off, per round: CPU per earn {', '.join(f'{r:.2f}' for r in cpu_ratios)} "
        f"(median {statistics.median(cpu_ratios):.2f}); req/s {', '.join(f'{r:.2f}' for r in rate_ratios)} "
        f"(median {statistics.median(rate_ratios):.2f})"
    )
    documents = statistics.median(d for d, _ in flood_counts)
    bodies = statistics.median(b for _, b in flood_counts)
    print(
        f"flood per round (median): {documents:.0f} GraphQL documents of 1,000 aliases "
        f"({documents / seconds:.0f}/s) and {bodies:.0f} bodies of 50 MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--before", help="a source tree from before a change, served for comparison")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
