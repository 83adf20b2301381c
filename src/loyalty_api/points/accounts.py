"""The primitives every points change is made of: lock-and-change the account row first, then write the
ledger entry, move lots, and release holds whose time is up."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import LoyaltyError
from loyalty_api.members.errors import MemberNotActive
from loyalty_api.members.repository import PointsHolder
from loyalty_api.members.service import emit_unless_erased, refuse_unless_found
from loyalty_api.money import Money, most_points_within_share
from loyalty_api.orders.models import Order
from loyalty_api.orders.repository import OrderRepository
from loyalty_api.outbox.events import MoneyPayload
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.points.errors import (
    BelowMinimumRedeem,
    CurrencyMismatch,
    HoldExists,
    InsufficientPoints,
    OrderAlreadyEarned,
    OrderAlreadyRedeemed,
    OrderBelongsToAnotherMember,
    OrderRefunded,
    PointsInReturnWindow,
    RedeemShareExceeded,
)
from loyalty_api.points.events import PointsExpired, PointsHoldReleased
from loyalty_api.points.ledger import (
    EntryType,
    LotBalance,
    LotOnBooks,
    PaidFrom,
    lots_for_order,
    plan_giving_back,
    plan_spending,
)
from loyalty_api.points.models import Hold
from loyalty_api.points.repository import (
    AccountState,
    HoldRepository,
    LedgerRepository,
    LotRepository,
    NewEntry,
    NewLot,
    PointsAccountRepository,
    StandInRepository,
)
from loyalty_api.program.service import ProgramSettings


def check_currency(program: ProgramSettings, *amounts: Money) -> None:
    for amount in amounts:
        if amount.currency != program.currency:
            raise CurrencyMismatch(f"Amounts must be in {program.currency}, not {amount.currency}")


def check_minimum_redeem(program: ProgramSettings, points: int) -> None:
    """Points spent at once (a redeem, a hold, part of a hold captured) are at least the programme's
    minimum redemption."""
    if points < program.min_redeem_points:
        raise BelowMinimumRedeem(f"At least {program.min_redeem_points} points per redemption")


def check_order_total(program: ProgramSettings, points: int, order_total: Money) -> None:
    """An order's total, given with points that pay part of it (a redeem, a hold's capture): in the
    programme's currency, and the points worth no more than the programme's maximum share of it."""
    check_currency(program, order_total)
    if points > most_points_within_share(
        order_total.amount_minor, program.max_redeem_share, program.point_value_minor
    ):
        raise RedeemShareExceeded(
            f"Points may pay at most {program.max_redeem_share:%} of the order",
            max_share=str(program.max_redeem_share),
        )


def raises_counted_spend(order: Order | None, member_id: uuid.UUID, order_total: Money | None) -> bool:
    """Whether a payment's `order_total`, which becomes the order's total (OrderRepository.claim_redeem,
    add_redeemed), raises what the order (as it is before the payment) counts for the member's tier: only
    their purchase already earned counts (it has purchased_at), at its total less refunds."""
    return (
        order_total is not None
        and order is not None
        and order.member_id == member_id
        and order.purchased_at is not None
        and order_total.amount_minor > (order.amount_minor or 0) - order.refunded_minor
    )


def money_payload(money: Money) -> MoneyPayload:
    return MoneyPayload(amount=money.amount_minor, currency=money.currency)


@dataclass(frozen=True, slots=True)
class Earner:
    """A member and their account, locked (lock_earner). `spared`: lots past their end that holds
    still spare, which points this change frees may let expire (settle_spared)."""

    member: PointsHolder
    account: AccountState
    spared: bool = False


async def lock_earner(uow: UnitOfWork, member_id: uuid.UUID, *, must_be_active: bool = True) -> Earner:
    """The member (active, unless an operator's change need not wait for it) and their account, both locked
    until commit: the member's row first, as everything that may change their tier locks it before any
    account row (one order, no deadlock), then the account, so its balance is the one this transaction
    changes. An erasure holds the member's row too: a change behind it finds the member gone."""
    found = await PointsAccountRepository(uow.session).lock_with_member(member_id)
    member = refuse_unless_found(None if found is None else found[0], must_be_active=must_be_active)
    assert found is not None
    _, state, due_at = found
    # Read behind the locks, as the change's entry time is: a lot that ended while this waited for them is
    # settled now, or a redeem stamped after its end would spend it.
    now = uow.clock.now()
    if due_at is None or due_at > now:
        return Earner(member, state)
    # Settled first: the change and its answer start from the points a read shows, not from a row that still
    # counts points past their end until the jobs run.
    settled = await _expired(uow, member_id, member.status)
    return Earner(member, settled, spared=await LotRepository(uow.session).exists_due_lot(member_id, now))


async def lock_earner_for_order(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    order_ref: str,
    repeat: type[OrderAlreadyEarned | OrderAlreadyRedeemed | HoldExists],
) -> Earner:
    """lock_earner for an earn, a redeem or a hold (`repeat`: what its repeat is refused as) on the order. A
    member no longer active is refused (MemberNotActive), except the repeat of what they did on the order
    before (a till's earn, redeem or hold sent again without a key, its reply lost, after a suspension):
    that is refused as the repeat it is, as it would be were the member active, since member_not_active
    reads as the first refused (a payment with points made taken for one refused, the customer asked for
    cash too). Only a refusal reads the order."""
    try:
        return await lock_earner(uow, member_id)
    except MemberNotActive:
        # Behind the member's lock, which lock_earner took before it refused: what is read is what stands.
        if issubclass(repeat, HoldExists):
            held = await HoldRepository(uow.session).get_live_hold_id(member_id, order_ref, uow.clock.now())
            if held is not None:
                raise hold_exists(order_ref, held) from None
            raise
        if await order_done(uow, member_id, order_ref, repeat):
            raise repeat() from None
        raise


async def order_done(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    order_ref: str,
    done: type[OrderAlreadyEarned | OrderAlreadyRedeemed],
) -> bool:
    """Whether the member's order has earned (`done` OrderAlreadyEarned) or been paid with points already:
    what a write refused by a rule of the moment checks, to answer its repeat as the repeat it is."""
    order = await OrderRepository(uow.session).get_order(order_ref)
    if order is None or order.member_id != member_id:
        return False
    return (order.earned_at if done is OrderAlreadyEarned else order.redeemed_at) is not None


def hold_exists(order_ref: str, hold_id: uuid.UUID) -> HoldExists:
    """The refusal of a hold or a redeem for an order the member holds points for, naming the hold: the
    checkout captures or releases it by its id, which its lost reply carried."""
    return HoldExists(
        f"Order {order_ref} already has an active hold: capture or release it first", hold_id=str(hold_id)
    )


async def settle_spared(uow: UnitOfWork, earner: Earner, state: AccountState) -> AccountState:
    """After a change that added points: what of the lots past their end holds spared those points now let
    expire, expired, as a read counts them; the account after (`state` when nothing was spared)."""
    return await expire_let_go(uow, earner.member.id, state) if earner.spared else state


async def expire_let_go(uow: UnitOfWork, member_id: uuid.UUID, state: AccountState) -> AccountState:
    """After a change that added or freed points (an adjustment, a refund, a capture, a release): the lots
    past their end that holds spared and those points now let go, expired before the answer, as a read
    counts them; the account after (`state` when no lot is past its end)."""
    if not await LotRepository(uow.session).exists_due_lot(member_id, uow.clock.now()):
        return state
    return await _expired(uow, member_id, None)


async def _expired(uow: UnitOfWork, member_id: uuid.UUID, status: str | None) -> AccountState:
    """What the jobs owe the member settled (expire_due_points); the account after."""
    await expire_due_points(uow, member_id, status=status)
    settled = await PointsAccountRepository(uow.session).get_state(member_id)
    assert settled is not None
    return settled


async def check_return_window(uow: UnitOfWork, program: ProgramSettings, sender: Earner, points: int) -> None:
    """Refuse to send (to another member, to a partner) points that purchases within the programme's return
    window earned, with their referral points: a return would find them gone from the sender and kept by
    whoever got them. Those points are taken to be all still there (spends to have used older points first),
    so the refusal never lets one through. More than `sender` has available is left to debit_available's
    refusal. Call behind the sender's lock."""
    days = program.return_window_days
    if days == 0:
        return
    since = program.returnable_after(uow.clock.now())
    recent = await LedgerRepository(uow.session).points_purchases_earned_since(sender.member.id, since)
    available = sender.account.available
    transferable = max(available - recent, 0)
    if points > transferable and points <= available:
        raise PointsInReturnWindow(
            f"{available - transferable} of the {available} available points were earned by purchases of the "
            f"last {days} days, which may still be returned; {transferable} may be sent now",
            available=available,
            transferable=transferable,
            requested=points,
            return_window_days=days,
        )


async def record_entry(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    type: EntryType,
    amount: int,
    state: AccountState,
    held_change: int = 0,
    order_ref: str | None = None,
    hold_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    actor: uuid.UUID | None = None,
    partner_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> uuid.UUID:
    """Write a ledger entry for `state`, the account as it is after the change; its id. Made now, or `at`
    (the instant of the entry it pairs with: a transfer's two sides are made at one)."""
    entry = NewEntry(
        member_id=member_id,
        type=type,
        amount=amount,
        state=state,
        at=uow.clock.now() if at is None else at,
        held_change=held_change,
        order_ref=order_ref,
        hold_id=hold_id,
        partner_id=partner_id,
        details=details or {},
        actor=actor,
    )
    await LedgerRepository(uow.session).insert_entry(entry)
    return entry.id


async def credit_points(
    uow: UnitOfWork,
    program: ProgramSettings,
    *,
    member_id: uuid.UUID,
    type: EntryType,
    points: int,
    details: dict[str, Any],
    lifetime: bool = False,
    actor: uuid.UUID | None = None,
    partner_id: uuid.UUID | None = None,
    given_back: GivingBack | None = None,
) -> tuple[AccountState, uuid.UUID]:
    """Add `points` to the member's balance (and to what they earned in their lifetime, with `lifetime`) as
    one ledger entry with a lot that expires as the programme says, or, for points spent and now given back,
    as the lots `given_back` plans; the account after it and the entry's id. The change locks the account row
    until commit, if it was not locked already."""
    state = await PointsAccountRepository(uow.session).change(
        member_id, now=uow.clock.now(), balance=points, lifetime=points if lifetime else 0
    )
    assert state is not None, "every member has an account"
    entry_id = await record_entry(
        uow,
        member_id=member_id,
        type=type,
        amount=points,
        state=state,
        details=details,
        actor=actor,
        partner_id=partner_id,
    )
    if given_back is None:
        await credit_lot(uow, program, member_id=member_id, entry_id=entry_id, points=points)
    else:
        await credit_given_back(uow, program, given_back, member_id=member_id, entry_id=entry_id)
    return state, entry_id


async def credit_in_lots(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    type: EntryType,
    parts: Sequence[tuple[int, datetime | None]],
    details: dict[str, Any] | None = None,
    actor: uuid.UUID | None = None,
    order_refs: Sequence[str | None] | None = None,
    at: datetime | None = None,
) -> AccountState:
    """Add points that come with ends of their own (points received from another member, points brought
    from a previous system, points a transfer's reversal gives back) as one ledger entry, with a lot for each
    part of `parts` (points, end), of the order `order_refs` names for it (none without them); the account
    after it. Like `credit_points`, the change locks the account row until commit. Made now, or `at`."""
    now = uow.clock.now() if at is None else at
    points = sum(part for part, _ in parts)
    refs = [None] * len(parts) if order_refs is None else list(order_refs)
    assert len(refs) == len(parts)
    state = await PointsAccountRepository(uow.session).change(member_id, now=now, balance=points)
    assert state is not None, "every member has an account"
    entry_id = await record_entry(
        uow, member_id=member_id, type=type, amount=points, state=state, details=details, actor=actor, at=now
    )
    await LotRepository(uow.session).insert_lots(
        [
            NewLot(member_id, entry_id, part, ref, at=now, expires_at=ends)
            for (part, ends), ref in zip(parts, refs, strict=True)
        ]
    )
    return state


async def credit_members(
    uow: UnitOfWork,
    program: ProgramSettings,
    *,
    member_ids: Sequence[uuid.UUID],
    type: EntryType,
    points: int,
    details: dict[str, Any],
    lifetime: bool = False,
    actor: uuid.UUID | None = None,
) -> dict[uuid.UUID, tuple[AccountState, uuid.UUID]]:
    """`credit_points` for many members at once, the same `points` each, in a handful of statements: the
    accounts (locked in ascending member order), their ledger entries, their lots. Each member's account
    after it (and after what its points let expire) and their entry's id, by member; a member without an
    account is left out."""
    accounts = PointsAccountRepository(uow.session)
    lots = LotRepository(uow.session)
    if not member_ids:
        return {}
    await accounts.lock_many(member_ids)
    # Read behind the accounts' locks, as an earn's: the entries are stamped after those written meanwhile.
    now = uow.clock.now()
    # As an earn settles them (lock_earner, settle_spared): points past their end expire before the credit and
    # what holds spared of them as it frees them, so entries and answers show the balance a read shows. One
    # statement finds the few members that have any.
    due = await lots.list_due_among(member_ids, now)
    for member_id in due:
        await expire_due_points(uow, member_id)
    states = await accounts.credit_many(
        member_ids, points=points, lifetime=points if lifetime else 0, now=now
    )
    entries = [
        NewEntry(
            member_id=member_id, type=type, amount=points, state=state, at=now, details=details, actor=actor
        )
        for member_id, state in sorted(states.items())
    ]
    await LedgerRepository(uow.session).insert_entries(entries)
    expires_at = program.expiry_for(now)
    await lots.insert_lots(
        [NewLot(entry.member_id, entry.id, points, None, at=now, expires_at=expires_at) for entry in entries]
    )
    for member_id in due:
        if member_id in states:
            states[member_id] = await expire_let_go(uow, member_id, states[member_id])
    return {entry.member_id: (states[entry.member_id], entry.id) for entry in entries}


async def credit_lot(
    uow: UnitOfWork,
    program: ProgramSettings,
    *,
    member_id: uuid.UUID,
    entry_id: uuid.UUID,
    points: int,
    order_ref: str | None = None,
) -> None:
    if points <= 0:
        return
    now = uow.clock.now()
    await LotRepository(uow.session).insert_lot(
        NewLot(member_id, entry_id, points, order_ref, at=now, expires_at=program.expiry_for(now))
    )


@dataclass(frozen=True, slots=True)
class GivingBack:
    """Where points spent and now given back go (ledger.plan_giving_back): lots like those they were spent
    from, each keeping the time it had left when spent, and a fresh lot for what the spend's entry names no
    lot for."""

    back_to: list[tuple[PaidFrom, int]]
    fresh: int
    at: datetime

    def ended_of(self, order_ref: str) -> int:
        """The points that come back ended from lots the order `order_ref` earned."""
        return sum(points for lot, points in self._ended_lots() if lot.order_ref == order_ref)

    def _ended_lots(self) -> list[tuple[PaidFrom, int]]:
        return [(lot, points) for lot, points in self.back_to if _ended(lot.end_on_return(self.at), self.at)]

    @property
    def ended(self) -> int:
        """The points that come back ended: those a capture spent past their end, spared by its hold."""
        return sum(points for _, points in self._ended_lots())


def _ended(ends: datetime | None, now: datetime) -> bool:
    return ends is not None and ends <= now


async def plan_giving_back_spent(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    spends: Sequence[tuple[uuid.UUID, int, datetime]],
    *,
    points: int,
    given_back_before: int = 0,
) -> GivingBack:
    """Where `points` of what `spends` took (LedgerRepository.spends_of) go back, after `given_back_before`.
    Not as points earned today: else a member could spend points the day before they end, have the spend
    undone, and keep them another full period, again and again."""
    paid = await LotRepository(uow.session).paid_from(member_id, spends)
    back_to, fresh = plan_giving_back(paid, given_back_before=given_back_before, points=points)
    return GivingBack(back_to, fresh, uow.clock.now())


async def credit_given_back(
    uow: UnitOfWork,
    program: ProgramSettings,
    giving: GivingBack,
    *,
    member_id: uuid.UUID,
    entry_id: uuid.UUID,
    order_ref: str | None = None,
) -> list[GivenBackLot]:
    """Credit the lots `giving` plans (the fresh one of `entry_id` and `order_ref`), with the account row
    locked, after the balance change and its entry. The lots like those spent, for the caller to settle what
    their orders owe with them (pay_with_own_points) or let expire those that came back ended."""
    lots = LotRepository(uow.session)
    credited: list[GivenBackLot] = []
    for lot, points in giving.back_to:
        ends = lot.end_on_return(giving.at)
        like = NewLot(member_id, lot.entry_id, points, lot.order_ref, at=giving.at, expires_at=ends)
        credited.append(GivenBackLot(await lots.insert_lot(like), lot, points, _ended(ends, giving.at)))
    await credit_lot(
        uow, program, member_id=member_id, entry_id=entry_id, points=giving.fresh, order_ref=order_ref
    )
    return credited


@dataclass(frozen=True, slots=True)
class GivenBackLot:
    """A lot credited like one a payment spent (credit_given_back): its id, the lot it is like, its points,
    and whether they came back past their end."""

    lot_id: uuid.UUID
    like: PaidFrom
    points: int
    ended: bool


async def give_back_sent(
    uow: UnitOfWork,
    program: ProgramSettings,
    *,
    member_id: uuid.UUID,
    sent_by: uuid.UUID,
    points: int,
    type: EntryType,
    details: dict[str, Any],
    settled_by: dict[str, str],
    partner_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Give back `points` the entry `sent_by` spent (an exchange the partner failed or let time out), as one
    entry of `type`, with the time they had left when spent (plan_giving_back_spent). Like points a refund
    gives back, they pay what the orders that earned them owe first (pay_with_own_points), and then, still
    good, settle the member's other shortfalls (`settled_by` says what freed them). Its entry's id. What is
    past its end after that (points that came back ended and are not owed, stand-ins that went back ended) is
    settled by the expiry at once (expire_let_go), as after a refund."""
    spends = await LedgerRepository(uow.session).spends_of_entry(member_id, sent_by)
    giving = await plan_giving_back_spent(uow, member_id, spends, points=points)
    state, entry_id = await credit_points(
        uow,
        program,
        member_id=member_id,
        type=type,
        points=points,
        details=details,
        partner_id=partner_id,
        given_back=giving,
    )
    _, state = await settle_with_points_back(
        uow,
        member_id,
        state,
        live=points - giving.ended,
        settled_by=settled_by,
        orders={lot.order_ref for lot, _ in giving.back_to if lot.order_ref is not None},
    )
    # Points that came back ended and are not owed, stand-ins that went back past their end (which pay what
    # their own order owes, and give its stand-ins back, only when the expiry reads them), and lots past their
    # end that holds spared and these points now let go: settled now, as a refund, a release and a capture
    # settle them, so a read before the jobs shows what they leave.
    await expire_let_go(uow, member_id, state)
    return entry_id


async def spend_lots(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    points: int,
    *,
    order_ref_first: str | None = None,
    due_last: bool = False,
) -> list[tuple[uuid.UUID, int]]:
    """Take points from the member's lots, oldest expiry first (call with the account row locked); with
    `due_last`, lots past their end only once the others are empty. The lots taken from, and how much."""
    if points <= 0:
        return []
    lots = LotRepository(uow.session)
    live = await lots.list_live_lots(member_id, order_ref_first=order_ref_first)
    if due_last:
        due = {lot.lot_id for lot in await lots.list_due_lots(member_id, uow.clock.now())}
        live = [lot for lot in live if lot.lot_id not in due] + [lot for lot in live if lot.lot_id in due]
    plan = plan_spending(live, points)
    await lots.take(member_id, plan)
    return plan


def lots_payload(plan: Sequence[tuple[uuid.UUID, int]]) -> list[dict[str, Any]]:
    """The lots a spend took from, as an entry's details name them (an expiry's, a payment's)."""
    return [{"lot_id": str(lot_id), "points": points} for lot_id, points in plan]


async def debit_available(
    uow: UnitOfWork, member_id: uuid.UUID, points: int, *, hold: bool = False
) -> AccountState:
    """Take `points` off the available balance (or put them on hold), or raise InsufficientPoints. Call after
    what the jobs owe is settled (lock_earner, or expire_due_points): points past their end are gone even
    before the expiry job gets to them."""
    accounts = PointsAccountRepository(uow.session)
    now = uow.clock.now()
    balance, held = (0, points) if hold else (-points, 0)
    state = await accounts.change(member_id, now=now, balance=balance, held=held, needs_available=points)
    if state is None:
        # Perhaps holds whose time is up still reserve points: free them behind the member's lock (a failed
        # conditional UPDATE locks nothing on PostgreSQL), then try once more, since whoever held the lock
        # before us may have freed them already.
        await accounts.lock(member_id, now)
        await release_member_expired_holds(uow, member_id)
        state = await accounts.change(member_id, now=now, balance=balance, held=held, needs_available=points)
    if state is None:
        current = await accounts.get_state(member_id)
        available = 0 if current is None else current.available
        raise InsufficientPoints(
            f"{points} points asked, {available} available", available=available, requested=points
        )
    return state


async def debit_for_order(
    uow: UnitOfWork, member_id: uuid.UUID, points: int, order_ref: str, *, hold: bool = False
) -> AccountState:
    """debit_available for a payment with points on the order (a redeem, a hold). Too few points is
    refused for what the order is, when it takes no such payment from the member whatever their points: a
    redeem or a hold sent again without a key (its reply lost) finds gone the points it spent or held itself,
    and "too few points, nothing written" would read as a payment refused that was made (the customer asked
    to pay in cash too). The order's own refusal (paid already, held, another member's, refunded) says what
    is so. A payment that goes through costs nothing more: the order is read only on the refusal."""
    try:
        return await debit_available(uow, member_id, points, hold=hold)
    except InsufficientPoints:
        refusal = await order_refusal(uow, member_id, order_ref)
        if refusal is None:
            raise
        raise refusal from None


async def order_refusal(uow: UnitOfWork, member_id: uuid.UUID, order_ref: str) -> LoyaltyError | None:
    """Why the order takes no payment with points from the member, whatever their points (None: it would):
    another member's, paid with points already (a capture would pay twice), refunded (refunds are shares of
    what the order had: it takes no more), or held by a live hold."""
    order = await OrderRepository(uow.session).get_order(order_ref)
    if order is not None and order.member_id != member_id:
        return OrderBelongsToAnotherMember()
    if order is not None and order.redeemed_at is not None:
        return OrderAlreadyRedeemed(f"Order {order_ref} was paid with points already")
    if order is not None and order.refunded:
        return OrderRefunded(f"Order {order_ref} was refunded: it takes no new points")
    held = await HoldRepository(uow.session).get_live_hold_id(member_id, order_ref, uow.clock.now())
    return None if held is None else hold_exists(order_ref, held)


async def refused_for_the_order(
    uow: UnitOfWork, member_id: uuid.UUID, order_ref: str, refused: LoyaltyError
) -> LoyaltyError:
    """What a payment with points on the order (a redeem, a hold) that a programme rule on its points refused
    (the minimum redemption, the share of the order) is answered: the order's own refusal when it takes no
    such payment from the member whatever the points, else the rule's. A redeem or a hold sent again without
    a key (its reply lost) after an operator raised the minimum or lowered the share is refused as the repeat
    it is, as debit_for_order refuses it once its points are gone: the rule's 422 would read as the payment
    refused, or no points held, for an order paid with them (the customer asked to pay in cash too). Only a
    refusal reads the order."""
    return await order_refusal(uow, member_id, order_ref) or refused


async def release(
    uow: UnitOfWork, hold: Hold, *, reason: str, actor: uuid.UUID | None
) -> AccountState | None:
    """Free an active hold's points (call with the member's account row locked). None when the hold had
    already ended: a release, like a capture, happens once."""
    now = uow.clock.now()
    status = "expired" if reason == "expired" else "released"
    holds = HoldRepository(uow.session)
    # An expired hold ended at its time, not when the job (or the member's next spend) got to it.
    ended = min(hold.expires_at, now) if status == "expired" else now
    if not await holds.resolve(hold, status=status, captured=0, now=ended):
        return None
    if not await holds.exists_active_hold(hold.member_id, hold.order_ref):
        # The hold made the order the member's (holds.create_hold); ended uncaptured, with nothing else
        # earned, redeemed or refunded on it, the order is no one's, and another member may use the number.
        await OrderRepository(uow.session).delete_if_untouched(hold.order_ref, hold.member_id)
    state = await PointsAccountRepository(uow.session).change(hold.member_id, now=now, held=-hold.points)
    assert state is not None
    await record_entry(
        uow,
        member_id=hold.member_id,
        type="release",
        amount=0,
        held_change=-hold.points,
        state=state,
        order_ref=hold.order_ref,
        hold_id=hold.id,
        details={"reason": reason},
        actor=actor,
    )
    settled, state = await settle_released(uow, hold, hold.points, state)
    await emit_for_member(
        uow,
        PointsHoldReleased(
            member_id=hold.member_id,
            hold_id=hold.id,
            order_ref=hold.order_ref,
            points=hold.points,
            reason=reason,
            shortfall_settled=settled,
        ),
        hold.member_id,
    )
    return state


async def settle_released(
    uow: UnitOfWork, hold: Hold, released: int, state: AccountState
) -> tuple[int, AccountState]:
    """Points a hold stops reserving settle the member's shortfalls: a refund could not take back points
    that were on hold, and without this the member would keep them once the checkout let them go. An order's
    own points pay for it first (pay_with_own_points); the others owing are settled from points still good
    only: points past their end that the hold spared would have expired without it, and no refund could have
    taken them (refunds.py)."""
    return await settle_with_points_back(
        uow, hold.member_id, state, live=released, settled_by={"settled_by_hold": str(hold.id)}
    )


async def settle_with_points_back(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    state: AccountState,
    *,
    live: int,
    settled_by: dict[str, str],
    orders: Collection[str] | None = None,
    other_than: str | None = None,
) -> tuple[int, AccountState]:
    """Points back on the member's books (`live` of them still good: a refund's, a hold's release, a failed
    exchange's, a transfer's reversal) settle what is owed, as refunds.py's rule has it: the orders whose
    points they are (of `orders`, or any) pay what they owe with them first (pay_with_own_points); the live
    rest settles the member's other orders owing (but `other_than`), as far as it is not needed in place of
    points past their end that a hold spares. The points settled, and the account after."""
    own, own_live, state = await pay_with_own_points(
        uow, member_id, state, settled_by=settled_by, live=live, orders=orders
    )
    due = await LotRepository(uow.session).due_points(member_id, uow.clock.now())
    others, state = await settle_shortfalls(
        uow,
        member_id,
        min(live - own_live, state.available - due),
        state,
        settled_by=settled_by,
        other_than=other_than,
    )
    return own + others, state


# What a partner's earn entry says of the partner (coalition.purchases), carried over to a settlement of its
# order, so the ledger alone still explains the partner's statement.
_PARTNER_MARKS = ("partner", "partner_order_ref")


async def settle_shortfalls(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    spare: int,
    state: AccountState,
    *,
    settled_by: dict[str, str],
    other_than: str | None,
) -> tuple[int, AccountState]:
    """Take up to `spare` points, just freed for the member (given back by a refund, or no longer on hold),
    towards their orders' shortfalls, oldest first (call with the member's account row locked). Each
    settlement is a refund entry of the order it settles, taking back what its own refund could not (a
    partner's order marked with its partner, so its statement shows it; `settled_by` says what freed the
    points), and counts as taken back on that order. The points settled, and the account after."""
    if spare <= 0:
        return 0, state
    settled = 0
    for owing in await OrderRepository(uow.session).list_shortfalls(member_id, other_than=other_than):
        if settled == spare:
            break
        # An order this unit of work settled already is listed by its row until the session flushes, with
        # nothing left owing.
        points = min(spare - settled, owing.points_shortfall)
        if points <= 0:
            continue
        plan = await take_for_order(uow, member_id, owing.order_ref, points, others_ended=False)
        if plan:
            state = await settle_shortfall(uow, owing, plan, settled_by=settled_by)
            settled += sum(taken for _, taken in plan)
    return settled, state


async def settle_shortfall(
    uow: UnitOfWork, owing: Order, taken: Sequence[tuple[uuid.UUID, int]], *, settled_by: dict[str, str]
) -> AccountState:
    """Count the points `taken` from the member's lots (take_for_order, or the order's own) towards one
    order's shortfall (`settle_shortfalls`), as a refund entry of that order naming the lots. The account
    after."""
    member_id, now = owing.member_id, uow.clock.now()
    points = sum(part for _, part in taken)
    owing.points_shortfall -= points
    owing.points_taken_back += points
    owing.updated_at = now
    earn = await LedgerRepository(uow.session).get_earn_of_order(owing.order_ref)
    partner_id, earned = (None, {}) if earn is None else earn
    marks = {key: earned[key] for key in _PARTNER_MARKS if key in earned}
    state = await PointsAccountRepository(uow.session).change(member_id, now=now, balance=-points)
    assert state is not None
    await record_entry(
        uow,
        member_id=member_id,
        type="refund",
        amount=-points,
        state=state,
        order_ref=owing.order_ref,
        details={"taken_back": points, "given_back": 0, "lots": lots_payload(taken), **settled_by, **marks},
        partner_id=partner_id,
    )
    return state


async def take_for_order(
    uow: UnitOfWork, member_id: uuid.UUID, order_ref: str, points: int, *, others_ended: bool
) -> list[tuple[uuid.UUID, int]]:
    """Take `points` for the order (its refund's take-back, a settlement of what it owes; call with the
    account row locked): its own lots first, past their end or not, then the member's other points still good,
    soonest end first, and with `others_ended` last the other points past their end; without it, no more than
    those lots hold. What comes from other lots stands in for the order's own points, which were spent: it is
    recorded, to go back when they come back (pay_with_own_points). The lots taken from."""
    now = uow.clock.now()
    lots = LotRepository(uow.session)
    ordered, own = lots_for_order(
        await lots.list_lots_on_books(member_id, now), order_ref, others_ended=others_ended
    )
    if not others_ended:
        points = min(points, sum(lot.remaining for lot in ordered))
    plan = plan_spending(ordered, points)
    await lots.take(member_id, plan)
    await StandInRepository(uow.session).insert_stand_ins(
        member_id, order_ref, [(lot_id, taken) for lot_id, taken in plan if lot_id not in own], now
    )
    return plan


async def pay_with_own_points(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    state: AccountState,
    *,
    settled_by: dict[str, str] | None,
    live: int,
    orders: Collection[str] | None = None,
) -> tuple[int, int, AccountState]:
    """An order's own points on the member's books pay what the order owes before any other points do (call
    with the account row locked), oldest order first. First its shortfall: from its points past their end
    (leaving the books either way, they settle it rather than expire), then from up to `live` of its points
    still good (those just freed), as far as they are free of the points past their end that holds still
    spare. Then what its refunds took from other lots in place of its own spent points (take_for_order): as
    many of its own points go, and those go back to lots like the ones they came from, with their ends, as if
    the refund had found its own points there; an order owing whose points come back so pays with them in
    turn. Of the member's orders owing or with points standing in, or of `orders`. `settled_by` None: by the
    end of the lot they came from (an expiry). The points settled, of them those still good, and the account
    after."""
    owing = {
        order.order_ref: order
        for order in await OrderRepository(uow.session).list_shortfalls(member_id, other_than=None)
        if order.points_shortfall > 0
    }
    standing = await StandInRepository(uow.session).list_orders_with_open(member_id)
    refs = owing.keys() | standing
    if orders is not None:
        refs &= set(orders)
    oldest_first = list(owing)
    queue = sorted(refs, key=lambda ref: (oldest_first.index(ref) if ref in owing else len(owing), ref))
    lots = LotRepository(uow.session)
    settled = settled_live = 0
    # Points that went back to an order's lots in place of a stand-in pay what that order owes, and only that.
    restored: dict[str, int] = {}
    while queue:
        ref = queue.pop(0)
        now = uow.clock.now()
        # Past their end first: soonest end first.
        own = [lot for lot in await lots.list_lots_on_books(member_id, now) if lot.order_ref == ref]
        if not own:
            continue
        left = {lot.lot_id: lot.remaining for lot in own}
        order = owing.get(ref)
        for ended in (True, False):
            if order is None or order.points_shortfall <= 0:
                break
            part = [LotBalance(lot.lot_id, left[lot.lot_id]) for lot in own if lot.ended == ended]
            points = min(order.points_shortfall, sum(lot.remaining for lot in part), state.available)
            if not ended:
                free = state.available - await lots.due_points(member_id, now)
                points = min(points, live - settled_live + restored.get(ref, 0), free)
            if points <= 0:
                continue
            plan = plan_spending(part, points)
            await lots.take(member_id, plan)
            for lot_id, taken in plan:
                left[lot_id] -= taken
            if settled_by is None:
                for lot_id, taken in plan:
                    by_end = {"settled_by_end": str(lot_id)}
                    state = await settle_shortfall(uow, order, [(lot_id, taken)], settled_by=by_end)
            else:
                state = await settle_shortfall(uow, order, plan, settled_by=settled_by)
            settled += points
            if not ended:
                settled_live += points - min(points, restored.pop(ref, 0))
        returned = await _return_stand_ins(uow, member_id, ref, own, left, state, settled_by or {})
        for back, points in returned.items():
            restored[back] = restored.get(back, 0) + points
        # Each pass returns stand-ins or settles what is owed, of which there is less each time: it ends.
        queue += [back for back in returned if back not in queue and back in owing.keys() | standing]
    return settled, settled_live, state


async def _return_stand_ins(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    order_ref: str,
    own: Sequence[LotOnBooks],
    left: dict[uuid.UUID, int],
    state: AccountState,
    settled_by: dict[str, str],
) -> dict[str, int]:
    """The order's own points in `own` (with what is `left` of each) take the place of what stood in for them
    (pay_with_own_points): as many go back to lots like the stand-ins, the last taken first, in a refund entry
    of the order that moves no balance (`state`, the account as it is). The points that went back still good,
    by the order of the lot they went back to."""
    stand_ins = StandInRepository(uow.session)
    open_ = await stand_ins.list_open(member_id, order_ref)
    points = min(sum(stand_in.points for stand_in in open_), sum(left[lot.lot_id] for lot in own))
    if points <= 0:
        return {}
    lots, now = LotRepository(uow.session), uow.clock.now()
    plan = plan_spending([LotBalance(lot.lot_id, left[lot.lot_id]) for lot in own], points)
    await lots.take(member_id, plan)
    rest = points
    returned: dict[str, int] = {}
    for stand_in in open_:
        back = min(stand_in.points, rest)
        if back <= 0:
            break
        like = NewLot(
            member_id, stand_in.entry_id, back, stand_in.order_ref, at=now, expires_at=stand_in.expires_at
        )
        await lots.insert_lot(like)
        await stand_ins.add_returned(member_id, stand_in.id, back)
        rest -= back
        if stand_in.order_ref is not None and not _ended(stand_in.expires_at, now):
            returned[stand_in.order_ref] = returned.get(stand_in.order_ref, 0) + back
    await record_entry(
        uow,
        member_id=member_id,
        type="refund",
        amount=0,
        state=state,
        order_ref=order_ref,
        details={
            "taken_back": 0,
            "given_back": 0,
            "stand_ins_returned": points,
            "lots": lots_payload(plan),
            **settled_by,
        },
    )
    return returned


async def release_member_expired_holds(uow: UnitOfWork, member_id: uuid.UUID) -> int:
    """Free the member's holds whose time is up (call with the member's account row locked)."""
    expired = await HoldRepository(uow.session).list_member_expired_active(member_id, uow.clock.now())
    released = 0
    for hold in expired:
        released += await release(uow, hold, reason="expired", actor=None) is not None
    return released


async def release_member_holds(uow: UnitOfWork, member_id: uuid.UUID, *, reason: str) -> int:
    """Free every active hold of a member who is closed or erased: no checkout captures it any more."""
    await PointsAccountRepository(uow.session).lock(member_id, uow.clock.now())
    released = 0
    for hold in await HoldRepository(uow.session).list_member_active(member_id):
        released += await release(uow, hold, reason=reason, actor=None) is not None
    return released


async def expire_due_points(uow: UnitOfWork, member_id: uuid.UUID, *, status: str | None = None) -> int:
    """Expire the member's due lots. Points on hold are spared until the hold ends: capturing spends the
    oldest lots first, and a release lets the next expiry take them. `status`: the member's, where the caller
    read it behind its lock on their row (emit_unless_erased)."""
    accounts = PointsAccountRepository(uow.session)
    locked = await accounts.lock(member_id, uow.clock.now())
    if locked is None:
        return 0
    # Read behind the lock: lots that ended while this waited for it are due too, or the change that follows
    # (an adjustment, a refund's take-back) would spend them.
    now = uow.clock.now()
    if await release_member_expired_holds(uow, member_id):
        locked = await accounts.lock(member_id, now)
        assert locked is not None
    lots = LotRepository(uow.session)
    due = await lots.list_due_lots(member_id, now)
    if not due:
        return 0
    # Points past their end of an order still owing pay what it owes rather than expire: its refund would have
    # counted them as expired, owing nothing for them (pay_with_own_points). Read the lots again after it,
    # whatever it settled: its stand-ins going back take from those lots too, and move no balance.
    _, _, locked = await pay_with_own_points(uow, member_id, locked, settled_by=None, live=0)
    due = await lots.list_due_lots(member_id, now)
    expirable = min(sum(lot.remaining for lot in due), locked.available)
    if expirable <= 0:
        return 0
    plan = plan_spending(due, expirable)
    await lots.take(member_id, plan)
    state = await accounts.change(member_id, now=now, balance=-expirable)
    assert state is not None
    await record_entry(
        uow,
        member_id=member_id,
        type="expire",
        amount=-expirable,
        state=state,
        details={"lots": lots_payload(plan)},
    )
    # An erased member's points still end (the figures count them expired), without an event naming them.
    event = PointsExpired(member_id=member_id, points=expirable, balance=state.balance)
    await emit_unless_erased(uow, [(event, member_id, status)])
    return expirable
