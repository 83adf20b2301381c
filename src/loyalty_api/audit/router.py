"""/v1/audit-events: who changed what, and when, for auditors."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from loyalty_api.audit import service
from loyalty_api.audit.repository import AuditFilter
from loyalty_api.audit.schemas import AuditEventPage, AuditEventRead
from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import EmptyIsLeftOut, Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.schemas import QueryInstant
from loyalty_api.http.transaction import UnitOfWorkRoute

router = APIRouter(prefix="/v1", tags=["audit"], route_class=UnitOfWorkRoute)

Operator = Annotated[Principal, Depends(require(Scope.admin))]


@router.get(
    "/audit-events",
    summary="The audit log, newest first",
    responses=problem_responses(InvalidApiKey, ScopeNotAllowed, InvalidField),
)
async def list_audit_events(
    uow: UoW,
    _: Operator,
    paging: Paging,
    subject_type: Annotated[
        str | None,
        Query(max_length=32, description="`program`, `tiers`, `members`, `plans`…"),
        EmptyIsLeftOut,
    ] = None,
    subject_id: Annotated[
        str | None,
        Query(max_length=100, description="A tier's code, a plan's, an id (any spelling)…"),
        EmptyIsLeftOut,
    ] = None,
    member_id: Annotated[
        uuid.UUID | None, Query(description="Changes about this member"), EmptyIsLeftOut
    ] = None,
    key_id: Annotated[
        uuid.UUID | None, Query(description="Changes made with this API key"), EmptyIsLeftOut
    ] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="`replace_tier`, `adjust`…"), EmptyIsLeftOut
    ] = None,
    since: Annotated[
        QueryInstant | None, Query(description="At or after this instant (with a zone)"), EmptyIsLeftOut
    ] = None,
    until: Annotated[
        QueryInstant | None, Query(description="Before this instant (with a zone)"), EmptyIsLeftOut
    ] = None,
) -> AuditEventPage:
    """Every write made with an `admin`, `billing` or `partner` key, over REST or GraphQL, and every key
    change made with the CLI: who (the key), what (the operation, its subject, the subject before and after,
    without personal data or secrets), when, and the request id. Entries are written in the transaction of
    the change itself and never altered. Filter by subject, member, key, action and time.

    For `admin` keys only. Reads only."""
    where = AuditFilter(
        subject_type=subject_type,
        subject_id=subject_id,
        member_id=member_id,
        key_id=key_id,
        action=action,
        since=since,
        until=until,
    )
    page = await service.list_events(uow, where, limit=paging.limit, cursor=paging.cursor)
    return AuditEventPage(
        items=[AuditEventRead.model_validate(e) for e in page.items], next_cursor=page.next_cursor
    )
