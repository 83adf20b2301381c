"""The programme's settings: currency, earn rate, point value, rounding, expiry, redemption limits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from loyalty_api.calendar_days import add_days, add_months
from loyalty_api.db.changes import column_values
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.money import CURRENCIES, Rounding
from loyalty_api.outbox.service import emit_for_programme
from loyalty_api.program.errors import CurrencyInUse
from loyalty_api.program.events import ProgramUpdated
from loyalty_api.program.models import Program
from loyalty_api.program.repository import ProgramRepository


@dataclass(frozen=True, slots=True)
class ProgramSettings:
    currency: str
    timezone: str
    earn_rate: Decimal
    point_value_minor: Decimal
    rounding: Rounding
    expiry_months: int | None
    min_redeem_points: int
    max_redeem_share: Decimal
    tier_downgrade: str = "one_step"  # one_step | to_qualified: how far a member falls at tier review
    lifecycle_at_risk_days: int = 30
    lifecycle_lapsed_days: int = 90
    lifecycle_churned_days: int = 365
    referral_friend_points: int = 0
    referral_referrer_points: int = 0
    referral_min_purchase_minor: int = 0
    rfm_window_days: int = 365
    transfers_enabled: bool = False
    transfer_daily_limit: int | None = None  # points a member may send in a programme's day; None: no limit
    return_window_days: int = 0  # days a purchase may still be returned (0: no window)
    expiry_reminder_days: int = 0  # days ahead of their end members hear of expiring points (0: never)
    tier_reminder_days: int = 0  # days before their tier's window ends members hear what keeps it (0: never)

    @property
    def rewards_referrals(self) -> bool:
        return self.referral_friend_points > 0 or self.referral_referrer_points > 0

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def day_start(self, moment: datetime) -> datetime:
        """When the programme's day that `moment` falls in began (days turn in the programme's time zone)."""
        return datetime.combine(moment.astimezone(self.zone).date(), time(), self.zone)

    def returnable_after(self, now: datetime) -> datetime:
        """Purchases made after this instant may still be returned at `now`. The return window's days are the
        programme's calendar days, as a shop's "returns within 14 days" are: a purchase at noon may be
        returned until noon there 14 days on, across a change of the clocks too (one made in an hour the
        clocks repeat or skip may be read an hour out, as calendar_days reads such hours)."""
        return add_days(now, -self.return_window_days, self.zone)

    def expiry_for(self, earned_at: datetime) -> datetime | None:
        """Points earned at `earned_at` expire this many calendar months later on the programme's calendar
        (the same time of day there, on the month's last day when it is shorter), as an instant in
        `earned_at`'s zone (None: never)."""
        if self.expiry_months is None:
            return None
        # Wall-clock arithmetic: across a change of daylight saving time, the same hour on the programme's
        # clock.
        return add_months(earned_at, self.expiry_months, self.zone).astimezone(earned_at.tzinfo)


DEFAULTS = ProgramSettings(
    currency="CNY",
    timezone="Asia/Shanghai",
    earn_rate=Decimal(1),
    point_value_minor=Decimal(1),
    rounding=Rounding.down,
    expiry_months=None,
    min_redeem_points=1,
    max_redeem_share=Decimal(1),
)


def _settings(row: Program) -> ProgramSettings:
    return ProgramSettings(
        currency=row.currency,
        timezone=row.timezone,
        earn_rate=row.earn_rate,
        point_value_minor=row.point_value_minor,
        rounding=Rounding(row.rounding),
        expiry_months=row.expiry_months,
        min_redeem_points=row.min_redeem_points,
        max_redeem_share=row.max_redeem_share,
        tier_downgrade=row.tier_downgrade,
        lifecycle_at_risk_days=row.lifecycle_at_risk_days,
        lifecycle_lapsed_days=row.lifecycle_lapsed_days,
        lifecycle_churned_days=row.lifecycle_churned_days,
        referral_friend_points=row.referral_friend_points,
        referral_referrer_points=row.referral_referrer_points,
        referral_min_purchase_minor=row.referral_min_purchase_minor,
        rfm_window_days=row.rfm_window_days,
        transfers_enabled=row.transfers_enabled,
        transfer_daily_limit=row.transfer_daily_limit,
        return_window_days=row.return_window_days,
        expiry_reminder_days=row.expiry_reminder_days,
        tier_reminder_days=row.tier_reminder_days,
    )


_CACHE_KEY = "program"


async def get_program(uow: UnitOfWork) -> ProgramSettings:
    cached: ProgramSettings | None = uow.cache.get(_CACHE_KEY)
    if cached is not None:
        return cached
    row = await ProgramRepository(uow.session).get_program()
    settings = DEFAULTS if row is None else _settings(row)
    uow.cache.put(_CACHE_KEY, settings, uow.cache_stamp)
    return settings


async def point_value_at(uow: UnitOfWork, at: datetime) -> Decimal:
    """Minor units a point was worth at `at` (the programme's value now, where no change was recorded)."""
    recorded = await ProgramRepository(uow.session).point_value_at(at)
    return recorded if recorded is not None else (await get_program(uow)).point_value_minor


async def lifecycle_changed_at(uow: UnitOfWork) -> datetime | None:
    """When the lifecycle thresholds last changed (None: never since they were first set)."""
    row = await ProgramRepository(uow.session).get_program()
    return None if row is None else row.lifecycle_changed_at


async def is_configured(uow: UnitOfWork) -> bool:
    return await ProgramRepository(uow.session).get_program() is not None


async def put_program(uow: UnitOfWork, settings: ProgramSettings) -> ProgramSettings:
    repo = ProgramRepository(uow.session)
    # The first settings sent write the row the defaults stood for, if no one has (sent at once, the others
    # find it there rather than break its primary key); then every PUT applies its settings under the row's
    # lock, one after another.
    await repo.insert_program_if_absent({**_columns(DEFAULTS), "updated_at": uow.clock.now()})
    row = await repo.lock_program()
    assert row is not None
    await uow.subject_locked()
    before = column_values(row)
    if settings.currency != row.currency:
        if settings.currency not in CURRENCIES:
            # Checked as it changes: a programme set up in another code before codes were checked keeps it.
            raise InvalidField(
                "currency", "not an ISO 4217 currency code with a minor unit, such as CNY or JPY"
            )
        recorded = await repo.money_recorded_in()
        if recorded:
            raise CurrencyInUse(
                f"Amounts are recorded in {row.currency} already: "
                + ", ".join(name.replace("_", " ") for name in recorded),
                recorded_in=recorded,
            )
    row.currency = settings.currency
    row.timezone = settings.timezone
    row.earn_rate = settings.earn_rate
    now = uow.clock.now()
    last_change = await repo.last_point_value_change()
    changed = settings.point_value_minor != row.point_value_minor
    if last_change is None and changed:
        # The first settings: points moved before them were moved at the value the row had (the defaults').
        await repo.insert_point_value_change(now - timedelta(microseconds=1), row.point_value_minor)
    if last_change is None or changed:
        # Under the row's lock, later than the change before even where this host's clock is behind the
        # host that made it: the changes keep their order.
        effective = now if last_change is None else max(now, last_change + timedelta(microseconds=1))
        await repo.insert_point_value_change(effective, settings.point_value_minor)
    row.point_value_minor = settings.point_value_minor
    row.rounding = settings.rounding
    row.expiry_months = settings.expiry_months
    row.min_redeem_points = settings.min_redeem_points
    row.max_redeem_share = settings.max_redeem_share
    row.tier_downgrade = settings.tier_downgrade
    thresholds = (
        settings.lifecycle_at_risk_days,
        settings.lifecycle_lapsed_days,
        settings.lifecycle_churned_days,
    )
    if thresholds != (row.lifecycle_at_risk_days, row.lifecycle_lapsed_days, row.lifecycle_churned_days):
        row.lifecycle_at_risk_days, row.lifecycle_lapsed_days, row.lifecycle_churned_days = thresholds
        row.lifecycle_changed_at = now  # every member is assessed again (members/jobs.py)
    row.referral_friend_points = settings.referral_friend_points
    row.referral_referrer_points = settings.referral_referrer_points
    row.referral_min_purchase_minor = settings.referral_min_purchase_minor
    row.rfm_window_days = settings.rfm_window_days
    row.transfers_enabled = settings.transfers_enabled
    row.transfer_daily_limit = settings.transfer_daily_limit
    row.return_window_days = settings.return_window_days
    row.expiry_reminder_days = settings.expiry_reminder_days
    row.tier_reminder_days = settings.tier_reminder_days
    # The first settings are a change whatever they say (they record the point value); then the settings a
    # PUT sends again change nothing and are not announced.
    if last_change is not None and column_values(row) == before:
        return _settings(row)
    row.updated_at = now
    await uow.session.flush()
    await uow.forget_cached(_CACHE_KEY)
    updated = _settings(row)
    await emit_for_programme(uow, ProgramUpdated(settings=_as_json(updated)), "program")
    return updated


def _columns(settings: ProgramSettings) -> dict[str, object]:
    """The programme row's columns for `settings` (the fields are named as the columns are)."""
    return {**asdict(settings), "rounding": settings.rounding.value}


def _as_json(settings: ProgramSettings) -> dict[str, object]:
    return {
        name: value if isinstance(value, int | None) else str(value)
        for name, value in asdict(settings).items()
    }
