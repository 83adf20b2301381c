"""REST request and response models for partners and joint membership."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from loyalty_api.http.schemas import (
    SHOWN_ONCE,
    MoneyRead,
    OrderRef,
    PositiveMoneyBody,
    ReadModel,
    TierRef,
)
from loyalty_api.members.models import MemberStatus
from loyalty_api.money import DecimalText, plain_decimal
from loyalty_api.text import FilledText

PartnerCode = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="The partner's code, e.g. `bookshop`")
]
# Visible ASCII but "/", as partners' systems write ids: a customer's ref and a perk code are path segments of
# the partner's calls (`/v1/partner/members/{ref}`), where a "/" (even sent as %2F) would split the segment.
_PATH_SEGMENT = r"^[\x21-\x2e\x30-\x7e]{1,64}$"


def _not_a_dot_segment(value: str) -> str:
    # `.` and `..` as a whole segment are dropped by clients that follow RFC 3986 (httpx, browsers): a call
    # naming one would reach another path.
    if value in (".", ".."):
        raise ValueError("may not be `.` or `..`")
    return value


# The partner's own customer id.
CustomerRef = Annotated[
    str,
    Field(pattern=_PATH_SEGMENT, description="Visible ASCII but `/` (and not `.` or `..`), up to 64"),
    AfterValidator(_not_a_dot_segment),
]
Grant = Literal["basic", "points"]


Rate = Annotated[
    Decimal,
    Field(gt=0, le=100_000, max_digits=18, decimal_places=6),
    DecimalText(),
    AfterValidator(plain_decimal),
]
DailyLimit = Annotated[int, Field(ge=1, le=10**12)]


class PartnerTerms(BaseModel):
    """What the partner offers: each left out (or null) is not offered."""

    model_config = ConfigDict(extra="forbid")

    earn_rate: Rate | None = Field(
        default=None,
        description="Points a member earns per major unit of the programme's currency spent at the partner "
        "(rounded as the programme rounds), as a decimal string. Null: purchases there earn nothing.",
    )
    exchange_out_rate: Rate | None = Field(
        default=None,
        description="The partner's points one of ours becomes (rounded down). Null: members cannot send "
        "points to the partner.",
    )
    exchange_in_rate: Rate | None = Field(
        default=None,
        description="Our points one of the partner's becomes (rounded down). Null: the partner cannot send "
        "points to us.",
    )
    daily_exchange_limit: DailyLimit | None = Field(
        default=None,
        description="Our points exchanged with the partner per day (in the programme's time zone), each "
        "way, all members together. Null: no limit.",
    )
    member_daily_exchange_limit: DailyLimit | None = Field(
        default=None, description="The same, per member. Null: no limit."
    )
    exchange_timeout_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 24 * 3600,
        description="How long the partner has to confirm an exchange out; then the member gets the points "
        "back.",
    )
    benefit_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=100,
        description="Joint benefits: linked members have them, shown with source `partner` in their benefits "
        "and in the checkout quote, and the partner sees them in the joint view.",
    )
    benefit_tiers: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list,
        max_length=50,
        description="Tier codes: the joint benefits reach only linked members on these tiers. Empty: all.",
    )
    benefit_plans: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list,
        max_length=50,
        description="Plan codes: the joint benefits reach only linked members holding one of these paid "
        "plans. Empty: no plan needed.",
    )


class PartnerCreate(PartnerTerms):
    code: PartnerCode
    name: FilledText = Field(max_length=100)


class PartnerWrite(PartnerTerms):
    name: FilledText = Field(max_length=100)
    status: Literal["active", "suspended"] = Field(
        description="A suspended partner's keys reach no member, and it cannot be linked to; they may still "
        "read, confirm or fail the exchanges out pending with it."
    )


class PartnerRead(ReadModel):
    id: uuid.UUID = Field(description="Give it to `loyalty-api keys create --scope partner --partner`.")
    code: str
    name: str
    status: str
    earn_rate: Decimal | None
    exchange_out_rate: Decimal | None
    exchange_in_rate: Decimal | None
    daily_exchange_limit: int | None
    member_daily_exchange_limit: int | None
    exchange_timeout_seconds: int
    benefit_ids: list[uuid.UUID]
    benefit_tiers: list[str]
    benefit_plans: list[str]
    created_at: datetime
    updated_at: datetime


class PartnerPage(ReadModel):
    items: list[PartnerRead]
    next_cursor: str | None


def _basic_only() -> list[Grant]:
    return ["basic"]


class LinkCodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner: PartnerCode
    grants: list[Grant] = Field(
        default_factory=_basic_only,
        max_length=2,
        description="What the member lets the partner see: `basic` (tier, paid membership; always) and "
        "`points` (balance and available points).",
    )


class LinkCodeRead(ReadModel):
    code: str = Field(
        description="Show it to the member once: they give it to the partner within minutes.",
        json_schema_extra={SHOWN_ONCE: True},
    )
    partner: str
    grants: list[str]
    expires_at: datetime


class LinkRead(ReadModel):
    partner: str
    partner_name: str
    partner_customer_ref: str
    grants: list[str]
    linked_at: datetime


class LinkPage(ReadModel):
    items: list[LinkRead]
    next_cursor: str | None


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, description="The code the member gave you.")
    partner_customer_ref: CustomerRef = Field(
        description="Your id of the customer: the member is read by it."
    )


class PartnerPointsRead(ReadModel):
    balance: int
    available: int


class JointBenefitRead(ReadModel):
    id: uuid.UUID
    name: str
    kind: str = Field(description="What it gives: a benefit kind, as `GET /v1/benefits` names them.")


class PartnerMemberRead(ReadModel):
    """A linked member as their partner sees them: never personal data."""

    partner_customer_ref: str
    member_id: uuid.UUID
    status: MemberStatus
    tier: TierRef | None
    paid_plans: list[str] = Field(description="Codes of the paid plans whose benefits the member has now.")
    joint_benefits: list[JointBenefitRead] = Field(
        description="Your joint benefits the member is entitled to now (their tier and plans meet your "
        "terms)."
    )
    points: PartnerPointsRead | None = Field(description="Null unless the member granted `points`.")
    grants: list[str]
    linked_at: datetime


class PartnerEarnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_ref: OrderRef = Field(description="Your receipt or order number; an order earns once.")
    amount: PositiveMoneyBody = Field(description="What the customer paid, in the programme's currency.")


class PartnerEarnRead(ReadModel):
    order_ref: str
    points_earned: int
    rate: Decimal = Field(description="Your earn rate the points were worked out at.")
    points: PartnerPointsRead | None = Field(description="Null unless the member granted `points`.")


class PartnerRefundRequest(BaseModel):
    """`order_ref` and exactly one of `amount` or `full`."""

    model_config = ConfigDict(extra="forbid")

    order_ref: OrderRef = Field(description="The order you earned for.")
    amount: PositiveMoneyBody | None = Field(
        default=None,
        description="How much of the order is refunded: its points are taken back in proportion.",
    )
    full: Literal[True] | None = Field(default=None, description="`true`: refund all that is left.")

    @model_validator(mode="after")
    def _exactly_one(self) -> PartnerRefundRequest:
        if (self.amount is None) == (self.full is None):
            raise PydanticCustomError("value_error", "give exactly one of amount or full")
        return self


class PartnerRefundRead(ReadModel):
    order_ref: str
    refunded: MoneyRead | None
    points_reversed: int = Field(
        description="The purchase's points this refund reverses: its share of what the purchase earned, "
        "whether taken back, spent already or expired already."
    )
    points_taken_back: int | None = Field(
        description="Of `points_reversed`, those taken from the member's balance. Null unless the member "
        "granted `points`."
    )
    shortfall: int | None = Field(
        description="Of `points_reversed`, those the member had spent already, which could not be taken "
        "back. Null unless the member granted `points`."
    )
    already_expired: int | None = Field(
        description="Of `points_reversed`, those that had expired already. Null unless the member granted "
        "`points`."
    )
    points: PartnerPointsRead | None = Field(description="Null unless the member granted `points`.")


class ExchangeOutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner: PartnerCode
    points: int = Field(ge=1, le=10**12, description="Our points to send to the member's partner account.")


class ExchangeInRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_ref: CustomerRef = Field(description="Your id of the transfer: it is credited once.")
    partner_points: int = Field(ge=1, le=10**12, description="Your points the customer sends us.")


class ExchangeRead(ReadModel):
    id: uuid.UUID
    partner: str
    partner_customer_ref: str
    direction: Literal["out", "in"] = Field(
        description="`out`: our points to the partner; `in`: theirs to us."
    )
    status: Literal["pending", "confirmed", "failed", "expired", "completed"]
    points: int = Field(description="Our points.")
    partner_points: int
    rate: Decimal
    value: MoneyRead = Field(
        description="What our points were worth at the programme's point value when the exchange was made."
    )
    partner_ref: str | None
    expires_at: datetime | None = Field(description="An exchange out not confirmed by then is given back.")
    created_at: datetime
    resolved_at: datetime | None


class ExchangePage(ReadModel):
    items: list[ExchangeRead]
    next_cursor: str | None


class SettlementLineRead(ReadModel):
    points: int
    partner_points: int | None = Field(description="The partner's points, for exchanges.")
    value: MoneyRead = Field(
        description="What the points were worth: each entry's at the programme's point value when its points "
        "moved first (a return's when its exchange was made, a refund's when the purchase earned), added up "
        "and rounded toward zero once."
    )
    entries: int = Field(description="The ledger entries counted.")


class SettlementRead(ReadModel):
    """What moved between the programme and a partner in a period; every figure is a sum over the ledger."""

    partner: str
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    currency: str
    earned: SettlementLineRead = Field(description="Points members earned for purchases at the partner.")
    refunded: SettlementLineRead = Field(description="Points taken back for refunds of those purchases.")
    exchanged_out: SettlementLineRead = Field(description="Points members sent to the partner.")
    returned: SettlementLineRead = Field(
        description="Points of exchanges out that the partner failed or let time out, given back."
    )
    exchanged_in: SettlementLineRead = Field(description="Points the partner's customers sent us.")
    net_points: int = Field(description="All the partner's ledger entries in the period, signed, added up.")
    net_value: MoneyRead = Field(
        description="What the net points were worth, each entry's valued as its line's, rounded toward zero "
        "once (negative when members gave up more points than they received through the partner)."
    )
    perks_granted: int = Field(description="The partner's perks paid plans gave members in the period.")
    perks_redeemed: int = Field(description="The partner's perks it redeemed in the period.")
    benefit_uses: int = Field(description="Uses of the partner's joint benefits it recorded in the period.")


class PartnerPerkRead(ReadModel):
    code: str | None = Field(description="What the member shows the partner; null while the perk is owed.")
    partner: str
    name: str
    plan: str = Field(description="The paid plan that gave it.")
    period: int = Field(description="The plan's paid period it came with.")
    source: Literal["ours", "pool"] = Field(
        description="`ours`: a code we issued; `pool`: one of the codes the partner uploaded."
    )
    status: Literal["owed", "issued", "redeemed"] = Field(
        description="`owed`: the partner's pool of codes was empty; the perk gets the next code it uploads."
    )
    partner_customer_ref: str | None = Field(
        description="To the partner: its customer's reference when the member is linked to it; else null."
    )
    granted_at: datetime | None = Field(description="When the member got the code; null while owed.")
    redeemed_at: datetime | None


PerkKey = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="The perk's code, as the paid plans name it (`perk` in `partner_perks`, source `pool`).",
    ),
]
# A code as the partner's systems write them, matched exactly.
PoolCode = Annotated[
    str,
    Field(pattern=_PATH_SEGMENT, description="Visible ASCII but `/` (and not `.` or `..`), up to 64"),
    AfterValidator(_not_a_dot_segment),
]


class PerkCodesUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    perk: PerkKey
    codes: list[PoolCode] = Field(
        min_length=1,
        max_length=1000,
        description="Codes for the perk, at most 1,000 at a time. A code uploaded before, or twice in one "
        "upload, is left out (counted in `duplicates`), so an upload can be sent again safely.",
    )


class PerkPoolRead(ReadModel):
    perk: str
    available: int = Field(description="Codes not given to a member yet.")
    owed: int = Field(description="Perks given while the pool was empty, waiting for your next codes.")


class PerkCodesUploadRead(PerkPoolRead):
    added: int = Field(description="Codes added to the pool.")
    duplicates: int = Field(description="Codes left out: uploaded before, or repeated in this upload.")
    granted: int = Field(description="Owed perks the new codes went to, each told by `partner.perk_granted`.")


class PartnerPerkPage(ReadModel):
    items: list[PartnerPerkRead]
    next_cursor: str | None


class BenefitUseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    benefit_id: uuid.UUID = Field(
        description="One of the joint benefits the joint view lists for the member."
    )
    use_ref: CustomerRef = Field(description="Your id of this use (a receipt, a visit): it is recorded once.")


class BenefitUseRead(ReadModel):
    benefit_id: uuid.UUID
    benefit_name: str
    use_ref: str
    used_at: datetime
