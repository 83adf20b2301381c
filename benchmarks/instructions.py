"""Instructions per request: what the API's own process executes for one earn, lookup or quote, counted by
valgrind's callgrind. Unlike CPU time on this shared two-core machine (±15 % run to run), the count is the
same from run to run whatever else the machine is doing, so two source trees compare to within a fraction
of a per cent in one pair of runs.

    .venv/bin/python benchmarks/run.py --database postgres --keep small --members 20000 --seed-only
    git archive HEAD~1 | tar -x -C /tmp/before      # a source tree from before a change
    .venv/bin/python benchmarks/instructions.py small --scenario lookup --before /tmp/before

    # the raw-asyncpg baseline (baseline_app.py) on the same requests, and the request pipeline alone
    .venv/bin/python benchmarks/instructions.py small --scenario earn --baseline
    .venv/bin/python benchmarks/instructions.py small --scenario floor

The app runs in-process, driven over httpx's ASGI transport (no uvicorn: its share is the same for both
trees), on a database kept by `run.py --keep NAME`, with log level INFO. `--baseline` counts
`baseline_app.py` as well, on the same requests, for the ratio of the two without the noise of CPU time.
The `floor` scenario is an earn's request through our whole pipeline (edge, key, rate limit, unit of work,
strict body validation, response model, access log) to an endpoint that does no database work: what a
request costs before the domain does anything.

Each tree is counted twice, after 20 warm-up requests, with `--requests` more requests in the second run
than in the first: the difference over `--requests` is the count per request, start-up and imports
cancelling out. Needs valgrind (Debian: `apt-get install valgrind`); a run takes a few minutes, the
interpreter running some fifty times slower.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 20
SCENARIOS = ("earn", "lookup", "quote", "floor")


def _with_floor(app: Any) -> None:
    """An earn's route that does no database work, matched first (as the earn's route is, in the first
    router): edge, key, unit of work, the body validated strictly and by FastAPI, the response model."""
    from fastapi import APIRouter
    from pydantic import BaseModel

    from loyalty_api.http.dependencies import UoW
    from loyalty_api.http.transaction import UnitOfWorkRoute
    from loyalty_api.points.router import Till
    from loyalty_api.points.schemas import EarnRequest

    class Floor(BaseModel):
        member_id: uuid.UUID
        order_ref: str

    router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute)

    async def floor(member_id: uuid.UUID, body: EarnRequest, uow: UoW, caller: Till) -> Floor:
        return Floor(member_id=member_id, order_ref=body.order_ref)

    # This module's annotations are strings, which FastAPI would look up among its globals.
    floor.__annotations__ = {
        "member_id": uuid.UUID,
        "body": EarnRequest,
        "uow": UoW,
        "caller": Till,
        "return": Floor,
    }
    router.post("/floor/{member_id}")(floor)
    app.include_router(router)
    app.router.routes.insert(0, app.router.routes.pop())


def _app(
    name: str, scenario: str, baseline: bool, pool_size: int | None = None
) -> tuple[Any, dict[str, str], dict[str, str]]:
    """The app to drive, the headers of its requests and its paths."""
    from benchmarks.run import PG_SERVER, kept_state

    state = kept_state(name)
    url = PG_SERVER.rsplit("/", 1)[0] + f"/{name}"
    if baseline:
        os.environ["BASELINE_DSN"] = url.replace("+asyncpg", "")
        from benchmarks.baseline_app import app as baseline_app

        return baseline_app, {}, {"earn": "/earn/{}", "lookup": "/lookup", "quote": "/quote"}
    from loyalty_api.app import create_app
    from loyalty_api.ops.collector import tune_for_serving
    from loyalty_api.ops.logging import configure_logging
    from loyalty_api.settings import Settings

    # The cache's entries (keys, ladder, programme, rules) outlive the count: they expire by the clock, and
    # under valgrind a request takes some fifty times longer, so reloads would come at a rate set by how
    # slow the run was (a few per cent of the count, from run to run), where a served process reloads
    # once every few thousand requests.
    settings = Settings(
        database_url=url,
        encryption_key=str(state["encryption_key"]),
        log_level="INFO",
        cache_seconds=3600,
        **({} if pool_size is None else {"database_pool_size": pool_size}),
    )
    # As `loyalty-api serve` sets up its process: the access log written, and the collector tuned (with
    # Python's defaults, a full collection fell at a different request in each tree, a swing of several per
    # cent in a count of 60 requests).
    configure_logging(settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the driving client's own line per request
    app = create_app(settings, with_worker=False)
    tune_for_serving()
    paths = {"earn": "/v1/members/{}/earn", "lookup": "/v1/members/lookup", "quote": "/v1/checkout/quote"}
    if scenario == "floor":
        _with_floor(app)
        paths["floor"] = "/v1/floor/{}"
    return app, {"Authorization": f"Bearer {state['key']}"}, paths


async def drive(
    name: str,
    scenario: str,
    requests: int,
    *,
    baseline: bool,
    pool_size: int | None = None,
    after: Callable[[Any], Awaitable[None]] | None = None,
) -> None:
    """In the process callgrind counts: the app, WARM_UP requests, then `requests` more; then `after`, given
    the app, while it still runs."""
    import httpx

    sys.path.insert(0, str(ROOT))
    from benchmarks.run import kept_state, quote_body

    state = kept_state(name)
    app, headers, paths = _app(name, scenario, baseline, pool_size)
    members = [tuple(pair) for pair in state["sample"]]
    shoppers = [(member, codes) for member, codes in state["shoppers"]]
    rng = random.Random(1)
    run = uuid.uuid4().hex[:8]
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client,
    ):
        for n in range(WARM_UP + requests):
            if scenario in ("earn", "floor"):
                member_id, _ = rng.choice(members)
                body = {
                    "order_ref": f"I-{run}-{n}",
                    "amount": {"amount": rng.randrange(100, 100_000), "currency": "CNY"},
                }
                reply = await client.post(paths[scenario].format(member_id), json=body, headers=headers)
            elif scenario == "lookup":
                _, number = rng.choice(members)
                reply = await client.get(paths["lookup"], params={"member_number": number}, headers=headers)
            else:
                member_id, codes = rng.choice(shoppers)
                reply = await client.post(paths["quote"], json=quote_body(member_id, codes), headers=headers)
            assert reply.status_code == 200, reply.text
        if after is not None:
            await after(app)


def _count(source: Path, name: str, scenario: str, requests: int, *, baseline: bool = False) -> int:
    """The instructions callgrind counted in a driving process serving from `source`."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={folder}/callgrind.out",
            sys.executable,
            "-m",  # not the file: its folder first on the path would shadow the graphql package
            "benchmarks.instructions",
            name,
            "--scenario",
            scenario,
            "--drive",
            str(requests),
            *(["--baseline"] if baseline else []),
        ]
        env = {**os.environ, "PYTHONPATH": str(source)}
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"the counted run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return int(found.group(1))


def per_request(source: Path, name: str, scenario: str, requests: int, *, baseline: bool = False) -> float:
    counts = [_count(source, name, scenario, n, baseline=baseline) for n in (requests, 0)]
    return (counts[0] - counts[1]) / requests


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", help="the kept database's name (run.py --keep NAME)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="earn")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument(
        "--before", type=Path, help="another source tree (its src/ is served) to compare with"
    )
    parser.add_argument(
        "--baseline", action="store_true", help="count baseline_app.py too (earn, lookup, quote)"
    )
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)  # the counted process itself
    args = parser.parse_args()
    if args.baseline and args.scenario == "floor":
        parser.error("the baseline has no floor")
    if args.drive is not None:
        asyncio.run(drive(args.database, args.scenario, args.drive, baseline=args.baseline))
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks.run import kept_state

    kept_state(args.database)  # before the long runs: a database that is not kept fails at once
    this = per_request(ROOT / "src", args.database, args.scenario, args.requests)
    print(f"{args.scenario}: {this:,.0f} instructions a request ({args.requests} requests, this tree)")
    if args.before is not None:
        before = per_request(args.before / "src", args.database, args.scenario, args.requests)
        print(f"{args.scenario}: {before:,.0f} instructions a request ({args.before})")
        print(f"this tree ÷ before: {this / before:.3f}")
    if args.baseline:
        baseline = per_request(ROOT / "src", args.database, args.scenario, args.requests, baseline=True)
        print(f"{args.scenario}: {baseline:,.0f} instructions a request (baseline_app.py)")
        print(f"baseline ÷ this tree: {baseline / this:.3f}")


if __name__ == "__main__":
    main()
