from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from loyalty_api.earning.kinds import RULE_KINDS, RuleKind, RuleProperties
from loyalty_api.earning.service import Rule, RuleDefinition
from loyalty_api.http.schemas import Instant, by_kind
from loyalty_api.text import FilledText


class EarningRuleWriteBase(BaseModel):
    """An earning rule: `kind` picks the rule, `properties` holds that kind's settings."""

    model_config = ConfigDict(extra="forbid")

    name: FilledText = Field(max_length=100)
    kind: RuleKind
    properties: RuleProperties
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher runs first.")
    stackable: bool = Field(default=True, description="False: applies only alone, and stops lower rules.")
    active: bool = True
    valid_from: Instant | None = None
    valid_until: Instant | None = None

    def definition(self) -> RuleDefinition:
        return RuleDefinition(
            name=self.name,
            properties=self.properties,
            priority=self.priority,
            stackable=self.stackable,
            active=self.active,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
        )


if TYPE_CHECKING:
    EarningRuleWrite = EarningRuleWriteBase
else:
    EarningRuleWrite = by_kind(EarningRuleWriteBase, RULE_KINDS, suffix="Rule")


class EarningRuleRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    properties: dict[str, Any]
    priority: int
    stackable: bool
    active: bool
    valid_from: datetime | None
    valid_until: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, rule: Rule) -> EarningRuleRead:
        return cls(
            id=rule.id,
            name=rule.name,
            kind=rule.properties.kind,
            properties=rule.properties.model_dump(mode="json", exclude={"kind"}),
            priority=rule.priority,
            stackable=rule.stackable,
            active=rule.active,
            valid_from=rule.valid_from,
            valid_until=rule.valid_until,
            created_at=rule.created_at,
            updated_at=rule.updated_at,
        )


class EarningRuleList(BaseModel):
    items: list[EarningRuleRead]
    next_cursor: str | None
