"""The tier ladder: define tiers, keep every version of the ladder, read it (cached) for the hot paths.

Lock order. Whatever changes a tier, or a member's place on the ladder, takes its locks in this order:
members' rows (several: in ascending id order), then their points accounts, then tiers' rows, then the ladder
version. An earn locks its member and their account (lock_earner), then, writing the member's tier and the
change it records, takes a key share of the rows of the tiers they name (their foreign keys). A replace of a
tier locks the tier's row FOR NO KEY UPDATE, which serializes it with another replace or a delete of the tier
and which no key share waits for; a new rank (a key: it is unique) makes the lock FOR UPDATE, which key shares
wait for; then the ladder version. A change of the ladder writes no member: a change of a tier's window makes
a new revision of it, and a change of the ranks that leaves members on a tier that is no longer the entry tier
with no window to be judged on leaves them so; the worker dates both (tiers/redating.py), and readers take
them as it will (membership.judged_end), so that a change answers in the same time whatever the number of
members it concerns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from loyalty_api.db.changes import column_values
from loyalty_api.db.constraints import DuplicateKey
from loyalty_api.db.pagination import Page, decode_place, encode_place, page_after, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.grants.granted import GrantedBenefit
from loyalty_api.grants.repository import BenefitRepository
from loyalty_api.outbox.service import emit_for_programme
from loyalty_api.tiers.errors import (
    LadderChangedMeanwhile,
    LadderVersionNotFound,
    TierExists,
    TierInUse,
    TierNotFound,
    TierRankTaken,
)
from loyalty_api.tiers.events import TierLadderChanged
from loyalty_api.tiers.ladder import (
    LADDER_CACHE_KEY,
    Ladder,
    LadderTier,
    Metric,
    PastWindow,
    Window,
)
from loyalty_api.tiers.models import Tier, TierLadderVersion
from loyalty_api.tiers.repository import (
    MemberTierRepository,
    MemberTierState,
    TierRepository,
    ladder_snapshot,
)

MAX_VERSION = 2**31 - 1  # ladder versions are 32-bit integers in the database
TIERS = scope_of("tiers")  # the ladder's cursors carry it
LADDER_VERSIONS = scope_of("tier_versions")  # the ladder history's cursors carry it


@dataclass(frozen=True, slots=True)
class TierDefinition:
    name: str
    rank: int
    metric: Metric
    window: Window
    window_days: int | None
    threshold: int
    points_multiplier: Decimal
    grace_days: int
    benefit_ids: Sequence[uuid.UUID]


@dataclass(frozen=True, slots=True)
class LadderVersion:
    version: int
    tiers: list[dict[str, object]]
    created_at: datetime


async def get_ladder(uow: UnitOfWork) -> Ladder:
    cached: Ladder | None = uow.cache.get(LADDER_CACHE_KEY)
    if cached is not None:
        return cached
    ladder = await _load_ladder(uow)
    uow.cache.put(LADDER_CACHE_KEY, ladder, uow.cache_stamp)
    return ladder


async def list_tiers(uow: UnitOfWork, *, limit: int, cursor: str | None) -> tuple[int, Page[LadderTier]]:
    """The ladder's version and a page of its tiers, lowest rank first (the cursor carries the last rank)."""
    ladder = await get_ladder(uow)
    page = page_after(
        ladder.tiers, limit=limit, cursor=cursor, key=lambda tier: (tier.rank,), shape=(int,), scope=TIERS
    )
    return ladder.version, page


async def _load_ladder(uow: UnitOfWork) -> Ladder:
    repo = TierRepository(uow.session)
    rows = await repo.list_tiers()
    grants = await BenefitRepository(uow.session).list_grants([("tier", t.id) for t in rows])
    latest = await repo.get_latest_version()
    return Ladder(
        version=0 if latest is None else latest.version,
        tiers=tuple(
            LadderTier(
                id=t.id,
                rank=t.rank,
                code=t.code,
                name=t.name,
                metric=Metric(t.metric),
                window=Window(t.window_kind),
                window_days=t.window_days,
                threshold=t.threshold,
                points_multiplier=t.points_multiplier,
                grace_days=t.grace_days,
                benefits=tuple(
                    GrantedBenefit.stored(b)
                    for source_type, source_id, b in grants
                    if source_type == "tier" and source_id == t.id
                ),
                revision=t.window_revision,
                past_windows=tuple(
                    PastWindow(
                        revision=p["revision"], window=Window(p["window"]), window_days=p["window_days"]
                    )
                    for p in t.past_windows
                ),
            )
            for t in rows
        ),
    )


async def member_tier(
    uow: UnitOfWork, member_id: uuid.UUID
) -> tuple[MemberTierState | None, LadderTier | None]:
    state = await MemberTierRepository(uow.session).get_state(member_id)
    if state is None:
        return None, None
    return state, (await get_ladder(uow)).by_id(state.tier_id)


@contextmanager
def _duplicates_named() -> Iterator[None]:
    """Two operators adding the same code or rank at once: the unique constraint decides, and the loser gets
    the same 409 as if the check before had seen it."""
    try:
        yield
    except DuplicateKey as exc:
        if exc.constraint == "uq_tiers__code":
            raise TierExists() from exc
        if exc.constraint == "uq_tiers__rank":
            raise TierRankTaken() from exc
        raise


def _check(definition: TierDefinition) -> None:
    if definition.window is Window.rolling_days and definition.window_days is None:
        raise InvalidField("window_days", "is required for a rolling window")
    if definition.window is Window.calendar_year and definition.window_days is not None:
        raise InvalidField("window_days", "applies to rolling windows only")


async def _refuse_unless_applicable(
    uow: UnitOfWork, tier_id: uuid.UUID | None, definition: TierDefinition
) -> None:
    """Refuse a definition whose rank another tier has, or that names a benefit there is not."""
    if await TierRepository(uow.session).exists_rank(definition.rank, other_than=tier_id):
        raise TierRankTaken(f"Rank {definition.rank} is taken")
    benefit_ids = list(dict.fromkeys(definition.benefit_ids))
    found = {b.id for b in await BenefitRepository(uow.session).list_by_ids(benefit_ids)}
    missing = [str(b) for b in benefit_ids if b not in found]
    if missing:
        raise InvalidField("benefit_ids", f"no such benefit: {', '.join(missing)}")


def _apply(row: Tier, definition: TierDefinition) -> None:
    row.name = definition.name
    row.rank = definition.rank
    row.metric = definition.metric
    row.window_kind = definition.window
    row.window_days = definition.window_days
    row.threshold = definition.threshold
    row.points_multiplier = definition.points_multiplier
    row.grace_days = definition.grace_days


async def record_ladder_version(uow: UnitOfWork, actor: uuid.UUID | None = None) -> int:
    """Write the ladder as it now stands as a new version (members' tier changes cite it)."""
    return await _write_version(uow, actor)


async def _write_version(uow: UnitOfWork, actor: uuid.UUID | None, *, number: int | None = None) -> int:
    """Record the ladder as this transaction has written it, as version `number` (None: the one after the
    latest); refused when another change took that number first."""
    repo = TierRepository(uow.session)
    tiers = await repo.list_tiers()
    grants = await BenefitRepository(uow.session).list_grants([("tier", t.id) for t in tiers])
    benefit_ids: dict[uuid.UUID, list[uuid.UUID]] = {}
    for _, source_id, benefit in grants:
        benefit_ids.setdefault(source_id, []).append(benefit.id)
    if number is None:
        latest = await repo.get_latest_version()
        number = 1 if latest is None else latest.version + 1
    recorded = await repo.insert_version(
        TierLadderVersion(
            version=number,
            tiers=ladder_snapshot(tiers, benefit_ids),
            actor_key_id=actor,
            created_at=uow.clock.now(),
        )
    )
    if not recorded:
        raise LadderChangedMeanwhile()
    await uow.forget_cached(LADDER_CACHE_KEY)
    await emit_for_programme(uow, TierLadderChanged(version=number), "tier_ladder")
    return number


async def create_tier(
    uow: UnitOfWork, code: str, definition: TierDefinition, actor: uuid.UUID | None = None
) -> LadderTier:
    _check(definition)
    repo = TierRepository(uow.session)
    if await repo.get_by_code(code) is not None:
        raise TierExists()
    now = uow.clock.now()
    row = Tier(code=code, created_at=now, updated_at=now)
    await _refuse_unless_applicable(uow, None, definition)
    _apply(row, definition)
    with _duplicates_named():
        await repo.insert_tier(row)
    await BenefitRepository(uow.session).replace_grants("tier", row.id, definition.benefit_ids)
    await record_ladder_version(uow, actor)
    return await _fresh(uow, code)


async def replace_tier(
    uow: UnitOfWork, code: str, definition: TierDefinition, actor: uuid.UUID | None = None
) -> LadderTier:
    """Replace a tier's definition. It writes no member (see the module's docstring): a new window that moves
    its members' ends is a new revision of it, and members the new ranks leave undated on a tier that is no
    longer the entry tier stay so; both are read as the worker will store them (tiers/redating.py)."""
    _check(definition)
    repo = TierRepository(uow.session)
    # Locked: a delete racing this replace either waits for it or has removed the tier (404), where an
    # unlocked read would update a row no longer there (a 500). Another replace of it waits here, then reads
    # what that one left.
    row = await repo.lock_by_code(code, to="replace")
    if row is None:
        raise TierNotFound()
    await uow.subject_locked()
    ladder = await _load_ladder(uow)
    before = ladder.by_id(row.id)
    assert before is not None
    await _refuse_unless_applicable(uow, row.id, definition)
    after = before.with_window(Window(definition.window), definition.window_days)
    columns = column_values(row)
    _apply(row, definition)
    row.window_revision = after.revision
    row.past_windows = [
        {"revision": past.revision, "window": past.window.value, "window_days": past.window_days}
        for past in after.past_windows
    ]
    if column_values(row) == columns and {b.id for b in before.benefits} == set(definition.benefit_ids):
        # Sent again as it is (db/changes.py): no new ladder version, nothing to announce.
        return before
    row.updated_at = uow.clock.now()
    with _duplicates_named():
        await repo.save_tier()
    await BenefitRepository(uow.session).replace_grants("tier", row.id, definition.benefit_ids)
    # The version after the ladder this change was judged against: refused if another change took it
    # meanwhile (a change of another tier, which the checks above did not see).
    await _write_version(uow, actor, number=ladder.version + 1)
    return await _fresh(uow, code)


async def delete_tier(uow: UnitOfWork, code: str, actor: uuid.UUID | None = None) -> None:
    repo = TierRepository(uow.session)
    # Locked (a member being moved onto it meanwhile is counted below once that commits), and the
    # delete's own answer checked: of two deletes at once only the one that removed the tier answers 204 and
    # records a ladder version; the other finds it gone (404).
    row = await repo.lock_by_code(code, to="delete")
    if row is None:
        raise TierNotFound()
    holders = await repo.count_members_on(row.id)
    if holders:
        raise TierInUse(f"{holders} members hold this tier", members=holders)
    await BenefitRepository(uow.session).replace_grants("tier", row.id, [])
    await repo.clear_erased_on(row.id)
    if not await repo.delete_tier(row.id):
        raise TierNotFound()
    await record_ladder_version(uow, actor)


async def _fresh(uow: UnitOfWork, code: str) -> LadderTier:
    """The tier as this transaction's own writes show it (the cached ladder may be older)."""
    tier = (await _load_ladder(uow)).by_code(code)
    assert tier is not None
    return tier


async def get_tier(uow: UnitOfWork, code: str) -> LadderTier:
    tier = (await get_ladder(uow)).by_code(code)
    if tier is None:
        raise TierNotFound()
    return tier


async def get_version(uow: UnitOfWork, version: int) -> LadderVersion:
    row = await TierRepository(uow.session).get_version(version)
    if row is None:
        raise LadderVersionNotFound()
    return LadderVersion(version=row.version, tiers=row.tiers, created_at=row.created_at)


async def list_versions(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[LadderVersion]:
    before = None
    if cursor is not None:
        (version,) = decode_place(cursor, (int,), LADDER_VERSIONS)
        assert isinstance(version, int)
        if not 1 <= version <= MAX_VERSION:  # the column's range: a forged cursor must not reach the driver
            raise InvalidField("cursor", "not a cursor this service returned")
        before = version
    rows = await TierRepository(uow.session).list_versions(before=before, limit=limit + 1)
    more = len(rows) > limit
    items = [LadderVersion(version=r.version, tiers=r.tiers, created_at=r.created_at) for r in rows[:limit]]
    next_cursor = encode_place((items[-1].version,), LADDER_VERSIONS) if more else None
    return Page(items=items, next_cursor=next_cursor, scope=LADDER_VERSIONS)
