"""Members' rights over their data: export (`GET …/export`) and erasure (`POST …/erase`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.http.audit_trail import actor_of
from loyalty_api.http.dependencies import Units, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.privacy import erasure, export
from loyalty_api.privacy.schemas import ErasureRead, MemberExport

router = APIRouter(prefix="/v1/members", tags=["members"], route_class=UnitOfWorkRoute)

Operator = Annotated[Principal, Depends(require(Scope.admin))]


@router.get(
    "/{member_id}/export",
    summary="Export everything held about a member (data-subject access request)",
    responses=problem_responses(InvalidApiKey, ScopeNotAllowed, MemberNotFound),
)
async def export_member(member_id: uuid.UUID, uow: UoW, units: Units, caller: Operator) -> MemberExport:
    """Everything the service holds about one member, as one JSON document: the profile with its personal
    data decrypted, identifiers and consents, the points account with the whole ledger, its lots and holds,
    orders, the tier and its history, coupons, reward redemptions, subscriptions and their payments, partner
    links, exchanges, benefit uses and perks, lifecycle stage, RFM segment, referral rewards, and a list
    (not copies) of the events about the member with the webhook deliveries that carried them.

    The document's shape is versioned by `format_version`; `exported_at` is the instant it reads the data
    as of (one snapshot: the balance is the sum of the ledger shown). Points are whole numbers, money is
    `{amount, currency}` in minor units, lists run oldest first, and nothing is cut short, however long the
    history. Another member's data is never in it.

    For `admin` keys only. It changes nothing, but it is in the audit log (`export_member`): who read the
    member's data, and when. An unknown member is 404 `member_not_found`."""
    document = await export.export_member(uow, member_id)
    await export.record_export(units, actor_of(caller), member_id)
    return document


@router.post(
    "/{member_id}/erase",
    summary="Erase a member's personal data for good (right to be forgotten)",
    responses=problem_responses(InvalidApiKey, ScopeNotAllowed, MemberNotFound),
)
async def erase_member(member_id: uuid.UUID, uow: UoW, _: Operator) -> ErasureRead:
    """Remove everything that says who the member is, for good: phone, e-mail, name and birthday (and the
    keyed hashes that found them), external ids, partner links and link codes, partner customer refs kept with
    exchanges and stored events, webhook receivers' answers about the member, and their values in recorded
    Idempotency-Key replies about them, which become `erased` (a retry with the key replays the reply and does
    nothing again). Their phone, e-mail and external ids are free for another member at once. Their
    subscriptions end now, as closing does.

    The member's row stays, anonymous, with the ledger, lots, tier history, coupons and payments, so balances,
    the programme's figures and partner settlements stay correct. From then on the member is found by no
    lookup, list, read or GraphQL query (404 `member_not_found`), and no till can earn or redeem for them.

    For `admin` keys only; honours `Idempotency-Key`; erasing an erased member again is a 200 that changes
    nothing (`newly_erased: false`). Emits `member.erased`, and to each partner the member was linked to, one
    with its `partner` code."""
    return ErasureRead.model_validate(await erasure.erase_member(uow, member_id))
