"""Refunds and a hold's end, in any order, leave the member the same points.

A sweep over the case the refund rule is about (points/refunds.py): an order E earns 500 points that reach
their end while a hold of 200 made the day before spares some of them. PAID may have spent 100 points (E's, or
those of X, which earned first); the hold is captured (whole or in part, on another order or on E itself),
released or left to run out; the member may have 300 points of their own, from before the hold or after its
end. The refunds of E, PAID, X and the hold's order happen while E's points are good, past their end while the
hold spares them, or after the hold's end.

Orderings that the contract says end the same form a group: the refunds made at the same moment in any order,
each whole or in two halves, and a release (or the jobs' run after a hold ran out) anywhere among them. Each
ordering runs on a member of its own, and every group must end with one balance and one available (as a read
shows them) and one shortfall (once the jobs ran: a read before the jobs must show what they leave).

CI runs a sample of each family (`SAMPLE`): about 400 orderings. `LOYALTY_REFUND_SWEEP=all` runs every
ordering of every family instead (some 6,300, a quarter of an hour on SQLite).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.points.accounts import expire_due_points
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.inspect_db import rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, set_program

END = START.replace(year=START.year + 1)  # the programme's 12 months after START: E's points end
EARNED, HELD, PAID, OWN, OTHER = 500, 200, 100, 300, 100
PART = HELD * 2 // 5  # what a part capture takes of the hold
_DAY = timedelta(days=1)
_TO_END = END - START


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # at, earn, redeem, hold, capture, release, refund, jobs
    ref: str = ""
    points: int = 0
    by: str = ""  # a refund's: full, amount (worth `points`) or points
    at: timedelta = timedelta(0)


def _at(offset: timedelta) -> Step:
    return Step("at", at=offset)


def _earn(ref: str, points: int) -> Step:
    return Step("earn", ref, points)


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund the sweep moves around: whole, or in two halves (the first `half`, then the rest)."""

    ref: str
    half: Step | None = None

    def forms(self) -> list[list[Step]]:
        whole = Step("refund", self.ref, by="full")
        return [[whole]] if self.half is None else [[whole], [self.half, whole]]


@dataclass(frozen=True, slots=True)
class Maybe:
    """A step some orderings make and others leave out (the jobs: their work is done before or after the
    refunds, or by the refunds themselves)."""

    step: Step

    def forms(self) -> list[list[Step]]:
        return [[self.step], []]


Movable = Refund | Maybe | Step


@dataclass(frozen=True, slots=True)
class Scenario:
    group: str
    ordering: str
    steps: tuple[Step, ...]


def _label(step: Step) -> str:
    if step.kind == "refund":
        return f"refund:{step.ref}" + ("" if step.by == "full" else "/2")
    return step.kind


def _movable_label(item: Movable) -> str:
    if isinstance(item, Refund):
        return f"refund:{item.ref}"
    return _label(item.step) + "?" if isinstance(item, Maybe) else _label(item)


def _orderings(movable: Sequence[Movable], *, halves: int) -> list[tuple[str, list[Step]]]:
    """Orders of `movable`: every order of them with each refund whole (a maybe made or not), and `halves` of
    those with refunds in two halves, spread evenly (a refund's halves keep their order, anywhere among the
    others)."""
    options = [[[item]] if isinstance(item, Step) else item.forms() for item in movable]
    whole: list[tuple[str, list[Step]]] = []
    parted: list[tuple[str, list[Step]]] = []
    seen: set[tuple[Step, ...]] = set()
    for chosen in itertools.product(*options):
        all_whole = all(
            form is found[0] or isinstance(item, Maybe)
            for form, found, item in zip(chosen, options, movable, strict=True)
        )
        pieces = [(index, step) for index, form in enumerate(chosen) for step in form]
        for order in itertools.permutations(pieces):
            if any(
                a[0] == b[0] and pieces.index(a) > pieces.index(b)
                for i, a in enumerate(order)
                for b in order[i + 1 :]
            ):
                continue
            steps = tuple(step for _, step in order)
            if steps not in seen:
                seen.add(steps)
                (whole if all_whole else parted).append((" ".join(map(_label, steps)), list(steps)))
    return whole + (parted[:: max(len(parted) // halves, 1)][:halves] if halves else [])


Kind = tuple[bool, bool, str]  # PAID spent points, X earned first, the member's own points: none, early, late
KINDS: tuple[Kind, ...] = tuple(
    (paid, other, own)
    for paid, other, own in itertools.product((False, True), (False, True), ("none", "early", "late"))
    if paid or not other
)
PLACES = ("pre", "mid", "post")


@dataclass(frozen=True, slots=True)
class Family:
    """How the hold ends (`capture`, of `captured` points; `release`; `expire`), and on which order."""

    ending: str
    captured: int = HELD
    hold_ref: str = "H"

    def scenarios(
        self, kinds: Sequence[Kind] = KINDS, places: Sequence[str] = PLACES, halves: int = 2
    ) -> Iterator[Scenario]:
        """The groups of these `kinds`, with refunds at these `places` only, and `halves` orderings of each
        moment with refunds in halves."""
        for kind in kinds:
            where = self._where(kind, places)
            for placing in itertools.product(*where.values()):
                chosen = dict(zip(where, placing, strict=True))
                yield from self._group(kind, chosen, halves)

    def _where(self, kind: Kind, places: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Where each order's refund may be: nowhere (-), or at one of the moments."""
        paid, other, _ = kind
        # A refunded order's hold can only be released: E's refund comes after a capture on it.
        where = {"E": ("-", "post") if self.hold_ref == "E" else ("-", *places)}
        if paid:
            where["PAID"] = ("-", *places)
        if other:
            where["X"] = ("-", *(place for place in places if place != "pre"))
        if self.ending == "capture" and self.hold_ref == "H":
            where["H"] = ("-", "post")
        return where

    def _group(self, kind: Kind, chosen: dict[str, str], halves: int) -> Iterator[Scenario]:
        paid, other, own = kind
        prefix = []
        if other:  # X's points end first, so PAID spends them first
            prefix += [_at(-timedelta(hours=1)), _earn("X", OTHER)]
        prefix += [_at(timedelta(0)), _earn("E", EARNED)]
        if paid:
            prefix += [_at(_DAY), Step("redeem", "PAID", PAID)]
        if own == "early":
            prefix += [_at(_TO_END - 30 * _DAY), _earn("O", OWN)]
        prefix += [_at(_TO_END - _DAY), Step("hold", self.hold_ref, HELD)]
        halved = {
            "E": Step("refund", "E", EARNED // 2, by="amount"),
            "H": Step("refund", "H", self.captured // 2, by="points"),
        }
        at: dict[str, list[Movable]] = {
            place: [Refund(ref, halved.get(ref)) for ref, placed in chosen.items() if placed == place]
            for place in PLACES
        }
        late = [_earn("O", OWN)] if own == "late" else []
        if self.ending == "capture":
            after = [Step("capture", points=self.captured % HELD), *late]
        elif self.ending == "release":
            at["mid"].append(Step("release"))
            after = [_at(_TO_END + _DAY + timedelta(hours=1)), *late]
        else:  # the hold runs out two days after END
            at["post"].append(Maybe(Step("jobs")))
            after = [_at(_TO_END + 3 * _DAY), *late]
        moments = [
            ([_at(_TO_END - timedelta(hours=12))], at["pre"]),
            ([_at(_TO_END + _DAY)], at["mid"]),
            (after, at["post"]),
        ]
        group = f"paid={paid} other={other} own={own} | " + " / ".join(
            ",".join(sorted(map(_movable_label, movable))) for _, movable in moments
        )
        per_moment = [_orderings(movable, halves=halves) for _, movable in moments]
        for combination in itertools.product(*per_moment):
            steps = list(prefix)
            for (fixed, _), (_, ordered) in zip(moments, combination, strict=True):
                steps += fixed + ordered
            yield Scenario(group, " / ".join(label for label, _ in combination), tuple(steps))


FAMILIES = {
    "capture": Family("capture"),
    "part capture": Family("capture", captured=PART),
    "capture on E": Family("capture", hold_ref="E"),
    "part capture on E": Family("capture", captured=PART, hold_ref="E"),
    "release": Family("release"),
    "run out": Family("expire"),
}


@dataclass(frozen=True, slots=True)
class Slice:
    kinds: Sequence[Kind]
    places: Sequence[str] = field(default=PLACES)
    halves: int = 0


# What CI runs: in each family, groups that disagreed before the refund rule (the first slice of `capture` is
# the case the rule was made for: its points past their end, captured, then E and the hold's order refunded)
# and groups that never did.
SAMPLE: dict[str, list[Slice]] = {
    "capture": [
        Slice([(False, False, "late")], ("post",), halves=2),
        Slice([(True, True, "late")], ("post",)),
        Slice([(True, False, "none")], ("mid",)),
    ],
    "part capture": [Slice([(True, True, "none")], ("mid",)), Slice([(True, True, "late")], ("post",))],
    "capture on E": [Slice([(True, True, "late")], ("mid", "post"), halves=1)],
    "part capture on E": [Slice([(True, False, "late")], ("mid", "post"), halves=1)],
    "release": [Slice([(True, True, "none")], ("pre", "mid")), Slice([(True, True, "late")], ("mid",))],
    "run out": [Slice([(True, False, "late")], ("mid", "post"))],
}


def scenarios(family: str, *, every: bool) -> list[Scenario]:
    if every:
        return list(FAMILIES[family].scenarios())
    return [
        scenario
        for part in SAMPLE[family]
        for scenario in FAMILIES[family].scenarios(part.kinds, part.places, part.halves)
    ]


async def _run(
    app: FastAPI, client: httpx.AsyncClient, key: str, clock: FrozenClock, number: int, steps: Sequence[Step]
) -> tuple[tuple[int, int, int], bool]:
    """The member's balance and available points as a read shows them at the end, and what their orders owe
    once the jobs have run; and whether the jobs changed what the read showed."""
    clock.set(START)
    member_id = str((await enrol(client, key))["id"])
    hold_id = ""
    for step in steps:
        ref = f"S{number}-{step.ref}"
        if step.kind == "at":
            clock.set(START + step.at)
            continue
        if step.kind == "jobs":  # their work for this member: a run-out hold released, ended points expired
            async with app.state.units.begin() as uow:
                await expire_due_points(uow, uuid.UUID(member_id))
            continue
        if step.kind == "earn":
            body = {"order_ref": ref, "amount": cny(step.points * 100)}
            path = f"/v1/members/{member_id}/earn"
        elif step.kind == "redeem":
            body = {"order_ref": ref, "points": step.points}
            path = f"/v1/members/{member_id}/redeem"
        elif step.kind == "hold":
            body = {"order_ref": ref, "points": step.points, "ttl_seconds": 3 * 24 * 3600}
            path = f"/v1/members/{member_id}/holds"
        elif step.kind == "capture":
            body = {"points": step.points} if step.points else {}
            path = f"/v1/holds/{hold_id}/capture"
        elif step.kind == "release":
            body, path = {}, f"/v1/holds/{hold_id}/release"
        else:
            body = {"amount": cny(step.points * 100)} if step.by == "amount" else {step.by: step.points}
            body = {"full": True} if step.by == "full" else body
            path = f"/v1/orders/{ref}/refund"
        response = await client.post(path, json=body, headers=bearer(key))
        assert response.status_code in (200, 201), (step, response.text)
        hold_id = response.json()["id"] if step.kind == "hold" else hold_id
    await assert_ledger_invariant(app, member_id)
    read = (await client.get(f"/v1/members/{member_id}/points", headers=bearer(key))).json()
    async with app.state.units.begin() as uow:
        await expire_due_points(uow, uuid.UUID(member_id))
    await assert_ledger_invariant(app, member_id)
    after = (await client.get(f"/v1/members/{member_id}/points", headers=bearer(key))).json()
    [owed] = await rows(
        app,
        "SELECT COALESCE(SUM(points_shortfall), 0) AS owed FROM orders WHERE member_id = :m",
        m=uuid.UUID(member_id),
    )
    jobs_changed = (after["balance"], after["available"]) != (read["balance"], read["available"])
    return (read["balance"], read["available"], int(owed["owed"])), jobs_changed


@pytest.mark.parametrize("family", FAMILIES)
async def test_every_group_of_orderings_ends_the_same(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock, family: str
) -> None:
    await set_program(client, admin_key)
    outcomes: dict[str, dict[tuple[int, int, int], list[str]]] = {}
    read_wrong: list[str] = []
    every = os.environ.get("LOYALTY_REFUND_SWEEP") == "all"
    for number, scenario in enumerate(scenarios(family, every=every)):
        outcome, jobs_changed = await _run(app, client, admin_key, clock, number, scenario.steps)
        outcomes.setdefault(scenario.group, {}).setdefault(outcome, []).append(scenario.ordering)
        if jobs_changed:
            read_wrong.append(f"{scenario.group} :: {scenario.ordering}")
    disagreeing = {group: found for group, found in outcomes.items() if len(found) > 1}
    details = "\n".join(
        f"{group}\n" + "\n".join(f"    {outcome}: {orders[:4]}" for outcome, orders in found.items())
        for group, found in disagreeing.items()
    )
    assert not disagreeing and not read_wrong, (
        f"{family}: {len(disagreeing)} of {len(outcomes)} groups disagree (balance, available, shortfall); "
        f"{len(read_wrong)} orderings read other points before the jobs than after\n{details}\n"
        + "\n".join(read_wrong[:10])
    )
