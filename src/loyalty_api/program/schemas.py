from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from loyalty_api.money import DecimalText, Rate, Rounding, plain_decimal
from loyalty_api.program.service import ProgramSettings


@cache
def _zone_names() -> frozenset[str]:
    """The time zones of the zone database: not its regions (`America` is a directory, which ZoneInfo fails
    to open as a file), nor the `right/` (its clock changes counted with leap seconds: 27 seconds late) and
    `posix/` copies some systems install, nor `localtime` (whatever zone the host is set to)."""
    return frozenset(available_timezones() - {"localtime"})


def _known_zone(name: str) -> str:
    if name not in _zone_names():
        raise ValueError("not an IANA time zone such as Asia/Shanghai")
    return name


StoredRate = Annotated[Rate, AfterValidator(plain_decimal)]


class ProgramWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. CNY")
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_known_zone)] = Field(
        description="Where the programme's days begin and end (member days, birthdays, months)."
    )
    earn_rate: StoredRate = Field(
        description="Points per major currency unit spent (per yuan), as a decimal string."
    )
    point_value_minor: Annotated[
        Decimal,
        Field(gt=0, le=1_000_000, max_digits=18, decimal_places=6),
        DecimalText(),
        AfterValidator(plain_decimal),
    ] = Field(description="Minor currency units one point is worth when redeemed (1 = 100 points per yuan).")
    rounding: Rounding = Field(description="How fractional points become whole.")
    expiry_months: int | None = Field(
        ge=1, le=120, description="Points expire this many months after earning."
    )
    min_redeem_points: int = Field(ge=1, le=10_000_000)
    max_redeem_share: Annotated[
        Decimal,
        Field(ge=0, le=1, max_digits=5, decimal_places=4),
        DecimalText(),
        AfterValidator(plain_decimal),
    ] = Field(description="The largest share of an order (0 to 1) that points may pay.")
    tier_downgrade: Literal["one_step", "to_qualified"] = Field(
        default="one_step",
        description="At tier review, a member who did not requalify falls one tier (one_step) or straight "
        "to the tier they qualify for (to_qualified), never below a tier the window under way has reached "
        "already.",
    )

    lifecycle_at_risk_days: int = Field(
        default=30, ge=1, le=3650, description="Days without a purchase after which a member is `at_risk`."
    )
    lifecycle_lapsed_days: int = Field(
        default=90, ge=2, le=3650, description="Days without a purchase after which a member has `lapsed`."
    )
    lifecycle_churned_days: int = Field(
        default=365, ge=3, le=3650, description="Days without a purchase after which a member has `churned`."
    )

    referral_friend_points: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Points a referred member gets with their first purchase of at least "
        "`referral_min_purchase_minor` (0: none).",
    )
    referral_referrer_points: int = Field(
        default=0, ge=0, le=1_000_000, description="Points the member who referred them gets then (0: none)."
    )
    referral_min_purchase_minor: int = Field(
        default=0,
        ge=0,
        le=1_000_000_000,
        description="The smallest first purchase that counts, in minor units.",
    )

    rfm_window_days: int = Field(
        default=365, ge=7, le=3650, description="RFM scores count the purchases of this many days back."
    )

    transfers_enabled: bool = Field(
        default=False,
        description="Whether members may send points to one another (POST /v1/members/{id}/transfers).",
    )
    transfer_daily_limit: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="The most points a member may send in a day of the programme's time zone (null: no "
        "limit).",
    )
    return_window_days: int = Field(
        default=0,
        ge=0,
        le=365,
        description="How many days after a purchase it may still be returned (0: no window): calendar days "
        "of the programme's time zone, to the same time of day, across a change of the clocks too. A "
        "referrer's points wait them out, and a return within them that leaves the purchase below "
        "`referral_min_purchase_minor` voids the referral (the friend's points are taken back as far as "
        "their balance goes); the points purchases earned within them cannot be sent to another member or "
        "a partner until then.",
    )
    expiry_reminder_days: int = Field(
        default=0,
        ge=0,
        le=365,
        description="How many days before points reach their end the member is told, by a `points.expiring` "
        "event (the worker's `expiry-reminders` job, hourly; a month's ends at once; 0: never).",
    )
    tier_reminder_days: int = Field(
        default=0,
        ge=0,
        le=365,
        description="How many days before the window that keeps a member's tier ends (the review's, before "
        "any grace) the member is told what keeping it still takes, by a `tier.review_due` event (the "
        "worker's `tier-reminders` job, hourly; once for each window; 0: never).",
    )

    @field_validator("lifecycle_lapsed_days")
    @classmethod
    def _after_at_risk(cls, days: int, info: ValidationInfo) -> int:
        if days <= info.data.get("lifecycle_at_risk_days", 0):
            raise ValueError("must be more than lifecycle_at_risk_days")
        return days

    @field_validator("lifecycle_churned_days")
    @classmethod
    def _after_lapsed(cls, days: int, info: ValidationInfo) -> int:
        if days <= info.data.get("lifecycle_lapsed_days", days):
            raise ValueError("must be more than lifecycle_lapsed_days")
        return days

    def settings(self) -> ProgramSettings:
        return ProgramSettings(**self.model_dump())


def _every_field_written(schema: dict[str, Any]) -> None:
    # A reply writes every setting, those a PUT may leave to their defaults too: a generated client must not
    # type them as possibly absent.
    schema["required"] = list(schema["properties"])


class ProgramRead(ProgramWrite):
    model_config = ConfigDict(extra="forbid", from_attributes=True, json_schema_extra=_every_field_written)
