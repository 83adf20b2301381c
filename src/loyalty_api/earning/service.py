"""Earning rules: the operator's configuration of bonus points."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from loyalty_api.db.changes import column_values
from loyalty_api.db.pagination import Page, decode_place, encode_place, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.earning.calculator import ActiveRule
from loyalty_api.earning.errors import EarningRuleNotFound
from loyalty_api.earning.events import EarningRuleChanged
from loyalty_api.earning.kinds import PROPERTIES_ADAPTER, RuleProperties
from loyalty_api.earning.models import EarningRule
from loyalty_api.earning.repository import EarningRuleRepository
from loyalty_api.errors import InvalidField, check_window
from loyalty_api.outbox.service import emit_for_programme

EARNING_RULES = scope_of("earning_rules")  # the rule list's cursors carry it


@dataclass(frozen=True, slots=True)
class RuleDefinition:
    name: str
    properties: RuleProperties
    priority: int
    stackable: bool
    active: bool
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class Rule(RuleDefinition):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime


_CACHE_KEY = "earning_rules"


def _rule(row: EarningRule) -> Rule:
    return Rule(
        id=row.id,
        name=row.name,
        properties=PROPERTIES_ADAPTER.validate_python({**row.properties, "kind": row.kind}),
        priority=row.priority,
        stackable=row.stackable,
        active=row.active,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check(definition: RuleDefinition) -> None:
    check_window(definition.valid_from, definition.valid_until)


def _apply(row: EarningRule, definition: RuleDefinition) -> None:
    row.name = definition.name
    row.kind = definition.properties.kind
    row.properties = definition.properties.model_dump(mode="json", exclude={"kind"})
    row.priority = definition.priority
    row.stackable = definition.stackable
    row.active = definition.active
    row.valid_from = definition.valid_from
    row.valid_until = definition.valid_until


async def _changed(
    uow: UnitOfWork, row: EarningRule, change: Literal["created", "replaced", "deleted"]
) -> None:
    await uow.forget_cached(_CACHE_KEY)
    await emit_for_programme(
        uow, EarningRuleChanged(rule_id=row.id, name=row.name, kind=row.kind, change=change), str(row.id)
    )


async def create_rule(uow: UnitOfWork, definition: RuleDefinition) -> Rule:
    _check(definition)
    now = uow.clock.now()
    row = EarningRule(created_at=now, updated_at=now)
    _apply(row, definition)
    await EarningRuleRepository(uow.session).insert_rule(row)
    await _changed(uow, row, "created")
    return _rule(row)


async def replace_rule(uow: UnitOfWork, rule_id: uuid.UUID, definition: RuleDefinition) -> Rule:
    _check(definition)
    # Locked: a delete racing this replace either waits for it or has removed the rule (404), where an
    # unlocked read would update a row no longer there (a 500).
    row = await EarningRuleRepository(uow.session).lock_rule(rule_id)
    if row is None:
        raise EarningRuleNotFound()
    await uow.subject_locked()
    before = column_values(row)
    _apply(row, definition)
    if column_values(row) == before:  # sent again as it is: no change to announce (db/changes.py)
        return _rule(row)
    row.updated_at = uow.clock.now()
    await EarningRuleRepository(uow.session).save_rule()
    await _changed(uow, row, "replaced")
    return _rule(row)


async def get_rule(uow: UnitOfWork, rule_id: uuid.UUID) -> Rule:
    row = await EarningRuleRepository(uow.session).get_rule(rule_id)
    if row is None:
        raise EarningRuleNotFound()
    return _rule(row)


async def list_rules(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[Rule]:
    """Rules by priority, highest first (then oldest first), a page at a time; the cursor carries the last
    rule's priority and id."""
    after = None
    if cursor is not None:
        priority, rule_id = decode_place(cursor, (int, uuid.UUID), EARNING_RULES)
        assert isinstance(priority, int) and isinstance(rule_id, uuid.UUID)
        if not -(2**31) <= priority < 2**31:  # the column's range: a forged cursor must not reach the driver
            raise InvalidField("cursor", "not a cursor this service returned")
        after = (priority, rule_id)
    rows = await EarningRuleRepository(uow.session).list_rules(after=after, limit=limit + 1)
    shown = [_rule(row) for row in rows[:limit]]
    last = shown[-1] if len(rows) > limit else None
    next_cursor = None if last is None else encode_place((last.priority, last.id), EARNING_RULES)
    return Page(items=shown, next_cursor=next_cursor, scope=EARNING_RULES)


async def delete_rule(uow: UnitOfWork, rule_id: uuid.UUID) -> None:
    repo = EarningRuleRepository(uow.session)
    # Locked, and the delete's own answer checked: of two deletes at once only the one that removed the rule
    # answers 204 and announces it; the other finds it gone (404).
    row = await repo.lock_rule(rule_id)
    if row is None or not await repo.delete_rule(rule_id):
        raise EarningRuleNotFound()
    await _changed(uow, row, "deleted")


async def rules_in_force(uow: UnitOfWork, at: datetime) -> list[ActiveRule]:
    active: list[Rule] | None = uow.cache.get(_CACHE_KEY)
    if active is None:
        active = [_rule(row) for row in await EarningRuleRepository(uow.session).list_active_rules()]
        uow.cache.put(_CACHE_KEY, active, uow.cache_stamp)
    return [
        ActiveRule(id=r.id, name=r.name, priority=r.priority, stackable=r.stackable, properties=r.properties)
        for r in active
        if (r.valid_from is None or r.valid_from <= at) and (r.valid_until is None or at < r.valid_until)
    ]
