from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Select, Table, bindparam, case, delete, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.constraints import flush_unique
from loyalty_api.db.direct import DirectStatement
from loyalty_api.members.models import ERASED, Member, MemberExternalId, MemberRfm, MemberStatus, not_erased

_MEMBERS = cast(Table, Member.__table__)
_EXTERNAL = cast(Table, MemberExternalId.__table__)
_RFM = cast(Table, MemberRfm.__table__)


def narrow_members(
    query: Select[Any],
    *,
    tier_id: uuid.UUID | None,
    lifecycle: str | None,
    segment: str | None,
    birthday_month_key: str | None,
) -> Select[Any]:
    """`query` (a select from members) narrowed to the members on a tier, in a lifecycle stage, in an RFM
    segment and born in a month (by the month's keyed hash, never by reading a birthday), each filter given:
    the member list and a campaign's audience (campaigns/audience.py) pick members the same way."""
    if segment is not None:
        query = query.join(_RFM, _RFM.c.member_id == _MEMBERS.c.id).where(_RFM.c.segment == segment)
    if lifecycle is not None:
        query = query.where(_MEMBERS.c.lifecycle_stage == lifecycle)
    if birthday_month_key is not None:
        query = query.where(_MEMBERS.c.birthday_month_key == birthday_month_key)
    if tier_id is not None:
        query = query.where(_MEMBERS.c.tier_id == tier_id)
    return query


@dataclass(frozen=True, slots=True)
class PointsHolder:
    """What the points operations need of a member, read in one statement."""

    id: uuid.UUID
    status: str
    birthday_encrypted: str | None
    tier_id: uuid.UUID | None
    tier_window_end: datetime | None
    tier_window_revision: int | None
    tier_window_days: int | None
    tier_override_until: datetime | None
    plan_benefits_until: datetime | None
    lifecycle_stage: str
    lifecycle_since: datetime | None
    referred_by_id: uuid.UUID | None
    tier_since: datetime | None


# Table columns, not ORM attributes: a select of these skips the ORM's result machinery, and every points
# operation at the till runs it.
POINTS_HOLDER_COLUMNS = (
    _MEMBERS.c.id,
    _MEMBERS.c.status,
    _MEMBERS.c.birthday_encrypted,
    _MEMBERS.c.tier_id,
    _MEMBERS.c.tier_window_end,
    _MEMBERS.c.tier_window_revision,
    _MEMBERS.c.tier_window_days,
    _MEMBERS.c.tier_override_until,
    _MEMBERS.c.plan_benefits_until,
    _MEMBERS.c.lifecycle_stage,
    _MEMBERS.c.lifecycle_since,
    _MEMBERS.c.referred_by_id,
    _MEMBERS.c.tier_since,
)
_POINTS_HOLDER = DirectStatement(
    select(*POINTS_HOLDER_COLUMNS).where(_MEMBERS.c.id == bindparam("member_id"), not_erased())
)
_POINTS_HOLDERS: Select[Any] = select(*POINTS_HOLDER_COLUMNS).where(
    _MEMBERS.c.id.in_(bindparam("member_ids", expanding=True)), not_erased()
)


@dataclass(frozen=True, slots=True)
class Celebrating:
    """A member whose birthday it is, with what their standing needs of their row."""

    id: uuid.UUID
    status: str
    tier_id: uuid.UUID | None
    plan_benefits_until: datetime | None


def _celebrating(
    day_keys: Sequence[str], enrolled_before: datetime
) -> Select[uuid.UUID, str, uuid.UUID | None, datetime | None]:
    return select(Member.id, Member.status, Member.tier_id, Member.plan_benefits_until).where(
        Member.birthday_day_key.in_(list(day_keys)),
        Member.status == "active",
        Member.created_at < enrolled_before,
    )


@dataclass(frozen=True, slots=True)
class LifecycleRow:
    id: uuid.UUID
    created_at: datetime
    stage: str
    since: datetime | None
    status: str
    assessed_at: datetime | None


_LIFECYCLE_COLUMNS = (
    _MEMBERS.c.id,
    _MEMBERS.c.created_at,
    _MEMBERS.c.lifecycle_stage,
    _MEMBERS.c.lifecycle_since,
    _MEMBERS.c.status,
    _MEMBERS.c.lifecycle_assessed_at,
)
_SET_LIFECYCLE = (
    update(_MEMBERS)
    .where(_MEMBERS.c.id == bindparam("member"))
    .values(
        lifecycle_stage=bindparam("stage"),
        lifecycle_since=bindparam("since"),
        lifecycle_due_at=bindparam("due"),
        lifecycle_assessed_at=bindparam("assessed"),
    )
)


# The advisory lock key of an import's turn (profiles/imports.py).
IMPORT_LOCK = 0x1A_B0_27_ED


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_any_ciphertext(self) -> str | None:
        """One encrypted personal value, any member's (None: no member has any)."""
        sealed = (
            Member.phone_encrypted,
            Member.email_encrypted,
            Member.name_encrypted,
            Member.birthday_encrypted,
        )
        query = (
            select(func.coalesce(*sealed)).where(or_(*(column.is_not(None) for column in sealed))).limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def take_import_turn(self) -> None:
        """Wait for any other import to end, and hold the turn until this transaction ends. PostgreSQL: a
        transaction-scoped advisory lock. SQLite: writing transactions already run one at a time."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(select(func.pg_advisory_xact_lock(IMPORT_LOCK)))

    async def lock_lifecycles_due(
        self, now: datetime, *, reassess_before: datetime | None, limit: int
    ) -> list[LifecycleRow]:
        """Up to `limit` members whose stage is due to change by `now`, or (when the thresholds changed at
        `reassess_before`) who were last assessed before then; locked until commit, members locked by
        someone else (a purchase under way) skipped."""
        due = (
            select(*_LIFECYCLE_COLUMNS)
            .where(_MEMBERS.c.lifecycle_due_at <= now)
            .order_by(_MEMBERS.c.lifecycle_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        found = [LifecycleRow(*row) for row in (await self.session.execute(due)).all()]
        if reassess_before is not None and len(found) < limit:
            stale = (
                select(*_LIFECYCLE_COLUMNS)
                .where(_MEMBERS.c.lifecycle_assessed_at < reassess_before)
                .order_by(_MEMBERS.c.lifecycle_assessed_at)
                .limit(limit - len(found))
                .with_for_update(skip_locked=True)
            )
            seen = {row.id for row in found}
            found += [
                row
                for row in (LifecycleRow(*r) for r in (await self.session.execute(stale)).all())
                if row.id not in seen
            ]
        return found

    async def set_lifecycles(self, changes: Sequence[dict[str, Any]]) -> None:
        """Each member's stage, since when, next due instant and assessment time (`member`, `stage`, `since`,
        `due`, `assessed`): one statement, run for them all."""
        if changes:
            await self.session.execute(_SET_LIFECYCLE, list(changes))

    async def get_points_holder(self, member_id: uuid.UUID) -> PointsHolder | None:
        row = await _POINTS_HOLDER.fetch_one(self.session, {"member_id": member_id})
        return None if row is None else PointsHolder(*row)

    async def list_holders(self, member_ids: Sequence[uuid.UUID]) -> list[PointsHolder]:
        """Those of `member_ids` that exist, in one statement."""
        rows = await self.session.execute(_POINTS_HOLDERS, {"member_ids": list(member_ids)})
        return [PointsHolder(*row) for row in rows.all()]

    async def list_celebrating(
        self, day_keys: Sequence[str], *, enrolled_before: datetime, after: uuid.UUID | None, limit: int
    ) -> Sequence[Celebrating]:
        """The active members whose birthday has one of these day keys, enrolled before `enrolled_before`, in
        id order, with what their standing needs of their row: read through the day key's index, so only they
        are read."""
        query = _celebrating(day_keys, enrolled_before)
        if after is not None:
            query = query.where(Member.id > after)
        rows = (await self.session.execute(query.order_by(Member.id).limit(limit))).all()
        return [Celebrating(*row) for row in rows]

    async def lock_celebrating(
        self, member_id: uuid.UUID, day_keys: Sequence[str], *, enrolled_before: datetime
    ) -> Celebrating | None:
        """The member as list_celebrating reads them, if they still celebrate (active, their birthday one of
        these days), share-locked until commit (PostgreSQL): a suspension, erasure or change of birthday that
        committed since the list is seen, one under way is waited for, and none starts until the gift is
        given."""
        query = (
            _celebrating(day_keys, enrolled_before).where(Member.id == member_id).with_for_update(read=True)
        )
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else Celebrating(*row)

    async def list_unkeyed_birthdays(
        self, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[uuid.UUID, str]]:
        """(member id, encrypted birthday) of members whose birthday has no keys yet (stored before keys
        existed), in id order after `after`, through their partial index: once keyed, a member is never
        read here again."""
        query = (
            select(Member.id, Member.birthday_encrypted)
            .where(Member.birthday_encrypted.is_not(None), Member.birthday_day_key.is_(None))
            .order_by(Member.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(Member.id > after)
        rows = (await self.session.execute(query)).all()
        return [(m, b) for m, b in rows if b is not None]

    async def set_birthday_keys(self, keys: Sequence[tuple[uuid.UUID, str, str, str]]) -> None:
        """(member id, encrypted birthday read, day key, month key) for each member, in one statement; a
        member whose birthday changed since it was read keeps the keys that change wrote."""
        if keys:
            await self.session.execute(
                update(_MEMBERS)
                .where(
                    _MEMBERS.c.id == bindparam("member_id"),
                    _MEMBERS.c.birthday_encrypted == bindparam("read"),
                )
                .values(birthday_day_key=bindparam("day_key"), birthday_month_key=bindparam("month_key")),
                [{"member_id": m, "read": r, "day_key": d, "month_key": k} for m, r, d, k in keys],
            )

    async def get_member(self, member_id: uuid.UUID, *, lock: bool = False) -> Member | None:
        """With `lock`, the row stays locked until commit (PostgreSQL): a change and an erasure of the same
        member take turns, so a change read before an erasure cannot write personal data back after it. The
        lock is FOR NO KEY UPDATE, as the till's points operations take: a redeem holding the account's row
        while it writes rows that refer to the member (a key share of this row) does not wait on it, so the
        close or erasure that frees the member's holds behind that account row cannot deadlock with it."""
        if not lock:
            return await self.session.get(Member, member_id)
        found = await self.session.execute(
            select(Member).where(Member.id == member_id).with_for_update(key_share=True)
        )
        return found.scalar_one_or_none()

    async def list_erased(self, member_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `member_ids` that are erased, as committed when read (no lock, and not the session's
        copy), in one statement."""
        if not member_ids:
            return set()
        query = select(Member.id).where(Member.id.in_(list(member_ids)), Member.status == ERASED)
        return set((await self.session.scalars(query)).all())

    async def get_referrer(self, code: str) -> tuple[uuid.UUID, str] | None:
        """The id and status of the member whose referral code this is (an erased member's code leads
        nowhere, as their old card does)."""
        query = select(Member.id, Member.status).where(Member.referral_code == code, not_erased())
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def exists_member_number(self, member_number: str) -> bool:
        return bool(await self.session.scalar(select(exists().where(Member.member_number == member_number))))

    async def exists_referral_code(self, code: str) -> bool:
        return bool(await self.session.scalar(select(exists().where(Member.referral_code == code))))

    async def exists_contact_hash(
        self, field: Literal["phone", "email"], value_hash: str, *, other_than: uuid.UUID | None = None
    ) -> bool:
        column = Member.phone_hash if field == "phone" else Member.email_hash
        condition = column == value_hash
        if other_than is not None:
            condition = condition & (Member.id != other_than)
        return bool(await self.session.scalar(select(exists().where(condition))))

    async def exists_external_id(
        self, system: str, external_id: str, *, other_than: uuid.UUID | None = None
    ) -> bool:
        condition = (MemberExternalId.system == system) & (MemberExternalId.external_id == external_id)
        if other_than is not None:
            condition = condition & (MemberExternalId.member_id != other_than)
        return bool(await self.session.scalar(select(exists().where(condition))))

    async def insert_member(self, member: Member) -> None:
        self.session.add(member)
        await flush_unique(self.session)

    async def save_member(self) -> None:
        await flush_unique(self.session)

    async def set_external_id(self, member_id: uuid.UUID, system: str, external_id: str) -> None:
        await self.session.execute(
            delete(MemberExternalId).where(
                MemberExternalId.member_id == member_id, MemberExternalId.system == system
            )
        )
        self.session.add(MemberExternalId(member_id=member_id, system=system, external_id=external_id))
        await flush_unique(self.session)

    async def erase(self, member_id: uuid.UUID, at: datetime, *, member_number: str) -> int:
        """Remove the member's personal data, blind indexes and external ids, give the row a new card number
        (the old card leads nowhere), and mark it erased; the number of external ids removed."""
        await self.session.execute(
            update(_MEMBERS)
            .where(_MEMBERS.c.id == member_id)
            .values(
                status=ERASED,
                member_number=member_number,
                phone_encrypted=None,
                phone_hash=None,
                email_encrypted=None,
                email_hash=None,
                name_encrypted=None,
                birthday_encrypted=None,
                birthday_day_key=None,
                birthday_month_key=None,
                marketing_consent=False,
                leaderboard_opt_in=False,
                # Kept for a closed member, so the counts go on leaving them out; dated now when a process of
                # the release before closed_at closed them (a rolling deploy), cleared when one reopened them.
                closed_at=case(
                    (
                        _MEMBERS.c.status == MemberStatus.closed,
                        func.coalesce(_MEMBERS.c.closed_at, literal(at, _MEMBERS.c.closed_at.type)),
                    ),
                    else_=None,
                ),
                # The tier stays as it was: no review looks at the member again, so nothing dates it: no
                # window, no override (its end and what was earned before it). (Their lifecycle stage goes
                # on moving with time, as everyone else's does in the figures.)
                tier_window_end=None,
                tier_window_revision=None,
                tier_window_days=None,
                tier_override_until=None,
                tier_earned_id=None,
                tier_earned_window_end=None,
                tier_earned_window_revision=None,
                tier_earned_window_days=None,
                updated_at=at,
            )
        )
        removed = await self.session.execute(delete(_EXTERNAL).where(_EXTERNAL.c.member_id == member_id))
        return int(getattr(removed, "rowcount", 0) or 0)

    async def get_external_ids(self, member_id: uuid.UUID) -> dict[str, str]:
        """The member's id in each system that knows them."""
        query = select(_EXTERNAL.c.system, _EXTERNAL.c.external_id).where(_EXTERNAL.c.member_id == member_id)
        return {system: external_id for system, external_id in (await self.session.execute(query)).all()}

    async def external_ids_of(self, member_id: uuid.UUID) -> list[str]:
        query = select(_EXTERNAL.c.external_id).where(_EXTERNAL.c.member_id == member_id)
        return list((await self.session.scalars(query)).all())

    async def delete_external_id(self, member_id: uuid.UUID, system: str) -> None:
        await self.session.execute(
            delete(MemberExternalId).where(
                MemberExternalId.member_id == member_id, MemberExternalId.system == system
            )
        )
