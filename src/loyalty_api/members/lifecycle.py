"""Lifecycle stages: where a member is in their life with the programme, from the time since their last
purchase (or since they enrolled, before any).

- `new`: enrolled, no purchase yet, and fewer than `at_risk_days` days ago;
- `active`: bought within the last `at_risk_days` days;
- `at_risk`, then `lapsed`, then `churned`: no purchase for `at_risk_days`, `lapsed_days`, `churned_days`.

A purchase makes a member `active` at once. Time moves members on: each member carries the instant their
stage next changes by itself (`due`), and a job looks only at those whose instant has come.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from loyalty_api.program.service import ProgramSettings


class Stage(StrEnum):
    new = "new"
    active = "active"
    at_risk = "at_risk"
    lapsed = "lapsed"
    churned = "churned"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Days without a purchase after which a member is at risk, lapsed, churned (increasing)."""

    at_risk_days: int
    lapsed_days: int
    churned_days: int


def thresholds_of(program: ProgramSettings) -> Thresholds:
    return Thresholds(
        program.lifecycle_at_risk_days, program.lifecycle_lapsed_days, program.lifecycle_churned_days
    )


@dataclass(frozen=True, slots=True)
class Assessment:
    stage: Stage
    due: datetime | None  # when the stage changes next unless the member buys; None: never (churned)
    began: datetime  # when time alone put the member in `stage` (their last purchase, or enrolment)
    # Every stage time alone took the member through up to `stage`, in order, each with when it began.
    path: tuple[tuple[Stage, datetime], ...] = ()


def assess(
    *, enrolled_at: datetime, last_purchase_at: datetime | None, now: datetime, thresholds: Thresholds
) -> Assessment:
    """The member's stage at `now`, and when it changes next by time alone."""
    since = enrolled_at if last_purchase_at is None else last_purchase_at
    steps = (
        (thresholds.at_risk_days, Stage.new if last_purchase_at is None else Stage.active),
        (thresholds.lapsed_days, Stage.at_risk),
        (thresholds.churned_days, Stage.lapsed),
    )
    began = since
    path: list[tuple[Stage, datetime]] = []
    for days, stage in steps:
        path.append((stage, began))
        until = since + timedelta(days=days)
        if now < until:
            return Assessment(stage, until, began, tuple(path))
        began = until
    path.append((Stage.churned, began))
    return Assessment(Stage.churned, None, began, tuple(path))
