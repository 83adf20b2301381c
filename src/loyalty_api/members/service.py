"""Members: what a member's own record decides (whether they may be acted for, their lifecycle stage when they
buy). Their profile (enrol, read, update, close, erase) is in `profiles`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.members.events import MemberLifecycleChanged
from loyalty_api.members.lifecycle import Stage, assess, thresholds_of
from loyalty_api.members.models import ERASED, MemberStatus
from loyalty_api.members.repository import MemberRepository, PointsHolder
from loyalty_api.outbox.events import Event
from loyalty_api.outbox.service import emit_for_member, emit_for_members
from loyalty_api.program.service import get_program


def refuse_unless_found(member: PointsHolder | None, *, must_be_active: bool) -> PointsHolder:
    # points' lock_with_member reads the row whatever its status; the others find no erased member.
    if member is None or member.status == ERASED:
        raise MemberNotFound()
    if must_be_active and member.status != MemberStatus.active:
        raise MemberNotActive(f"The member is {member.status}")
    return member


async def require_member(uow: UnitOfWork, member_id: uuid.UUID, *, must_be_active: bool) -> PointsHolder:
    """The member, refused if not found (or not active when it must be)."""
    member = await MemberRepository(uow.session).get_points_holder(member_id)
    return refuse_unless_found(member, must_be_active=must_be_active)


async def emit_unless_erased(
    uow: UnitOfWork,
    events: Sequence[tuple[Event, uuid.UUID, str | None]],
    *,
    partner_id: uuid.UUID | None = None,
) -> None:
    """Write events about members (`emit_for_members`), each beside its member's id and status, but those
    about an erased member. What still moves an erased member's anonymous records (their points reaching
    their end, a partner's answer to their exchange, their lifecycle stage) emits no event about them:
    receivers were told `member.erased`, and no read finds the member any more. A status is the member's as
    read behind this transaction's lock on their row (a job's claim, their lock for a change), which an
    erasure takes first; None where the caller holds no such read, and then it is read here."""
    unread = {member_id for _, member_id, status in events if status is None}
    erased = await MemberRepository(uow.session).list_erased(unread)  # one read for the whole batch
    told = [
        (event, member_id)
        for event, member_id, status in events
        if not (member_id in erased if status is None else status == ERASED)
    ]
    await emit_for_members(uow, told, partner_id=partner_id)


async def after_purchase(uow: UnitOfWork, member: PointsHolder, purchased_at: datetime) -> None:
    """A purchase makes the member active: if their stage was another, it changes now (`member` read, and
    locked, in this unit of work). An active member's row is left alone: the lifecycle job moves their due
    instant on when it comes, from their latest purchase."""
    if member.lifecycle_stage == Stage.active:
        return
    now = uow.clock.now()
    found = assess(
        enrolled_at=purchased_at,
        last_purchase_at=purchased_at,
        now=now,
        thresholds=thresholds_of(await get_program(uow)),
    )
    if _gone_longer(found.stage, than=member.lifecycle_stage):
        return  # an old purchase, recorded late: the stage the member's latest purchase gave still stands
    change = {"member": member.id, "stage": found.stage, "since": now, "due": found.due, "assessed": now}
    await MemberRepository(uow.session).set_lifecycles([change])
    if member.lifecycle_since is not None:
        event = MemberLifecycleChanged(
            member_id=member.id, previous=member.lifecycle_stage, stage=found.stage, at=now
        )
        await emit_for_member(uow, event, member.id)


# A member who has bought, from the most recent buyer to the longest gone.
_SINCE_LAST_PURCHASE = (Stage.active, Stage.at_risk, Stage.lapsed, Stage.churned)


def _gone_longer(stage: Stage, *, than: str) -> bool:
    """Whether `stage` puts the member's last purchase no later than `than` does (a member at `new` has
    bought nothing yet: any purchase moves them on)."""
    if than not in _SINCE_LAST_PURCHASE:
        return False
    return _SINCE_LAST_PURCHASE.index(stage) >= _SINCE_LAST_PURCHASE.index(than)
