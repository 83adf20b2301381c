"""Erasing a member at their request: their personal data is gone from every table that held it, while the
ledger, tier history and the programme's figures keep an anonymous member.

Personal data lived in: the member's row (encrypted contacts, name, birthday, and the blind indexes that
found them), their external ids, their partner links and link codes (a partner's customer ref), the partner
refs copied into their exchanges and into the payloads of their events, the answers webhook receivers gave to
those events, and the replies recorded for Idempotency-Keys. Each is removed here, in one transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.idempotency import service as idempotency
from loyalty_api.members import service as members
from loyalty_api.members.events import MemberErased
from loyalty_api.outbox.repository import OutboxRepository
from loyalty_api.outbox.service import emit_for_member, emit_for_partner
from loyalty_api.partners.repository import ERASED_REF, PartnerRepository
from loyalty_api.webhooks.delivery_repository import DeliveryRepository

# Keys of event payloads that may hold personal data: a partner's customer ref (a partner may use a phone
# number as one). Events carry no contacts, names or birthdays by design.
_PERSONAL_IN_EVENTS = frozenset({"partner_customer_ref"})


@dataclass(frozen=True, slots=True)
class Erasure:
    member_id: uuid.UUID
    erased_at: datetime
    # False: the member was erased already, and this call changed nothing.
    newly_erased: bool
    external_ids: int
    partner_links: list[str]
    events_rewritten: int
    webhook_answers_dropped: int
    idempotency_replies_dropped: int


async def erase_member(uow: UnitOfWork, member_id: uuid.UUID) -> Erasure:
    erased = await members.erase(uow, member_id)
    if not erased.newly:
        return Erasure(member_id, erased.erased_at, False, 0, [], 0, 0, 0)
    partners = await PartnerRepository(uow.session).forget_member(member_id)
    rewritten = await OutboxRepository(uow.session).rewrite_member_payloads(member_id, _without_personal_data)
    answers = await DeliveryRepository(uow.session).forget_answers_about(member_id)
    # A reply names the member by id, card number or a partner's ref; quoted, a number or ref matches only
    # itself, not part of a longer one.
    needles = [str(member_id), f'"{erased.member_number}"', *(f'"{ref}"' for _, _, ref in partners)]
    replies = await idempotency.forget_replies_mentioning(uow, needles)
    await emit_for_member(
        uow, MemberErased(member_id=member_id, partner=None, erased_at=erased.erased_at), member_id
    )
    for partner_id, code, _ in partners:
        event = MemberErased(member_id=member_id, partner=code, erased_at=erased.erased_at)
        await emit_for_partner(uow, event, member_id, partner_id)
    return Erasure(
        member_id=member_id,
        erased_at=erased.erased_at,
        newly_erased=True,
        external_ids=erased.external_ids,
        partner_links=[code for _, code, _ in partners],
        events_rewritten=rewritten,
        webhook_answers_dropped=answers,
        idempotency_replies_dropped=replies,
    )


def _without_personal_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: ERASED_REF
            if key in _PERSONAL_IN_EVENTS and item is not None
            else _without_personal_data(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_personal_data(item) for item in value]
    return value
