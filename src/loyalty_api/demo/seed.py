"""Seed the demo programme through the services, once: running it again adds nothing."""

from __future__ import annotations

from decimal import Decimal

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import Scope
from loyalty_api.benefits import service as benefits
from loyalty_api.benefits.service import BenefitDefinition
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.demo.data import (
    BENEFITS,
    PLUS_BENEFITS,
    PLUS_MONTHLY_COUPON,
    PLUS_PRICE_FEN,
    REWARDS,
    TIERS,
    demo_members,
    demo_spend,
)
from loyalty_api.earning import service as earning
from loyalty_api.earning.kinds import BirthdayBonus, MemberDay
from loyalty_api.earning.service import RuleDefinition
from loyalty_api.keys import host as host_keys
from loyalty_api.money import Money, Rounding
from loyalty_api.offers import COUPON_OFFER_ADAPTER, PROPERTIES_ADAPTER
from loyalty_api.plan_catalogue.catalogue import Interval, RecurringCoupon
from loyalty_api.plan_catalogue.errors import PlanNotFound
from loyalty_api.plans import service as plans
from loyalty_api.plans.service import PlanDefinition
from loyalty_api.points import service as points
from loyalty_api.points.errors import OrderAlreadyEarned, OrderBelongsToAnotherMember
from loyalty_api.profiles import service as profiles
from loyalty_api.profiles.errors import MemberExists
from loyalty_api.program import service as program
from loyalty_api.program.service import ProgramSettings
from loyalty_api.rewards import service as rewards
from loyalty_api.rewards.service import RewardDefinition
from loyalty_api.subscriptions import service as subscriptions
from loyalty_api.tiers import service as tiers
from loyalty_api.tiers.ladder import Metric, Window
from loyalty_api.tiers.service import TierDefinition

DEMO_KEY_SCOPES = [Scope.admin, Scope.pos, Scope.ecommerce, Scope.billing]


DEMO_PROGRAM = ProgramSettings(
    currency="CNY",
    timezone="Asia/Shanghai",
    earn_rate=Decimal(1),  # 1 point per yuan spent
    point_value_minor=Decimal(1),  # 1 point = 1 fen: 100 points are worth 1 yuan at the till
    rounding=Rounding.down,
    expiry_months=12,
    min_redeem_points=100,
    max_redeem_share=Decimal("0.5"),
    transfers_enabled=True,  # members may gift points: up to 5,000 a day each
    transfer_daily_limit=5_000,
    expiry_reminder_days=30,  # members hear of their points a month before they expire
    tier_reminder_days=30,  # and a month before their tier's window ends, what keeping it takes
)

DEMO_RULES = [
    RuleDefinition(
        name="生日月双倍积分",
        properties=BirthdayBonus(kind="birthday", multiplier=Decimal(2), period="month"),
        priority=10,
        stackable=True,
        active=True,
        valid_from=None,
        valid_until=None,
    ),
    RuleDefinition(
        name="周三会员日",
        properties=MemberDay(kind="member_day", weekday=3, multiplier=Decimal(2)),
        priority=5,
        stackable=True,
        active=True,
        valid_from=None,
        valid_until=None,
    ),
]


async def _seed_ladder(uow: UnitOfWork) -> None:
    created = {
        key: await benefits.create_benefit(
            uow,
            BenefitDefinition(
                name=name, properties=PROPERTIES_ADAPTER.validate_python(properties), active=True
            ),
        )
        for key, (name, properties) in BENEFITS.items()
    }
    for tier in TIERS:
        await tiers.create_tier(
            uow,
            tier.code,
            TierDefinition(
                name=tier.name,
                rank=tier.rank,
                metric=Metric.spend,
                window=Window.calendar_year,
                window_days=None,
                threshold=tier.yearly_spend_yuan * 100,
                points_multiplier=Decimal(tier.points_multiplier),
                grace_days=tier.grace_days,
                benefit_ids=[created[key].id for key in tier.benefits],
            ),
        )


async def _seed_rewards(uow: UnitOfWork) -> None:
    for reward in REWARDS:
        await rewards.create_reward(
            uow,
            RewardDefinition(
                name=reward.name,
                description=reward.description,
                cost_points=reward.cost_points,
                per_member_limit=reward.per_member_limit,
                coupon=COUPON_OFFER_ADAPTER.validate_python(reward.coupon),
                coupon_valid_days=reward.coupon_valid_days,
                active=True,
                valid_from=None,
                valid_until=None,
            ),
            stock=reward.stock,
        )


async def _seed_plans(uow: UnitOfWork) -> None:
    perks = [
        await benefits.create_benefit(
            uow,
            BenefitDefinition(
                name=name, properties=PROPERTIES_ADAPTER.validate_python(properties), active=True
            ),
        )
        for name, properties in PLUS_BENEFITS.values()
    ]
    await plans.create_plan(
        uow,
        "plus",
        None,
        PlanDefinition(
            name="PLUS 年卡",
            price=Money(PLUS_PRICE_FEN, "CNY"),
            interval=Interval.year,
            interval_count=1,
            trial_days=7,
            grace_days=7,
            benefit_ids=[perk.id for perk in perks],
            coupons=[RecurringCoupon.model_validate(PLUS_MONTHLY_COUPON)],
            active=True,
        ),
    )


async def _on_sale(uow: UnitOfWork, code: str) -> bool:
    try:
        return (await plans.get_plan(uow, code)).active
    except PlanNotFound:
        return False


async def seed_programme(units: UnitsOfWork) -> None:
    async with units.begin() as uow:
        if not await program.is_configured(uow):
            await program.put_program(uow, DEMO_PROGRAM)
        if not (await earning.list_rules(uow, limit=1, cursor=None)).items:
            for rule in DEMO_RULES:
                await earning.create_rule(uow, rule)
        if not (await tiers.get_ladder(uow)).tiers:
            await _seed_ladder(uow)
        if not (await rewards.list_rewards(uow, only_offered=False, limit=1, cursor=None)).items:
            await _seed_rewards(uow)
        if not (await plans.list_plans(uow, limit=1, cursor=None)).items:
            await _seed_plans(uow)
    # Read once the plan is committed: the unit that made it still sees the cached catalogue from before.
    async with units.read() as uow:
        plus_on_sale = await _on_sale(uow, "plus")
    for n, person in enumerate(demo_members()):
        try:
            async with units.begin() as uow:
                member = await profiles.enrol(
                    uow,
                    phone=person.phone,
                    email=person.email,
                    name=person.name,
                    birthday=person.birthday,
                    channel=person.channel,
                    external_ids=person.external_ids,
                    marketing_consent=person.marketing_consent,
                    referral_code=None,
                )
                if n % 3 == 0:  # some members carry points over from the old card scheme
                    await points.adjust(
                        uow, member_id=member.id, points=500 + 250 * n, reason="opening balance"
                    )
                spent = demo_spend(n)
                if spent:  # this year's shopping so far, which puts them on the ladder
                    await points.earn(
                        uow,
                        member_id=member.id,
                        order_ref=f"DEMO-{n + 1:03d}",
                        amount=Money(spent * 100, "CNY"),
                        channel=person.channel,
                    )
                # PLUS members: most paid for the year, a few are trying it out. A member enrolled anew
                # after an operator stopped selling PLUS (or deleted it) joins without it: the demo keeps
                # their choice rather than selling a withdrawn plan, which subscribe refuses.
                if n % 5 == 1 and plus_on_sale:
                    await subscriptions.subscribe(
                        uow,
                        member_id=member.id,
                        plan_code="plus",
                        payment_ref=None if n % 3 == 0 else f"DEMO-PLUS-{n + 1:03d}",
                        trial=n % 3 == 0,
                    )
        except (MemberExists, OrderAlreadyEarned, OrderBelongsToAnotherMember):
            # Seeded before: the member is still found, or was erased (or their phone and e-mail changed)
            # and enrolled anew here, but their demo order is still there. Nothing of this member is kept.
            continue


async def create_demo_keys(units: UnitsOfWork) -> dict[str, str]:
    issued: dict[str, str] = {}
    async with units.begin() as uow:
        for scope in DEMO_KEY_SCOPES:
            key = await auth_service.create_key(uow, name=f"demo {scope}", scopes=[scope])
            await host_keys.record_made(uow, key.principal)  # made on the host, as `keys create` makes one
            issued[str(scope)] = key.token
    return issued


async def demo_keys_in_force(units: UnitsOfWork, issued: dict[str, object]) -> bool:
    """Whether every demo key remembered from an earlier start still opens this database: one for each
    scope, none revoked or expired, none from a database deleted since."""
    if set(issued) != {str(scope) for scope in DEMO_KEY_SCOPES}:
        return False
    async with units.read() as uow:
        for token in issued.values():
            if not isinstance(token, str) or not await auth_service.in_force(uow, token):
                return False
    return True
