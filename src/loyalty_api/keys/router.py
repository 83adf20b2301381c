"""/v1/api-keys (admin): the back office's keys for tills, web shops, billing and partners."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from loyalty_api.auth import service as auth
from loyalty_api.auth.errors import (
    ApiKeyNotFound,
    InvalidApiKey,
    KeyBeyondCaller,
    KeyRotatedAlready,
    PartnerKeyNotAlone,
    PartnerRequired,
    ScopeNotAllowed,
)
from loyalty_api.auth.keys import PREFIX_PATTERN
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.keys import service
from loyalty_api.keys.schemas import ApiKeyCreate, ApiKeyList, ApiKeyRead, ApiKeyRotate, IssuedApiKeyRead
from loyalty_api.partners.errors import PartnerNotFound

router = APIRouter(prefix="/v1", tags=["api keys"], route_class=UnitOfWorkRoute)
Operator = Annotated[Principal, Depends(require(Scope.admin))]
# A key's prefix as keys are made (auth/keys.py): anything else names no key, and reaches no query.
Prefix = Annotated[
    str, Path(pattern=PREFIX_PATTERN, description="The key's prefix: the 12 characters after `lk_`.")
]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


def _days(days: int | None) -> timedelta | None:
    return None if days is None else timedelta(days=days)


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key",
    responses=problem_responses(
        *_AUTH, PartnerRequired, PartnerKeyNotAlone, PartnerNotFound, KeyBeyondCaller, InvalidField
    ),
)
async def create_api_key(body: ApiKeyCreate, uow: UoW, operator: Operator) -> IssuedApiKeyRead:
    """A key for a store's till (`pos`), a web shop (`ecommerce`), billing, the back office (`admin`) or a
    partner's systems (`partner`, with the partner's code: 422 `partner_required` without it,
    `partner_key_not_alone` beside other scopes). Optionally its own `rate_limit`, a lifetime in days and the
    networks it may be used from. A key never reaches further than the key that makes it: made with a key
    that expires, it expires no later; made with a key limited to networks, it is used only within them (those
    asked for that the caller's key shares, or the caller's own when none are asked for; 403
    `key_beyond_caller` when they share none); made with a key that has a rate of its own, it sends no faster
    (403 `key_beyond_caller` for a `rate_limit` that allows more calls in its window than the caller's in its
    own, or more on average; without one, it keeps its scopes' default when that is within the caller's rate,
    else it gets the caller's). The answer shows what it got. The `token` is in this answer
    only: the key keeps a hash of it, and the audit log leaves it out. Sent with an `Idempotency-Key`, the
    answer is kept for its replay (24 hours, encrypted, replayed only to the calling key and the keys that
    replace it), as every answer is.

    For `admin` keys only; honours `Idempotency-Key`. As `loyalty-api keys create` does on the host."""
    issued = await service.create_key(
        uow,
        name=body.name,
        scopes=body.scopes,
        partner=body.partner,
        rate_limit=body.rate_limit,
        lifetime=_days(body.expires_in_days),
        allowed_networks=body.allowed_networks,
        maker=operator,
    )
    return IssuedApiKeyRead.of(issued)


@router.get("/api-keys", summary="List API keys", responses=problem_responses(*_AUTH, InvalidField))
async def list_api_keys(uow: UoW, _: Operator, paging: Paging) -> ApiKeyList:
    """Every key, active, expired or revoked, oldest first, page by page; never a key's secret.

    For `admin` keys only. Reads only."""
    page = await service.list_keys(uow, limit=paging.limit, cursor=paging.cursor)
    return ApiKeyList(items=[ApiKeyRead.of(key) for key in page.items], next_cursor=page.next_cursor)


@router.get(
    "/api-keys/{prefix}", summary="Read an API key", responses=problem_responses(*_AUTH, ApiKeyNotFound)
)
async def read_api_key(prefix: Prefix, uow: UoW, _: Operator) -> ApiKeyRead:
    """One key, by its prefix (the part of the token after `lk_`, before the next `_`).

    For `admin` keys only. Reads only."""
    return ApiKeyRead.of(await auth.get_key(uow, prefix))


@router.post(
    "/api-keys/{prefix}/rotate",
    status_code=201,
    summary="Replace an API key",
    responses=problem_responses(*_AUTH, ApiKeyNotFound, KeyBeyondCaller, KeyRotatedAlready, InvalidField),
)
async def rotate_api_key(
    prefix: Prefix, body: ApiKeyRotate, uow: UoW, operator: Operator
) -> IssuedApiKeyRead:
    """A new key with the active key's name, scopes, partner, rate limit and networks; the old one keeps
    working for `overlap_minutes` (never past its own expiry), time for its callers to switch. The new key
    carries on the old one's line: a request its callers sent with the old key and retry with the new one
    under the same `Idempotency-Key` replays the first answer. 404 `api_key_not_found` when no active key has
    the prefix. Rotated with a key that expires, the new key expires no later; 403 `key_beyond_caller` when
    the key rotated works later than the calling key, from addresses outside its networks, or faster than
    the calling key's own rate (its rate, or its scopes' default without one); 409
    `key_rotated_already`, naming it, while a key that replaced this one is in force (revoke it first if
    its key was lost).

    For `admin` keys only; honours `Idempotency-Key`. As `loyalty-api keys rotate` does on the host."""
    rotation = await auth.rotate_key(
        uow,
        prefix=prefix,
        overlap=timedelta(minutes=body.overlap_minutes),
        lifetime=_days(body.expires_in_days),
        maker=operator,
    )
    return IssuedApiKeyRead.of(rotation.issued)


@router.delete(
    "/api-keys/{prefix}",
    status_code=204,
    summary="Revoke an API key",
    responses=problem_responses(*_AUTH, ApiKeyNotFound),
)
async def revoke_api_key(prefix: Prefix, uow: UoW, _: Operator) -> Response:
    """The key stops working at once, in every API process; 404 `api_key_not_found` when no key has the
    prefix or it is revoked already (an expired key can still be revoked, to show it so). Revoking the key
    that sends this works too: keep another admin key, or the host's `loyalty-api keys create`, to get back
    in.

    For `admin` keys only. As `loyalty-api keys revoke` does on the host."""
    await auth.revoke_key(uow, prefix=prefix)
    return Response(status_code=204)
