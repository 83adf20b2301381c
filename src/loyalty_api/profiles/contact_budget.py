"""What writes naming a phone or e-mail spend of their key's contact-lookup budget. A 409 `member_exists` on
either says that someone with it is a member, and an update's 200 that no one is, as a look-up by it would:
without the budget, a key could test phone numbers at its full rate through enrolments and updates, where
look-ups are held to a small one.

The budget is checked, or spent, before the write's unit of work begins: counting is a round trip to the
limiter's storage (Redis: up to its time limit when Redis is in trouble), and on SQLite an open writing unit
holds up every other write meanwhile. Only an enrolment's conflict is counted inside, as it needs the write's
outcome, and only on that refusal."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import BaseModel

from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.http.rate_limits import RateLimiter
from loyalty_api.profiles import service
from loyalty_api.profiles.errors import MemberExists

_CONTACTS = ("phone", "email")


def _named(request: BaseModel) -> int:
    """How many contacts the request sets (clearing one names none)."""
    return sum(getattr(request, field, None) is not None for field in _CONTACTS)


async def check_before_enrolment(limiter: RateLimiter, caller: Principal, request: BaseModel) -> None:
    """Before an enrolment (its `request`, REST's body or GraphQL's input): one giving a phone or an e-mail is
    refused (429) once the key's contact-lookup budget is spent."""
    if _named(request):
        await limiter.check(limiter.contact_lookup, caller.key_lineage)


@asynccontextmanager
async def contact_conflicts_counted(
    limiter: RateLimiter, caller: Principal, request: BaseModel
) -> AsyncIterator[None]:
    """Around an enrolment's work: its `member_exists` on a phone or an e-mail spends the key's contact-lookup
    budget, whether its look found the contact taken or its insert did (another enrolment of it, not yet
    committed when it looked). A shop enrolling new customers spends nothing (a number found free is a member
    made, for all to see)."""
    try:
        yield
    except MemberExists as exc:
        if exc.extra.get("field") in _CONTACTS:
            await limiter.count(limiter.contact_lookup, caller.key_lineage)
        raise


async def spend_before_update(
    units: UnitsOfWork, limiter: RateLimiter, caller: Principal, member_id: uuid.UUID, request: BaseModel
) -> None:
    """Before an update the caller may make (its scope and `service.check_changes_allowed` passed): each phone
    or e-mail it sets that the member does not have already spends the key's contact-lookup budget, taken or
    not. One member's phone can be set again and again, each answer saying whether the number is someone's
    (409) or no one's (200): counting the conflicts alone would let a key test numbers at its full rate. The
    member's own, sent again (a system syncing the whole record), tells nothing the key cannot read, and an
    update that finds no member tells nothing: neither spends.

    Read before the update's own read, under its lock: a contact found the member's own here and changed by
    another update in between was theirs a moment before, so no new number is ever tested unspent."""
    if not _named(request):
        return
    async with units.read() as uow:
        changing = await service.contacts_changing(
            uow, member_id, phone=getattr(request, "phone", None), email=getattr(request, "email", None)
        )
    if changing:
        await limiter.spend(limiter.contact_lookup, caller.key_lineage, cost=changing)
