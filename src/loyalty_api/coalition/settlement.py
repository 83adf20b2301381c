"""Settlement statements: what moved between the programme and a partner in a period, each points figure a
sum over the ledger entries marked with the partner, so both sides can check their books against ours; and
the joint-plan perks granted and redeemed, and the joint benefits' recorded uses.

Points are valued at the point value in force when they first moved (the programme records each change of
it): an entry when it was made, a return of points an exchange sent when the exchange's entry was made, a
refund when the purchase it refunds earned, so points that come back are worth what they were worth when they
left, and a statement of a past period stays what it was when the point value changes. A figure's value is
rounded toward zero once, on its exact sum. Known limits: an entry made while a change of the point value
commits (or before the change reaches a process's cache) was made at the old value and is valued at the new
one; and a change is timed by the clock of the host that made it (kept after the change before it), so hosts
whose clocks disagree move that edge by as much."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from loyalty_api.coalition.repository import EntryGroup, SettlementRepository
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.money import Money
from loyalty_api.partners.models import Partner
from loyalty_api.partners.repository import PartnerRepository, PerkRepository
from loyalty_api.partners.service import bound_partner, get_partner
from loyalty_api.program.service import get_program

# A statement reads at most a year and a day of ledger entries.
MAX_PERIOD_DAYS = 366


@dataclass(frozen=True, slots=True)
class SettlementLine:
    points: int
    partner_points: int | None
    value: Money
    entries: int


@dataclass(frozen=True, slots=True)
class Settlement:
    partner: str
    start: datetime
    end: datetime
    currency: str
    earned: SettlementLine
    refunded: SettlementLine
    exchanged_out: SettlementLine
    returned: SettlementLine
    exchanged_in: SettlementLine
    net_points: int
    net_value: Money  # of the net points, rounded toward zero once, as each line's value is
    perks_granted: int
    perks_redeemed: int
    benefit_uses: int

    def lines(self) -> list[tuple[str, SettlementLine]]:
        return [
            ("earned", self.earned),
            ("refunded", self.refunded),
            ("exchanged_out", self.exchanged_out),
            ("returned", self.returned),
            ("exchanged_in", self.exchanged_in),
        ]


def _worth(worth: Decimal, currency: str) -> Money:
    """An exact value in minor units, rounded toward zero."""
    return Money(int(worth.quantize(Decimal(1), rounding=ROUND_DOWN)), currency)


@dataclass(frozen=True, slots=True)
class _Totals:
    points: int  # the signed amounts added up
    partner_points: int | None
    entries: int
    worth: Decimal  # their exact value in minor units, each group's points at its own point value


def _totals(groups: list[EntryGroup], point_value_minor: Decimal) -> dict[str, _Totals]:
    """The groups added up by type; a group moved before the programme recorded any point value is worth
    `point_value_minor`, the programme's."""
    totals: dict[str, _Totals] = {}
    for group in groups:
        value = group.point_value_minor if group.point_value_minor is not None else point_value_minor
        found = totals.get(group.type, _Totals(points=0, partner_points=None, entries=0, worth=Decimal(0)))
        totals[group.type] = _Totals(
            points=found.points + group.points,
            partner_points=(
                found.partner_points
                if group.partner_points is None
                else (found.partner_points or 0) + group.partner_points
            ),
            entries=found.entries + group.entries,
            worth=found.worth + value * group.points,
        )
    return totals


def _line(totals: _Totals | None, currency: str, *, sign: int, exchange: bool) -> SettlementLine:
    """A figure as a positive number of points (`sign` turns spent points round), with their value."""
    return SettlementLine(
        points=0 if totals is None else sign * totals.points,
        partner_points=(0 if totals is None else totals.partner_points or 0) if exchange else None,
        value=_worth(Decimal(0) if totals is None else sign * totals.worth, currency),
        entries=0 if totals is None else totals.entries,
    )


async def _statement(uow: UnitOfWork, partner: Partner, start: datetime, end: datetime) -> Settlement:
    if end <= start:
        raise InvalidField("to", "must be after `from`")
    # The whole span, not its days: `.days` drops the rest, so 366 days and 23 hours passed.
    if end - start > timedelta(days=MAX_PERIOD_DAYS):
        raise InvalidField("to", f"a statement covers at most {MAX_PERIOD_DAYS} days")
    program = await get_program(uow)
    groups = await SettlementRepository(uow.session).entry_groups(partner.id, start, end)
    totals = _totals(groups, program.point_value_minor)
    granted, redeemed = await PerkRepository(uow.session).counts(partner.id, start, end)
    uses = await PartnerRepository(uow.session).count_benefit_uses(partner.id, start, end)
    currency = program.currency
    return Settlement(
        partner=partner.code,
        start=start,
        end=end,
        currency=currency,
        earned=_line(totals.get("earn"), currency, sign=1, exchange=False),
        refunded=_line(totals.get("refund"), currency, sign=-1, exchange=False),
        exchanged_out=_line(totals.get("exchange_out"), currency, sign=-1, exchange=True),
        returned=_line(totals.get("exchange_return"), currency, sign=1, exchange=True),
        exchanged_in=_line(totals.get("exchange_in"), currency, sign=1, exchange=True),
        net_points=sum(line.points for line in totals.values()),
        net_value=_worth(sum((line.worth for line in totals.values()), Decimal(0)), currency),
        perks_granted=granted,
        perks_redeemed=redeemed,
        benefit_uses=uses,
    )


async def settlement(uow: UnitOfWork, partner_code: str, start: datetime, end: datetime) -> Settlement:
    """The statement of a partner, for the operator."""
    return await _statement(uow, await get_partner(uow, partner_code), start, end)


async def own_settlement(
    uow: UnitOfWork, partner_id: uuid.UUID, start: datetime, end: datetime
) -> Settlement:
    """The statement of the partner whose key asks, suspended or not: a suspended partner settles up too."""
    return await _statement(uow, await bound_partner(uow, partner_id), start, end)


def as_csv(statement: Settlement) -> str:
    """The statement as CSV: one row per figure, then the net (points and their value), then the perks and
    the joint benefits' uses (their counts as entries); money in minor units."""
    rows = ["line,points,partner_points,value_minor,currency,entries"]
    for name, line in statement.lines():
        partner_points = "" if line.partner_points is None else str(line.partner_points)
        rows.append(
            f"{name},{line.points},{partner_points},{line.value.amount_minor},{line.value.currency},{line.entries}"
        )
    rows.append(f"net,{statement.net_points},,{statement.net_value.amount_minor},{statement.currency},")
    rows.append(f"perks_granted,,,,,{statement.perks_granted}")
    rows.append(f"perks_redeemed,,,,,{statement.perks_redeemed}")
    rows.append(f"benefit_uses,,,,,{statement.benefit_uses}")
    return "\r\n".join(rows) + "\r\n"
