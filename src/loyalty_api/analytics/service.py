"""The figures: points issued, redeemed, expired and adjusted per period (and channel or store), what the
programme owes, breakage and redemption rate, members. Every figure is a sum the database makes; this module
only names them.

How entries count: `issued` is what members earned (`earn`), got from partners (`exchange_in`), for
referrals (`referral`), for activities (`activity`) and by campaigns (`campaign`);
`taken_back` what refunds took back of it; `redeemed` what members spent (`redeem`, `capture`, `reward`,
`exchange_out`); `given_back` what refunds and failed exchanges returned of it (`refund`, `exchange_return`);
`expired`; `adjusted` (signed); `imported`, the balances members brought from the programme's previous system.
A hold moves no points, and a transfer between members moves them from one to another (`transferred`, the
points sent, less what reversals gave back). So `net` = issued − taken_back − redeemed + given_back − expired
+ adjusted + imported, the change in what members hold.

Each entry counts once, as what it did when it was made: points that expired before their order's refund are
`expired` in the period they expired (the refund records them as `already_expired` and takes nothing), points
a refund takes first are `taken_back`. So two orders of the same events can label the same points differently
(a refund before or after the hold that spared them past their end ends), while `net`, and what the programme
owes, agree; a period already reported is never restated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from hashlib import blake2b
from typing import cast, get_args

from loyalty_api.analytics.periods import Period, boundaries
from loyalty_api.analytics.repository import AnalyticsRepository, EntrySums, GroupBy
from loyalty_api.clock import format_instant
from loyalty_api.db.pagination import Page, page_after, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.members.lifecycle import Stage
from loyalty_api.members.models import Segment
from loyalty_api.money import Money, value_of_points
from loyalty_api.points.ledger import EntryType
from loyalty_api.program.service import get_program, point_value_at
from loyalty_api.subscriptions.service import revenue
from loyalty_api.tiers.ladder import TierRef
from loyalty_api.tiers.service import get_ladder

# Which figure each type of ledger entry counts in (a hold or its release moves no points).
_FIGURE: dict[EntryType, str | None] = {
    "earn": "issued",
    "exchange_in": "issued",
    "referral": "issued",
    "activity": "issued",
    "campaign": "issued",
    "redeem": "redeemed",
    "capture": "redeemed",
    "reward": "redeemed",
    "exchange_out": "redeemed",
    "refund": "refund",
    "exchange_return": "given_back",
    "expire": "expired",
    "adjust": "adjusted",
    "transfer_out": None,  # its transfer_in, made at the same instant (transfers.py), counts the points once
    "transfer_in": "transferred",
    "transfer_return": "transfer_return",  # a reversal gives the points back: the transfer is undone
    "import": "imported",
    "hold": None,
    "release": None,
}
assert set(_FIGURE) == set(get_args(EntryType)), "every ledger entry type counts in one figure, or none"


@dataclass(slots=True)
class PointsFigures:
    start: datetime
    end: datetime
    group: str | None = None  # the channel or store, when the report is grouped
    issued: int = 0
    taken_back: int = 0
    redeemed: int = 0
    given_back: int = 0
    expired: int = 0
    adjusted: int = 0
    transferred: int = 0
    imported: int = 0
    net: int = 0

    def add(self, sums: EntrySums) -> None:
        figure = _FIGURE[cast(EntryType, sums.type)]  # a type it does not know is a KeyError, never a loss
        if figure == "issued":
            self.issued += sums.amount
        elif figure == "redeemed":
            self.redeemed -= sums.amount
        elif figure == "refund":
            self.taken_back += sums.taken_back
            self.given_back += sums.given_back
        elif figure == "given_back":
            self.given_back += sums.amount
        elif figure == "expired":
            self.expired -= sums.amount
        elif figure == "adjusted":
            self.adjusted += sums.amount
        elif figure == "transferred":
            self.transferred += sums.amount
        elif figure == "transfer_return":
            self.transferred -= sums.amount
        elif figure == "imported":
            self.imported += sums.amount
        self.net += sums.amount


async def points_report(
    uow: UnitOfWork, start: datetime, end: datetime, *, period: Period | None, group_by: GroupBy | None
) -> list[PointsFigures]:
    """The points figures of each period of [start, end) (each group's, when grouped), oldest first, a
    period's groups in a fixed order of their own (`_order`); a period or group without entries is left out
    of a grouped report and shown as zeros otherwise."""
    await uow.read_one_snapshot()
    zone = (await get_program(uow)).zone
    cuts = boundaries(start, end, period, zone)
    found: dict[tuple[int, str | None], PointsFigures] = {}
    if group_by is None:
        found = {(i, None): PointsFigures(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1)}
    for sums in await AnalyticsRepository(uow.session).list_entry_sums(cuts, group_by):
        key = (sums.period, sums.group)
        figures = found.get(key)
        if figures is None:
            figures = found[key] = PointsFigures(cuts[sums.period], cuts[sums.period + 1], sums.group)
        figures.add(sums)
    return sorted(found.values(), key=_order)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _order(figures: PointsFigures) -> tuple[int, int, int]:
    """Where a row sorts, and the cursor after it: its period, then its group by a hash of the name (a
    cursor must stay short whatever a store is called), entries naming none last."""
    group = figures.group
    digest = 0 if group is None else int.from_bytes(blake2b(group.encode(), digest_size=7).digest(), "big")
    return (figures.start - _EPOCH) // timedelta(microseconds=1), group is None, digest


def report_page(
    report: Sequence[PointsFigures],
    start: datetime,
    end: datetime,
    *,
    period: Period | None,
    group_by: GroupBy | None,
    limit: int,
    cursor: str | None,
) -> Page[PointsFigures]:
    """A page of the report `points_report` made of [start, end) cut by `period` and `group_by`. Its cursors
    carry those (the list's scope): a row's start is a place in that report only, and another window's (or
    cut's) cursor is refused rather than starting a page of this one somewhere in its middle. The window is
    scoped as the instants it is, whatever zone the query wrote them in."""
    made_of = f"{format_instant(start)}/{format_instant(end)}/{period or ''}/{group_by or ''}"
    scope = scope_of("points_report", made_of)
    return page_after(report, limit=limit, cursor=cursor, key=_order, shape=(int, int, int), scope=scope)


def ratio(part: int, whole: int) -> Decimal | None:
    """part ÷ whole to four places (None when whole is zero): a rate, never a float."""
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class TierCount:
    tier: TierRef | None  # None: members on no tier
    members: int


@dataclass(frozen=True, slots=True)
class Overview:
    start: datetime
    end: datetime
    points: PointsFigures
    breakage: Decimal | None  # expired ÷ (issued + imported) in the window
    redemption_rate: Decimal | None  # redeemed ÷ (issued + imported) in the window
    outstanding_points: int  # what members held at `end`
    liability: Money  # what those points were worth at `end`, at the point value in force then
    members: int  # enrolled before `end` and not closed
    new_members: int  # enrolled in the window, closed since or not: a flow, where `members` is a stock
    members_by_tier: list[TierCount] = field(default_factory=list)
    members_by_lifecycle: dict[str, int] = field(default_factory=dict)  # every stage, zeros included
    members_by_segment: dict[str, int] = field(default_factory=dict)  # of `members`; every segment, zeros too
    paying_members: int = 0  # paying now, as churn counts a member paying (past due in grace included)
    monthly_recurring_revenue: Money | None = None
    paying_members_at_start: int = 0  # members with a subscription paying at `start`
    churned_members: int = 0  # of those, members whom no subscription keeps at `end` (repository._kept_at)
    churn: Decimal | None = None  # churned_members ÷ paying_members_at_start


async def overview(uow: UnitOfWork, start: datetime, end: datetime) -> Overview:
    """The programme in one read: the window's points figures and rates, what is owed at its end, members and
    paid membership (tiers and paying members as they stand now; churn over the window)."""
    await uow.read_one_snapshot()
    program = await get_program(uow)
    repo = AnalyticsRepository(uow.session)
    [points] = await points_report(uow, start, end, period=None, group_by=None)
    outstanding = await repo.get_outstanding(end)
    total, by_tier = await repo.list_members_by_tier(end)
    by_stage = await repo.list_members_by_lifecycle(end)
    by_segment = await repo.list_members_by_segment(end)
    joined = await repo.list_members_joined([start, end])
    ladder = await get_ladder(uow)
    tiers = [TierCount(tier.ref, by_tier.pop(tier.id, 0)) for tier in reversed(ladder.tiers)]
    if by_tier:  # members on no tier, or on one the ladder no longer has
        tiers.append(TierCount(None, sum(by_tier.values())))
    paid = await revenue(uow)
    paying_at_start = await repo.count_paying_members(start)
    churned = await repo.count_churned_members(start, end)
    return Overview(
        start=start,
        end=end,
        points=points,
        # Imported points are owed as issued ones are: they expire and are spent like them.
        breakage=ratio(points.expired, points.issued + points.imported),
        redemption_rate=ratio(points.redeemed, points.issued + points.imported),
        outstanding_points=outstanding,
        liability=value_of_points(outstanding, await point_value_at(uow, end), program.currency),
        members=total,
        new_members=joined.get(0, 0),
        members_by_tier=tiers,
        members_by_lifecycle={stage: by_stage.get(stage, 0) for stage in Stage},
        members_by_segment={segment: by_segment.get(segment, 0) for segment in Segment},
        paying_members=await repo.count_paying_members_now(),
        monthly_recurring_revenue=paid.monthly_recurring_revenue,
        paying_members_at_start=paying_at_start,
        churned_members=churned,
        churn=ratio(churned, paying_at_start),
    )


def report_csv(report: Sequence[PointsFigures], *, grouped_by: GroupBy | None) -> str:
    """The report as CSV, one row per period (and group); the columns added later (`transferred`,
    `imported`) come last, so that a spreadsheet reading the columns by position finds the others where they
    were."""
    head = ["start", "end", *([grouped_by] if grouped_by else []), "issued", "taken_back", "redeemed"]
    head += ["given_back", "expired", "adjusted", "net", "transferred", "imported"]
    rows = [",".join(head)]
    for f in report:
        cells = [format_instant(f.start), format_instant(f.end), *([_cell(f.group)] if grouped_by else [])]
        cells += [str(n) for n in (f.issued, f.taken_back, f.redeemed, f.given_back, f.expired)]
        cells += [str(f.adjusted), str(f.net), str(f.transferred), str(f.imported)]
        rows.append(",".join(cells))
    return "\r\n".join(rows) + "\r\n"


def overview_csv(found: Overview) -> str:
    """The overview as CSV: one row per figure; money in minor units, rates to four places."""
    figures: list[tuple[str, object]] = [
        ("start", format_instant(found.start)),
        ("end", format_instant(found.end)),
    ]
    points = found.points
    figures += [
        ("issued", points.issued),
        ("taken_back", points.taken_back),
        ("redeemed", points.redeemed),
        ("given_back", points.given_back),
        ("expired", points.expired),
        ("adjusted", points.adjusted),
        ("net", points.net),
        ("transferred", points.transferred),
        ("imported", points.imported),
        ("breakage", found.breakage),
        ("redemption_rate", found.redemption_rate),
        ("outstanding_points", found.outstanding_points),
        ("liability_minor", found.liability.amount_minor),
        ("currency", found.liability.currency),
        ("members", found.members),
        ("new_members", found.new_members),
    ]
    figures += [(_tier_figure(t.tier), t.members) for t in found.members_by_tier]
    figures += [(f"members_{stage}", n) for stage, n in found.members_by_lifecycle.items()]
    figures += [(f"members_segment_{segment}", n) for segment, n in found.members_by_segment.items()]
    figures.append(("paying_members", found.paying_members))
    if found.monthly_recurring_revenue is not None:
        figures.append(("monthly_recurring_revenue_minor", found.monthly_recurring_revenue.amount_minor))
    figures += [
        ("paying_members_at_start", found.paying_members_at_start),
        ("churned_members", found.churned_members),
        ("churn", found.churn),
    ]
    rows = ["figure,value"] + [f"{_cell(name)},{_value(value)}" for name, value in figures]
    return "\r\n".join(rows) + "\r\n"


def _value(value: object) -> str:
    """A figure's cell: numbers as they are (a negative one is no formula), text made safe."""
    if value is None:
        return ""
    if isinstance(value, int | Decimal):
        return str(value)
    return _cell(str(value))


def _tier_figure(tier: TierRef | None) -> str:
    # Members on no tier get a name no tier's row can take: a tier may be coded `none`.
    return "members_without_tier" if tier is None else f"members_tier_{tier.code}"


def _cell(text: str | None) -> str:
    """A CSV cell: quoted when it holds a comma, a quote or a line break; a leading =, +, -, @, tab or
    carriage return (OWASP's list) is escaped, so a spreadsheet does not run a store id as a formula."""
    if text is None:
        return ""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    if any(c in text for c in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text
