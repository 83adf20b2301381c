"""Erasing a member at their request: their personal data is gone from every table that held it, while the
ledger, tier history and the programme's figures keep an anonymous member.

Personal data lived in: the member's row (encrypted contacts, name, birthday, the blind indexes that found
them, the card number), their external ids, their partner links and link codes (a partner's customer ref), the
partner refs copied into their exchanges, their purchases at partners and the payloads of their events, the
answers webhook receivers gave to those events, and the replies recorded for Idempotency-Keys (kept,
rewritten, so that a retry replays them rather than runs again). What operators wrote about the member in free
text, the reasons of their adjustments, overrides and transfer reversals (in the ledger, the tier history and
the events; a reversal's in the other member's too), may name them too. Each is removed here, in one
transaction; unused coupons expire, subscriptions end, partner perks still owed them (no code given yet) go,
and those issued and not redeemed end (never redeemable; a pooled one's code is not given again: the partner
was told it).
(The audit log is never changed: it keeps the replies operators were given, reasons included.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any

from loyalty_api.coupons.repository import CouponRepository
from loyalty_api.db.pagination import every_row
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.idempotency import service as idempotency
from loyalty_api.members.events import MemberErased
from loyalty_api.members.repository import MemberRepository
from loyalty_api.orders.repository import OrderRepository
from loyalty_api.outbox.repository import OutboxRepository
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.partners.repository import ERASED_REF, ExchangeRepository, PartnerRepository, PerkRepository
from loyalty_api.points.events import PointsAdjusted, PointsTransferReversed
from loyalty_api.points.repository import LedgerRepository
from loyalty_api.profiles import service as profiles
from loyalty_api.tiers.repository import MemberTierRepository
from loyalty_api.webhooks.delivery_repository import DeliveryRepository

# A key of event payloads that names the member in a partner's system (a partner may use a phone number).
_PARTNER_REF = "partner_customer_ref"
# The shortest string of the member's own matched in any reply: the shortest phone number in E.164 ("+" and
# seven digits); a card number has ten digits.
_DISTINCTIVE_LENGTH = 8


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
    idempotency_replies_rewritten: int
    idempotency_replies_dropped: int


async def erase_member(uow: UnitOfWork, member_id: uuid.UUID) -> Erasure:
    # The member's row is locked (FOR NO KEY UPDATE, as profiles.erase takes it) and their link codes go
    # before the erasure changes the row. A partner's link made with one of them holds the code's row and
    # then checks its key against the member's row: were the row changed first (its card number, the
    # strongest lock), the link would wait for the erasure while the erasure waited for the code, a deadlock.
    # This way the erasure waits for the link, which then finishes, and forgets it below.
    await MemberRepository(uow.session).get_member(member_id, lock=True)
    await PartnerRepository(uow.session).delete_member_codes(member_id)
    erased = await profiles.erase(uow, member_id)
    if not erased.newly:
        return Erasure(member_id, erased.erased_at, False, 0, [], 0, 0, 0, 0)
    # The refs partners knew the member by in links that ended before (unlinked by either side), which
    # replies kept for those partners' keys may still name: read before the exchanges and events forget them.
    # (An exchange takes the member's row, which the erasure holds; a link made while this waits is among
    # `partners`.)
    earlier = {
        *await ExchangeRepository(uow.session).customer_refs_of(member_id),
        *await OutboxRepository(uow.session).partner_refs_of(member_id),
        # Their purchases at partners kept the ref they were made under (to be refunded by it): forgotten.
        *await OrderRepository(uow.session).forget_partner_refs(member_id),
    }
    partners = await PartnerRepository(uow.session).forget_member(member_id)
    await CouponRepository(uow.session).end_member_coupons(member_id, erased.erased_at)
    # Their perks issued and not redeemed end as their coupons do, behind the member's row lock taken above: a
    # partner's redeem takes that lock too, so it waits for this and then finds the perk ended.
    await PerkRepository(uow.session).end_issued_of_member(member_id)
    refs = sorted({ref for _, _, ref in partners} | earlier)
    identifiers = {*erased.identifiers, *erased.external_refs, *erased.traits, *refs}
    rewritten = await OutboxRepository(uow.session).rewrite_member_payloads(
        member_id, partial(_event_without, frozenset(identifiers))
    )
    replaced = await LedgerRepository(uow.session).replace_reasons(member_id, ERASED_REF)
    for party, transfers in replaced.reversals.items():
        rewritten += await OutboxRepository(uow.session).rewrite_member_payloads(
            party, partial(_reversal_without_reason, transfers)
        )
    reasons = [
        *replaced.reasons,
        *await MemberTierRepository(uow.session).replace_override_reasons(member_id, ERASED_REF),
    ]
    answers = await DeliveryRepository(uow.session).forget_answers_about(member_id)
    theirs = _Theirs(
        member_id=str(member_id),
        identifiers=_as_written_in_json({value for value in erased.identifiers if _distinctive(value)}),
        mentions=_as_written_in_json(
            {*refs, *reasons, *erased.external_refs}
            | {value for value in erased.identifiers if not _distinctive(value)}
        ),
        paths=_as_path_segments(refs),
        records=[
            *[str(entry) for entry in await _adjustments_of(uow, member_id)],
            *[str(exchange) for exchange in await _exchanges_of(uow, member_id)],
            *_as_written_in_json(set(await _perk_codes_of(uow, member_id))),
        ],
        traits=frozenset(erased.traits),
        values=frozenset({*erased.identifiers, *refs, *erased.external_refs}),
        reasons=frozenset(reasons),
        refs=tuple(refs),
        dates=frozenset(trait for trait in erased.traits if _is_date(trait)),
    )
    replies = await idempotency.rewrite_replies(
        uow, partial(_reply_about, theirs), partial(_reply_without, theirs)
    )
    await emit_for_member(
        uow, MemberErased(member_id=member_id, partner=None, erased_at=erased.erased_at), member_id
    )
    for partner_id, code, _ in partners:
        event = MemberErased(member_id=member_id, partner=code, erased_at=erased.erased_at)
        await emit_for_member(uow, event, member_id, partner_id)
    return Erasure(
        member_id=member_id,
        erased_at=erased.erased_at,
        newly_erased=True,
        external_ids=erased.external_ids,
        partner_links=[code for _, code, _ in partners],
        events_rewritten=rewritten,
        webhook_answers_dropped=answers,
        idempotency_replies_rewritten=replies.rewritten,
        idempotency_replies_dropped=replies.dropped,
    )


def _distinctive(identifier: str) -> bool:
    """Whether a string of the member's own (a contact, their card number) is theirs wherever a reply holds
    it. An e-mail address (it has an `@`), a phone number in E.164 and our ten-digit card number are unique to
    them and no order number, reason or code of another member's reply is written the same by chance. Shorter
    strings are (a number such as "1001" may be another member's order): those count only in replies about
    the member, as partner refs and external ids always do."""
    return "@" in identifier or len(identifier) >= _DISTINCTIVE_LENGTH


def _as_written_in_json(values: set[str]) -> list[str]:
    """Each value as a JSON string, quotes included (a card number matches only itself, not part of a longer
    one), both as it is and with its non-ASCII letters escaped (`"\\u674e\\u5a1c"`), as replies hold them.
    Replies that only name the member by id (a friend's enrolment names its referrer) are kept: the id
    identifies no one once the member is erased."""
    return sorted({json.dumps(v, ensure_ascii=a) for v in values for a in (True, False)})


def _partner_paths(ref: str) -> tuple[str, ...]:
    """The segments of a partner's paths that name its customer by `ref` (`/v1/partner/members/{ref}/earn`,
    `/v1/partner/links/{ref}`)."""
    return tuple(f"/partner/{kind}/{ref}" for kind in ("members", "links"))


def _as_path_segments(refs: list[str]) -> list[str]:
    """A partner's ref as a problem's `instance` names it: the segment of a partner's path that names its
    customer (_partner_paths), as JSON writes it, with and without escapes, followed by the next slash or the
    string's closing quote."""
    found: set[str] = set()
    for ref in refs:
        for segment in _partner_paths(ref):
            for ascii_only in (True, False):
                path = json.dumps(segment, ensure_ascii=ascii_only)[1:-1]
                found |= {path + "/", path + '"'}
    return sorted(found)


async def _adjustments_of(uow: UnitOfWork, member_id: uuid.UUID) -> list[uuid.UUID]:
    """The ids of the member's adjustments: a reply to one names its entry, not the member."""
    ledger = LedgerRepository(uow.session)
    entries = await every_row(
        lambda before, limit: ledger.list_entries(
            member_id, types=["adjust"], since=None, until=None, before_id=before, limit=limit
        ),
        lambda entry: entry.id,
    )
    return [entry.id for entry in entries]


async def _exchanges_of(uow: UnitOfWork, member_id: uuid.UUID) -> list[uuid.UUID]:
    """The ids of the member's exchanges with partners: a reply about one (the exchange out, the partner's
    exchange in on their ref, its confirmation or failure) names the exchange and the partner's ref, not the
    member."""
    exchanges = ExchangeRepository(uow.session)
    rows = await every_row(
        lambda before, limit: exchanges.list_member_exchanges(member_id, before_id=before, limit=limit),
        lambda row: row[0].id,
    )
    return [exchange.id for exchange, _ in rows]


async def _perk_codes_of(uow: UnitOfWork, member_id: uuid.UUID) -> list[str]:
    """The codes of the member's partner perks (ours, or the pool's opened): a reply to a partner's redeem
    names the perk by its code (it has no other id in a reply) beside the partner's ref, not the member."""
    perks = PerkRepository(uow.session)
    rows = await every_row(
        lambda before, limit: perks.list_member_perks(member_id, before_id=before, limit=limit),
        lambda row: row[0].id,
    )
    codes = (perk.code if pooled is None else uow.vault.decrypt(pooled) for perk, _, pooled in rows)
    return [code for code in codes if code is not None]  # an owed perk has none yet


@dataclass(frozen=True, slots=True)
class _Theirs:
    """What finds the replies about the erased member, each string as a reply holds it."""

    member_id: str
    # Theirs alone (e-mail, phone, card number, as JSON writes them): a reply holding one is theirs.
    identifiers: list[str]
    # Their partner refs, external ids and the reasons operators wrote: short or plain words ("1001",
    # "goodwill") another member's reply may hold as well, so they count only in a reply about this member.
    mentions: list[str]
    # A partner's path naming their ref: the reply was to a request about them.
    paths: list[str]
    # Their records a reply names in place of them: their adjustments' and exchanges' ids, their partner
    # perks' codes (as JSON writes them); beside a ref or a reason of theirs, the reply is about them.
    records: list[str]
    traits: frozenset[str]
    # For rewriting a reply about them, as it reads: their contacts, card number, refs and external ids; the
    # reasons operators wrote (free text, which may read as any other value: rewritten as a `reason` only);
    # their refs (in a partner's path); which of their traits is a birthday.
    values: frozenset[str]
    reasons: frozenset[str]
    refs: tuple[str, ...]
    dates: frozenset[str]


def _reply_about(theirs: _Theirs, text: str) -> bool:
    """Whether a recorded reply is about the erased member: it holds something theirs alone, it answered a
    partner's request naming their ref, it names them (their id, or one of their records: an adjustment, an
    exchange, a perk's code) and holds a ref or a reason of theirs, or an object that is theirs (its `id` or
    `member_id`) holds their name or birthday. Another member's reply naming the same name, order number or
    reason, or a referred friend's naming them only as `referred_by`, is not about them."""
    member_id, traits = theirs.member_id, theirs.traits
    if any(needle in text for needle in (*theirs.identifiers, *theirs.paths)):
        return True
    if any(needle in text for needle in theirs.mentions) and any(
        own in text for own in (member_id, *theirs.records)
    ):
        return True
    if not traits or member_id not in text:
        return False
    try:
        document = json.loads(text)
    except ValueError:
        return False
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if member_id in (value.get("id"), value.get("member_id")) and _holds(value, traits):
                return True
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _reply_without(theirs: _Theirs, text: str) -> str | None:
    """A reply about the erased member (`_reply_about`) with what was theirs rewritten as stored events are:
    their contacts, card number, external ids and partner refs become `erased` wherever they are, so do the
    reasons operators wrote about them as a `reason`, a partner's path names `erased` for their ref, and
    inside their own record (`id` or `member_id` theirs) so do their name and birthday, a birthday null (a
    reply's birthday is a date). Kept so, a retry with its key replays it and does nothing again. None (the
    reply is dropped, and its retry runs again) when it is no JSON, or something of theirs is left in it.
    Their own record (`id` theirs: the member as a reply shows them) loses its contacts, name, birthday and
    external ids whatever they hold: a reply kept from before a change (their enrolment's, a day) holds the
    values they had then, which the member's row, read by the erasure, no longer does."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    scrubbed = _rewritten(
        _rewritten(document, partial(_record_without_person, theirs.member_id)),
        partial(_scrubbed, theirs),
        owner=theirs.member_id,
    )
    rewritten = json.dumps(scrubbed, ensure_ascii=False, separators=(",", ":"))
    return None if _reply_about(theirs, rewritten) else rewritten


# What a member's record in a reply (MemberRead, an import's line) holds of the person.
_OF_THE_PERSON = ("phone", "email", "name", "birthday")


def _record_without_person(member_id: str, key: str | None, value: Any, own: bool) -> Any:
    """The erased member's own record in a reply (an object whose `id` is theirs) with the fields that say who
    they are rewritten as `_scrubbed` rewrites their current values, whatever those fields hold (a
    `_rewritten` rule): their contacts, name and birthday (null), and the ids of their external ids."""
    if not isinstance(value, dict) or value.get("id") != member_id:
        return value
    record = dict(value)
    for field in _OF_THE_PERSON:
        if record.get(field) is not None:
            record[field] = None if field == "birthday" else ERASED_REF
    external = record.get("external_ids")
    if isinstance(external, dict):
        record["external_ids"] = dict.fromkeys(external, ERASED_REF)
    return record


def _scrubbed(theirs: _Theirs, key: str | None, value: Any, own: bool) -> Any:
    """A value of a reply about the erased member as `_reply_without` rewrites it (a `_rewritten` rule)."""
    if key == "reason" and value in theirs.reasons:
        return ERASED_REF
    if not isinstance(value, str):
        return value
    if value in theirs.values or (own and value in theirs.traits):
        return None if value in theirs.dates else ERASED_REF
    erased_paths = _partner_paths(ERASED_REF)
    for ref in theirs.refs:
        for path, erased in zip(_partner_paths(ref), erased_paths, strict=True):
            value = value.replace(path + "/", erased + "/")
            if value.endswith(path):
                value = value.removesuffix(path) + erased
    return value


def _rewritten(
    value: Any,
    rule: Callable[[str | None, Any, bool], Any],
    *,
    owner: str | None = None,
    key: str | None = None,
    own: bool = False,
) -> Any:
    """A JSON document (parsed) with each value replaced by what `rule(key, value, own)` gives for it: `key`
    the key it stands at (None in a list, and for the document itself), `own` whether it lies inside an object
    whose `id` or `member_id` is `owner`. An object or a list the rule gives back as it is has its items
    rewritten so."""
    found = rule(key, value, own)
    if found is not value:
        return found
    if isinstance(value, dict):
        own = own or (owner is not None and owner in (value.get("id"), value.get("member_id")))
        return {name: _rewritten(item, rule, owner=owner, key=name, own=own) for name, item in value.items()}
    if isinstance(value, list):
        return [_rewritten(item, rule, owner=owner, own=own) for item in value]
    return value


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _holds(value: Any, traits: frozenset[str]) -> bool:
    if isinstance(value, str):
        return value in traits
    if isinstance(value, dict):
        return any(_holds(item, traits) for item in value.values())
    if isinstance(value, list):
        return any(_holds(item, traits) for item in value)
    return False


def _event_without(identifiers: frozenset[str], event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An event payload without what identified the member, nor what an operator wrote about them."""
    scrubbed: dict[str, Any] = _rewritten(payload, partial(_without, identifiers))
    if event_type in (PointsAdjusted.event_type, PointsTransferReversed.event_type):
        scrubbed["reason"] = ERASED_REF
    return scrubbed


def _reversal_without_reason(
    transfers: frozenset[str], event_type: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """Another member's event of a reversal of one of `transfers`, without the reason the operator wrote,
    which may name the member erased."""
    if event_type == PointsTransferReversed.event_type and payload.get("transfer_id") in transfers:
        return payload | {"reason": ERASED_REF}
    return payload


def _without(identifiers: frozenset[str], key: str | None, value: Any, own: bool) -> Any:
    """A value of an event payload, replaced if it identified the member (a `_rewritten` rule)."""
    if key == _PARTNER_REF and value is not None:
        return ERASED_REF
    return ERASED_REF if isinstance(value, str) and value in identifiers else value
