"""Members brought over from the programme's previous system, a batch at a time: their profiles, the card
numbers they carry, the points they held (each part with its end) and the tier they had.

An import is one unit of work: a batch is written whole or not at all, so an operator fixes the rows an
answer names and sends the batch again. Imports run one at a time: two batches naming the same people in
different orders would otherwise each wait for the other's new rows. Imported points are neither earned nor
adjusted: the ledger calls them `import`, and the analytics count them as `imported`. Members start here as
newcomers do (their lifecycle `new`, their card's history here empty): what they bought before is not
brought, so tiers and stages follow what they buy here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.members.repository import MemberRepository
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.points.accounts import credit_in_lots
from loyalty_api.points.events import PointsImported
from loyalty_api.profiles.errors import MemberExists
from loyalty_api.profiles.service import MemberProfile, enrol, get_member
from loyalty_api.program.service import ProgramSettings, get_program
from loyalty_api.tiers.membership import place


@dataclass(frozen=True, slots=True)
class OpeningLot:
    points: int
    expires_at: datetime | None  # None: as points earned at the import


@dataclass(frozen=True, slots=True)
class TierPlacement:
    code: str
    until: datetime


@dataclass(frozen=True, slots=True)
class MemberImport:
    phone: str | None = None
    email: str | None = None
    name: str | None = None
    birthday: date | None = None
    channel: str = "import"
    external_ids: dict[str, str] = field(default_factory=dict)
    marketing_consent: bool = False
    member_number: str | None = None
    points: Sequence[OpeningLot] = ()
    tier: TierPlacement | None = None


async def import_members(
    uow: UnitOfWork, rows: Sequence[MemberImport], *, actor: uuid.UUID | None
) -> list[MemberProfile]:
    """Enrol each of `rows` with what they bring, in order; the members as they stand after. A refusal names
    its row (`members.N…`), and nothing of the batch is kept."""
    await MemberRepository(uow.session).take_import_turn()
    program = await get_program(uow)
    imported = []
    for index, row in enumerate(rows):
        with _naming_row(index):
            imported.append(await _import(uow, program, row, actor))
    return imported


async def _import(
    uow: UnitOfWork, program: ProgramSettings, row: MemberImport, actor: uuid.UUID | None
) -> MemberProfile:
    now = uow.clock.now()
    for n, lot in enumerate(row.points):
        if lot.expires_at is not None and lot.expires_at <= now:
            raise InvalidField(
                f"points.{n}.expires_at", "must be in the future: ended points are not brought"
            )
    member = await enrol(
        uow,
        phone=row.phone,
        email=row.email,
        name=row.name,
        birthday=row.birthday,
        channel=row.channel,
        external_ids=row.external_ids,
        marketing_consent=row.marketing_consent,
        referral_code=None,
        member_number=row.member_number,
        imported=True,
    )
    if not row.points and row.tier is None:
        return member
    if row.points:
        await _credit_opening_balance(uow, program, member.id, row.points, actor)
    if row.tier is not None:
        await place(uow, member.id, tier_code=row.tier.code, kept_until=row.tier.until, actor=actor)
    return await get_member(uow, member.id)


async def _credit_opening_balance(
    uow: UnitOfWork,
    program: ProgramSettings,
    member_id: uuid.UUID,
    lots: Sequence[OpeningLot],
    actor: uuid.UUID | None,
) -> None:
    """One `import` entry for all the member's points, and a lot for each part, ending when it said."""
    now = uow.clock.now()
    parts = [
        (lot.points, program.expiry_for(now) if lot.expires_at is None else lot.expires_at) for lot in lots
    ]
    state = await credit_in_lots(uow, member_id=member_id, type="import", parts=parts, actor=actor)
    points = sum(part for part, _ in parts)
    imported = PointsImported(member_id=member_id, points=points, balance=state.balance)
    await emit_for_member(uow, imported, member_id)


@contextmanager
def _naming_row(index: int) -> Iterator[None]:
    """A row's refusal, naming the row: `members.3.phone`, not `phone`."""
    try:
        yield
    except MemberExists as exc:
        raise MemberExists(str(exc.extra["field"]), row=index) from None
    except InvalidField as exc:
        named = [(f"members.{index}.{field}", message) for field, message in exc.fields]
        raise InvalidField(*named[0], *named[1:]) from None
