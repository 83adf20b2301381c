"""Enrolling and updating members over GraphQL: POST /v1/members and PATCH /v1/members/{id}, same rules."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import strawberry
from strawberry.types.unset import UNSET

from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.graphql.members import Member, MemberStatusValue
from loyalty_api.graphql.mutation import MutationPayload, body_of, mutation
from loyalty_api.graphql.scopes import TILLS
from loyalty_api.http.input_guard import InvalidInput, field_error
from loyalty_api.http.rate_limits import RateLimiter
from loyalty_api.profiles import contact_budget, service
from loyalty_api.profiles.contact_budget import contact_conflicts_counted
from loyalty_api.profiles.schemas import MemberCreate, MemberRead, MemberUpdate


class _Update(MemberUpdate):
    member_id: uuid.UUID


@strawberry.input
class ExternalIdInput:
    system: str
    external_id: str | None = strawberry.field(
        default=None, description="Null unlinks the system (update only)."
    )


@strawberry.input(description="A new member, as the body of POST /v1/members; every field may be left out.")
class EnrolMemberInput:
    phone: str | None = strawberry.field(default=UNSET, description="Any common format; stored as E.164.")
    email: str | None = UNSET
    name: str | None = UNSET
    birthday: datetime.date | None = UNSET
    channel: str | None = strawberry.field(
        default=UNSET, description="Where the member joined: store, online, app, …"
    )
    external_ids: list[ExternalIdInput] | None = UNSET
    marketing_consent: bool | None = UNSET
    referral_code: str | None = strawberry.field(
        default=UNSET, description="The referral code of the member who referred this one."
    )


@strawberry.input(
    description="Changes to a member, as the body of PATCH /v1/members/{id}: fields left out are left alone, "
    "null clears a personal field, and `externalIds` links (id) or unlinks (null) the systems named."
)
class UpdateMemberInput:
    member_id: strawberry.ID
    phone: str | None = UNSET
    email: str | None = UNSET
    name: str | None = UNSET
    birthday: datetime.date | None = UNSET
    status: MemberStatusValue | None = strawberry.field(  # type: ignore[valid-type]
        default=UNSET, description="Suspend, close or reopen: admin keys only."
    )
    marketing_consent: bool | None = UNSET
    leaderboard_opt_in: bool | None = strawberry.field(
        default=UNSET, description="true: the member appears on the leaderboard, by a masked card number."
    )
    external_ids: list[ExternalIdInput] | None = UNSET


def _body(given: Any) -> dict[str, Any]:
    """The input as REST's body: REST keys external ids by system, GraphQL lists them. A system listed twice
    is refused, as REST refuses a key twice in one object (the last would win)."""
    body: dict[str, Any] = body_of(given)
    listed = body.get("external_ids")
    if isinstance(listed, list):
        systems = [e["system"] for e in listed]
        twice = sorted({system for system in systems if systems.count(system) > 1})
        if twice:
            raise InvalidInput(
                [
                    field_error(f"externalIds.{s}", "body", "names this system twice", "duplicate_system")
                    for s in twice
                ]
            )
        body["external_ids"] = {e["system"]: e["external_id"] for e in listed}
    return body


@strawberry.type
class EnrolMemberPayload(MutationPayload):
    member: Member | None


@strawberry.type
class UpdateMemberPayload(MutationPayload):
    member: Member | None


async def _enrol(uow: UnitOfWork, _: Principal, request: MemberCreate) -> MemberRead:
    profile = await service.enrol(
        uow,
        phone=request.phone,
        email=request.email,
        name=request.name,
        birthday=request.birthday,
        channel=request.channel,
        external_ids=request.external_ids,
        marketing_consent=request.marketing_consent,
        referral_code=request.referral_code,
    )
    return MemberRead.model_validate(profile)


async def _before_enrolment(
    _: UnitsOfWork, limiter: RateLimiter, caller: Principal, request: MemberCreate
) -> None:
    await contact_budget.check_before_enrolment(limiter, caller, request)


async def _before_update(
    units: UnitsOfWork, limiter: RateLimiter, caller: Principal, request: _Update
) -> None:
    """An update the key may not make is refused before it spends anything (as REST's)."""
    service.check_changes_allowed(request.changes(), caller)
    await contact_budget.spend_before_update(units, limiter, caller, request.member_id, request)


async def _update(uow: UnitOfWork, _: Principal, request: _Update) -> MemberRead:
    return MemberRead.model_validate(await service.update(uow, request.member_id, **request.changes()))


@strawberry.type
class MemberMutations:
    loyalty_enrol_member: EnrolMemberPayload | None = mutation(
        input=EnrolMemberInput,
        payload=EnrolMemberPayload,
        scopes=TILLS,
        model=MemberCreate,
        reply=MemberRead,
        work=_enrol,
        answer={"member": Member.of},
        body=_body,
        before=_before_enrolment,
        around=contact_conflicts_counted,
        description="Enrol a member: POST /v1/members, with its rules and answers.",
    )
    loyalty_update_member: UpdateMemberPayload | None = mutation(
        input=UpdateMemberInput,
        payload=UpdateMemberPayload,
        scopes=TILLS,
        model=_Update,
        reply=MemberRead,
        work=_update,
        answer={"member": Member.of},
        body=_body,
        before=_before_update,
        description="Update a member: PATCH /v1/members/{id}; changing `status` takes an admin key.",
    )
