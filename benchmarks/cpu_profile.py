"""Where the served API's CPU goes: py-spy samples the real service (`loyalty-api serve`, one uvicorn process,
log level INFO) while wrk drives one scenario, on a database kept by `run.py --keep NAME`. Prints the run's
rate and CPU per request, then each function's share of the samples with what it calls (inclusive), highest
first, so a layer's whole cost reads off one line.

    .venv/bin/pip install -e '.[bench]'                   # py-spy
    apt-get install -y wrk
    .venv/bin/python benchmarks/run.py --database postgres --keep small --members 20000 --seed-only
    .venv/bin/python benchmarks/cpu_profile.py small --scenario quote
    .venv/bin/python benchmarks/cpu_profile.py small --scenario earn --top 80 --raw /tmp/earn.txt

py-spy reads the process from outside at `--rate` samples a second, pausing it to take each sample: the
profiled run is slower than an unprofiled one, so read the shares, not the rate (compare rates with
`run.py`). Shares are of the process's busy samples. The event loop's own frames head the list; work done
inside SQLAlchemy's greenlets (a session's connection, commit or rollback) shows as stacks of its own, not
under the request that started it. The numbers are shares, not times: times them an unprofiled run's CPU per
request for microseconds. `--raw` keeps the folded stacks (one line a stack, its count last) for flame
graphs or other cuts. py-spy must be allowed to attach to the process (root, or ptrace permitted).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import PG_SERVER, cpu_seconds, free_port, kept_state, server, target_lines  # noqa: E402
from benchmarks.wrk import TARGETS_LUA, Run, parse_wrk, wrk  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

SCENARIOS = ("earn", "redeem", "lookup", "quote")
WARM_UP_SECONDS = 3
_LINE = re.compile(r":\d+\)$")  # a frame's line number: a function counts once, wherever in it


def inclusive_shares(folded: str) -> tuple[int, list[tuple[str, float]]]:
    """The number of samples, and each function's share of them (per cent) counting the samples where it is
    anywhere on the stack, once per stack however deep its recursion."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        for frame in {_LINE.sub(")", frame) for frame in stack.split(";")}:
            counts[frame] += samples
    return total, [(frame, 100 * n / total) for frame, n in counts.most_common()] if total else []


async def sample(args: argparse.Namespace, env: dict[str, str], files: dict[str, Path], key: str) -> Run:
    """Serve, warm up, then drive the scenario for `args.seconds` while py-spy samples the server."""
    port = free_port()
    command = [sys.executable, "-m", "loyalty_api.cli", "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    script, targets = files["script"], str(files["targets"])
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    tag = uuid.uuid4().hex[:8]  # in the order references: a kept database has those of earlier runs
    async with server(command, env, port, "/healthz") as process:
        await wrk(script, base, [f"warm{tag}", targets, key], seconds=WARM_UP_SECONDS, clients=args.clients)
        record = ["record", "--rate", str(args.rate), "--format", "raw", "-o", str(files["folded"])]
        duration = ["--pid", str(process.pid), "--duration", str(args.seconds + 1)]
        sampler = subprocess.Popen(
            [py_spy, *record, *duration], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            before = cpu_seconds(process.pid)
            output = await wrk(
                script, base, [f"run{tag}", targets, key], seconds=args.seconds, clients=args.clients
            )
            run = parse_wrk(args.scenario, output, cpu_seconds(process.pid) - before)
            failed = await asyncio.to_thread(sampler.wait)
        finally:
            if sampler.poll() is None:  # the run failed or was cut short: the sampler goes with it
                sampler.terminate()
                sampler.wait()
        if failed != 0:
            sys.exit(f"py-spy failed (exit {failed}): is it allowed to attach to the process?")
    return run


def profile(args: argparse.Namespace) -> None:
    state = kept_state(args.database)
    members = [(str(member), str(number)) for member, number in state["sample"]]
    shoppers = [(str(member), list(codes)) for member, codes in state["shoppers"]]
    lines, _ = target_lines(str(state["key"]), members, shoppers)[args.scenario]
    url = make_url(PG_SERVER).set(database=args.database).render_as_string(hide_password=False)
    env = {
        **os.environ,
        "LOYALTY_DATABASE_URL": url,
        "LOYALTY_ENCRYPTION_KEY": str(state["encryption_key"]),
        "LOYALTY_LOG_LEVEL": "INFO",
    }
    with tempfile.TemporaryDirectory() as folder:
        files = {name: Path(folder, name) for name in ("script", "targets", "folded")}
        files["script"].write_text(TARGETS_LUA)
        files["targets"].write_text("\n".join(lines) + "\n")
        run = asyncio.run(sample(args, env, files, str(state["key"])))
        stacks = files["folded"].read_text()
    if args.raw is not None:
        args.raw.write_text(stacks)
    total, shares = inclusive_shares(stacks)
    print(
        f"{args.scenario}: {run.rate:,.0f} req/s, p50 {run.p50_ms:.0f} ms, p99 {run.p99_ms:.0f} ms, "
        f"{run.cpu_ms_per_request:.2f} ms CPU a request, {run.non_2xx} not 2xx; "
        f"{total:,} samples at {args.rate} Hz"
    )
    for frame, share in shares[: args.top]:
        print(f"{share:5.1f} %  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", help="the kept database's name (run.py --keep NAME)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="earn")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rate", type=int, default=250, help="samples a second")
    parser.add_argument("--top", type=int, default=60, help="how many functions to print")
    parser.add_argument("--raw", type=Path, help="also write the folded stacks here")
    profile(parser.parse_args())


if __name__ == "__main__":
    main()
