"""All queries of members' profiles: the member's own columns with their tier and points balance, as every
read of a member shows them (the till's look-up among them)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.direct import DirectStatement
from loyalty_api.members.models import Member, MemberExternalId, not_erased
from loyalty_api.members.repository import narrow_members
from loyalty_api.points.ledger import StoredAccount
from loyalty_api.points.models import PointLot, PointsAccount
from loyalty_api.points.repository import stored_account, stored_account_columns
from loyalty_api.tiers.models import Tier

_MEMBERS = cast(Table, Member.__table__)
_TIERS = cast(Table, Tier.__table__)
_ACCOUNTS = cast(Table, PointsAccount.__table__)
_EXTERNAL = cast(Table, MemberExternalId.__table__)


@dataclass(frozen=True, slots=True)
class MemberRow:
    """The member's own columns that their profile shows (personal data still encrypted)."""

    id: uuid.UUID
    member_number: str
    status: str
    phone_encrypted: str | None
    email_encrypted: str | None
    name_encrypted: str | None
    birthday_encrypted: str | None
    channel: str
    marketing_consent: bool
    leaderboard_opt_in: bool
    referral_code: str
    referred_by_id: uuid.UUID | None
    lifecycle_stage: str
    lifecycle_since: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TierRow:
    code: str
    name: str
    rank: int


@dataclass(frozen=True, slots=True)
class MemberRecord:
    member: MemberRow
    tier: TierRow | None
    points: StoredAccount | None  # None: no points account (none is made without one)
    external_ids: dict[str, str]


# Table columns, not ORM entities: a profile is read at the till on every sale, and a select of columns
# skips the ORM's identity map and result machinery.
_MEMBER_COLUMNS = tuple(_MEMBERS.c[name] for name in MemberRow.__dataclass_fields__)
_TIER_COLUMNS = (_TIERS.c.code, _TIERS.c.name, _TIERS.c.rank)


# What the jobs have yet to settle counts too: the balance a read shows is the one a spend would find.
_POINTS_COLUMNS = stored_account_columns(
    PointsAccount.member_id, bindparam("now", type_=PointLot.__table__.c.expires_at.type)
)


def _records_query() -> Select[Any]:
    """Members as every read shows them: an erased member is found by none."""
    return (
        select(*_MEMBER_COLUMNS, *_TIER_COLUMNS, *_POINTS_COLUMNS)
        .select_from(_MEMBERS)
        .outerjoin(_TIERS, _TIERS.c.id == _MEMBERS.c.tier_id)
        .outerjoin(_ACCOUNTS, _ACCOUNTS.c.member_id == _MEMBERS.c.id)
        .where(not_erased())
    )


def _record(row: Sequence[Any], external_ids: dict[str, str]) -> MemberRecord:
    members = len(_MEMBER_COLUMNS)
    code, name, rank = row[members : members + 3]
    points = row[members + 3 :]
    return MemberRecord(
        member=MemberRow(*row[:members]),
        tier=None if code is None else TierRow(code, name, rank),
        points=None if points[0] is None else stored_account(points),
        external_ids=external_ids,
    )


# Lookups run at the till on every sale: their statements are built once.
_BY_ID = DirectStatement(_records_query().where(_MEMBERS.c.id == bindparam("key")))
_BY_NUMBER = DirectStatement(_records_query().where(_MEMBERS.c.member_number == bindparam("key")))
_BY_PHONE = DirectStatement(_records_query().where(_MEMBERS.c.phone_hash == bindparam("key")))
_BY_EMAIL = DirectStatement(_records_query().where(_MEMBERS.c.email_hash == bindparam("key")))
_BY_EXTERNAL_ID = DirectStatement(
    _records_query()
    .join(_EXTERNAL, _EXTERNAL.c.member_id == _MEMBERS.c.id)
    .where(_EXTERNAL.c.system == bindparam("system"), _EXTERNAL.c.external_id == bindparam("key"))
)
_EXTERNAL_IDS_OF = DirectStatement(
    select(_EXTERNAL.c.system, _EXTERNAL.c.external_id).where(_EXTERNAL.c.member_id == bindparam("member_id"))
)
_EXTERNAL_IDS = select(
    MemberExternalId.member_id, MemberExternalId.system, MemberExternalId.external_id
).where(MemberExternalId.member_id.in_(bindparam("member_ids", expanding=True)))


class ProfileRepository:
    """Members as reads show them, their points as at `now`."""

    def __init__(self, session: AsyncSession, now: datetime) -> None:
        self.session = session
        self.now = now

    async def _records(self, query: Select[Any]) -> list[MemberRecord]:
        rows = (await self.session.execute(query, {"now": self.now})).all()
        external = await self._external_ids([row[0] for row in rows])
        return [_record(row, external.get(row[0], {})) for row in rows]

    async def _external_ids(self, member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, str]]:
        if not member_ids:
            return {}
        rows = await self.session.execute(_EXTERNAL_IDS, {"member_ids": list(member_ids)})
        found: dict[uuid.UUID, dict[str, str]] = defaultdict(dict)
        for member_id, system, external_id in rows.all():
            found[member_id][system] = external_id
        return found

    async def _found(self, query: DirectStatement[Select[Any]], **params: object) -> MemberRecord | None:
        row = await query.fetch_one(self.session, {**params, "now": self.now})
        if row is None:
            return None
        external = await _EXTERNAL_IDS_OF.fetch_all(self.session, {"member_id": row[0]})
        return _record(row, dict(external))

    async def get_record(self, member_id: uuid.UUID) -> MemberRecord | None:
        return await self._found(_BY_ID, key=member_id)

    async def get_record_by_number(self, member_number: str) -> MemberRecord | None:
        return await self._found(_BY_NUMBER, key=member_number)

    async def get_records(self, member_ids: Sequence[uuid.UUID]) -> list[MemberRecord]:
        """Many members in one statement (and one for their external ids), in no particular order."""
        return await self._records(_records_query().where(_MEMBERS.c.id.in_(member_ids)))

    async def get_records_by_number(self, member_numbers: Sequence[str]) -> list[MemberRecord]:
        return await self._records(_records_query().where(_MEMBERS.c.member_number.in_(member_numbers)))

    async def get_record_by_phone_hash(self, phone_hash: str) -> MemberRecord | None:
        return await self._found(_BY_PHONE, key=phone_hash)

    async def get_record_by_email_hash(self, email_hash: str) -> MemberRecord | None:
        return await self._found(_BY_EMAIL, key=email_hash)

    async def get_record_by_external_id(self, system: str, external_id: str) -> MemberRecord | None:
        return await self._found(_BY_EXTERNAL_ID, system=system, key=external_id)

    async def list_records(
        self,
        *,
        tier_id: uuid.UUID | None,
        status: str | None,
        lifecycle: str | None,
        segment: str | None = None,
        birthday_month_key: str | None = None,
        after_id: uuid.UUID | None,
        limit: int,
    ) -> list[MemberRecord]:
        query = narrow_members(
            _records_query().order_by(_MEMBERS.c.id).limit(limit),
            tier_id=tier_id,
            lifecycle=lifecycle,
            segment=segment,
            birthday_month_key=birthday_month_key,
        )
        if status is not None:
            query = query.where(_MEMBERS.c.status == status)
        if after_id is not None:
            query = query.where(_MEMBERS.c.id > after_id)
        return await self._records(query)
