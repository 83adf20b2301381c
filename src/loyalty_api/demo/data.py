"""The demo programme: a typical Chinese retail chain with a till (POS) and a web shop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from random import Random
from typing import Final


@dataclass(frozen=True)
class DemoTier:
    rank: int
    code: str
    name: str
    yearly_spend_yuan: int  # qualifying spend in a calendar year
    points_multiplier: str
    grace_days: int
    benefits: tuple[str, ...]  # keys of BENEFITS


# Benefits as the API takes them: name, then kind and properties.
BENEFITS: Final[dict[str, tuple[str, dict[str, object]]]] = {
    "silver_discount": ("银卡95折", {"kind": "percent_discount", "percent": "5"}),
    "gold_discount": ("金卡9折", {"kind": "percent_discount", "percent": "10"}),
    "diamond_discount": ("钻石88折", {"kind": "percent_discount", "percent": "12"}),
    "free_shipping": ("包邮", {"kind": "free_shipping", "channels": ["online"]}),
    "double_points": (
        "满200元双倍积分",
        {"kind": "points_multiplier", "multiplier": "2", "min_subtotal": 20000},
    ),
    "birthday_20": (
        "生日礼券 20 元",
        {
            "kind": "birthday_gift",
            "coupon_name": "生日快乐 20 元券",
            "coupon": {"kind": "fixed_discount", "amount": 2000},
        },
    ),
    "birthday_50": (
        "生日礼券 50 元",
        {
            "kind": "birthday_gift",
            "coupon_name": "生日快乐 50 元券",
            "coupon": {"kind": "fixed_discount", "amount": 5000},
        },
    ),
    "birthday_100": (
        "生日礼券 100 元",
        {
            "kind": "birthday_gift",
            "coupon_name": "生日快乐 100 元券",
            "coupon": {"kind": "fixed_discount", "amount": 10000},
        },
    ),
    "member_day_gold": (
        "周三会员日生鲜8折",
        {"kind": "member_day_price", "weekday": 3, "percent": "20", "categories": ["fresh", "bakery"]},
    ),
    "member_day_diamond": (
        "周三会员日全场75折",
        {"kind": "member_day_price", "weekday": 3, "percent": "25"},
    ),
    "priority": (
        "专属客服",
        {"kind": "priority_service", "description": "钻石会员专线 400-000-0000，优先结账通道"},
    ),
}

TIERS: Final = [
    DemoTier(0, "member", "普通会员", 0, "1", 0, ()),
    DemoTier(1, "silver", "银卡", 2_000, "1.2", 30, ("silver_discount", "birthday_20")),
    DemoTier(
        2,
        "gold",
        "金卡",
        8_000,
        "1.5",
        60,
        ("gold_discount", "free_shipping", "birthday_50", "member_day_gold"),
    ),
    DemoTier(
        3,
        "diamond",
        "钻石",
        20_000,
        "2",
        90,
        (
            "diamond_discount",
            "free_shipping",
            "double_points",
            "birthday_100",
            "member_day_diamond",
            "priority",
        ),
    ),
]


@dataclass(frozen=True)
class DemoReward:
    name: str
    description: str
    cost_points: int
    coupon: dict[str, object]  # as the API takes it: kind and that kind's settings (money in fen)
    stock: int | None = None  # None: unlimited
    per_member_limit: int | None = None
    coupon_valid_days: int = 30


# The rewards catalogue. At the till 100 points are worth 1 yuan; the first reward is the programme's
# headline offer, deliberately far better than that.
REWARDS: Final = [
    DemoReward(
        "100 积分兑 10 元券",
        "100 积分兑换一张 10 元代金券：会员专享兑换价（收银台积分抵现为 100 积分 = 1 元）。"
        "兑换后 30 天内有效。",
        100,
        {"kind": "fixed_discount", "amount": 1000},
    ),
    DemoReward(
        "2000 积分兑保温杯",
        "品牌不锈钢保温杯一只（SKU THERMOS-01），下单或到店结账时出示券码免费领取。限量 50 个。",
        2000,
        {"kind": "free_item", "sku": "THERMOS-01", "quantity": 1},
        stock=50,
    ),
    DemoReward(
        "300 积分兑免运费券",
        "网上商城一次免运费。",
        300,
        {"kind": "free_shipping", "channels": ["online"]},
    ),
    DemoReward(
        "800 积分兑 9 折券",
        "整单 9 折，每位会员限兑 1 张。",
        800,
        {"kind": "percent_discount", "percent": "10"},
        per_member_limit=1,
    ),
]


# The paid card: a yearly "PLUS" membership with a week's free trial. Its perks stack with the member's tier.
PLUS_BENEFITS: Final[dict[str, tuple[str, dict[str, object]]]] = {
    "plus_free_shipping": ("PLUS 全场包邮", {"kind": "free_shipping"}),
    "plus_discount": ("PLUS 额外95折", {"kind": "percent_discount", "percent": "5"}),
    "plus_double_points": ("PLUS 双倍积分", {"kind": "points_multiplier", "multiplier": "2"}),
}
PLUS_MONTHLY_COUPON: Final[dict[str, object]] = {
    "name": "PLUS 每月 10 元券",
    "coupon": {"kind": "fixed_discount", "amount": 1000, "min_subtotal": 9900},
    "valid_days": 30,
    "every": "month",
}
PLUS_PRICE_FEN: Final = 19_800  # 198 yuan a year


_SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN: Final = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "桂英",
    "建华",
]
_MOBILE_PREFIXES: Final = ["138", "139", "186", "135", "158", "177", "150", "189"]


@dataclass(frozen=True)
class DemoPerson:
    name: str
    phone: str
    email: str | None
    birthday: date
    channel: str
    external_ids: dict[str, str]
    marketing_consent: bool


def demo_members(count: int = 36, seed: int = 2026) -> list[DemoPerson]:
    """Deterministic people, so every demo looks the same; phones are valid-looking CN mobile numbers."""
    rng = Random(seed)  # noqa: S311 - demo data, not secrets
    people: list[DemoPerson] = []
    for n in range(count):
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
        phone = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        birthday = date(rng.randrange(1960, 2006), rng.randrange(1, 13), rng.randrange(1, 29))
        online = n % 3 == 0
        external_ids = {"pos": f"POS-{100001 + n}"}
        if online or n % 4 == 0:
            external_ids["webshop"] = f"WEB-{500001 + n * 7}"
        people.append(
            DemoPerson(
                name=name,
                phone=phone,
                email=f"demo.member{n + 1:02d}@example.cn" if online or n % 2 == 0 else None,
                birthday=birthday,
                channel="online" if online else "store",
                external_ids=external_ids,
                marketing_consent=n % 5 != 0,
            )
        )
    return people


def demo_spend(n: int) -> int:
    """What the n-th demo member spent this year, in yuan: one diamond, a few gold, more silver."""
    if n == 4:
        return 26_888
    if n % 9 == 2:
        return 9_260
    if n % 4 == 1:
        return 2_380
    return 0
