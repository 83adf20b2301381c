"""What a change of a tier's rules costs when many members hold the tier. Members keep the end of the window
their review judges, so a grace change writes nothing to them, and a window change that moves their ends makes
a new revision of the tier's window: the PUT writes the tier alone, and the worker's `redate-tier-windows`
job stores the members' ends a batch at a time (tiers/redating.py). On a kept PostgreSQL benchmark database
(run.py --keep NAME):

    .venv/bin/python -m benchmarks.tier_change small --members 20000   # as a module: benchmarks/graphql.py
                                                                   # would hide the graphql package

Puts `--members` members on the ladder's highest tier, judged on a window ending a year on (a direct
UPDATE), then times, in process, the service's replace of that tier: its grace alone changed, then its
window made a rolling one of 365 days (nothing moves: it ends where the year did), then, the ends spread over
the next 365 days as a rolling window's are (untimed), back to the calendar year (every end moves to its 1
January), then the worker's job that stores those ends, each `--rounds` times, each after a VACUUM ANALYZE
of members, and prints the medians. Then, those members put back on the entry tier with no window to be judged
on, as its members are (untimed), the service's replace of the entry tier ranking it first, which leaves them
on a tier that needs a window, and the worker's job that dates them, each `--rounds` times (the ranks put
back between rounds, untimed). Other rules (threshold, name) change nobody's date and are not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import PG_SERVER, kept_state  # noqa: E402

_DATE = "tier_window_end"  # the end of the window a member is judged on
# ... and the revision of the tier's window it was worked out under: the one the tier has.
_REVISION = "tier_window_revision = (SELECT window_revision FROM tiers WHERE id = :tier_id)"
_OFF_THE_TIER = f"""
UPDATE members SET tier_id = :entry_id, {_DATE} = NULL, tier_window_revision = NULL,
    tier_override_until = NULL
WHERE tier_id = :tier_id
"""
_ON_THE_TIER = f"""
UPDATE members SET tier_id = :tier_id, {_DATE} = now() + interval '1 year', {_REVISION},
    tier_override_until = NULL
WHERE id IN (SELECT id FROM members ORDER BY id LIMIT :members)
"""
# As a rolling window's members are: their windows end over the next 365 days.
_SPREAD = f"""
UPDATE members SET {_DATE} = now() + random() * interval '365 days', {_REVISION} WHERE tier_id = :tier_id
"""
# As the entry tier's members are: no window to be judged on.
_UNDATED = f"UPDATE members SET {_DATE} = NULL, tier_window_revision = NULL WHERE tier_id = :tier_id"


async def bench(name: str, members: int, rounds: int) -> None:
    from loyalty_api.cli import _units
    from loyalty_api.settings import Settings

    state = kept_state(name)
    url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    settings = Settings(database_url=url, encryption_key=str(state["encryption_key"]), log_level="WARNING")
    async with _units(settings) as units:
        await _changes(units, members, rounds)


async def _changes(units: Any, members: int, rounds: int) -> None:
    from loyalty_api.tiers import service
    from loyalty_api.tiers.ladder import Window
    from loyalty_api.tiers.redating import redate_window_ends

    async with units.read() as uow:
        ladder = (await service.get_ladder(uow)).tiers
    entry, top = ladder[0], ladder[-1]
    async with units.begin() as uow:
        await uow.session.execute(text(_OFF_THE_TIER), {"tier_id": top.id, "entry_id": entry.id})
        await uow.session.execute(text(_ON_THE_TIER), {"tier_id": top.id, "members": members})
    definition = service.TierDefinition(
        name=top.name,
        rank=top.rank,
        metric=top.metric,
        window=top.window,
        window_days=top.window_days,
        threshold=top.threshold,
        points_multiplier=top.points_multiplier,
        grace_days=top.grace_days,
        benefit_ids=[benefit.id for benefit in top.benefits],
    )
    rolling = replace(definition, window=Window.rolling_days, window_days=365)
    timings: dict[str, list[float]] = {
        "grace": [],
        "to rolling": [],
        "to year": [],
        "re-dating": [],  # the worker
        "entry to top": [],
        "dating": [],  # the worker
    }
    for round_ in range(rounds):
        grace = definition.grace_days + 1 + round_
        for label, changed in (
            ("grace", replace(definition, grace_days=grace)),
            ("to rolling", replace(rolling, grace_days=grace)),
            ("to year", replace(definition, grace_days=grace)),
        ):
            if label == "to year":  # untimed
                async with units.begin() as uow:
                    await uow.session.execute(text(_SPREAD), {"tier_id": top.id})
            await _vacuum(units)
            started = time.perf_counter()
            async with units.begin() as uow:
                await service.replace_tier(uow, top.code, changed)
            timings[label].append(time.perf_counter() - started)
        await _vacuum(units)
        started = time.perf_counter()
        stored = await redate_window_ends(units)
        timings["re-dating"].append(time.perf_counter() - started)
        assert stored == members, f"the worker stored {stored} ends of {members}"
    # The entry tier's own definition, ranked first above the top tier, then back (untimed).
    async with units.read() as uow:
        first = (await service.get_ladder(uow)).tiers[0]
    assert first.id == entry.id
    as_entry = replace(
        definition,
        name=first.name,
        rank=first.rank,
        metric=first.metric,
        window=first.window,
        window_days=first.window_days,
        threshold=first.threshold,
        points_multiplier=first.points_multiplier,
        grace_days=first.grace_days,
        benefit_ids=[benefit.id for benefit in first.benefits],
    )
    dated: list[int] = []
    for _ in range(rounds):
        async with units.begin() as uow:
            await uow.session.execute(text(_OFF_THE_TIER), {"tier_id": top.id, "entry_id": entry.id})
            await uow.session.execute(text(_UNDATED), {"tier_id": entry.id})
        await _vacuum(units)
        started = time.perf_counter()
        async with units.begin() as uow:
            await service.replace_tier(uow, entry.code, replace(as_entry, rank=top.rank + 1))
        timings["entry to top"].append(time.perf_counter() - started)
        await _vacuum(units)
        started = time.perf_counter()
        dated.append(await redate_window_ends(units))
        timings["dating"].append(time.perf_counter() - started)
        async with units.begin() as uow:
            await service.replace_tier(uow, entry.code, as_entry)
    print(f"tier {top.code}, {members:,} members on it, {rounds} rounds (median seconds a change)")
    for label, seconds in timings.items():
        print(f"  {label:12s} {statistics.median(seconds):7.2f}  ({', '.join(f'{s:.2f}' for s in seconds)})")
    print(f"  the worker dated {dated} members after the entry tier was ranked first (the rest: the PUT)")


async def _vacuum(units: Any) -> None:
    """Untimed: the dead rows the rounds' rewrites of every member leave, gone, as autovacuum would have them
    between an operator's changes (with them, a plan's estimates and scans drift from round to round)."""
    async with units.database.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE members"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", help="a database kept by run.py --keep NAME")
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(bench(args.name, args.members, args.rounds))


if __name__ == "__main__":
    main()
