"""All queries of the points ledger: accounts, entries, lots, holds, referral rewards."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Insert,
    Select,
    Subquery,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import InstrumentedAttribute, set_committed_value

from loyalty_api.db.dialect import insert_or_ignore
from loyalty_api.db.direct import DirectStatement
from loyalty_api.db.ids import new_id
from loyalty_api.db.prefixed import Row, prefixed, prefixed_binds
from loyalty_api.members.models import Member, MemberStatus, not_erased
from loyalty_api.members.repository import POINTS_HOLDER_COLUMNS, PointsHolder
from loyalty_api.orders.models import ORDER_OWES_POINTS, Order
from loyalty_api.orders.repository import (
    CLAIM_EARN_SQLITE,
    CLAIMED_EARN,
    claim_order,
    earned_order_row,
    purchases_since,
)
from loyalty_api.outbox.events import Event
from loyalty_api.outbox.models import OutboxEvent
from loyalty_api.outbox.repository import INSERT_EVENT, member_event_row
from loyalty_api.points.ledger import EntryType, LotBalance, LotOnBooks, PaidFrom, StoredAccount
from loyalty_api.points.models import (
    HOLD_ACTIVE,
    LOT_HOLDS_POINTS,
    Hold,
    LedgerEntry,
    PointLot,
    PointsAccount,
    PointStandIn,
    ReferralReward,
)

_ACCOUNTS = cast(Table, PointsAccount.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)
_LOTS = cast(Table, PointLot.__table__)
_EVENTS = cast(Table, OutboxEvent.__table__)
_MEMBERS = cast(Table, Member.__table__)
_REFERRALS = cast(Table, ReferralReward.__table__)


# The hot path's statements are built once: building a statement costs more than running it.
_CHANGE_ACCOUNT = DirectStatement(
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.member_id == bindparam("account"))
    .values(
        balance=_ACCOUNTS.c.balance + bindparam("balance_change"),
        held=_ACCOUNTS.c.held + bindparam("held_change"),
        lifetime_earned=_ACCOUNTS.c.lifetime_earned + bindparam("lifetime_change"),
        updated_at=bindparam("now"),
    )
    .returning(_ACCOUNTS.c.balance, _ACCOUNTS.c.held, _ACCOUNTS.c.lifetime_earned)
)
_CHANGE_ACCOUNT_IF_AVAILABLE = DirectStatement(
    _CHANGE_ACCOUNT.statement.where(_ACCOUNTS.c.balance - _ACCOUNTS.c.held >= bindparam("needs"))
)
_INSERT_ENTRY = DirectStatement(insert(_ENTRIES))
# When the jobs next owe the member something (a hold's time up, a lot's end), not whether they owe it by a
# time given: the caller compares it with the time it reads once the locks are its own, so what ended while
# it waited for them counts, at no extra statement. Each is one look into a partial index, as a probe was.
_NEXT_HOLD_END = (
    select(func.min(Hold.expires_at)).where(Hold.member_id == _MEMBERS.c.id, HOLD_ACTIVE).scalar_subquery()
)
_NEXT_LOT_END = (
    select(func.min(PointLot.expires_at))
    .where(PointLot.member_id == _MEMBERS.c.id, LOT_HOLDS_POINTS)
    .scalar_subquery()
)
# The member's row, then their account's (in that order, as everything that may change a tier locks the member
# first), both until commit, so the balance read here is the one the transaction changes. NO KEY UPDATE: rows
# that only reference the member (ledger, orders) still go in beside the lock.
_HOLDER_WITH_ACCOUNT_LOCKED = DirectStatement(
    select(
        *POINTS_HOLDER_COLUMNS,
        _ACCOUNTS.c.balance,
        _ACCOUNTS.c.held,
        _ACCOUNTS.c.lifetime_earned,
        _NEXT_HOLD_END.label("next_hold_end"),
        _NEXT_LOT_END.label("next_lot_end"),
    )
    .join(_ACCOUNTS, _ACCOUNTS.c.member_id == _MEMBERS.c.id)
    .where(_MEMBERS.c.id == bindparam("member_id"))
    .with_for_update(key_share=True)
)
_FIFO = (case((PointLot.expires_at.is_(None), 1), else_=0), PointLot.expires_at, PointLot.id)
_LIVE = select(PointLot.id, PointLot.remaining).where(
    PointLot.member_id == bindparam("member"), LOT_HOLDS_POINTS
)
_LIVE_LOTS = DirectStatement(_LIVE.order_by(*_FIFO))
_DUE_LOT_EXISTS = DirectStatement(
    select(
        exists().where(
            PointLot.member_id == bindparam("member"),
            LOT_HOLDS_POINTS,
            PointLot.expires_at <= bindparam("now", type_=PointLot.__table__.c.expires_at.type),
        )
    )
)
_LIVE_LOTS_ORDER_FIRST = DirectStatement(
    _LIVE.order_by(case((PointLot.order_ref == bindparam("first"), 0), else_=1), *_FIFO)
)
_INSERT_LOT = DirectStatement(insert(_LOTS))
# By member and lot: a statement about one member names them (distributed by member, it runs on one shard).
_TAKE_FROM_LOT = DirectStatement(
    update(_LOTS)
    .where(_LOTS.c.member_id == bindparam("holder"), _LOTS.c.id == bindparam("lot"))
    .values(remaining=_LOTS.c.remaining - bindparam("taken"))
)


@dataclass(frozen=True, slots=True)
class Transfer:
    """Points a member sent another (their `transfer_out` entry)."""

    entry_id: uuid.UUID
    to_member_id: uuid.UUID
    points: int
    reversed: bool


@dataclass(frozen=True, slots=True)
class AccountState:
    balance: int
    held: int
    lifetime_earned: int

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A ledger entry to write: what changed the member's points, and the account as it is after it."""

    member_id: uuid.UUID
    type: EntryType
    amount: int
    state: AccountState
    at: datetime
    held_change: int = 0
    order_ref: str | None = None
    hold_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)
    actor: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class NewLot:
    """Points credited by an entry, to be spent oldest expiry first."""

    member_id: uuid.UUID
    entry_id: uuid.UUID
    points: int
    order_ref: str | None
    at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Earning:
    """Everything one earn writes, each value known before anything is written (the account is locked):
    the entry (its amount the points earned, its state the account after), the purchase, the lot (none when
    the purchase earned nothing) and the event. `LedgerRepository.record_earn` alone turns it into rows."""

    entry: NewEntry
    currency: str
    amount_minor: int
    purchased_at: datetime
    lot_expires_at: datetime | None
    event: Event

    @property
    def points(self) -> int:
        return self.entry.amount


def stored_account_columns(
    member_id: InstrumentedAttribute[uuid.UUID], now: BindParameter[datetime]
) -> tuple[Any, ...]:
    """The columns a read adds to its statement for a `StoredAccount` of the member `member_id` names (the
    statement joins their points account): the row's balance and held, and, as scalar subqueries, what
    holds past their time reserve, what lots past their end hold, the member's open shortfalls, and how much
    of those their orders' own points would pay (from points past their end, from points still good)."""
    expired_held = select(func.coalesce(func.sum(Hold.points), 0)).where(
        Hold.member_id == member_id, HOLD_ACTIVE, Hold.expires_at <= now
    )
    due = select(func.coalesce(func.sum(PointLot.remaining), 0)).where(
        PointLot.member_id == member_id, LOT_HOLDS_POINTS, PointLot.expires_at <= now
    )
    owing = (Order.member_id == member_id, ORDER_OWES_POINTS)
    shortfall = select(func.coalesce(func.sum(Order.points_shortfall), 0)).where(*owing)
    own = (
        PointLot.member_id == Order.member_id,
        PointLot.order_ref == Order.order_ref,
        LOT_HOLDS_POINTS,
    )
    own_due = (
        select(func.coalesce(func.sum(PointLot.remaining), 0))
        .where(*own, PointLot.expires_at <= now)
        .correlate(Order)
        .scalar_subquery()
    )
    own_live = (
        select(func.coalesce(func.sum(PointLot.remaining), 0))
        .where(*own, or_(PointLot.expires_at.is_(None), PointLot.expires_at > now))
        .correlate(Order)
        .scalar_subquery()
    )
    paid_due = _least(Order.points_shortfall, own_due)
    return (
        PointsAccount.balance,
        PointsAccount.held,
        expired_held.scalar_subquery(),
        due.scalar_subquery(),
        shortfall.scalar_subquery(),
        select(func.coalesce(func.sum(paid_due), 0)).where(*owing).scalar_subquery(),
        select(func.coalesce(func.sum(_least(Order.points_shortfall - paid_due, own_live)), 0))
        .where(*owing)
        .scalar_subquery(),
    )


def _least(first: Any, second: Any) -> Any:
    """The smaller of two expressions, on both databases (PostgreSQL's LEAST is SQLite's two-argument MIN)."""
    return case((first < second, first), else_=second)


def stored_account(values: Sequence[Any]) -> StoredAccount:
    """The `StoredAccount` from the values of `stored_account_columns`, in their order."""
    return StoredAccount(*(int(value) for value in values))


def _entry_row(entry: NewEntry) -> Row:
    return {
        "id": entry.id,
        "member_id": entry.member_id,
        "type": entry.type,
        "amount": entry.amount,
        "balance_after": entry.state.balance,
        "held_change": entry.held_change,
        "held_after": entry.state.held,
        "order_ref": entry.order_ref,
        "hold_id": entry.hold_id,
        "partner_id": entry.partner_id,
        "details": entry.details,
        "actor_key_id": entry.actor,
        "created_at": entry.at,
    }


def _lot_row(lot: NewLot) -> Row:
    return {
        "id": new_id(),
        "member_id": lot.member_id,
        "entry_id": lot.entry_id,
        "order_ref": lot.order_ref,
        "points": lot.points,
        "remaining": lot.points,
        "created_at": lot.at,
        "expires_at": lot.expires_at,
        "expiry_reminded_at": None,
    }


def _earning_rows(earning: Earning) -> tuple[Row, Row, Row | None, Row]:
    """The order's claim, the entry, the lot and the event of an earn."""
    entry = earning.entry
    assert entry.order_ref is not None, "an earn is for an order"
    order = earned_order_row(
        entry.order_ref,
        entry.member_id,
        currency=earning.currency,
        amount_minor=earning.amount_minor,
        points=entry.amount,
        purchased_at=earning.purchased_at,
        now=entry.at,
    )
    lot = None
    if entry.amount > 0:
        lot = _lot_row(
            NewLot(entry.member_id, entry.id, entry.amount, entry.order_ref, entry.at, earning.lot_expires_at)
        )
    event = member_event_row(earning.event, entry.member_id, at=entry.at)
    return order, _entry_row(entry), lot, event


# (net spend, net points) of the member's purchases since each of some window starts.
PurchaseTotals = dict[datetime, tuple[int, int]]


def _insert_if(table: Table, prefix: str, condition: Any) -> Insert:
    """INSERT one row of `<prefix>__<column>` values, only if `condition` holds."""
    values = prefixed_binds(table, prefix)
    return insert(table).from_select(list(values), select(*values.values()).where(condition))


def _totals_since(windows: int) -> list[Subquery]:
    return [purchases_since(f"since_{i}").subquery(f"since_{i}") for i in range(windows)]


@cache
def _record_earn_at_once(*, with_lot: bool, windows: int) -> DirectStatement[Select[Any]]:
    """PostgreSQL writes a whole earn in one round trip: the order's claim, and only if it succeeds, the
    account change, the ledger entry, its lot and the outbox event (data-modifying CTEs). Its one row, none
    when the order had already earned, is what the order counts for tiers and the member's purchases since
    each window start (all before this one: every part of the statement sees the same snapshot)."""
    claim = (
        claim_order(postgresql.insert, stamp="earned_at", points="points_earned", prefix="order")
        .returning(*CLAIMED_EARN)
        .cte("claimed")
    )
    claimed = select(claim.c.spend).exists()
    writes = [
        _CHANGE_ACCOUNT.statement.where(claimed).cte("account"),
        _insert_if(_ENTRIES, "entry", claimed).cte("entry"),
        _insert_if(_EVENTS, "event", claimed).cte("event"),
    ]
    if with_lot:
        writes.append(_insert_if(_LOTS, "lot", claimed).cte("lot"))
    totals = _totals_since(windows)
    joined: Any = claim
    for since in totals:
        joined = joined.join(since, true())
    columns = [claim.c.spend, claim.c.points, claim.c.purchased_at]
    columns += [column for since in totals for column in (since.c.spend, since.c.points)]
    return DirectStatement(select(*columns).select_from(joined).add_cte(*writes))


@cache
def _totals_before_earn(windows: int) -> Select[Any]:
    totals = _totals_since(windows)
    joined: Any = totals[0]
    for since in totals[1:]:
        joined = joined.join(since, true())
    return select(*[column for since in totals for column in (since.c.spend, since.c.points)]).select_from(
        joined
    )


def _with_claimed(
    windows: Sequence[datetime], before: Sequence[int], spend: int, points: int, purchased_at: datetime
) -> PurchaseTotals:
    """The totals since each window start, the claimed order added to those it falls in. (PostgreSQL sums
    bigints as numeric: they come back as Decimal.)"""
    return {
        start: (
            int(before[2 * i]) + (spend if purchased_at >= start else 0),
            int(before[2 * i + 1]) + (points if purchased_at >= start else 0),
        )
        for i, start in enumerate(windows)
    }


class PointsAccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_account(self, member_id: uuid.UUID, now: datetime) -> None:
        self.session.add(
            PointsAccount(member_id=member_id, balance=0, held=0, lifetime_earned=0, updated_at=now)
        )
        await self.session.flush()

    async def change(
        self,
        member_id: uuid.UUID,
        *,
        now: datetime,
        balance: int = 0,
        held: int = 0,
        lifetime: int = 0,
        needs_available: int | None = None,
    ) -> AccountState | None:
        """Change the account in one statement, which also locks the row until commit.

        With `needs_available` the change happens only if balance − held ≥ that many points; None is
        returned when it does not (or when the member has no account).
        """
        params = {
            "account": member_id,
            "balance_change": balance,
            "held_change": held,
            "lifetime_change": lifetime,
            "now": now,
        }
        if needs_available is None:
            row = await _CHANGE_ACCOUNT.fetch_one(self.session, params)
        else:
            row = await _CHANGE_ACCOUNT_IF_AVAILABLE.fetch_one(
                self.session, params | {"needs": needs_available}
            )
        return None if row is None else AccountState(balance=row[0], held=row[1], lifetime_earned=row[2])

    async def lock(self, member_id: uuid.UUID, now: datetime) -> AccountState | None:
        return await self.change(member_id, now=now)

    async def claim(self, member_id: uuid.UUID) -> str | None:
        """Lock the member's row and their account's until commit unless another transaction holds either
        (then None, at once, without waiting): how a job takes a member that no other worker, nor a change
        made on request, has now, both rows as such a change takes them (lock_with_member). The member's
        status, whatever it is, as it stands while the rows are this transaction's. (SQLite has one writer at
        a time: the rows are always free.)"""
        status: str | None = await self.session.scalar(
            select(_MEMBERS.c.status)
            .join(_ACCOUNTS, _ACCOUNTS.c.member_id == _MEMBERS.c.id)
            .where(_MEMBERS.c.id == member_id)
            .with_for_update(key_share=True, skip_locked=True)
        )
        return status

    async def lock_many(self, member_ids: Sequence[uuid.UUID]) -> None:
        """Lock these members' accounts until commit, in ascending member order, the order every path that
        locks several accounts takes, so a batch and a transfer between two of its members cannot deadlock
        (an UPDATE alone would lock them in whatever order it met them)."""
        await self.session.execute(
            select(_ACCOUNTS.c.member_id)
            .where(_ACCOUNTS.c.member_id.in_(sorted(member_ids)))
            .order_by(_ACCOUNTS.c.member_id)
            .with_for_update()
        )

    async def credit_many(
        self, member_ids: Sequence[uuid.UUID], *, points: int, lifetime: int, now: datetime
    ) -> dict[uuid.UUID, AccountState]:
        """Add `points` (and `lifetime` to what each earned) to each of these members' accounts, locked
        first (lock_many), in one statement however many they are; the accounts after it, by member."""
        rows = await self.session.execute(
            update(_ACCOUNTS)
            .where(_ACCOUNTS.c.member_id.in_(member_ids))
            .values(
                balance=_ACCOUNTS.c.balance + points,
                lifetime_earned=_ACCOUNTS.c.lifetime_earned + lifetime,
                updated_at=now,
            )
            .returning(
                _ACCOUNTS.c.member_id, _ACCOUNTS.c.balance, _ACCOUNTS.c.held, _ACCOUNTS.c.lifetime_earned
            )
            .execution_options(synchronize_session=False)
        )
        return {
            member_id: AccountState(balance=balance, held=held, lifetime_earned=earned)
            for member_id, balance, held, earned in rows.all()
        }

    async def lock_with_member(
        self, member_id: uuid.UUID
    ) -> tuple[PointsHolder, AccountState, datetime | None] | None:
        """The member and their account, both rows locked until commit (PostgreSQL), and when the jobs next
        owe them something (a hold's time up, a lot's end; None: nothing to come). Past lots and holds count
        as the statement found them before any wait for the locks."""
        row = await _HOLDER_WITH_ACCOUNT_LOCKED.fetch_one(self.session, {"member_id": member_id})
        if row is None:
            return None
        *holder, balance, held, lifetime_earned, next_hold_end, next_lot_end = row
        state = AccountState(balance=balance, held=held, lifetime_earned=lifetime_earned)
        due = [end for end in (next_hold_end, next_lot_end) if end is not None]
        return PointsHolder(*holder), state, min(due, default=None)

    async def get_state(self, member_id: uuid.UUID) -> AccountState | None:
        row = (
            await self.session.execute(
                select(_ACCOUNTS.c.balance, _ACCOUNTS.c.held, _ACCOUNTS.c.lifetime_earned).where(
                    _ACCOUNTS.c.member_id == member_id
                )
            )
        ).one_or_none()
        return None if row is None else AccountState(balance=row[0], held=row[1], lifetime_earned=row[2])

    async def get_stored_accounts(
        self, member_ids: Sequence[uuid.UUID], now: datetime, *, of_erased: bool = True
    ) -> dict[uuid.UUID, tuple[StoredAccount, int]]:
        """Each member's account as stored, with what the jobs have yet to settle by `now`, and their
        lifetime earned points; `of_erased=False` leaves out the accounts of erased members (a read for a
        caller finds no erased member). Changes nothing."""
        at = bindparam("now", now, type_=PointLot.__table__.c.expires_at.type)
        columns = stored_account_columns(PointsAccount.member_id, at)
        query = select(PointsAccount.member_id, PointsAccount.lifetime_earned, *columns).where(
            PointsAccount.member_id.in_(member_ids)
        )
        if not of_erased:
            query = query.join(Member, Member.id == PointsAccount.member_id).where(not_erased())
        rows = await self.session.execute(query)
        return {row[0]: (stored_account(row[2:]), int(row[1])) for row in rows.all()}


# The entries of a transfer's reversal, each with the operator's reason: the recipient's `transfer_out`
# (marked `reversal`) and the sender's `transfer_return`.
_REVERSAL_TYPES = ("transfer_out", "transfer_return")


@dataclass(frozen=True, slots=True)
class ReplacedReasons:
    reasons: list[str]  # as they were
    # The other members party to the member's reversed transfers, with those transfers' ids: their events of
    # the reversal carry the reason too.
    reversals: dict[uuid.UUID, frozenset[str]]


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_entry(self, entry: NewEntry) -> None:
        await _INSERT_ENTRY.execute(self.session, _entry_row(entry))

    async def insert_entries(self, entries: Sequence[NewEntry]) -> None:
        """Many entries in one statement (the driver's executemany)."""
        if entries:
            await self.session.execute(insert(_ENTRIES), [_entry_row(entry) for entry in entries])

    async def replace_reasons(self, member_id: uuid.UUID, replacement: str) -> ReplacedReasons:
        """For an erasure: the reasons operators wrote about the member (free text, which may name them)
        become `replacement`, the amounts staying: those of their adjustments, and those of the transfer
        reversals they were party to, in the other member's entries too (one reason is written to both)."""
        own = await self._entries_with_reasons(member_id, ("adjust", *_REVERSAL_TYPES))
        reversals: dict[uuid.UUID, set[str]] = {}
        for _, entry_type, details in own:
            if entry_type in _REVERSAL_TYPES:
                party = uuid.UUID(
                    details["from_member_id"] if entry_type == "transfer_return" else details["to_member_id"]
                )
                reversals.setdefault(party, set()).add(details["transfer_id"])
        theirs = [
            entry
            for party, transfers in reversals.items()
            for entry in await self._entries_with_reasons(party, _REVERSAL_TYPES)
            if entry[2]["transfer_id"] in transfers
        ]
        changed = [
            (entry_id, details)
            for entry_id, _, details in [*own, *theirs]
            if details["reason"] != replacement
        ]
        if changed:
            await self.session.execute(
                update(_ENTRIES)
                .where(_ENTRIES.c.id == bindparam("entry"))
                .values(details=bindparam("new_details", type_=_ENTRIES.c.details.type)),
                [
                    {"entry": entry_id, "new_details": details | {"reason": replacement}}
                    for entry_id, details in changed
                ],
            )
        return ReplacedReasons(
            reasons=[details["reason"] for _, details in changed],
            reversals={party: frozenset(transfers) for party, transfers in reversals.items()},
        )

    async def _entries_with_reasons(
        self, member_id: uuid.UUID, types: Sequence[str]
    ) -> list[tuple[uuid.UUID, str, dict[str, Any]]]:
        """The member's entries of `types` whose details hold an operator's `reason`."""
        rows = await self.session.execute(
            select(_ENTRIES.c.id, _ENTRIES.c.type, _ENTRIES.c.details).where(
                _ENTRIES.c.member_id == member_id, _ENTRIES.c.type.in_(types)
            )
        )
        return [
            (entry_id, entry_type, details)
            for entry_id, entry_type, details in rows.all()
            if details.get("reason") is not None
        ]

    async def record_earn(self, earning: Earning, *, windows: Sequence[datetime]) -> PurchaseTotals | None:
        """Claim the order as earned and write the earn's account change, entry, lot and event. Returns the
        member's purchase totals since each of `windows`, this order included; None, having written
        nothing, when the order had already earned or is another member's. Call with the account locked."""
        order, entry, lot, event = _earning_rows(earning)
        member_id = earning.entry.member_id
        account = {
            "account": member_id,
            "balance_change": earning.points,
            "held_change": 0,
            "lifetime_change": earning.points,
            "now": earning.entry.at,
        }
        since = {f"since_{i}": start for i, start in enumerate(windows)}
        if self.session.get_bind().dialect.name == "postgresql":
            params = account | since | {"member": member_id}
            params |= prefixed(order, "order") | prefixed(entry, "entry") | prefixed(event, "event")
            if lot is not None:
                params |= prefixed(lot, "lot")
            statement = _record_earn_at_once(with_lot=lot is not None, windows=len(windows))
            row = await statement.fetch_one(self.session, params)
            if row is None:
                return None
            spend, points, purchased_at, *before = row
            return _with_claimed(windows, before, spend, points, purchased_at)
        # SQLite has no data-modifying CTEs; its statements do not cross a network either. The same rows,
        # one statement each.
        before = []
        if windows:
            before = list(
                (
                    await self.session.execute(
                        _totals_before_earn(len(windows)), since | {"member": member_id}
                    )
                ).one()
            )
        claimed = (await self.session.execute(CLAIM_EARN_SQLITE, order)).one_or_none()
        if claimed is None:
            return None
        await _CHANGE_ACCOUNT.execute(self.session, account)
        await _INSERT_ENTRY.execute(self.session, entry)
        if lot is not None:
            await _INSERT_LOT.execute(self.session, lot)
        await INSERT_EVENT.execute(self.session, event)
        return _with_claimed(windows, before, *claimed)

    async def list_entries(
        self,
        member_id: uuid.UUID,
        *,
        types: Sequence[str],
        since: datetime | None,
        until: datetime | None,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> Sequence[LedgerEntry]:
        query = select(LedgerEntry).where(LedgerEntry.member_id == member_id)
        if types:
            query = query.where(LedgerEntry.type.in_(types))
        if since is not None:
            query = query.where(LedgerEntry.created_at >= since)
        if until is not None:
            query = query.where(LedgerEntry.created_at < until)
        if before_id is not None:
            query = query.where(LedgerEntry.id < before_id)
        result = await self.session.execute(query.order_by(LedgerEntry.id.desc()).limit(limit))
        return result.scalars().all()

    async def entries_of(
        self, member_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[LedgerEntry]:
        """The member's entries after `after_id`, oldest first: the whole ledger, a batch at a time."""
        query = select(LedgerEntry).where(LedgerEntry.member_id == member_id)
        if after_id is not None:
            query = query.where(LedgerEntry.id > after_id)
        result = await self.session.execute(query.order_by(LedgerEntry.id).limit(limit))
        return result.scalars().all()

    async def get_earn_of_order(self, order_ref: str) -> tuple[uuid.UUID | None, dict[str, Any]] | None:
        """The partner the order's points were earned at (None: with us) and the earn entry's details."""
        found = (
            await self.session.execute(
                select(LedgerEntry.partner_id, LedgerEntry.details)
                .where(LedgerEntry.order_ref == order_ref, LedgerEntry.type == "earn")
                .limit(1)
            )
        ).one_or_none()
        return None if found is None else (found[0], found[1])

    async def expired_of_earn(self, member_id: uuid.UUID, order_ref: str) -> int:
        """Points the order's earn lot lost to expiry: each expire entry names the lots it took from. The lots
        are looked for among the member's own (lots have no index on their entry: joined by the entry alone,
        every lot in the database was read)."""
        lots = (
            select(PointLot.id)
            .join(LedgerEntry, LedgerEntry.id == PointLot.entry_id)
            .where(
                PointLot.member_id == member_id,
                LedgerEntry.member_id == member_id,
                LedgerEntry.order_ref == order_ref,
                LedgerEntry.type == "earn",
            )
        )
        lot_ids = {str(lot_id) for lot_id in (await self.session.scalars(lots)).all()}
        if not lot_ids:
            return 0
        expiries = await self.session.scalars(
            select(LedgerEntry.details).where(
                LedgerEntry.member_id == member_id, LedgerEntry.type == "expire"
            )
        )
        return sum(
            int(taken["points"])
            for details in expiries.all()
            for taken in details.get("lots", [])
            if taken["lot_id"] in lot_ids
        )

    async def points_sent_since(self, member_id: uuid.UUID, since: datetime) -> int:
        """The points the member sent to other members (`transfer_out`) from `since` on: not a reversal's
        giving back, nor a transfer an operator reversed."""
        returned = aliased(LedgerEntry)
        reversed_ = exists().where(
            returned.member_id == member_id,
            returned.type == "transfer_return",
            returned.details["transfer_id"].as_string() == LedgerEntry.details["transfer_id"].as_string(),
        )
        sent = await self.session.scalar(
            select(func.coalesce(func.sum(-LedgerEntry.amount), 0)).where(
                LedgerEntry.member_id == member_id,
                LedgerEntry.type == "transfer_out",
                LedgerEntry.details["reversal"].as_string().is_(None),
                ~reversed_,
                LedgerEntry.created_at >= since,
            )
        )
        return int(sent or 0)

    async def find_transfer(self, member_id: uuid.UUID, transfer_id: uuid.UUID) -> Transfer | None:
        """The transfer the member sent with this id, and whether a reversal has given it back."""
        rows = (await self.session.execute(_transfer_entries(member_id, transfer_id))).all()
        sent = next((row for row in rows if row.type == "transfer_out"), None)
        if sent is None:
            return None
        return Transfer(
            entry_id=sent.id,
            to_member_id=uuid.UUID(sent.details["to_member_id"]),
            points=-sent.amount,
            reversed=any(row.type == "transfer_return" for row in rows),
        )

    async def received_entry(self, member_id: uuid.UUID, transfer_id: uuid.UUID) -> uuid.UUID | None:
        """The member's entry that received the transfer (`transfer_in`)."""
        rows = (await self.session.execute(_transfer_entries(member_id, transfer_id))).all()
        return next((row.id for row in rows if row.type == "transfer_in"), None)

    async def points_purchases_earned_since(self, member_id: uuid.UUID, since: datetime) -> int:
        """The points the member's purchases after `since` earned (`earn`) and still have, with the referral
        points a first purchase gave them (their `referral` entries as the friend), less what refunds of
        those purchases took back."""
        as_friend = (LedgerEntry.type == "referral") & (LedgerEntry.details["role"].as_string() == "friend")
        recent = (LedgerEntry.member_id == member_id, LedgerEntry.created_at > since)
        earned = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            (LedgerEntry.type == "earn") | as_friend, *recent
        )
        refund = aliased(LedgerEntry)
        taken_back = (
            select(func.coalesce(func.sum(refund.details["taken_back"].as_integer()), 0))
            .join(
                LedgerEntry,
                and_(LedgerEntry.order_ref == refund.order_ref, LedgerEntry.type == "earn", *recent),
            )
            .where(refund.member_id == member_id, refund.type == "refund")
        )
        points = await self.session.scalar(select(earned.scalar_subquery() - taken_back.scalar_subquery()))
        return int(points or 0)

    async def spends_of(self, member_id: uuid.UUID, order_ref: str) -> list[tuple[uuid.UUID, int, datetime]]:
        """What the order's payment (a redeem, a capture) took from each lot and when, in the order it spent
        them, as its entry names them (nothing for a payment made before entries named their lots)."""
        payments = await self.session.execute(
            select(LedgerEntry.details, LedgerEntry.created_at)
            .where(
                LedgerEntry.member_id == member_id,
                LedgerEntry.order_ref == order_ref,
                LedgerEntry.type.in_(("redeem", "capture")),
            )
            .order_by(LedgerEntry.id)
        )
        return _spends(payments.all())

    async def spends_of_entry(
        self, member_id: uuid.UUID, entry_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, int, datetime]]:
        """`spends_of` one entry (an exchange's points sent to a partner)."""
        found = await self.session.execute(
            select(LedgerEntry.details, LedgerEntry.created_at).where(
                LedgerEntry.member_id == member_id, LedgerEntry.id == entry_id
            )
        )
        return _spends(found.all())

    async def already_expired_of_refunds(self, order_ref: str) -> int:
        """What the order's refunds did not take back because it had expired already (`already_expired`)."""
        refunds = await self.session.scalars(
            select(LedgerEntry.details).where(
                LedgerEntry.order_ref == order_ref, LedgerEntry.type == "refund"
            )
        )
        return sum(int(details.get("already_expired", 0)) for details in refunds.all())


def _spends(entries: Sequence[Any]) -> list[tuple[uuid.UUID, int, datetime]]:
    """The lots spending entries (details, created_at) name, with the points taken and when."""
    return [
        (uuid.UUID(lot["lot_id"]), int(lot["points"]), spent_at)
        for details, spent_at in entries
        for lot in details.get("lots", [])
    ]


def _transfer_entries(member_id: uuid.UUID, transfer_id: uuid.UUID) -> Select[Any]:
    """The member's entries of a transfer (sent, received, given back by a reversal; not the recipient's
    entry of a reversal), among the member's own entries: an index on the member, not a search of the
    ledger."""
    return select(LedgerEntry.id, LedgerEntry.type, LedgerEntry.amount, LedgerEntry.details).where(
        LedgerEntry.member_id == member_id,
        LedgerEntry.type.in_(("transfer_out", "transfer_in", "transfer_return")),
        LedgerEntry.details["transfer_id"].as_string() == str(transfer_id),
        LedgerEntry.details["reversal"].as_string().is_(None),
    )


@dataclass(frozen=True, slots=True)
class UnremindedLot:
    expires_at: datetime
    member_id: uuid.UUID


class LotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_lot(self, lot: NewLot) -> uuid.UUID:
        row = _lot_row(lot)
        await _INSERT_LOT.execute(self.session, row)
        lot_id: uuid.UUID = row["id"]
        return lot_id

    async def paid_from(
        self, member_id: uuid.UUID, spends: Sequence[tuple[uuid.UUID, int, datetime]]
    ) -> list[PaidFrom]:
        """The member's lots that `spends` names (LedgerRepository.spends_of), in its order."""
        if not spends:
            return []
        result = await self.session.execute(
            select(PointLot.id, PointLot.entry_id, PointLot.order_ref, PointLot.expires_at).where(
                PointLot.member_id == member_id, PointLot.id.in_({lot_id for lot_id, _, _ in spends})
            )
        )
        lots = {row[0]: row[1:] for row in result.all()}
        return [
            PaidFrom(lot_id, *lots[lot_id], spent_at=spent_at, points=points)
            for lot_id, points, spent_at in spends
            if lot_id in lots
        ]

    async def insert_lots(self, lots: Sequence[NewLot]) -> None:
        """Many lots in one statement (the driver's executemany)."""
        if lots:
            await self.session.execute(insert(_LOTS), [_lot_row(lot) for lot in lots])

    async def list_live_lots(
        self, member_id: uuid.UUID, *, order_ref_first: str | None = None
    ) -> list[LotBalance]:
        """Lots with points left, in spending order: soonest expiry first, never-expiring last."""
        if order_ref_first is None:
            rows = await _LIVE_LOTS.fetch_all(self.session, {"member": member_id})
        else:
            rows = await _LIVE_LOTS_ORDER_FIRST.fetch_all(
                self.session, {"member": member_id, "first": order_ref_first}
            )
        return [LotBalance(lot_id, remaining) for lot_id, remaining in rows]

    async def list_lots_on_books(self, member_id: uuid.UUID, now: datetime) -> list[LotOnBooks]:
        """The member's lots with points left, soonest end first (never-ending last), each with its order and
        whether it is past its end at `now`."""
        rows = await self.session.execute(
            select(PointLot.id, PointLot.remaining, PointLot.order_ref, PointLot.expires_at)
            .where(PointLot.member_id == member_id, LOT_HOLDS_POINTS)
            .order_by(*_FIFO)
        )
        return [
            LotOnBooks(lot_id, remaining, order_ref, ended=expires_at is not None and expires_at <= now)
            for lot_id, remaining, order_ref, expires_at in rows.all()
        ]

    async def due_points(self, member_id: uuid.UUID, now: datetime) -> int:
        """The points the member's lots past their end still hold (a hold spares them, or the expiry is yet to
        come)."""
        found = await self.session.scalar(
            select(func.coalesce(func.sum(PointLot.remaining), 0)).where(
                PointLot.member_id == member_id, LOT_HOLDS_POINTS, PointLot.expires_at <= now
            )
        )
        return int(found or 0)

    async def list_due_lots(self, member_id: uuid.UUID, now: datetime) -> list[LotBalance]:
        result = await self.session.execute(
            select(PointLot.id, PointLot.remaining)
            .where(PointLot.member_id == member_id, LOT_HOLDS_POINTS, PointLot.expires_at <= now)
            .order_by(PointLot.expires_at, PointLot.id)
        )
        return [LotBalance(lot_id, remaining) for lot_id, remaining in result.all()]

    async def lots_of(
        self, member_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[PointLot]:
        """The member's lots after `after_id`, spent and expired ones too, oldest first."""
        query = select(PointLot).where(PointLot.member_id == member_id)
        if after_id is not None:
            query = query.where(PointLot.id > after_id)
        result = await self.session.execute(query.order_by(PointLot.id).limit(limit))
        return result.scalars().all()

    async def live_lots_of_entry(
        self, member_id: uuid.UUID, entry_id: uuid.UUID, now: datetime
    ) -> list[LotBalance]:
        """The points the entry credited that the member still has before their end, soonest end first."""
        rows = await self.session.execute(
            select(PointLot.id, PointLot.remaining)
            .where(
                PointLot.member_id == member_id,
                PointLot.entry_id == entry_id,
                LOT_HOLDS_POINTS,
                (PointLot.expires_at.is_(None)) | (PointLot.expires_at > now),
            )
            .order_by(*_FIFO)
        )
        return [LotBalance(lot_id, remaining) for lot_id, remaining in rows.all()]

    async def take(self, member_id: uuid.UUID, plan: Sequence[tuple[uuid.UUID, int]]) -> None:
        for lot_id, points in plan:
            await _TAKE_FROM_LOT.execute(self.session, {"holder": member_id, "lot": lot_id, "taken": points})

    async def list_members_with_due_lots(
        self, now: datetime, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[uuid.UUID]:
        query = select(PointLot.member_id).where(LOT_HOLDS_POINTS, PointLot.expires_at <= now)
        if after is not None:
            query = query.where(PointLot.member_id > after)
        result = await self.session.execute(
            query.group_by(PointLot.member_id).order_by(PointLot.member_id).limit(limit)
        )
        return result.scalars().all()

    async def list_due_among(self, member_ids: Sequence[uuid.UUID], now: datetime) -> list[uuid.UUID]:
        """Those of `member_ids` with points past their end at `now`, in ascending order."""
        query = select(PointLot.member_id).where(
            PointLot.member_id.in_(member_ids), LOT_HOLDS_POINTS, PointLot.expires_at <= now
        )
        result = await self.session.execute(query.group_by(PointLot.member_id).order_by(PointLot.member_id))
        return list(result.scalars().all())

    async def exists_due_lot(self, member_id: uuid.UUID, now: datetime) -> bool:
        row = await _DUE_LOT_EXISTS.fetch_one(self.session, {"member": member_id, "now": now})
        return row is not None and bool(row[0])

    async def list_unreminded(
        self, now: datetime, until: datetime, *, since: datetime, passed: set[uuid.UUID], limit: int
    ) -> list[UnremindedLot]:
        """Lots of active members (but those `passed`) with points left whose end falls after `now` and by
        `until`, from `since` on, of which the member was not told yet, in order of their end."""
        query = (
            select(PointLot.expires_at, PointLot.member_id)
            .join(Member, Member.id == PointLot.member_id)
            .where(
                LOT_HOLDS_POINTS,
                PointLot.expires_at > now,
                PointLot.expires_at >= since,
                PointLot.expires_at <= until,
                PointLot.expiry_reminded_at.is_(None),
                Member.status == MemberStatus.active,
            )
        )
        if passed:
            query = query.where(PointLot.member_id.not_in(passed))
        result = await self.session.execute(query.order_by(PointLot.expires_at).limit(limit))
        return [
            UnremindedLot(expires_at, member_id)
            for expires_at, member_id in result.all()
            if expires_at is not None  # the query's bounds leave none out
        ]

    async def mark_reminded(
        self, member_id: uuid.UUID, after: datetime, before: datetime, *, now: datetime
    ) -> int:
        """Mark the active member's lots that end after `after` and before `before`, and were not told of
        yet, as told of `now`; how many there were."""
        result = await self.session.execute(
            update(PointLot)
            .where(
                PointLot.member_id == member_id,
                LOT_HOLDS_POINTS,
                PointLot.expires_at > after,
                PointLot.expires_at < before,
                PointLot.expiry_reminded_at.is_(None),
                exists().where(Member.id == member_id, Member.status == MemberStatus.active),
            )
            .values(expiry_reminded_at=now)
            .returning(PointLot.id)
        )
        return len(result.all())

    async def expiring_by_date(self, member_id: uuid.UUID, now: datetime) -> Sequence[tuple[datetime, int]]:
        result = await self.session.execute(
            select(PointLot.expires_at, PointLot.remaining)
            .where(PointLot.member_id == member_id, LOT_HOLDS_POINTS, PointLot.expires_at > now)
            .order_by(PointLot.expires_at)
        )
        return [(expires_at, remaining) for expires_at, remaining in result.all() if expires_at is not None]

    async def expiring_by_date_of(
        self, member_ids: Sequence[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, list[tuple[datetime, int]]]:
        """`expiring_by_date` of many members, in one statement."""
        result = await self.session.execute(
            select(PointLot.member_id, PointLot.expires_at, PointLot.remaining)
            .where(PointLot.member_id.in_(member_ids), LOT_HOLDS_POINTS, PointLot.expires_at > now)
            .order_by(PointLot.member_id, PointLot.expires_at)
        )
        found: dict[uuid.UUID, list[tuple[datetime, int]]] = {}
        for member_id, expires_at, remaining in result.all():
            if expires_at is not None:
                found.setdefault(member_id, []).append((expires_at, remaining))
        return found


@dataclass(frozen=True, slots=True)
class StandIn:
    """Points taken from a lot in place of an order's own (PointStandIn), not yet returned, with what a lot
    like that one needs: its entry, order and end."""

    id: uuid.UUID
    points: int
    entry_id: uuid.UUID
    order_ref: str | None
    expires_at: datetime | None


class StandInRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_stand_ins(
        self, member_id: uuid.UUID, order_ref: str, plan: Sequence[tuple[uuid.UUID, int]], now: datetime
    ) -> None:
        if plan:
            await self.session.execute(
                insert(PointStandIn),
                [
                    {
                        "id": new_id(),
                        "member_id": member_id,
                        "order_ref": order_ref,
                        "lot_id": lot_id,
                        "points": points,
                        "returned": 0,
                        "created_at": now,
                    }
                    for lot_id, points in plan
                ],
            )

    async def list_open(self, member_id: uuid.UUID, order_ref: str) -> list[StandIn]:
        """What stands in for the order's own points and is not returned yet, the last taken first."""
        rows = await self.session.execute(
            select(
                PointStandIn.id,
                PointStandIn.points - PointStandIn.returned,
                PointLot.entry_id,
                PointLot.order_ref,
                PointLot.expires_at,
            )
            .join(PointLot, PointLot.id == PointStandIn.lot_id)
            .where(
                PointStandIn.member_id == member_id,
                PointStandIn.order_ref == order_ref,
                PointStandIn.returned < PointStandIn.points,
            )
            .order_by(PointStandIn.id.desc())
        )
        return [StandIn(*row) for row in rows.all()]

    async def list_orders_with_open(self, member_id: uuid.UUID) -> set[str]:
        rows = await self.session.scalars(
            select(PointStandIn.order_ref)
            .where(PointStandIn.member_id == member_id, PointStandIn.returned < PointStandIn.points)
            .distinct()
        )
        return set(rows.all())

    async def add_returned(self, member_id: uuid.UUID, stand_in_id: uuid.UUID, points: int) -> None:
        await self.session.execute(
            update(PointStandIn)
            .where(PointStandIn.member_id == member_id, PointStandIn.id == stand_in_id)
            .values(returned=PointStandIn.returned + points)
            .execution_options(synchronize_session=False)
        )


class HoldRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_hold(self, hold: Hold) -> None:
        self.session.add(hold)
        await self.session.flush()

    async def get_hold(self, hold_id: uuid.UUID) -> Hold | None:
        """The hold, unless its member was erased: an erased member is not there, nor is what was theirs."""
        return await self.session.scalar(
            select(Hold)
            .join(Member, Member.id == Hold.member_id)
            .where(Hold.id == hold_id, not_erased())
            .execution_options(populate_existing=True)
        )

    async def get_live_hold_id(self, member_id: uuid.UUID, order_ref: str, now: datetime) -> uuid.UUID | None:
        """The member's hold on the order that is active and within its time (None: none)."""
        return await self.session.scalar(
            select(Hold.id).where(
                Hold.member_id == member_id,
                Hold.order_ref == order_ref,
                HOLD_ACTIVE,
                Hold.expires_at > now,
            )
        )

    async def exists_active_hold(self, member_id: uuid.UUID, order_ref: str) -> bool:
        """Whether the member has a hold on the order not yet ended, past its time or not."""
        found = await self.session.scalar(
            select(Hold.id)
            .where(Hold.member_id == member_id, Hold.order_ref == order_ref, HOLD_ACTIVE)
            .limit(1)
        )
        return found is not None

    async def resolve(self, hold: Hold, *, status: str, captured: int, now: datetime) -> bool:
        """End an active hold; False when it was no longer active (someone else ended it first)."""
        result = await self.session.execute(
            update(Hold)
            .where(Hold.id == hold.id, HOLD_ACTIVE)
            .values(status=status, captured_points=captured, resolved_at=now)
            .returning(Hold.id)
            .execution_options(synchronize_session=False)
        )
        if result.scalar_one_or_none() is None:
            return False
        for name, value in (("status", status), ("captured_points", captured), ("resolved_at", now)):
            set_committed_value(hold, name, value)
        return True

    async def list_expired_active(
        self, now: datetime, limit: int, *, after: tuple[datetime, uuid.UUID] | None = None
    ) -> Sequence[tuple[datetime, uuid.UUID]]:
        """(expiry, id) of active holds past their time, oldest first, after `after` (the last of the page
        before): a walk that skips a hold it could not release yet does not meet it again in the same run."""
        query = select(Hold.expires_at, Hold.id).where(HOLD_ACTIVE, Hold.expires_at <= now)
        if after is not None:
            expires_at, hold_id = after
            query = query.where(
                or_(Hold.expires_at > expires_at, and_(Hold.expires_at == expires_at, Hold.id > hold_id))
            )
        result = await self.session.execute(query.order_by(Hold.expires_at, Hold.id).limit(limit))
        return [(expires_at, hold_id) for expires_at, hold_id in result.all()]

    async def holds_of(
        self, member_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[Hold]:
        """The member's holds after `after_id`, whatever became of them, oldest first."""
        query = select(Hold).where(Hold.member_id == member_id)
        if after_id is not None:
            query = query.where(Hold.id > after_id)
        result = await self.session.execute(query.order_by(Hold.id).limit(limit))
        return result.scalars().all()

    async def list_member_active(self, member_id: uuid.UUID) -> Sequence[Hold]:
        result = await self.session.execute(select(Hold).where(Hold.member_id == member_id, HOLD_ACTIVE))
        return result.scalars().all()

    async def list_member_expired_active(self, member_id: uuid.UUID, now: datetime) -> Sequence[Hold]:
        result = await self.session.execute(
            select(Hold).where(Hold.member_id == member_id, HOLD_ACTIVE, Hold.expires_at <= now)
        )
        return result.scalars().all()


class ReferralRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_if_new(self, reward: ReferralReward) -> bool:
        """Claim the friend's reward: False, writing nothing, when they had it already."""
        values = {column.key: getattr(reward, column.key) for column in _REFERRALS.columns}
        claimed = await self.session.execute(
            insert_or_ignore(self.session, _REFERRALS, ["friend_id"])
            .values(values)
            .returning(_REFERRALS.c.friend_id)
        )
        return claimed.first() is not None

    async def list_pending(self, bought_by: datetime, *, limit: int) -> list[uuid.UUID]:
        """Friends whose referrer is not credited yet, of rewards for purchases made by `bought_by`, oldest
        first. A purchase is dated when it was made: a receipt synced late (`occurred_at`) is older than its
        reward row, and its return window runs from the purchase (the row's time when the order has none)."""
        bought = func.coalesce(Order.purchased_at, _REFERRALS.c.created_at)
        rows = await self.session.scalars(
            select(_REFERRALS.c.friend_id)
            # By the member too: member-owned tables join on member_id (a sharded PostgreSQL needs it).
            .outerjoin(
                Order,
                (Order.member_id == _REFERRALS.c.friend_id) & (Order.order_ref == _REFERRALS.c.order_ref),
            )
            .where(_REFERRALS.c.credited_at.is_(None), bought <= bought_by)
            .order_by(_REFERRALS.c.created_at)
            .limit(limit)
        )
        return list(rows.all())

    async def rewards_of(
        self, member_id: uuid.UUID, *, after_friend_id: uuid.UUID | None, limit: int
    ) -> Sequence[ReferralReward]:
        """Referral rewards the member had a side of, as the referred friend or as the referrer, after
        `after_friend_id` in friend id order."""
        query = select(ReferralReward).where(
            (ReferralReward.friend_id == member_id) | (ReferralReward.referrer_id == member_id)
        )
        if after_friend_id is not None:
            query = query.where(ReferralReward.friend_id > after_friend_id)
        return (await self.session.scalars(query.order_by(ReferralReward.friend_id).limit(limit))).all()

    async def lock_pending(self, friend_id: uuid.UUID) -> ReferralReward | None:
        """The reward, locked until commit, if its referrer is not credited yet and no other transaction
        holds it (another worker settling it: None at once, without waiting)."""
        return await self.session.scalar(
            select(ReferralReward)
            .where(ReferralReward.friend_id == friend_id, ReferralReward.credited_at.is_(None))
            .with_for_update(skip_locked=True)
        )

    async def lock_voidable(
        self, friend_id: uuid.UUID, order_ref: str, *, made_after: datetime
    ) -> ReferralReward | None:
        """The friend's reward for `order_ref`, locked until commit, if it was made after `made_after`, its
        referrer is not credited yet and no other transaction holds it (None at once, without waiting)."""
        return await self.session.scalar(
            select(ReferralReward)
            .where(
                ReferralReward.friend_id == friend_id,
                ReferralReward.order_ref == order_ref,
                ReferralReward.credited_at.is_(None),
                ReferralReward.created_at > made_after,
            )
            .with_for_update(skip_locked=True)
        )
