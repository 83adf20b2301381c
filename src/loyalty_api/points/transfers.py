"""Points sent from one member to another: a family pooling its points, a gift to a friend.

The sender's points are spent oldest expiry first, as a redeem spends them, and reach the recipient with the
ends they had: a transfer never makes points last longer, so passing points back and forth cannot keep them
from expiring. They count as neither earned nor spent: not in what the recipient earned in their lifetime nor
towards a tier, and not as issued or redeemed in the analytics (they are `transferred` there).

Both members' rows are locked in ascending member order, whichever of them sends, as every path that locks
several members does: two transfers between the same members in opposite directions wait for one another
rather than deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from loyalty_api.db.ids import new_id
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.members.models import ERASED
from loyalty_api.members.service import require_member
from loyalty_api.outbox.service import emit_for_members
from loyalty_api.points.accounts import (
    Earner,
    check_return_window,
    credit_in_lots,
    debit_available,
    expire_due_points,
    expire_let_go,
    lock_earner,
    lots_payload,
    record_entry,
    settle_with_points_back,
    spend_lots,
)
from loyalty_api.points.errors import (
    InsufficientPoints,
    TransferAlreadyReversed,
    TransferExpired,
    TransferLimitExceeded,
    TransferNotFound,
    TransfersNotOffered,
)
from loyalty_api.points.events import PointsTransferred, PointsTransferReversed
from loyalty_api.points.ledger import plan_spending
from loyalty_api.points.repository import (
    LedgerRepository,
    LotRepository,
    PointsAccountRepository,
)
from loyalty_api.program.service import ProgramSettings, get_program

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TransferResult:
    transfer_id: uuid.UUID
    from_member_id: uuid.UUID
    to_member_id: uuid.UUID
    points: int
    balance: int  # the sender's, after the transfer
    available: int
    created_at: datetime


async def transfer(
    uow: UnitOfWork,
    *,
    from_member_id: uuid.UUID,
    to_member_id: uuid.UUID,
    points: int,
    actor: uuid.UUID | None = None,
) -> TransferResult:
    """Move `points` of the sender's available points to the recipient. Both must be active members."""
    program = await get_program(uow)
    if not program.transfers_enabled:
        raise TransfersNotOffered()
    if to_member_id == from_member_id:
        raise InvalidField("to_member_id", "a member cannot send points to themselves")
    # Both checked, the sender first, before either is locked: the answer does not hang on which id sorts
    # first (the locks below check them again, for what changed since).
    await require_member(uow, from_member_id, must_be_active=True)
    await _as_recipient(require_member(uow, to_member_id, must_be_active=True))
    locked = {
        member_id: await _lock_party(uow, member_id, recipient=member_id == to_member_id)
        for member_id in sorted((from_member_id, to_member_id))
    }
    await _check_daily_limit(uow, program, from_member_id, points)
    await check_return_window(uow, program, locked[from_member_id], points)
    state = await debit_available(uow, from_member_id, points)
    # Points past their end that a hold still spares go last: they would reach the recipient ended.
    sent = await spend_lots(uow, from_member_id, points, due_last=True)
    transfer_id = new_id()
    marks = {"transfer_id": str(transfer_id)}
    # Both sides at one instant, read behind both locks: no report's window or period can end between them,
    # where the points would have left the sender and not reached the recipient (a report counts the points
    # once, as `transferred`, and leaves them out of `net`).
    now = uow.clock.now()
    await record_entry(
        uow,
        member_id=from_member_id,
        type="transfer_out",
        amount=-points,
        state=state,
        details=marks | {"to_member_id": str(to_member_id), "lots": lots_payload(sent)},
        actor=actor,
        at=now,
    )
    paid = await LotRepository(uow.session).paid_from(
        from_member_id, [(lot, taken, now) for lot, taken in sent]
    )
    received = await credit_in_lots(
        uow,
        member_id=to_member_id,
        type="transfer_in",
        parts=[(lot.points, lot.expires_at) for lot in paid],
        details=marks | {"from_member_id": str(from_member_id)},
        actor=actor,
        at=now,
    )
    # A lot the sender had past its end (spared by a hold) ends at once here, as a read counts it.
    received = await expire_let_go(uow, to_member_id, received)
    events = [
        (from_member_id, "sent", state.balance),
        (to_member_id, "received", received.balance),
    ]
    await emit_for_members(
        uow,
        [
            (
                PointsTransferred(
                    member_id=member_id,
                    role=role,
                    transfer_id=transfer_id,
                    from_member_id=from_member_id,
                    to_member_id=to_member_id,
                    points=points,
                    balance=balance,
                ),
                member_id,
            )
            for member_id, role, balance in events
        ],
    )
    return TransferResult(
        transfer_id=transfer_id,
        from_member_id=from_member_id,
        to_member_id=to_member_id,
        points=points,
        balance=state.balance,
        available=state.available,
        created_at=now,
    )


@dataclass(frozen=True, slots=True)
class ReversalResult:
    transfer_id: uuid.UUID
    from_member_id: uuid.UUID
    to_member_id: uuid.UUID
    points: int
    balance: int  # the sender's, after the points came back
    recipient_balance: int
    reversed_at: datetime


async def reverse_transfer(
    uow: UnitOfWork, *, member_id: uuid.UUID, transfer_id: uuid.UUID, reason: str, actor: uuid.UUID | None
) -> ReversalResult:
    """An operator's undoing of a transfer the member sent (to the wrong member, or in a fraud): the points
    of it that have not passed their end go back, from the recipient to the sender, all or none, whatever
    either member's status now. The recipient gives back the transfer's own points first; the sender gets
    them back with the ends they had, so a transfer and its reversal never make points last longer, and
    points that expired at the recipient are not owed (they would have expired with the sender too)."""
    await require_member(uow, member_id, must_be_active=False)
    ledger, lots = LedgerRepository(uow.session), LotRepository(uow.session)
    sent = await ledger.find_transfer(member_id, transfer_id)
    if sent is None:
        raise TransferNotFound()
    recipient = sent.to_member_id
    for party in sorted((member_id, recipient)):
        found = await PointsAccountRepository(uow.session).lock_with_member(party)
        if found is None or found[0].status == ERASED:
            raise TransferNotFound()  # what was an erased member's is not found
        await expire_due_points(uow, party, status=found[0].status)  # what a spend finds, jobs run or not
    # Read behind both locks: points that ended while this waited for them are not owed, as the expiry
    # just run has taken them from the recipient.
    now = uow.clock.now()
    sent = await ledger.find_transfer(member_id, transfer_id)  # read again behind the locks
    assert sent is not None
    if sent.reversed:
        raise TransferAlreadyReversed()
    paid = [
        lot
        for lot in await lots.paid_from(member_id, await ledger.spends_of_entry(member_id, sent.entry_id))
        if lot.expires_at is None or lot.expires_at > now
    ]
    parts = [(lot.points, lot.expires_at) for lot in paid]
    points = sum(part for part, _ in parts)
    if points == 0:
        raise TransferExpired()
    try:
        taken = await debit_available(uow, recipient, points)
    except InsufficientPoints as exc:
        raise InsufficientPoints(
            f"The recipient has {exc.extra['available']} of the {points} points available: points on hold or "
            "spent cannot be taken back (an adjustment on each side moves what is left)",
            available=exc.extra["available"],
            requested=points,
        ) from None
    received = await ledger.received_entry(recipient, transfer_id)
    own = [] if received is None else await lots.live_lots_of_entry(recipient, received, now)
    plan = plan_spending(own, min(points, sum(lot.remaining for lot in own)))
    await lots.take(recipient, plan)
    rest = points - sum(taken_from for _, taken_from in plan)
    plan += await spend_lots(uow, recipient, rest, due_last=True) if rest else []
    marks = {"transfer_id": str(transfer_id), "reason": reason}
    await record_entry(
        uow,
        member_id=recipient,
        type="transfer_out",
        amount=-points,
        state=taken,
        details=marks | {"reversal": True, "to_member_id": str(member_id), "lots": lots_payload(plan)},
        actor=actor,
        at=now,  # the instant of its transfer_return, as a transfer's two sides share one
    )
    back = await credit_in_lots(
        uow,
        member_id=member_id,
        type="transfer_return",
        parts=parts,
        details=marks | {"from_member_id": str(recipient)},
        actor=actor,
        order_refs=[lot.order_ref for lot in paid],  # the sender's own again, of the orders that earned them
        at=now,
    )
    # Points coming back settle the sender's shortfalls first, as points a refund or a failed exchange gives
    # back do (points/refunds.py): a sender who returned the purchase that earned what they sent owes it. The
    # orders that earned them pay what they owe with them first (their shortfall, then their stand-ins); the
    # rest settle the other orders owing only as far as they are not needed in place of points past their end
    # that a hold spares, which never settle another order's shortfall. All come back still good.
    _, back = await settle_with_points_back(
        uow,
        member_id,
        back,
        live=points,
        settled_by={"settled_by_transfer": str(transfer_id)},
        orders={lot.order_ref for lot in paid if lot.order_ref is not None},
    )
    # Lots past their end that a hold spared and these points now let go (and stand-ins gone back past their
    # end) expire now, as after a refund: the answer is what a read shows.
    back = await expire_let_go(uow, member_id, back)
    events = [(member_id, "sender", back.balance), (recipient, "recipient", taken.balance)]
    await emit_for_members(
        uow,
        [
            (
                PointsTransferReversed(
                    member_id=party,
                    role=role,
                    transfer_id=transfer_id,
                    from_member_id=member_id,
                    to_member_id=recipient,
                    points=points,
                    balance=balance,
                    reason=reason,
                ),
                party,
            )
            for party, role, balance in events
        ],
    )
    return ReversalResult(
        transfer_id=transfer_id,
        from_member_id=member_id,
        to_member_id=recipient,
        points=points,
        balance=back.balance,
        recipient_balance=taken.balance,
        reversed_at=now,
    )


async def _lock_party(uow: UnitOfWork, member_id: uuid.UUID, *, recipient: bool) -> Earner:
    """The member and their account locked, refused unless active."""
    locking = lock_earner(uow, member_id)
    return await (_as_recipient(locking) if recipient else locking)


async def _as_recipient(check: Awaitable[T]) -> T:
    """A check of the recipient, its refusal naming the body's field (the path names the sender)."""
    try:
        return await check
    except MemberNotFound:
        raise InvalidField("to_member_id", "no such member") from None
    except MemberNotActive as exc:
        raise MemberNotActive(f"The recipient: {exc.detail}") from None


async def _check_daily_limit(
    uow: UnitOfWork, program: ProgramSettings, member_id: uuid.UUID, points: int
) -> None:
    """Refuse a transfer that takes what the member sent today past the programme's limit. Call behind the
    sender's lock: the sum stays true until this transfer is written."""
    limit = program.transfer_daily_limit
    if limit is None:
        return
    since = program.day_start(uow.clock.now())
    used = await LedgerRepository(uow.session).points_sent_since(member_id, since)
    if used + points > limit:
        raise TransferLimitExceeded(
            f"Today {used} of the {limit} points a member may send are used",
            limit=limit,
            used=used,
            requested=points,
        )
