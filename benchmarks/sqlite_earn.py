"""The CPU of a till's earn on SQLite, through the app: this tree against another, interleaved. Each round
runs one process per tree, one after the other (the order turning every round), on the same SQLite file;
each serves the app in-process over httpx's ASGI transport (no uvicorn, no worker), sends warm-up earns,
then `--earns` earns one after another, and says the CPU time of its process (every thread: aiosqlite runs
SQLite in one of its own) and the wall time a request. Prints each round and the medians.

    git archive HEAD~1 | tar -x -C /tmp/before      # a source tree from before a change
    .venv/bin/python benchmarks/sqlite_earn.py --before /tmp/before --members 2000 --earns 2000 --rounds 5
    # instructions an earn, counted by callgrind (the same whatever else the machine does): two counted runs
    # a tree, the difference of `--earns` earns and none, over `--earns`; needs valgrind, takes minutes
    .venv/bin/python benchmarks/sqlite_earn.py --before /tmp/before --earns 150 --instructions

The file is seeded once with this tree (benchmarks/seed.py: a programme, a ladder, a till's key) and grows
by every round's earns, for both trees alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 200
COUNT_WARM_UP = 20  # under valgrind


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(state: dict[str, Any], earns: int, warm_up: int) -> None:
    """In a measured process: the app on the file, `warm_up` earns, then `earns` more, timed."""
    import httpx

    from loyalty_api.app import create_app
    from loyalty_api.ops.collector import tune_for_serving
    from loyalty_api.ops.logging import configure_logging
    from loyalty_api.settings import Settings

    # The cache's entries (key, programme, ladder) outlive the run, as in a served process they outlive
    # thousands of requests (under valgrind a run is some fifty times slower).
    settings = Settings(
        database_url=state["url"],
        encryption_key=state["encryption_key"],
        log_level="INFO",
        cache_seconds=3600,
    )
    configure_logging(settings.log_level)  # as `loyalty-api serve` does: an access line a request
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the driving client's own line per request
    app = create_app(settings, with_worker=False)
    tune_for_serving()
    headers = {"Authorization": f"Bearer {state['key']}"}
    members = [member_id for member_id, _ in state["sample"]]
    rng = random.Random(1)
    run = uuid.uuid4().hex[:8]
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client,
    ):

        async def earn(n: int) -> None:
            body = {
                "order_ref": f"S-{run}-{n}",
                "amount": {"amount": rng.randrange(100, 100_000), "currency": "CNY"},
            }
            reply = await client.post(f"/v1/members/{rng.choice(members)}/earn", json=body, headers=headers)
            assert reply.status_code == 200, reply.text

        for n in range(warm_up):
            await earn(n)
        cpu, wall = _cpu_seconds(), time.perf_counter()
        for n in range(warm_up, warm_up + earns):
            await earn(n)
        cpu, wall = _cpu_seconds() - cpu, time.perf_counter() - wall
    print(json.dumps({"cpu_us": cpu / max(earns, 1) * 1e6, "wall_us": wall / max(earns, 1) * 1e6}))


def _count(source: Path, state_path: Path, earns: int) -> int:
    """The instructions callgrind counted in a driving process serving from `source` (every thread)."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={folder}/callgrind.out",
            *_driving(state_path, earns, COUNT_WARM_UP),
        ]
        env = {**os.environ, "PYTHONPATH": str(source)}
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"the counted run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return int(found.group(1))


def _driving(state_path: Path, earns: int, warm_up: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.sqlite_earn",
        "--drive",
        str(state_path),
        "--earns",
        str(earns),
        "--warm-up",
        str(warm_up),
    ]


def _measure(source: Path, state_path: Path, earns: int) -> dict[str, float]:
    command = _driving(state_path, earns, WARM_UP)
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the measured run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


async def _seed(url: str, members: int) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from benchmarks.seed import seed

    from loyalty_api import crypto
    from loyalty_api.db.engine import create_engine
    from loyalty_api.db.migrations import upgrade
    from loyalty_api.settings import Settings

    key_material = crypto.generate_key()
    engine = create_engine(url)
    await upgrade(engine)
    key, sample = await seed(engine, Settings(database_url=url, encryption_key=key_material), members)
    await engine.dispose()
    return {"url": url, "encryption_key": key_material, "key": key, "sample": sample}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--before", type=Path, help="another source tree (its src/ is served) to compare with"
    )
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--earns", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions an earn with callgrind instead (two counted runs a tree, minutes each)",
    )
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)  # the measured process itself
    parser.add_argument("--warm-up", type=int, default=WARM_UP, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive is not None:
        asyncio.run(drive(json.loads(args.drive.read_text()), args.earns, args.warm_up))
        return
    folder = Path(tempfile.mkdtemp(prefix="loyalty-sqlite-earn-"))
    state_path = folder / "state.json"
    state_path.write_text(
        json.dumps(asyncio.run(_seed(f"sqlite+aiosqlite:///{folder / 'bench.db'}", args.members)))
    )
    trees = {"this tree": ROOT / "src"} | ({} if args.before is None else {"before": args.before / "src"})
    if args.instructions:
        counted = {}
        for name, source in trees.items():
            counts = [_count(source, state_path, n) for n in (args.earns, 0)]
            counted[name] = (counts[0] - counts[1]) / args.earns
            print(f"{name}: {counted[name]:,.0f} instructions an earn")
        if args.before is not None:
            print(f"this tree ÷ before: {counted['this tree'] / counted['before']:.4f}")
        return
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        names = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in names:
            measured = _measure(trees[name], state_path, args.earns)
            figures[name].append(measured)
            cpu, wall = measured["cpu_us"], measured["wall_us"]
            print(f"round {round_ + 1}, {name}: {cpu:.0f} µs CPU, {wall:.0f} µs wall an earn")
    print(f"\n{args.earns} earns a run, {args.rounds} rounds, {args.members} members ({folder})")
    for name, runs in figures.items():
        cpu = statistics.median(run["cpu_us"] for run in runs)
        wall = statistics.median(run["wall_us"] for run in runs)
        print(f"{name}: median {cpu:.0f} µs CPU, {wall:.0f} µs wall an earn")
    if args.before is not None:
        ratios = [
            after["cpu_us"] / before["cpu_us"]
            for after, before in zip(figures["this tree"], figures["before"], strict=True)
        ]
        rounds = ", ".join(f"{ratio:.3f}" for ratio in ratios)
        print(f"this tree ÷ before, CPU: median {statistics.median(ratios):.3f} (rounds {rounds})")


if __name__ == "__main__":
    main()
