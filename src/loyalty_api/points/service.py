"""Points: earn, redeem, adjust, and the member's balance and ledger.

Every change starts by locking the member's account row until commit, so everything else the change writes
for that member (order, ledger entry, lots, event) is serialized behind it: a spend with one conditional
UPDATE of the row (see PointsAccountRepository.change), which checks the balance too; an earn, which may
change the member's tier, with one read that locks the member's row and then the account's (see lock_earner),
after which it writes everything at once (see LedgerRepository.record_earn).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loyalty_api.benefits.standing import MemberFacts, MemberStanding, standing
from loyalty_api.clock import format_instant
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.earning import service as earning
from loyalty_api.earning.calculator import BreakdownLine, Multiplier, Purchase, calculate
from loyalty_api.earning.kinds import BirthdayBonus, EarnItem
from loyalty_api.errors import InvalidField, LoyaltyError
from loyalty_api.members import service as members
from loyalty_api.money import Money, value_of_points
from loyalty_api.offers import PointsMultiplier
from loyalty_api.orders.repository import OrderRepository, earned_order_row
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.points import referrals
from loyalty_api.points.accounts import (
    check_currency,
    check_minimum_redeem,
    check_order_total,
    credit_lot,
    debit_available,
    debit_for_order,
    hold_exists,
    lock_earner,
    lock_earner_for_order,
    lots_payload,
    money_payload,
    order_done,
    raises_counted_spend,
    record_entry,
    refused_for_the_order,
    settle_spared,
    spend_lots,
)
from loyalty_api.points.errors import (
    OrderAlreadyEarned,
    OrderAlreadyRedeemed,
    OrderBelongsToAnotherMember,
    OrderRefunded,
)
from loyalty_api.points.events import (
    BreakdownPayload,
    PointsAdjusted,
    PointsEarned,
    PointsRedeemed,
)
from loyalty_api.points.ledger import StoredAccount
from loyalty_api.points.models import LedgerEntry
from loyalty_api.points.repository import (
    AccountState,
    Earning,
    HoldRepository,
    LedgerRepository,
    LotRepository,
    NewEntry,
    PointsAccountRepository,
)
from loyalty_api.program.service import ProgramSettings, get_program
from loyalty_api.tiers import membership
from loyalty_api.tiers import service as tiers
from loyalty_api.tiers.ladder import Standing, TierRef
from loyalty_api.tiers.repository import stored_end

CLOCK_SKEW = timedelta(minutes=5)
# How long a till may stay offline and still earn for its purchases at the time they happened.
OFFLINE_GRACE = timedelta(days=30)
# One purchase earns at most this many points: with any rates a programme may set, balances stay far from the
# 64-bit limit of their columns.
MAX_POINTS_PER_EARN = 10**12


async def _order_conflict(
    uow: UnitOfWork,
    order_ref: str,
    member_id: uuid.UUID,
    default: type[OrderAlreadyEarned | OrderAlreadyRedeemed],
) -> Exception:
    """Why the order's claim (an earn's or a redeem's) did not take: another member's order, one refunded
    before it earned or redeemed (a refunded order takes no new points), or one that earned or redeemed."""
    order = await OrderRepository(uow.session).get_order(order_ref)
    if order is not None and order.member_id != member_id:
        return OrderBelongsToAnotherMember()
    done = None if order is None else order.earned_at if default is OrderAlreadyEarned else order.redeemed_at
    if order is not None and done is None and order.refunded:
        return OrderRefunded(f"Order {order_ref} was refunded: it takes no new points")
    return default()


async def _refused_unless_earned(
    uow: UnitOfWork, member_id: uuid.UUID, order_ref: str, refused: LoyaltyError
) -> LoyaltyError:
    """What an earn a rule of the moment refuses (the offline grace, the most one purchase may earn) is
    answered: OrderAlreadyEarned when the member earned for the order already, else the rule's refusal. A
    receipt sent again without a key (its reply lost) after time passed or an operator changed a rate is
    refused as the repeat it is, as it would be had nothing changed: the rule's 422 reads as the receipt
    earning nothing, and a clerk would credit it by hand. Only a refusal reads the order."""
    return (
        OrderAlreadyEarned() if await order_done(uow, member_id, order_ref, OrderAlreadyEarned) else refused
    )


def _too_many_points(points: int) -> InvalidField:
    return InvalidField(
        "amount", f"would earn {points} points, more than one purchase may ({MAX_POINTS_PER_EARN})"
    )


def _multipliers(held: MemberStanding, amount: Money, channel: str | None) -> list[Multiplier]:
    """The tier's own multiplier, then the points-multiplier benefits the member holds (from the tier, paid
    plans and partners' joint offers) whose conditions the purchase meets (a benefit several give counts
    once)."""
    tier = held.tier
    found = (
        []
        if tier is None
        else [Multiplier(name=tier.name, kind="tier_multiplier", factor=tier.points_multiplier)]
    )
    for benefit in held.benefits:
        offer = benefit.properties
        if not isinstance(offer, PointsMultiplier):
            continue
        if offer.channels and channel not in offer.channels:
            continue
        if offer.min_subtotal is not None and amount.amount_minor < offer.min_subtotal:
            continue
        found.append(
            Multiplier(
                name=benefit.name, kind="points_multiplier", factor=offer.multiplier, source_id=benefit.id
            )
        )
    return found


def _earned(
    member_id: uuid.UUID,
    order_ref: str,
    points: int,
    amount: Money,
    breakdown: list[BreakdownPayload],
    balance: int,
) -> PointsEarned:
    return PointsEarned(
        member_id=member_id,
        order_ref=order_ref,
        points=points,
        amount=money_payload(amount),
        breakdown=breakdown,
        balance=balance,
    )


@dataclass(frozen=True, slots=True)
class _HeldThen:
    """The member as a backdated purchase found them: their tier then (see earn)."""

    status: str
    tier_id: uuid.UUID | None
    plan_benefits_until: datetime | None


@dataclass(frozen=True, slots=True)
class EarnResult:
    order_ref: str
    points_earned: int
    breakdown: list[BreakdownLine]
    balance: int
    available: int
    tier: TierRef | None
    tier_changed: bool


def _check_purchase_time(occurred_at: datetime, now: datetime) -> None:
    """A purchase a till recorded offline is earned within OFFLINE_GRACE; none is in the future."""
    if occurred_at > now + CLOCK_SKEW:
        raise InvalidField("occurred_at", "must not be in the future")
    if occurred_at < now - OFFLINE_GRACE:
        raise InvalidField("occurred_at", f"must be within the last {OFFLINE_GRACE.days} days")


async def earn(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    order_ref: str,
    amount: Money,
    items: Sequence[EarnItem] = (),
    store_id: str | None = None,
    channel: str | None = None,
    occurred_at: datetime | None = None,
    actor: uuid.UUID | None = None,
) -> EarnResult:
    program = await get_program(uow)
    check_currency(program, amount, *(item.line_total for item in items))
    if occurred_at is not None:
        try:
            _check_purchase_time(occurred_at, uow.clock.now())
        except InvalidField as refused:
            # A receipt that earned inside the grace, sent again (its reply lost) once past it.
            raise await _refused_unless_earned(uow, member_id, order_ref, refused) from None
    earner = await lock_earner_for_order(uow, member_id, order_ref, OrderAlreadyEarned)
    member, account = earner.member, earner.account
    # Read behind the member's lock, as a redeem's: an earn that waited for it is stamped after the entries
    # written meanwhile, so the ledger's times follow its order (a client reading `since` misses none).
    now = uow.clock.now()
    occurred = occurred_at or now

    rules = await earning.rules_in_force(uow, occurred)
    # Decrypting is a cost every earn would pay: only when a rule looks at the birthday.
    birthday = (
        uow.vault.decrypt(member.birthday_encrypted)
        if member.birthday_encrypted is not None
        and any(isinstance(r.properties, BirthdayBonus) for r in rules)
        else None
    )
    purchase = Purchase(
        amount=amount,
        items=items,
        channel=channel,
        store_id=store_id,
        local_date=occurred.astimezone(program.zone).date(),
        birthday=None if birthday is None else datetime.fromisoformat(birthday).date(),
    )
    ladder = await tiers.get_ladder(uow)
    # The plans held when the purchase was made, like the rules: a receipt synced late neither gains a plan
    # bought since nor loses one ended since. Without `occurred_at` (the till's purchase now) the row's mark
    # still spares the plans statement for a member without one.
    # The tier likewise: a receipt from before an upgrade earns at the multiplier of the tier it was made on.
    # Only a backdated earn made before the member's tier changed last reads the tier's history; the till's
    # earn, and a receipt made on the tier held now, take the tier on the row.
    facts: MemberFacts = member
    if occurred_at is not None and (member.tier_since is None or occurred_at < member.tier_since):
        then = await membership.tier_held_at(uow, member_id, occurred_at, member.tier_id)
        facts = _HeldThen(status=member.status, tier_id=then, plan_benefits_until=member.plan_benefits_until)
    held = await standing(uow, member_id, facts, plans_at=occurred_at)
    lines = calculate(
        purchase,
        rules=rules,
        program_rate=program.earn_rate,
        rounding=program.rounding,
        multipliers=_multipliers(held, amount, channel),
    )
    points = max(sum(line.points for line in lines), 0)
    if points > MAX_POINTS_PER_EARN:
        # A receipt that earned, sent again after an operator raised a rate or a multiplier this far.
        raise await _refused_unless_earned(uow, member_id, order_ref, _too_many_points(points))

    state = AccountState(
        balance=account.balance + points, held=account.held, lifetime_earned=account.lifetime_earned + points
    )
    breakdown = [BreakdownPayload(rule=line.rule, kind=line.kind, points=line.points) for line in lines]
    written = Earning(
        entry=NewEntry(
            member_id=member_id,
            type="earn",
            amount=points,
            state=state,
            at=now,
            order_ref=order_ref,
            details={
                "breakdown": [b.model_dump() for b in breakdown],
                "amount": money_payload(amount).model_dump(),
                "store_id": store_id,
                "channel": channel,
                "occurred_at": format_instant(occurred),
            },
            actor=actor,
        ),
        currency=amount.currency,
        amount_minor=amount.amount_minor,
        purchased_at=occurred,
        lot_expires_at=program.expiry_for(now),
        event=_earned(member_id, order_ref, points, amount, breakdown, state.balance),
    )
    windows = sorted(ladder.windows(now, program.zone))
    totals = await LedgerRepository(uow.session).record_earn(written, windows=windows)
    if totals is None:
        raise await _order_conflict(uow, order_ref, member_id, OrderAlreadyEarned)
    await members.after_purchase(uow, member, occurred)
    state = await referrals.reward_first_purchase(
        uow, program, member, order_ref=order_ref, amount=amount, state=state
    )
    outcome = await membership.after_purchase(
        uow,
        ladder=ladder,
        member_id=member_id,
        tier_id=member.tier_id,
        window_end=stored_end(member.tier_window_end, member.tier_window_revision, member.tier_window_days),
        override_until=member.tier_override_until,
        standing=Standing(at=now, values=totals),
    )
    if occurred_at is not None:
        outcome = await membership.after_purchase_in_a_past_year(
            uow,
            ladder=ladder,
            member_id=member_id,
            occurred=occurred,
            after=outcome,
            override_until=member.tier_override_until,
        )
    state = await settle_spared(uow, earner, state)
    return EarnResult(
        order_ref=order_ref,
        points_earned=points,
        breakdown=lines,
        balance=state.balance,
        available=state.available,
        tier=None if outcome.tier is None else outcome.tier.ref,
        tier_changed=outcome.changed,
    )


@dataclass(frozen=True, slots=True)
class CreditResult:
    points: int
    balance: int
    available: int


async def earn_at_rate(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    order_ref: str,
    amount: Money,
    points: int,
    rule: str,
    partner_id: uuid.UUID,
    partner_customer_ref: str,
    details: dict[str, Any],
    actor: uuid.UUID | None = None,
) -> CreditResult:
    """An earn for a purchase made elsewhere (at a partner), whose points the caller worked out at its own
    rate: once per order like every earn, credited as a lot that expires as the programme says, marked with
    the partner, the order keeping the partner's reference of the customer; it does not count for our tiers,
    so no tier changes."""
    if points > MAX_POINTS_PER_EARN:
        # A purchase that earned, sent again after an operator raised the partner's rate this far.
        raise await _refused_unless_earned(uow, member_id, order_ref, _too_many_points(points))
    program = await get_program(uow)
    # As a till's earn: the order sent again after the member was suspended or closed is refused as the repeat
    # it is (order_already_earned), not as member_not_active, which reads as the purchase earning nothing.
    await lock_earner_for_order(uow, member_id, order_ref, OrderAlreadyEarned)
    now = uow.clock.now()
    order = earned_order_row(
        order_ref,
        member_id,
        currency=amount.currency,
        amount_minor=amount.amount_minor,
        points=points,
        purchased_at=None,
        now=now,
        partner_customer_ref=partner_customer_ref,
    )
    if not await OrderRepository(uow.session).claim_earn(order):
        raise await _order_conflict(uow, order_ref, member_id, OrderAlreadyEarned)
    state = await PointsAccountRepository(uow.session).change(
        member_id, now=now, balance=points, lifetime=points
    )
    assert state is not None
    breakdown = [BreakdownPayload(rule=rule, kind="partner_rate", points=points)]
    entry_id = await record_entry(
        uow,
        member_id=member_id,
        type="earn",
        amount=points,
        state=state,
        order_ref=order_ref,
        details={
            "breakdown": [b.model_dump() for b in breakdown],
            "amount": money_payload(amount).model_dump(),
            **details,
        },
        actor=actor,
        partner_id=partner_id,
    )
    await credit_lot(uow, program, member_id=member_id, entry_id=entry_id, points=points, order_ref=order_ref)
    await emit_for_member(
        uow, _earned(member_id, order_ref, points, amount, breakdown, state.balance), member_id
    )
    return CreditResult(points=points, balance=state.balance, available=state.available)


@dataclass(frozen=True, slots=True)
class RedeemResult:
    order_ref: str
    points_redeemed: int
    value: Money
    balance: int
    available: int


async def redeem(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    points: int,
    order_ref: str,
    order_total: Money | None = None,
    actor: uuid.UUID | None = None,
) -> RedeemResult:
    program = await get_program(uow)
    try:
        check_minimum_redeem(program, points)
        if order_total is not None:
            check_order_total(program, points, order_total)
    except LoyaltyError as refused:
        raise await refused_for_the_order(uow, member_id, order_ref, refused) from None
    value = value_of_points(points, program.point_value_minor, program.currency)
    # Locked, not only read: a close or an erasure of the member waits for this redeem, or this redeem sees
    # its outcome, so no points are spent by a member once closed.
    member = (await lock_earner_for_order(uow, member_id, order_ref, OrderAlreadyRedeemed)).member
    now = uow.clock.now()
    held = await HoldRepository(uow.session).get_live_hold_id(member_id, order_ref, now)
    if held is not None:
        # A checkout holds points for this order: its capture pays with them, and a redeem would pay again.
        raise hold_exists(order_ref, held)
    state = await debit_for_order(uow, member_id, points, order_ref)
    orders = OrderRepository(uow.session)
    # Read before the claim replaces the order's total (only a redeem with a total can change it).
    raised = order_total is not None and raises_counted_spend(
        await orders.get_order(order_ref), member_id, order_total
    )
    total = None if order_total is None else (order_total.currency, order_total.amount_minor)
    if not await orders.claim_redeem(order_ref, member_id, points=points, total=total, now=now):
        raise await _order_conflict(uow, order_ref, member_id, OrderAlreadyRedeemed)
    # The entry names the lots that paid: a refund gives the points back as they were (points/refunds.py).
    paid = await spend_lots(uow, member_id, points)
    await record_entry(
        uow,
        member_id=member_id,
        type="redeem",
        amount=-points,
        state=state,
        order_ref=order_ref,
        details={"value": money_payload(value).model_dump(), "lots": lots_payload(paid)},
        actor=actor,
    )
    await emit_for_member(
        uow,
        PointsRedeemed(
            member_id=member_id,
            order_ref=order_ref,
            points=points,
            value=money_payload(value),
            balance=state.balance,
        ),
        member_id,
    )
    if raised:
        # The earned order now counts its whole total for tiers: the member is judged as after an earn, in
        # this transaction, behind the member's row that lock_earner locked (the earn's lock order).
        await membership.after_total_raised(uow, member)
    return RedeemResult(
        order_ref=order_ref,
        points_redeemed=points,
        value=value,
        balance=state.balance,
        available=state.available,
    )


@dataclass(frozen=True, slots=True)
class AdjustResult:
    entry_id: uuid.UUID
    points: int
    reason: str
    balance: int
    available: int


async def adjust(
    uow: UnitOfWork, *, member_id: uuid.UUID, points: int, reason: str, actor: uuid.UUID | None = None
) -> AdjustResult:
    if points == 0:
        raise InvalidField("points", "must not be zero")
    program = await get_program(uow)
    # The member's row locked, as an earn's: an erasure under way (which removes adjustments' reasons) is
    # waited for, not overtaken by a reason written after it. What the jobs owe is settled first.
    earner = await lock_earner(uow, member_id, must_be_active=False)
    if points > 0:
        state = await PointsAccountRepository(uow.session).change(
            member_id, now=uow.clock.now(), balance=points
        )
        assert state is not None
    else:
        state = await debit_available(uow, member_id, -points)
        await spend_lots(uow, member_id, -points)
    entry_id = await record_entry(
        uow,
        member_id=member_id,
        type="adjust",
        amount=points,
        state=state,
        details={"reason": reason},
        actor=actor,
    )
    await credit_lot(uow, program, member_id=member_id, entry_id=entry_id, points=points)
    await emit_for_member(
        uow,
        PointsAdjusted(member_id=member_id, points=points, reason=reason, balance=state.balance),
        member_id,
    )
    if points > 0:
        state = await settle_spared(uow, earner, state)
    return AdjustResult(
        entry_id=entry_id, points=points, reason=reason, balance=state.balance, available=state.available
    )


@dataclass(frozen=True, slots=True)
class ExpiringPoints:
    month: str  # YYYY-MM in the programme's time zone
    points: int
    expires_at: datetime  # when the first of these points expire


@dataclass(frozen=True, slots=True)
class PointsSummary:
    balance: int
    held: int
    available: int
    lifetime_earned: int
    available_value: Money
    expiring: list[ExpiringPoints]


async def summary(uow: UnitOfWork, member_id: uuid.UUID) -> PointsSummary:
    program = await get_program(uow)
    await members.require_member(uow, member_id, must_be_active=False)
    state = await account_as_read(uow, member_id)
    assert state is not None, "every member has an account"
    lots = await LotRepository(uow.session).expiring_by_date(member_id, uow.clock.now())
    return _summary(program, state, lots)


async def account_as_read(uow: UnitOfWork, member_id: uuid.UUID) -> AccountState | None:
    """The member's points as every read shows them (None: no such account)."""
    stored = await PointsAccountRepository(uow.session).get_stored_accounts([member_id], uow.clock.now())
    return _as_read(*stored[member_id]) if member_id in stored else None


async def summaries(uow: UnitOfWork, member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PointsSummary]:
    """`summary` of many members, read together (GraphQL batches its lookups); members that do not exist,
    or were erased, are left out, as `summary` refuses them."""
    program = await get_program(uow)
    now = uow.clock.now()
    stored = await PointsAccountRepository(uow.session).get_stored_accounts(member_ids, now, of_erased=False)
    lots = await LotRepository(uow.session).expiring_by_date_of(list(stored), now)
    return {
        member_id: _summary(program, _as_read(*account), lots.get(member_id, []))
        for member_id, account in stored.items()
    }


def _as_read(stored: StoredAccount, lifetime_earned: int) -> AccountState:
    """What a read shows of the account: what a spend would find, whether or not the jobs have run."""
    balance, held = stored.as_a_spend_finds()
    return AccountState(balance=balance, held=held, lifetime_earned=lifetime_earned)


def _summary(
    program: ProgramSettings, state: AccountState, lots: Sequence[tuple[datetime, int]]
) -> PointsSummary:
    """The points now, with what expires grouped by month in the programme's time zone."""
    months: dict[str, ExpiringPoints] = {}
    for expires_at, points in lots:
        month = expires_at.astimezone(program.zone).strftime("%Y-%m")
        known = months.get(month)
        months[month] = ExpiringPoints(
            month=month,
            points=points + (known.points if known else 0),
            expires_at=known.expires_at if known else expires_at,
        )
    return PointsSummary(
        balance=state.balance,
        held=state.held,
        available=state.available,
        lifetime_earned=state.lifetime_earned,
        available_value=value_of_points(state.available, program.point_value_minor, program.currency),
        expiring=list(months.values()),
    )


async def ledger(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    *,
    types: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    cursor: str | None,
) -> Page[LedgerEntry]:
    await members.require_member(uow, member_id, must_be_active=False)
    scope = scope_of("ledger", member_id)
    entries = await LedgerRepository(uow.session).list_entries(
        member_id,
        types=types,
        since=since,
        until=until,
        before_id=decode_cursor(cursor, scope),
        limit=limit + 1,
    )
    return page_of(entries, limit, lambda entry: entry.id, scope)
