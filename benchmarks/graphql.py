"""GraphQL against REST for the same data (issue #16): a member's page and a checkout quote in one document
against the seven REST calls that give the same, and `_entities` with 50 members.

    .venv/bin/python benchmarks/graphql.py                                   # PostgreSQL, 20,000 members
    .venv/bin/python benchmarks/graphql.py --members 5000 --seconds 8 --rounds 3

One database (seeded with `seed.py`: a two-tier ladder, members, `--shoppers` of them with two coupons each)
and one `loyalty-api serve` process. `wrk` drives each scenario in turn, the order turning every round; the
server's CPU time per logical operation is read from /proc. Scenarios:

- graphql-member-quote: one POST /graphql per logical operation: `loyaltyMember(id)` of a random shopper
  (tier, tier progress, points account, benefits, ten coupons, subscriptions) and `loyaltyCheckoutQuote` for
  that member (their two coupons, the 10-item cart of `run.py`'s quote, 5,000 points, online);
- rest-member-quote: the same data from REST, seven requests per logical operation: GET /v1/members/{id},
  its /tier, /points, /benefits, /coupons?limit=10, /subscriptions, and POST /v1/checkout/quote;
- graphql-entities-50: one POST /graphql of `_entities` with 50 random Member representations.

Before measuring, each scenario is checked once (status 200, no GraphQL `errors`, the quote's total present);
a failure aborts the run. With `--statements` (the default when PostgreSQL's log is readable), a second,
short-lived server on the same database first runs each logical operation 30 times one after another with
`log_statement = all` set on that database only, and the statements it made are counted from PostgreSQL's
log (lines prefixed with this database's name).

Needs `wrk` (Debian: `apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import PG_SERVER, QUOTE_CART, cpu_seconds, free_port, quote_body, server  # noqa: E402
from benchmarks.seed import seed, seed_shoppers  # noqa: E402
from benchmarks.wrk import parse_wrk, wrk  # noqa: E402

from loyalty_api import crypto  # noqa: E402
from loyalty_api.auth import service as auth_service  # noqa: E402
from loyalty_api.auth.principal import Scope  # noqa: E402
from loyalty_api.clock import SystemClock  # noqa: E402
from loyalty_api.db.engine import Database, create_engine  # noqa: E402
from loyalty_api.db.migrations import upgrade  # noqa: E402
from loyalty_api.db.uow import UnitsOfWork  # noqa: E402
from loyalty_api.settings import Settings  # noqa: E402

GRAPHQL_MEMBER_QUOTE = "graphql-member-quote"
REST_MEMBER_QUOTE = "rest-member-quote"
GRAPHQL_ENTITIES = "graphql-entities-50"
ENTITIES = 50
PG_LOG = "/var/log/postgresql/postgresql-15-main.log"

MEMBER_QUOTE_DOCUMENT = """
query MemberAndQuote($id: ID!, $input: CheckoutQuoteInput!) {
  loyaltyMember(id: $id) {
    id
    tier { code name rank }
    tierStatus { next { remaining } }
    pointsAccount {
      balance held available
      availableValue { amount currency }
      expiring { month points }
    }
    benefits { name kind }
    coupons(first: 10) { edges { node { code } } }
    subscriptions { plan state }
  }
  loyaltyCheckoutQuote(input: $input) {
    discounts { source sourceRef kind amount { amount } appliesTo }
    couponsApplied
    couponsRejected { code reason }
    goodsTotal { amount }
    shippingTotal { amount }
    points { applied appliedValue { amount } cappedBy }
    total { amount currency }
  }
}
"""

ENTITIES_DOCUMENT = """
query Members($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on Member { id memberNumber tier { code } points benefits { name } subscriptions { plan } }
  }
}
"""

# The REST calls of one logical operation, in order; the quote is the last.
REST_PATHS = [
    "/v1/members/{id}",
    "/v1/members/{id}/tier",
    "/v1/members/{id}/points",
    "/v1/members/{id}/benefits",
    "/v1/members/{id}/coupons?limit=10",
    "/v1/members/{id}/subscriptions",
]
REST_QUOTE_PATH = "/v1/checkout/quote"
REST_PER_OPERATION = len(REST_PATHS) + 1

# One request per logical operation: a random line of a file of prepared POST bodies.
BODIES_LUA = r"""
local made = 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
end
function init(args)
  bodies = {}
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  math.randomseed(tid * 7919 + os.time())
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  return wrk.format("POST", "/graphql", nil, bodies[math.random(#bodies)])
end
"""

# Seven requests per logical operation: a step counter walks the GETs of a random shopper, then their quote.
# With one wrk thread the counter is shared by its connections, so one operation's requests run on several
# connections at once; the mix of requests is the same.
REST_LUA = r"""
local made = 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
end
function init(args)
  shoppers = {}
  for line in io.lines(args[1]) do
    local id, body = line:match("^(%S+)\t(.*)$")
    shoppers[#shoppers + 1] = {id = id, body = body}
  end
  paths = {}
  for path in args[3]:gmatch("[^,]+") do paths[#paths + 1] = path end
  math.randomseed(tid * 7919 + os.time())
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
  step = 0
  shopper = nil
end
function request()
  if step == 0 then shopper = shoppers[math.random(#shoppers)] end
  step = step + 1
  if step <= #paths then
    return wrk.format("GET", (paths[step]:gsub("{id}", shopper.id)), nil, nil)
  end
  step = 0
  return wrk.format("POST", "/v1/checkout/quote", nil, shopper.body)
end
"""


@dataclass
class Measured:
    """One wrk run of a scenario, per logical operation."""

    requests: int
    operations: float
    seconds: float
    non_2xx: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_operation: float

    @property
    def rate(self) -> float:
        return self.operations / self.seconds

    @property
    def request_rate(self) -> float:
        return self.requests / self.seconds


def quote_input(member_id: str, codes: list[str]) -> dict[str, Any]:
    """`run.py`'s quote body in GraphQL's names."""
    cart = {
        "subtotal": QUOTE_CART["subtotal"],
        "shipping": QUOTE_CART["shipping"],
        "items": [
            {
                "sku": item["sku"],
                "category": item["category"],
                "quantity": item["quantity"],
                "unitPrice": item["unit_price"],
            }
            for item in QUOTE_CART["items"]
        ],
    }
    return {
        "memberId": member_id,
        "cart": cart,
        "couponCodes": codes,
        "pointsToUse": 5_000,
        "channel": "online",
    }


def member_quote_body(member_id: str, codes: list[str]) -> dict[str, Any]:
    return {
        "query": MEMBER_QUOTE_DOCUMENT,
        "variables": {"id": member_id, "input": quote_input(member_id, codes)},
    }


def entities_body(member_ids: list[str]) -> dict[str, Any]:
    return {
        "query": ENTITIES_DOCUMENT,
        "variables": {"representations": [{"__typename": "Member", "id": i} for i in member_ids]},
    }


def write_inputs(
    tmp: Path, member_ids: list[str], shoppers: list[tuple[str, list[str]]], rng: random.Random
) -> dict[str, Path]:
    """The files the Lua scripts read: one prepared body (or shopper) a line."""
    files = {
        GRAPHQL_MEMBER_QUOTE: tmp / "member-quote.jsonl",
        REST_MEMBER_QUOTE: tmp / "rest-shoppers.tsv",
        GRAPHQL_ENTITIES: tmp / "entities.jsonl",
    }
    files[GRAPHQL_MEMBER_QUOTE].write_text(
        "".join(json.dumps(member_quote_body(m, codes)) + "\n" for m, codes in shoppers)
    )
    files[REST_MEMBER_QUOTE].write_text(
        "".join(f"{m}\t{json.dumps(quote_body(m, codes))}\n" for m, codes in shoppers)
    )
    files[GRAPHQL_ENTITIES].write_text(
        "".join(json.dumps(entities_body(rng.sample(member_ids, ENTITIES))) + "\n" for _ in range(500))
    )
    (tmp / "bodies.lua").write_text(BODIES_LUA)
    (tmp / "rest.lua").write_text(REST_LUA)
    return files


class Invalid(Exception):
    pass


def _graphql_data(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise Invalid(f"status {response.status_code}: {response.text[:500]}")
    answer = response.json()
    if answer.get("errors"):
        raise Invalid(f"errors: {json.dumps(answer['errors'])[:1000]}")
    return dict(answer["data"])


async def member_quote_graphql(client: httpx.AsyncClient, shopper: tuple[str, list[str]]) -> None:
    member_id, codes = shopper
    data = _graphql_data(await client.post("/graphql", json=member_quote_body(member_id, codes)))
    member, quote = data["loyaltyMember"], data["loyaltyCheckoutQuote"]
    if member is None or member["id"] != member_id:
        raise Invalid(f"loyaltyMember answered {member!r}")
    if quote["total"]["amount"] is None or sorted(quote["couponsApplied"]) != sorted(codes):
        raise Invalid(f"the quote answered {quote!r}")


async def member_quote_rest(client: httpx.AsyncClient, shopper: tuple[str, list[str]]) -> None:
    member_id, codes = shopper
    for path in REST_PATHS:
        response = await client.get(path.replace("{id}", member_id))
        if response.status_code != 200:
            raise Invalid(f"GET {path}: status {response.status_code}: {response.text[:500]}")
    response = await client.post(REST_QUOTE_PATH, json=quote_body(member_id, codes))
    if response.status_code != 200:
        raise Invalid(f"POST {REST_QUOTE_PATH}: status {response.status_code}: {response.text[:500]}")
    quote = response.json()
    if quote.get("total", {}).get("amount") is None or sorted(quote["coupons_applied"]) != sorted(codes):
        raise Invalid(f"the quote answered {quote!r}")


async def entities(client: httpx.AsyncClient, member_ids: list[str]) -> None:
    data = _graphql_data(await client.post("/graphql", json=entities_body(member_ids)))
    found = [e["id"] if e else None for e in data["_entities"]]
    if found != member_ids:
        raise Invalid(f"_entities answered {len(found)} members, {found.count(None)} of them null")


async def check(base: str, key: str, shoppers: list[tuple[str, list[str]]], member_ids: list[str]) -> None:
    """Each scenario once; SystemExit with what was wrong if an answer is not what it should be."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for label, run in [
            (GRAPHQL_MEMBER_QUOTE, lambda: member_quote_graphql(client, shoppers[0])),
            (REST_MEMBER_QUOTE, lambda: member_quote_rest(client, shoppers[0])),
            (GRAPHQL_ENTITIES, lambda: entities(client, member_ids[:ENTITIES])),
        ]:
            try:
                await run()
            except Invalid as exc:
                raise SystemExit(f"{label}: a wrong answer, nothing measured: {exc}") from None


async def count_statements(
    admin: AsyncEngine,
    database: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    key: str,
    shoppers: list[tuple[str, list[str]]],
    member_ids: list[str],
    log: str,
) -> dict[str, float]:
    """Statements PostgreSQL ran per logical operation, each run 30 times one after another (after 5 to warm
    the server's caches), counted from its log with `log_statement = all` on this database only."""
    async with admin.connect() as connection:
        await connection.execute(text(f"ALTER DATABASE \"{database}\" SET log_statement = 'all'"))
    per_operation: dict[str, float] = {}
    rng = random.Random(3)
    mine = re.compile(rf"@{re.escape(database)} LOG:  (statement|execute)")
    try:
        async with server(command, env, port, "/healthz"):
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
            ) as client:
                scenarios = {
                    GRAPHQL_MEMBER_QUOTE: lambda: member_quote_graphql(client, rng.choice(shoppers)),
                    REST_MEMBER_QUOTE: lambda: member_quote_rest(client, rng.choice(shoppers)),
                    GRAPHQL_ENTITIES: lambda: entities(client, rng.sample(member_ids, ENTITIES)),
                }
                for label, make in scenarios.items():
                    for _ in range(5):
                        await make()
                    start = await _log_size(admin, log)
                    for _ in range(30):
                        await make()
                    await asyncio.sleep(0.5)  # for the log to be written
                    logged = await _log_since(admin, log, start)
                    per_operation[label] = len(mine.findall(logged)) / 30
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'ALTER DATABASE "{database}" RESET log_statement'))
    return per_operation


async def _log_size(admin: AsyncEngine, log: str) -> int:
    async with admin.connect() as connection:
        return int((await connection.execute(text("SELECT size FROM pg_stat_file(:p)"), {"p": log})).scalar())


async def _log_since(admin: AsyncEngine, log: str, start: int) -> str:
    size = await _log_size(admin, log)
    async with admin.connect() as connection:
        found = await connection.execute(
            text("SELECT pg_read_file(:p, :o, :n)"), {"p": log, "o": start, "n": size - start}
        )
        return str(found.scalar())


async def log_readable(admin: AsyncEngine, log: str) -> bool:
    try:
        await _log_size(admin, log)
    except Exception:  # not superuser, no such file: the counts are skipped
        return False
    return True


async def prepare(
    url: str, members: int, shoppers: int
) -> tuple[str, str, list[str], list[tuple[str, list[str]]]]:
    key_material = crypto.generate_key()
    settings = Settings(database_url=url, encryption_key=key_material)
    engine = create_engine(url)
    await upgrade(engine)
    _, pairs = await seed(engine, settings, members)
    bought = await seed_shoppers(engine, settings, pairs, min(shoppers, members))
    await engine.dispose()
    database = Database(create_engine(url))
    units = UnitsOfWork(database, SystemClock(), crypto.Vault(key_material), settings)
    async with units.begin() as uow:
        # A till's and a shop's scopes, and a rate of its own far above what the machine serves.
        key = await auth_service.create_key(
            uow, name="graphql-bench", scopes=[Scope.pos, Scope.ecommerce], rate_limit="1000000/second"
        )
    await database.dispose()
    return key_material, key.token, [member_id for member_id, _ in pairs], bought


async def bench(args: argparse.Namespace) -> None:
    name = f"loyalty_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp(prefix="loyalty-graphql-"))
    try:
        key_material, key, member_ids, shoppers = await prepare(url, args.members, args.shoppers)
        files = write_inputs(tmp, member_ids, shoppers, random.Random(5))
        env = {
            **os.environ,
            "LOYALTY_DATABASE_URL": url,
            "LOYALTY_ENCRYPTION_KEY": key_material,
            "LOYALTY_GRAPHQL_MAX_COST": str(args.max_cost),
        }
        port = free_port()
        command = [sys.executable, "-m", "loyalty_api.cli", "serve", "--port", str(port)]
        statements: dict[str, float] = {}
        if args.statements and await log_readable(admin, args.pg_log):
            statements = await count_statements(
                admin, name, command, env, port, key, shoppers, member_ids, args.pg_log
            )
        elif args.statements:
            print(f"(statements per operation not counted: cannot read {args.pg_log} through PostgreSQL)")
        print(
            f"\n== PostgreSQL, {args.members:,} members ({len(shoppers)} shoppers with two coupons); "
            f"{args.clients} clients, {args.seconds:g} s per run, {args.rounds} interleaved rounds"
        )
        runs: dict[str, list[Measured]] = {}
        async with server(command, env, port, "/healthz") as process:
            await check(f"http://127.0.0.1:{port}", key, shoppers, member_ids)
            scenarios = [
                (GRAPHQL_MEMBER_QUOTE, "bodies.lua", [str(files[GRAPHQL_MEMBER_QUOTE]), key], 1),
                (
                    REST_MEMBER_QUOTE,
                    "rest.lua",
                    [str(files[REST_MEMBER_QUOTE]), key, ",".join(REST_PATHS)],
                    REST_PER_OPERATION,
                ),
                (GRAPHQL_ENTITIES, "bodies.lua", [str(files[GRAPHQL_ENTITIES]), key], 1),
            ]
            for round_ in range(args.rounds):
                turn = round_ % len(scenarios)
                for label, script, script_args, per_operation in scenarios[turn:] + scenarios[:turn]:
                    cpu_then = cpu_seconds(process.pid)
                    out = await wrk(
                        tmp / script,
                        f"http://127.0.0.1:{port}",
                        script_args,
                        seconds=args.seconds,
                        clients=args.clients,
                    )
                    cpu = cpu_seconds(process.pid) - cpu_then
                    run = parse_wrk(label, out, cpu)
                    operations = run.requests / per_operation
                    runs.setdefault(label, []).append(
                        Measured(
                            requests=run.requests,
                            operations=operations,
                            seconds=run.seconds,
                            non_2xx=run.non_2xx,
                            p50_ms=run.p50_ms,
                            p99_ms=run.p99_ms,
                            cpu_ms_per_operation=cpu / operations * 1000 if operations else float("nan"),
                        )
                    )
                print(
                    f"  round {round_ + 1}: "
                    + ", ".join(f"{k} {v[-1].rate:.0f} ops/s" for k, v in runs.items())
                )
        report(runs, statements)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def report(runs: dict[str, list[Measured]], statements: dict[str, float]) -> None:
    print(
        "\n| scenario | logical ops/s | req/s | p50 ms (per request) | p99 ms (per request) "
        "| server CPU ms/op | statements/op | non-2xx |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, found in runs.items():
        counted = f"{statements[label]:.1f}" if label in statements else "-"
        print(
            f"| {label} | {statistics.median(r.rate for r in found):.0f} "
            f"| {statistics.median(r.request_rate for r in found):.0f} "
            f"| {statistics.median(r.p50_ms for r in found):.1f} "
            f"| {statistics.median(r.p99_ms for r in found):.1f} "
            f"| {statistics.median(r.cpu_ms_per_operation for r in found):.2f} "
            f"| {counted} | {sum(r.non_2xx for r in found)} |"
        )
    graphql, rest = runs[GRAPHQL_MEMBER_QUOTE], runs[REST_MEMBER_QUOTE]
    rates = [g.rate / r.rate for g, r in zip(graphql, rest, strict=True)]
    cpus = [g.cpu_ms_per_operation / r.cpu_ms_per_operation for g, r in zip(graphql, rest, strict=True)]
    print(
        f"\nmember + quote, GraphQL / REST per round: ops/s {', '.join(f'{r:.2f}' for r in rates)} "
        f"(median {statistics.median(rates):.2f}); CPU per op {', '.join(f'{r:.2f}' for r in cpus)} "
        f"(median {statistics.median(cpus):.2f})"
    )
    per_member = statistics.median(r.cpu_ms_per_operation for r in runs[GRAPHQL_ENTITIES]) / ENTITIES
    print(f"_entities: {per_member:.3f} ms of server CPU per member ({ENTITIES} a request)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--shoppers", type=int, default=200, help="members with two coupons each")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--max-cost",
        type=int,
        default=10_000,
        help="LOYALTY_GRAPHQL_MAX_COST for the server (the default's; the documents here cost less)",
    )
    parser.add_argument("--statements", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pg-log", default=PG_LOG, help="PostgreSQL's log file, read with pg_read_file")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
