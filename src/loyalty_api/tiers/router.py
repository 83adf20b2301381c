"""/v1/tiers (the ladder), /v1/tier-versions, and a member's tier: status, history, override."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import InDigits, Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.tiers import errors, membership, service
from loyalty_api.tiers.schemas import (
    LadderVersionPage,
    LadderVersionRead,
    MemberTierRead,
    OverrideWrite,
    TierChangePage,
    TierChangeRead,
    TierCode,
    TierCreate,
    TierList,
    TierRead,
    TierWrite,
)

router = APIRouter(prefix="/v1", tags=["tiers"], route_class=UnitOfWorkRoute)
Reader = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.get(
    "/tiers",
    summary="The tier ladder, lowest rank first",
    responses=problem_responses(*_AUTH, InvalidField),
)
async def list_tiers(uow: UoW, _: Reader, paging: Paging) -> TierList:
    """The tier ladder, lowest rank first, page by page: each tier's qualification (metric, window,
    threshold), points multiplier, grace days and benefits, with the ladder's current `version`.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    version, page = await service.list_tiers(uow, limit=paging.limit, cursor=paging.cursor)
    return TierList(version=version, items=[TierRead.of(t) for t in page.items], next_cursor=page.next_cursor)


@router.post(
    "/tiers",
    status_code=201,
    summary="Add a tier to the ladder",
    responses=problem_responses(
        *_AUTH, errors.TierExists, errors.TierRankTaken, InvalidField, errors.LadderChangedMeanwhile
    ),
)
async def create_tier(body: TierCreate, uow: UoW, caller: Operator) -> TierRead:
    """Add a tier. `metric` is `spend` (minor units paid, less refunds) or `points` (earned on purchases);
    `window` is `calendar_year` or `rolling_days` with `window_days`. The lowest rank is every member's entry
    tier. Every change to the ladder makes a new version.

    For `admin` keys only; honours `Idempotency-Key`. A code or rank taken already is 409 `tier_exists` or 409
    `tier_rank_taken`. Emits `tier_ladder.changed`."""
    return TierRead.of(await service.create_tier(uow, body.code, body.definition(), caller.key_id))


@router.get("/tiers/{code}", summary="Read a tier", responses=problem_responses(*_AUTH, errors.TierNotFound))
async def read_tier(code: TierCode, uow: UoW, _: Reader) -> TierRead:
    """One tier of the ladder, by code.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    return TierRead.of(await service.get_tier(uow, code))


@router.put(
    "/tiers/{code}",
    summary="Replace a tier (members keep their tier until their next review)",
    responses=problem_responses(
        *_AUTH, errors.TierNotFound, errors.TierRankTaken, InvalidField, errors.LadderChangedMeanwhile
    ),
)
async def replace_tier(code: TierCode, body: TierWrite, uow: UoW, caller: Operator) -> TierRead:
    """Replace a tier's rules; its code stays. Members keep their tier until their next review, which judges
    them by the new rules. Makes a new ladder version.

    A new `grace_days` moves the date its members keep the tier until by the difference: the review still
    judges the window they were promised, and the new grace follows it. A new `window` (or `window_days`)
    never ends sooner than the old one and is a whole one of its kind: a calendar year ends on the 1 January
    at or after the old window's end; a longer rolling window runs from the old one's start (the purchase
    that won the tier); a shorter one, or one replacing a calendar year, ends where the old window did. An
    override's end stays; the tier earned before it is re-dated.

    For `admin` keys only. PUT does not take `Idempotency-Key`: it replaces, so a repeat sets the same values.
    Emits `tier_ladder.changed` with the new ladder version, unless the tier is as sent already (a repeat
    changes nothing and makes no version)."""
    return TierRead.of(await service.replace_tier(uow, code, body.definition(), caller.key_id))


@router.delete(
    "/tiers/{code}",
    status_code=204,
    summary="Remove a tier no member holds",
    responses=problem_responses(*_AUTH, errors.TierNotFound, errors.TierInUse, errors.LadderChangedMeanwhile),
)
async def delete_tier(code: TierCode, uow: UoW, caller: Operator) -> Response:
    """Remove a tier that no member holds (409 `tier_in_use` says how many do: move them first). Makes a new
    ladder version. Answers 204 with no body.

    For `admin` keys only. Emits `tier_ladder.changed`."""
    await service.delete_tier(uow, code, caller.key_id)
    return Response(status_code=204)


@router.get(
    "/tier-versions",
    summary="Every version of the ladder, newest first",
    responses=problem_responses(*_AUTH, InvalidField),
)
async def list_versions(uow: UoW, _: Operator, paging: Paging) -> LadderVersionPage:
    """Every version of the ladder, newest first, page by page, each with the tiers as they stood. A member's
    tier changes cite the version whose rules decided them.

    For `admin` keys only. Reads only."""
    page = await service.list_versions(uow, limit=paging.limit, cursor=paging.cursor)
    return LadderVersionPage(
        items=[LadderVersionRead.model_validate(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/tier-versions/{version}",
    summary="The ladder as it stood at one version",
    responses=problem_responses(*_AUTH, errors.LadderVersionNotFound),
)
async def read_version(
    version: Annotated[int, Path(ge=1, le=service.MAX_VERSION), InDigits], uow: UoW, _: Operator
) -> LadderVersionRead:
    """The ladder as it stood at one version: the `ladder_version` a member's tier change cites.

    For `admin` keys only. Reads only."""
    return LadderVersionRead.model_validate(await service.get_version(uow, version))


@router.get(
    "/members/{member_id}/tier",
    summary="A member's tier, how long it is kept, progress to the next and what keeps it",
    responses=problem_responses(*_AUTH, MemberNotFound),
)
async def read_member_tier(member_id: uuid.UUID, uow: UoW, _: Reader) -> MemberTierRead:
    """A member's tier: since when, until when it is kept at least (`kept_until`, then reviewed), any
    override, `next` (what reaches the next tier up: metric, window start, value, threshold, remaining) and
    `keep` (what the review will judge to keep this one).

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    return MemberTierRead.model_validate(await membership.status(uow, member_id))


@router.get(
    "/members/{member_id}/tier/history",
    summary="A member's tier changes, newest first",
    responses=problem_responses(*_AUTH, MemberNotFound, InvalidField),
)
async def read_tier_history(member_id: uuid.UUID, uow: UoW, _: Reader, paging: Paging) -> TierChangePage:
    """A member's tier changes, newest first, page by page: upgrade, downgrade, renewal, override or
    override_ended, each with the ladder version and the values that decided it.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    page = await membership.history(uow, member_id, limit=paging.limit, cursor=paging.cursor)
    return TierChangePage(
        items=[TierChangeRead.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.put(
    "/members/{member_id}/tier/override",
    summary="Set a member's tier by hand until a date",
    responses=problem_responses(*_AUTH, MemberNotFound, InvalidField),
)
async def override_tier(
    member_id: uuid.UUID, body: OverrideWrite, uow: UoW, caller: Operator
) -> MemberTierRead:
    """Put a member on a tier by hand `until` an instant, with a `reason`, higher or lower than they qualify
    for: purchases meanwhile do not move them. When it ends, the member is back on the tier they had earned
    before it while its time lasts (where its review would have put them, if that time ran out meanwhile), or
    on the tier they qualify for, whichever is higher.

    For `admin` keys only. PUT does not take `Idempotency-Key`: it replaces any override, so a repeat sets the
    same one (the override in force sent again, its reason too, changes nothing and adds nothing to the
    history). Emits `tier.upgraded` or `tier.downgraded` when the member's tier moves."""
    await membership.override(
        uow, member_id, tier_code=body.tier, until=body.until, reason=body.reason, actor=caller.key_id
    )
    return MemberTierRead.model_validate(await membership.status(uow, member_id))


@router.delete(
    "/members/{member_id}/tier/override",
    summary="End an override now: the member goes back to the tier they had earned, or qualify for",
    responses=problem_responses(*_AUTH, MemberNotFound, errors.NoOverride),
)
async def end_override(member_id: uuid.UUID, uow: UoW, caller: Operator) -> MemberTierRead:
    """End a member's override now: they go back to the tier they had earned before it, or to the one they
    qualify for, as when it runs out. Without an override it is 404 `tier_override_not_found`.

    For `admin` keys only. Emits `tier.upgraded` or `tier.downgraded` when the member's tier moves."""
    await membership.end_override(uow, member_id, actor=caller.key_id)
    return MemberTierRead.model_validate(await membership.status(uow, member_id))
