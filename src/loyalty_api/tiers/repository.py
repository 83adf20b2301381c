"""All queries of tiers: the ladder and its versions, members' tiers and their history, qualifying values."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Update

from loyalty_api.db.constraints import flush_unique
from loyalty_api.db.dialect import insert_or_ignore
from loyalty_api.members.models import ERASED, Member, MemberStatus, not_erased
from loyalty_api.tiers.ladder import StoredEnd
from loyalty_api.tiers.models import Tier, TierChange, TierLadderVersion

_VERSIONS = cast(Table, TierLadderVersion.__table__)


class TierRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_tiers(self) -> Sequence[Tier]:
        return (await self.session.execute(select(Tier).order_by(Tier.rank))).scalars().all()

    async def get_entry_tier(self) -> Tier | None:
        result = await self.session.execute(select(Tier).order_by(Tier.rank).limit(1))
        return result.scalar_one_or_none()

    async def get_by_code(self, code: str) -> Tier | None:
        result = await self.session.execute(select(Tier).where(Tier.code == code))
        return result.scalar_one_or_none()

    async def lock_by_code(self, code: str, *, to: Literal["replace", "delete"]) -> Tier | None:
        """The tier under lock until commit (None: there is none, or a change that held it deleted it). On
        PostgreSQL a replace or delete racing another waits here for it, then reads what it left; SQLite's
        `BEGIN IMMEDIATE` has serialized them already. A delete takes FOR UPDATE: no member may be moved onto
        the tier meanwhile. A replace takes FOR NO KEY UPDATE, which the key share of a member's foreign key
        does not wait for: a window change waits for the members it re-dates, and an earn that holds one of
        them and moves them onto the tier (an override ending) would otherwise wait for the replace, a
        deadlock. For the same reason a replace writes the row (a new rank makes the lock FOR UPDATE) only
        after those members (the lock order: tiers/service.py)."""
        query = select(Tier).where(Tier.code == code)
        query = query.with_for_update(key_share=to == "replace")
        result = await self.session.execute(query.execution_options(populate_existing=True))
        return result.scalar_one_or_none()

    async def exists_rank(self, rank: int, *, other_than: uuid.UUID | None = None) -> bool:
        query = select(Tier.id).where(Tier.rank == rank)
        if other_than is not None:
            query = query.where(Tier.id != other_than)
        return (await self.session.scalar(query)) is not None

    async def insert_tier(self, tier: Tier) -> None:
        self.session.add(tier)
        await flush_unique(self.session)

    async def save_tier(self) -> None:
        await flush_unique(self.session)

    async def delete_tier(self, tier_id: uuid.UUID) -> bool:
        """False when there was no tier to delete."""
        result = await self.session.execute(delete(Tier).where(Tier.id == tier_id).returning(Tier.id))
        return result.scalar_one_or_none() is not None

    async def count_members_on(self, tier_id: uuid.UUID) -> int:
        """Members on the tier whom an operator can move: an erased member is nobody's to move."""
        query = select(func.count()).where(Member.tier_id == tier_id, not_erased())
        return int(await self.session.scalar(query) or 0)

    async def clear_erased_on(self, tier_id: uuid.UUID) -> None:
        """Take the tier off erased members, before it goes: no review ever looks at them again."""
        await self.session.execute(
            update(Member)
            .where(Member.tier_id == tier_id, Member.status == ERASED)
            .values(tier_id=None)
            .execution_options(synchronize_session=False)
        )

    async def get_latest_version(self) -> TierLadderVersion | None:
        result = await self.session.execute(
            select(TierLadderVersion).order_by(TierLadderVersion.version.desc()).limit(1)
        )
        return result.scalar_one_or_none()

    async def get_version(self, version: int) -> TierLadderVersion | None:
        return await self.session.get(TierLadderVersion, version)

    async def list_versions(self, *, before: int | None, limit: int) -> Sequence[TierLadderVersion]:
        query = select(TierLadderVersion)
        if before is not None:
            query = query.where(TierLadderVersion.version < before)
        result = await self.session.execute(query.order_by(TierLadderVersion.version.desc()).limit(limit))
        return result.scalars().all()

    async def latest_snapshots_of(self, codes: Iterable[str], *, batch: int = 50) -> list[Any]:
        """For each code, the tier as the newest ladder version that had it recorded it (codes no version
        had are left out): versions are read newest first, a batch at a time, until every code is found."""
        wanted = set(codes)
        found: list[Any] = []
        before: int | None = None
        while wanted:
            rows = await self.list_versions(before=before, limit=batch)
            for row in rows:
                for tier in row.tiers:
                    if tier.get("code") in wanted:
                        wanted.discard(tier["code"])
                        found.append(tier)
            if len(rows) < batch:
                break
            before = rows[-1].version
        return found

    async def insert_version(self, version: TierLadderVersion) -> bool:
        """False when another transaction took that version number first."""
        result = await self.session.execute(
            insert_or_ignore(self.session, _VERSIONS, ["version"])
            .values(
                version=version.version,
                tiers=version.tiers,
                actor_key_id=version.actor_key_id,
                created_at=version.created_at,
            )
            .returning(_VERSIONS.c.version)
        )
        return result.scalar_one_or_none() is not None


@dataclass(frozen=True, slots=True)
class MemberTierState:
    member_id: uuid.UUID
    status: str
    tier_id: uuid.UUID | None
    tier_since: datetime | None
    window_end: StoredEnd | None  # of the window the review judges; None under an override
    override_until: datetime | None
    earned_id: uuid.UUID | None  # while overridden: the tier earned before, and its window's end
    earned_window_end: StoredEnd | None


def stored_end(at: datetime | None, revision: int | None, days: int | None) -> StoredEnd | None:
    return None if at is None else StoredEnd(at=at, revision=revision, days=days)


_STATE = select(
    Member.id,
    Member.status,
    Member.tier_id,
    Member.tier_since,
    Member.tier_window_end,
    Member.tier_window_revision,
    Member.tier_window_days,
    Member.tier_override_until,
    Member.tier_earned_id,
    Member.tier_earned_window_end,
    Member.tier_earned_window_revision,
    Member.tier_earned_window_days,
).where(Member.id == bindparam("member_id"), not_erased())


_MEMBERS = cast(Table, Member.__table__)


def _set_end(end: str, revision: str, days: str) -> Update:
    return (
        update(_MEMBERS)
        .where(_MEMBERS.c.id == bindparam("member"))
        .values(
            {
                end: bindparam("end", type_=_MEMBERS.c[end].type),
                revision: bindparam("revision", type_=_MEMBERS.c[revision].type),
                days: bindparam("days", type_=_MEMBERS.c[days].type),
            }
        )
    )


_ENTRY_TIER = select(Tier.id).order_by(Tier.rank).limit(1).scalar_subquery()
_SET_WINDOW_END = _set_end("tier_window_end", "tier_window_revision", "tier_window_days")
_SET_EARNED_WINDOW_END = _set_end(
    "tier_earned_window_end", "tier_earned_window_revision", "tier_earned_window_days"
)


def _columns(end: StoredEnd | None) -> tuple[datetime | None, int | None, int | None]:
    return (None, None, None) if end is None else (end.at, end.revision, end.days)


class MemberTierRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_state(
        self, member_id: uuid.UUID, *, lock: bool = False, unless_held: bool = False
    ) -> MemberTierState | None:
        """With `lock`, the member's row stays locked until commit (PostgreSQL), their tier ours to set; with
        `unless_held` as well, None at once, without waiting, when another transaction holds the row."""
        statement = _STATE.with_for_update(key_share=True, skip_locked=unless_held) if lock else _STATE
        row = (await self.session.execute(statement, {"member_id": member_id})).one_or_none()
        if row is None:
            return None
        return MemberTierState(
            member_id=row.id,
            status=row.status,
            tier_id=row.tier_id,
            tier_since=row.tier_since,
            window_end=stored_end(row.tier_window_end, row.tier_window_revision, row.tier_window_days),
            override_until=row.tier_override_until,
            earned_id=row.tier_earned_id,
            earned_window_end=stored_end(
                row.tier_earned_window_end, row.tier_earned_window_revision, row.tier_earned_window_days
            ),
        )

    async def set_tier(
        self,
        member_id: uuid.UUID,
        *,
        tier_id: uuid.UUID,
        since: datetime,
        window_end: StoredEnd | None,
        override_until: datetime | None,
        earned: tuple[uuid.UUID | None, StoredEnd | None] = (None, None),
    ) -> None:
        end, revision, days = _columns(window_end)
        earned_end, earned_revision, earned_days = _columns(earned[1])
        await self.session.execute(
            update(Member)
            .where(Member.id == member_id)
            .values(
                tier_id=tier_id,
                tier_since=since,
                tier_window_end=end,
                tier_window_revision=revision,
                tier_window_days=days,
                tier_override_until=override_until,
                tier_earned_id=earned[0],
                tier_earned_window_end=earned_end,
                tier_earned_window_revision=earned_revision,
                tier_earned_window_days=earned_days,
            )
            .execution_options(synchronize_session=False)
        )

    async def set_window_end(self, member_id: uuid.UUID, window_end: StoredEnd | None) -> None:
        end, revision, days = _columns(window_end)
        await self.session.execute(
            update(Member)
            .where(Member.id == member_id)
            .values(tier_window_end=end, tier_window_revision=revision, tier_window_days=days)
            .execution_options(synchronize_session=False)
        )

    async def _exists(self, found: Select[uuid.UUID], order: Sequence[Any]) -> bool:
        """Whether `found` finds a member, read without locking: its first row in `order`, not EXISTS, which
        drops the order and leaves the planner free to read the whole table for the first row (PostgreSQL:
        its estimate takes the tier and the revision's column for independent, and expects many rows where
        there are few, or none, as on almost every run of the worker). In the order of an index, one that
        reads it is the cheaper."""
        first = await self.session.scalar(found.order_by(*order).limit(1))
        return first is not None

    async def exists_behind(self, tier_id: uuid.UUID, revision: int, *, earned: bool) -> bool:
        """Whether lock_behind would find a member (read without locking)."""
        _, _, behind = self._ends(tier_id, earned=earned)
        return await self._exists(self._behind(tier_id, revision, earned=earned), (behind, Member.id))

    async def lock_behind(
        self,
        tier_id: uuid.UUID,
        revision: int,
        *,
        earned: bool,
        after: tuple[int, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[tuple[uuid.UUID, StoredEnd]]:
        """(member id, stored end) of at most `limit` members whose end for the tier was worked out under an
        earlier revision of its window than `revision`: members on the tier, or with `earned` members under an
        override who had earned it; in (that revision, id) order, after `after` (keyset: the rows a batch
        re-dated leave dead index entries behind it, which the next batch does not walk again). Each locked
        until commit; one another transaction holds is left out (a till's earn, or another worker, has it: the
        next run looks again), so the walk waits for nobody."""
        _, end, behind = self._ends(tier_id, earned=earned)
        days = Member.tier_earned_window_days if earned else Member.tier_window_days
        query = self._behind(tier_id, revision, earned=earned).add_columns(end, behind, days)
        if after is not None:
            query = query.where(tuple_(behind, Member.id) > tuple_(*after))
        query = query.order_by(behind, Member.id).limit(limit)
        rows = (await self.session.execute(query.with_for_update(key_share=True, skip_locked=True))).all()
        return [
            (member_id, StoredEnd(at, number, days)) for member_id, at, number, days in rows if at is not None
        ]

    def _behind(self, tier_id: uuid.UUID, revision: int, *, earned: bool) -> Select[uuid.UUID]:
        held, _, behind = self._ends(tier_id, earned=earned)
        return select(Member.id).where(held, behind < revision, not_erased())

    async def exists_unrevised(self, tier_id: uuid.UUID, *, earned: bool) -> bool:
        """Whether lock_unrevised would find a member (read without locking)."""
        _, _, revision = self._ends(tier_id, earned=earned)
        return await self._exists(self._unrevised(tier_id, earned=earned), (revision, Member.id))

    async def lock_unrevised(
        self, tier_id: uuid.UUID, *, earned: bool, limit: int
    ) -> Sequence[tuple[uuid.UUID, datetime | None]]:
        """(member id, stored end) of at most `limit` members whose end for the tier names no revision of its
        window, though it is not the entry tier (as the statement finds the ranks): none at all (they were put
        on it as the entry tier), or one written by the code before revisions. Members on the tier and not
        under an override, or with `earned` under an override having earned it; locked as lock_behind
        locks."""
        _, end, revision = self._ends(tier_id, earned=earned)
        # By (revision, id), all none: the order of the walk's index, which the planner then reads.
        query = self._unrevised(tier_id, earned=earned).add_columns(end).order_by(revision, Member.id)
        query = query.limit(limit)
        found = await self.session.execute(query.with_for_update(key_share=True, skip_locked=True))
        return [(member_id, at) for member_id, at in found.all()]

    def _unrevised(self, tier_id: uuid.UUID, *, earned: bool) -> Select[uuid.UUID]:
        held, _, revision = self._ends(tier_id, earned=earned)
        if not earned:
            held = and_(held, Member.tier_override_until.is_(None))
        not_entry = literal(tier_id, Member.tier_id.type) != _ENTRY_TIER
        return select(Member.id).where(held, revision.is_(None), not_entry, not_erased())

    @staticmethod
    def _ends(tier_id: uuid.UUID, *, earned: bool) -> tuple[ColumnElement[bool], Any, Any]:
        """Who is judged on the tier's window, their end's column and its revision's: members on the tier, or
        with `earned` members under an override who had earned it."""
        if earned:
            return _earned(tier_id), Member.tier_earned_window_end, Member.tier_earned_window_revision
        return Member.tier_id == tier_id, Member.tier_window_end, Member.tier_window_revision

    async def exists_without_tier(self) -> bool:
        """Whether place_on_entry_tier would find a member (read without locking)."""
        return await self._exists(
            select(Member.id).where(Member.tier_id.is_(None), not_erased()), (Member.tier_id,)
        )

    async def place_on_entry_tier(self, now: datetime, *, limit: int) -> int:
        """Put at most `limit` members on no tier (enrolled while the ladder had none) on the entry tier as
        the statement finds the ranks, since `now`, as an enrolment would have: no window to keep, no
        history entry. Members another transaction holds are left (an earn places them itself); how many
        were put."""
        found = await self.session.scalars(
            select(Member.id)
            .where(Member.tier_id.is_(None), not_erased())
            # In an index's order (tier_id leads two), so a batch reads a batch: (tier_id, id), which none
            # gives, read every member on no tier and sorted them, for each batch.
            .order_by(Member.tier_id)
            .limit(limit)
            .with_for_update(key_share=True, skip_locked=True)
        )
        member_ids = list(found)
        if not member_ids:
            return 0
        # Only while the ladder has a tier: the caller's ladder may be older than a delete of the only one
        # (its cache, or a read before the delete), and none found here would write no tier and count the
        # members as placed, so that a whole batch was taken again and again.
        placed = await self.session.execute(
            update(Member)
            .where(Member.id.in_(member_ids), Member.tier_id.is_(None), _ENTRY_TIER.is_not(None))
            .values(tier_id=_ENTRY_TIER, tier_since=now)
            .returning(Member.id)
            .execution_options(synchronize_session=False)
        )
        return len(placed.all())

    async def set_window_ends(self, ends: Sequence[tuple[uuid.UUID, StoredEnd]], *, earned: bool) -> None:
        """Store each member's end for their tier (with `earned`: for the tier earned before their override),
        in one statement run for them all."""
        if ends:
            await self.session.execute(
                _SET_EARNED_WINDOW_END if earned else _SET_WINDOW_END,
                [
                    {"member": member_id, "end": end.at, "revision": end.revision, "days": end.days}
                    for member_id, end in ends
                ],
            )

    async def list_due_for_review(
        self, tier_id: uuid.UUID, judged_by: datetime, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[tuple[datetime, uuid.UUID]]:
        """(window end, member id) of the tier's members, not under an override, whose window ended at
        `judged_by` or earlier, in that order, after `after` (keyset: the walk goes on past a member even if
        they were to stay due)."""
        query = select(Member.tier_window_end, Member.id).where(
            Member.tier_id == tier_id, Member.tier_window_end <= judged_by, not_erased()
        )
        if after is not None:
            query = query.where(tuple_(Member.tier_window_end, Member.id) > tuple_(*after))
        result = await self.session.execute(query.order_by(Member.tier_window_end, Member.id).limit(limit))
        return [(end, member_id) for end, member_id in result.all() if end is not None]

    async def list_overrides_ended(
        self, now: datetime, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[tuple[datetime, uuid.UUID]]:
        """(override's end, member id) of members whose override ended at `now` or earlier, in that order,
        after `after`."""
        query = select(Member.tier_override_until, Member.id).where(
            Member.tier_override_until.is_not(None), Member.tier_override_until <= now, not_erased()
        )
        if after is not None:
            query = query.where(tuple_(Member.tier_override_until, Member.id) > tuple_(*after))
        result = await self.session.execute(
            query.order_by(Member.tier_override_until, Member.id).limit(limit)
        )
        return [(end, member_id) for end, member_id in result.all() if end is not None]

    async def list_due_for_reminder(
        self,
        tier_id: uuid.UUID,
        ended_after: datetime,
        ends_by: datetime,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[tuple[datetime, uuid.UUID]]:
        """(window end, member id) of the tier's active members whose window ends after `ended_after` and by
        `ends_by`, and who were not told of that window yet, in that order after `after`. Members under an
        override have no window."""
        query = select(Member.tier_window_end, Member.id).where(
            Member.tier_id == tier_id,
            Member.tier_window_end > ended_after,
            Member.tier_window_end <= ends_by,
            Member.tier_reminded_window_end.is_distinct_from(Member.tier_window_end),
            Member.status == MemberStatus.active,
        )
        if after is not None:
            query = query.where(tuple_(Member.tier_window_end, Member.id) > tuple_(*after))
        result = await self.session.execute(query.order_by(Member.tier_window_end, Member.id).limit(limit))
        return [(end, member_id) for end, member_id in result.all() if end is not None]

    async def mark_reminded(self, member_id: uuid.UUID, window_end: datetime) -> bool:
        """Note that the member was told of the window ending at `window_end`; False if they were already."""
        result = await self.session.execute(
            update(Member)
            .where(Member.id == member_id, Member.tier_reminded_window_end.is_distinct_from(window_end))
            .values(tier_reminded_window_end=window_end)
            .returning(Member.id)
        )
        return result.first() is not None

    async def replace_override_reasons(self, member_id: uuid.UUID, replacement: str) -> list[str]:
        """For an erasure: the reasons operators wrote for the member's overrides (free text, which may name
        them) become `replacement`. The reasons as they were."""
        overrides = (TierChange.member_id == member_id, TierChange.change == "override")
        reasons = list(await self.session.scalars(select(TierChange.reason).where(*overrides)))
        await self.session.execute(
            update(TierChange)
            .where(*overrides)
            .values(reason=replacement)
            .execution_options(synchronize_session=False)
        )
        return [reason for reason in reasons if reason != replacement]

    async def insert_change(self, change: TierChange) -> None:
        self.session.add(change)
        await self.session.flush()

    async def get_first_change_after(self, member_id: uuid.UUID, at: datetime) -> TierChange | None:
        result = await self.session.execute(
            select(TierChange)
            .where(TierChange.member_id == member_id, TierChange.created_at > at)
            .order_by(TierChange.created_at, TierChange.id)
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def list_changes(
        self, member_id: uuid.UUID, *, before_id: uuid.UUID | None, limit: int
    ) -> Sequence[TierChange]:
        query = select(TierChange).where(TierChange.member_id == member_id)
        if before_id is not None:
            query = query.where(TierChange.id < before_id)
        result = await self.session.execute(query.order_by(TierChange.id.desc()).limit(limit))
        return result.scalars().all()


def _earned(tier_id: uuid.UUID) -> ColumnElement[bool]:
    """Members under an override who had earned the tier before it (only an override sets what was earned:
    saying so lets the query read the small index of overrides)."""
    return and_(Member.tier_override_until.is_not(None), Member.tier_earned_id == tier_id)


def ladder_snapshot(tiers: Sequence[Tier], benefit_ids: dict[uuid.UUID, list[uuid.UUID]]) -> list[Any]:
    return [
        {
            "id": str(t.id),
            "rank": t.rank,
            "code": t.code,
            "name": t.name,
            "metric": t.metric,
            "window": t.window_kind,
            "window_days": t.window_days,
            "threshold": t.threshold,
            "points_multiplier": str(t.points_multiplier),
            "grace_days": t.grace_days,
            "benefit_ids": [str(b) for b in benefit_ids.get(t.id, [])],
        }
        for t in tiers
    ]
