"""Points exchanged with a partner's programme, through the ledger.

Out: a member sends points to their account at the partner. They are spent here at once, and the exchange
waits for the partner to confirm it (it credited its customer) or fail it; a failure, or no answer within the
partner's time limit, gives the points back. In: the partner's customer sends the partner's points to us, and
the member is credited once per transfer (`partner_ref`).

Every exchange of a partner runs behind a lock on its row, so the daily limits are checked against sums that
stay true until the exchange is written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from loyalty_api.db.ids import new_id
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.members.errors import MemberNotActive
from loyalty_api.members.service import emit_unless_erased, require_member
from loyalty_api.money import Money, value_of_points
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.partners.errors import (
    ExchangeAlreadyRecorded,
    ExchangeLimitExceeded,
    ExchangeNotFound,
    ExchangeNotOffered,
    ExchangeNotPending,
    LinkNotFound,
    PartnerNotActive,
)
from loyalty_api.partners.events import ExchangeReceived, ExchangeRequested, ExchangeResolved
from loyalty_api.partners.models import Partner, PartnerExchange, PartnerLink
from loyalty_api.partners.repository import ExchangeRepository, PartnerRepository
from loyalty_api.partners.service import bound_partner, get_partner, locked_partner_link
from loyalty_api.points.accounts import (
    check_return_window,
    credit_points,
    debit_available,
    give_back_sent,
    lock_earner,
    lots_payload,
    record_entry,
    spend_lots,
)
from loyalty_api.points.repository import PointsAccountRepository
from loyalty_api.points.service import MAX_POINTS_PER_EARN
from loyalty_api.program.service import ProgramSettings, get_program

Direction = Literal["out", "in"]
# How many timed-out exchanges the job gives back per transaction.
EXPIRY_BATCH = 100


@dataclass(frozen=True, slots=True)
class ExchangeView:
    id: uuid.UUID
    partner: str
    partner_customer_ref: str
    direction: str
    status: str
    points: int
    partner_points: int
    rate: Decimal
    value: Money
    partner_ref: str | None
    expires_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None


def _past_its_time(row: PartnerExchange, now: datetime) -> bool:
    return row.status == "pending" and row.expires_at is not None and row.expires_at <= now


def exchange_status(row: PartnerExchange, now: datetime) -> str:
    """Where the exchange stands: a pending one past its time is expired (a confirmation is refused), although
    its row says pending until the time-out job gives the points back."""
    return "expired" if _past_its_time(row, now) else row.status


def exchange_resolved_at(row: PartnerExchange, now: datetime) -> datetime | None:
    """When the exchange ended (None: it has not): one past its time ended then, whether or not the time-out
    job has given the points back yet."""
    return row.expires_at if _past_its_time(row, now) else row.resolved_at


def _view(row: PartnerExchange, partner_code: str, now: datetime) -> ExchangeView:
    return ExchangeView(
        id=row.id,
        partner=partner_code,
        partner_customer_ref=row.partner_customer_ref,
        direction=row.direction,
        status=exchange_status(row, now),
        points=row.points,
        partner_points=row.partner_points,
        rate=row.rate,
        value=Money(row.value_minor, row.currency),
        partner_ref=row.partner_ref,
        expires_at=row.expires_at,
        created_at=row.created_at,
        resolved_at=exchange_resolved_at(row, now),
    )


def _exchange_row(
    exchange_id: uuid.UUID,
    partner: Partner,
    program: ProgramSettings,
    link: PartnerLink,
    *,
    direction: Direction,
    status: str,
    points: int,
    partner_points: int,
    rate: Decimal,
    partner_ref: str | None,
    entry_id: uuid.UUID,
    expires_at: datetime | None,
    now: datetime,
) -> PartnerExchange:
    """An exchange with the member of `link`, as it stands when made (an exchange in is done at once)."""
    return PartnerExchange(
        id=exchange_id,
        partner_id=partner.id,
        member_id=link.member_id,
        partner_customer_ref=link.partner_customer_ref,
        direction=direction,
        status=status,
        points=points,
        partner_points=partner_points,
        rate=rate,
        value_minor=value_of_points(points, program.point_value_minor, program.currency).amount_minor,
        currency=program.currency,
        partner_ref=partner_ref,
        entry_id=entry_id,
        return_entry_id=None,
        expires_at=expires_at,
        created_at=now,
        resolved_at=None if status == "pending" else now,
    )


def _converted(amount: int, rate: Decimal) -> int:
    """Points of the other programme, rounded down: neither side ever credits more than the rate says."""
    return int((rate * amount).quantize(Decimal(1), rounding=ROUND_DOWN))


async def _locked_partner(uow: UnitOfWork, partner_id: uuid.UUID) -> Partner:
    """The active partner, its row locked until commit and read behind the lock (take the member's first).
    An operator's change of its terms or status holds the row until it commits: read before the wait, an
    exchange that waited for it would go on with the rate, limits and status the change had just replaced
    (a suspended partner's exchange, past its new daily limit). PostgreSQL; SQLite's writers take turns."""
    partner = await ExchangeRepository(uow.session).lock_partner(partner_id)
    if partner.status != "active":
        raise PartnerNotActive()
    return partner


async def _check_limits(
    uow: UnitOfWork,
    program: ProgramSettings,
    partner: Partner,
    member_id: uuid.UUID,
    direction: Direction,
    points: int,
) -> None:
    """Refuse an exchange that takes the day's points past the partner's limits. Call behind lock_partner."""
    now = uow.clock.now()
    since = program.day_start(now)
    repo = ExchangeRepository(uow.session)
    limits = (
        (partner.daily_exchange_limit, None, "partner"),
        (partner.member_daily_exchange_limit, member_id, "member"),
    )
    for limit, member, per in limits:
        if limit is None:
            continue
        used = await repo.exchanged_since(partner.id, direction, since, now, member_id=member)
        if used + points > limit:
            raise ExchangeLimitExceeded(
                f"Today {used} of the {limit} points a {'member' if member else 'day'} may exchange "
                f"{'to' if direction == 'out' else 'from'} this partner are used",
                limit=limit,
                used=used,
                requested=points,
                per=per,
            )


async def exchange_out(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    *,
    partner_code: str,
    points: int,
    actor: uuid.UUID | None = None,
) -> ExchangeView:
    """Send the member's points to their account at the partner: spent now, pending until it answers."""
    # The member (and their account) locked first, then the partner, as every exchange and a paid period's
    # partner perks take them: a close or an erasure under way is waited for, and no two of these deadlock.
    sender = await lock_earner(uow, member_id)
    # Its terms and status as locked: an operator's change this waited for applies (_locked_partner).
    partner = await _locked_partner(uow, (await get_partner(uow, partner_code)).id)
    link = await PartnerRepository(uow.session).get_member_link(partner.id, member_id)
    if link is None:
        raise LinkNotFound()
    rate = partner.exchange_out_rate
    if rate is None:
        raise ExchangeNotOffered()
    partner_points = _converted(points, rate)
    if partner_points < 1:
        raise InvalidField("points", f"{points} points make no points of the partner's at {rate} each")
    program = await get_program(uow)
    await _check_limits(uow, program, partner, member_id, "out", points)
    await check_return_window(uow, program, sender, points)
    state = await debit_available(uow, member_id, points)
    # The entry names the lots sent: points an exchange gives back come back as they were (_give_back).
    sent = await spend_lots(uow, member_id, points)
    now = uow.clock.now()
    exchange_id = new_id()
    entry_id = await record_entry(
        uow,
        member_id=member_id,
        type="exchange_out",
        amount=-points,
        state=state,
        details=_marks(partner, exchange_id, partner_points, rate) | {"lots": lots_payload(sent)},
        actor=actor,
        partner_id=partner.id,
    )
    row = _exchange_row(
        exchange_id,
        partner,
        program,
        link,
        direction="out",
        status="pending",
        points=points,
        partner_points=partner_points,
        rate=rate,
        partner_ref=None,
        entry_id=entry_id,
        expires_at=now + timedelta(seconds=partner.exchange_timeout_seconds),
        now=now,
    )
    await ExchangeRepository(uow.session).insert(row)
    assert row.expires_at is not None
    await emit_for_member(
        uow,
        ExchangeRequested(
            exchange_id=row.id,
            member_id=member_id,
            partner=partner.code,
            partner_customer_ref=row.partner_customer_ref,
            points=points,
            partner_points=partner_points,
            expires_at=row.expires_at,
        ),
        member_id,
        partner.id,
    )
    return _view(row, partner.code, uow.clock.now())


def _marks(
    partner: Partner, exchange_id: uuid.UUID, partner_points: int, rate: Decimal
) -> dict[str, str | int]:
    """What an exchange's ledger entries say of it, so the ledger alone explains the settlement."""
    return {
        "partner": partner.code,
        "exchange_id": str(exchange_id),
        "partner_points": partner_points,
        "rate": str(rate),
    }


async def _partners_exchange(uow: UnitOfWork, partner: Partner, exchange_id: uuid.UUID) -> PartnerExchange:
    found = await ExchangeRepository(uow.session).get(exchange_id)
    if found is None or found.partner_id != partner.id:
        raise ExchangeNotFound()
    return found


async def get_exchange(uow: UnitOfWork, partner_id: uuid.UUID, exchange_id: uuid.UUID) -> ExchangeView:
    """One of the partner's exchanges, read even while it is suspended: it may still answer those pending
    (`confirm`), and after a lost answer this is how it learns whether one timed out."""
    partner = await bound_partner(uow, partner_id)
    return _view(await _partners_exchange(uow, partner, exchange_id), partner.code, uow.clock.now())


async def confirm(uow: UnitOfWork, partner_id: uuid.UUID, exchange_id: uuid.UUID) -> ExchangeView:
    """The partner credited its customer: the exchange is done. Only while it is pending and in time.

    A suspended partner may still answer: its system may have credited the customer before it learnt of the
    suspension, and the time limit keeps running, so a refusal here would end in the time-out job giving the
    member back points the partner paid out. It starts nothing new while suspended (`exchange_out`,
    `exchange_in`)."""
    partner = await bound_partner(uow, partner_id)
    row = await _partners_exchange(uow, partner, exchange_id)
    now = uow.clock.now()
    repo = ExchangeRepository(uow.session)
    if not await repo.resolve(row.id, "confirmed", now, due_before=now):
        raise _not_pending(await repo.get(row.id), now)
    return await _resolved(uow, partner, row.id, "confirmed", None)


async def fail(uow: UnitOfWork, partner_id: uuid.UUID, exchange_id: uuid.UUID) -> ExchangeView:
    """The partner could not credit its customer: the member gets the points back. Only while it is pending
    and in time, and while the partner is suspended too, as for a confirmation."""
    partner = await bound_partner(uow, partner_id)
    row = await _partners_exchange(uow, partner, exchange_id)
    # The member's row and account before the exchange's, as every change to their points takes them (and an
    # erasure, which then rewrites their exchanges): taken the other way round, the two deadlocked.
    locked = await PointsAccountRepository(uow.session).lock_with_member(row.member_id)
    assert locked is not None, "an exchange's member keeps their rows, erased or not"
    repo = ExchangeRepository(uow.session)
    now = uow.clock.now()
    # Past its time the exchange is the time-out job's: it expires, and the points come back either way.
    if not await repo.resolve(row.id, "failed", now, due_before=now):
        raise _not_pending(await repo.get(row.id), now)
    await _give_back(uow, partner, row)
    return await _resolved(uow, partner, row.id, "failed", locked[0].status)


def _not_pending(row: PartnerExchange | None, now: datetime) -> ExchangeNotPending:
    status = None if row is None else exchange_status(row, now)
    return ExchangeNotPending(f"The exchange is {status}", exchange_status=status)


async def _give_back(uow: UnitOfWork, partner: Partner, row: PartnerExchange) -> None:
    entry_id = await give_back_sent(
        uow,
        await get_program(uow),
        member_id=row.member_id,
        sent_by=row.entry_id,
        points=row.points,
        type="exchange_return",
        details=_marks(partner, row.id, row.partner_points, row.rate),
        settled_by={"settled_by_exchange": str(row.id)},
        partner_id=partner.id,
    )
    await ExchangeRepository(uow.session).set_return_entry(row.id, entry_id)


async def _resolved(
    uow: UnitOfWork,
    partner: Partner,
    exchange_id: uuid.UUID,
    status: Literal["confirmed", "failed", "expired"],
    member_status: str | None,
) -> ExchangeView:
    """The exchange as resolved, and its event. `member_status`: its member's, where the caller read it
    behind their lock (emit_unless_erased)."""
    row = await ExchangeRepository(uow.session).get(exchange_id)
    assert row is not None
    # An erased member's exchange is still settled (the partner may answer it, the worker times it out, and
    # the settlement counts it), without an event naming them: the partner was told `member.erased`, and
    # reads the exchange's status with GET /v1/partner/exchanges/{id}.
    event = ExchangeResolved(
        exchange_id=row.id,
        member_id=row.member_id,
        partner=partner.code,
        partner_customer_ref=row.partner_customer_ref,
        status=status,
        points=row.points,
        partner_points=row.partner_points,
    )
    await emit_unless_erased(uow, [(event, row.member_id, member_status)], partner_id=partner.id)
    return _view(row, partner.code, uow.clock.now())


async def expire_exchanges(units: UnitsOfWork) -> int:
    """Give back the points of exchanges out the partner did not answer in time; how many. Each in a unit of
    work of its own, its member claimed first (their row and account, as a partner's failure takes them before
    the exchange): a member another transaction holds (a till, an erasure, another worker) is skipped, not
    waited for, and left to the next run. One run walks what was due at its start, by (expires at, id)."""
    expired = 0
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with units.read() as uow:
            due = await ExchangeRepository(uow.session).list_due(
                uow.clock.now(), after=after, limit=EXPIRY_BATCH
            )
        for expires_at, exchange_id, member_id in due:
            async with units.begin() as uow:
                expired += await _expire(uow, exchange_id, member_id, expires_at)
        if len(due) < EXPIRY_BATCH:
            return expired
        after = due[-1][:2]


async def _expire(uow: UnitOfWork, exchange_id: uuid.UUID, member_id: uuid.UUID, expires_at: datetime) -> int:
    """Expire the exchange and give its points back, its member claimed first; 1 when this did it."""
    member_status = await PointsAccountRepository(uow.session).claim(member_id)
    if member_status is None:
        return 0
    repo = ExchangeRepository(uow.session)
    # It ended at its time, not when the job got to it (the worker may have been down for days).
    if not await repo.resolve(exchange_id, "expired", min(expires_at, uow.clock.now())):
        return 0  # the partner answered, or another worker got it first
    row = await repo.get(exchange_id)
    partner = await PartnerRepository(uow.session).get(row.partner_id) if row else None
    assert row is not None and partner is not None
    await _give_back(uow, partner, row)
    await _resolved(uow, partner, row.id, "expired", member_status)
    return 1


async def exchange_in(
    uow: UnitOfWork,
    partner_id: uuid.UUID,
    ref: str,
    *,
    partner_ref: str,
    partner_points: int,
    actor: uuid.UUID | None = None,
) -> ExchangeView:
    """Credit the member the partner linked as `ref` with the partner's points at its rate, once per
    transfer."""
    try:
        # The link is read behind the member's row, the first lock every change to the member takes: an
        # unlink or an erasure under way commits first, and then there is no link to credit (nor to name in
        # the event).
        partner, link = await locked_partner_link(uow, partner_id, ref)
        # The member (locked above) and their account first, then the partner, as exchange_out takes them;
        # the terms are read behind the partner's lock (_locked_partner).
        await lock_earner(uow, link.member_id)
    except (LinkNotFound, PartnerNotActive, MemberNotActive):
        # A transfer sent again without a key (its answer lost) after an unlink, a suspension or an erasure:
        # credited already, and the partner must not give its customer the points back as if it had failed.
        known = await ExchangeRepository(uow.session).get_by_partner_ref(partner_id, partner_ref)
        if known is not None:
            raise ExchangeAlreadyRecorded(exchange_id=str(known.id)) from None
        raise
    partner = await _locked_partner(uow, partner.id)
    # Before the terms are read: a transfer sent again after the operator withdrew or changed the rate in (so
    # that it would credit nothing, or more than one transfer may) was credited, and is told so, as above.
    repo = ExchangeRepository(uow.session)
    known = await repo.get_by_partner_ref(partner.id, partner_ref)
    if known is not None:
        raise ExchangeAlreadyRecorded(exchange_id=str(known.id))
    rate = partner.exchange_in_rate
    if rate is None:
        raise ExchangeNotOffered()
    points = _converted(partner_points, rate)
    if points < 1:
        raise InvalidField("partner_points", f"{partner_points} of your points make none of ours at {rate}")
    if points > MAX_POINTS_PER_EARN:
        raise InvalidField(
            "partner_points",
            f"would credit {points} points, more than one transfer may ({MAX_POINTS_PER_EARN})",
        )
    program = await get_program(uow)
    await _check_limits(uow, program, partner, link.member_id, "in", points)
    now = uow.clock.now()
    exchange_id = new_id()
    _, entry_id = await credit_points(
        uow,
        program,
        member_id=link.member_id,
        type="exchange_in",
        points=points,
        details=_marks(partner, exchange_id, partner_points, rate) | {"partner_ref": partner_ref},
        actor=actor,
        partner_id=partner.id,
    )
    row = _exchange_row(
        exchange_id,
        partner,
        program,
        link,
        direction="in",
        status="completed",
        points=points,
        partner_points=partner_points,
        rate=rate,
        partner_ref=partner_ref,
        entry_id=entry_id,
        expires_at=None,
        now=now,
    )
    await repo.insert(row)
    await emit_for_member(
        uow,
        ExchangeReceived(
            exchange_id=row.id,
            member_id=link.member_id,
            partner=partner.code,
            partner_customer_ref=link.partner_customer_ref,
            partner_ref=partner_ref,
            points=points,
            partner_points=partner_points,
        ),
        link.member_id,
        partner.id,
    )
    return _view(row, partner.code, uow.clock.now())


async def member_exchanges(
    uow: UnitOfWork, member_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[ExchangeView]:
    await require_member(uow, member_id, must_be_active=False)
    scope = scope_of("exchanges", member_id)
    rows = await ExchangeRepository(uow.session).list_member_exchanges(
        member_id, before_id=decode_cursor(cursor, scope), limit=limit + 1
    )
    page = page_of(rows, limit, lambda pair: pair[0].id, scope)
    now = uow.clock.now()
    return page.with_items([_view(row, code, now) for row, code in page.items])
