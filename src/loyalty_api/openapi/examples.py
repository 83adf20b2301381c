"""Examples for the OpenAPI document: for each operation, a request body (when it takes one) and a reply.

They tell one story, the demo programme's: a Chinese supermarket chain in CNY (1 point per yuan, 100 points
worth 1 yuan), its store SH0012 and its web shop, and 李娜, a gold member with the paid PLUS card, shopping on
a Wednesday (member day) in March 2026. Money is in fen, instants in UTC.

`loyalty_api.openapi.document` puts them into the document as OpenAPI 3.1 `examples` maps; tests/http/
test_examples.py checks each request against the body model the service validates with, and each reply against
the route's response model, so an example that drifts from the models fails the build.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loyalty_api.analytics.periods import Period
from loyalty_api.audit.service import AUDIT_EVENTS
from loyalty_api.benefits.service import BENEFITS
from loyalty_api.db.pagination import encode_cursor, encode_place, page_after, scope_of
from loyalty_api.leaderboard.service import board_scope
from loyalty_api.profiles.service import MEMBERS
from loyalty_api.tiers.service import LADDER_VERSIONS

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Example:
    summary: str
    value: Any


@dataclass(frozen=True, slots=True)
class OperationExamples:
    """Request bodies and replies of one operation, by example name. The replies are of its success status;
    `response_media_type` is theirs (the request's is always JSON)."""

    responses: Mapping[str, Example]
    requests: Mapping[str, Example] = field(default_factory=dict)
    response_media_type: str = JSON


def cny(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "CNY"}


# Ids, as the service makes them (UUIDv7).
LI_NA = "0195a3c2-4b1e-7c9d-8f20-6a1d3e5b7c41"
WANG_FANG = "0195a3c2-5d07-7a13-b6e4-29f0c8d1a352"
POS_KEY = "0195a0f1-2c3d-7e4f-9a0b-1c2d3e4f5a6b"
ECOMMERCE_KEY = "0195a0f1-3d4e-7f50-8b1c-2d3e4f5a6b7c"
ADMIN_KEY = "0195a0f1-1b2c-7d3e-8f4a-0b1c2d3e4f5a"
HOLD = "0195ad51-8e21-7f3a-a4c5-d6e7f8091a2b"
HOLD_CANCELLED = "0195ad60-13b4-7c2e-8d5f-0a1b2c3d4e5f"
ENTRY_EARN = "0195ad4e-02f7-7b6c-8a1d-3e4f5a6b7c8d"
ENTRY_REDEEM = "0195ad50-6a3b-7d4c-9e5f-6a7b8c9d0e1f"
ENTRY_ADJUST = "0195aea3-7b2c-7e1d-8f3a-4b5c6d7e8f90"
# 李娜's points: the lot she earned when she joined (ending in June, so spent first) and the one the example
# receipt earns.
LOT_JUNE = "018fdc4b-d1ca-7b3e-9c4f-5a6b7c8d9e01"
LOT_EARN = "0195ad4e-02f8-7c1d-9e2f-3a4b5c6d7e8f"
TRANSFER = "0195aea9-1c2d-7e3f-8a4b-5c6d7e8f9a0b"
IMPORTED_ZHAO = "0195aeb0-2d3e-7f4a-9b5c-6d7e8f9a0b1c"
IMPORTED_CHEN = "0195aeb0-2d41-7a5b-8c6d-7e8f9a0b1c2d"
RULE_BIRTHDAY = "01953f6a-1c2d-7a3b-8c4d-5e6f7a8b9c0d"
RULE_MEMBER_DAY = "01953f6a-2d3e-7b4c-9d5e-6f7a8b9c0d1e"
REWARD_VOUCHER = "01953f6b-4e5f-7a6b-8c7d-9e0f1a2b3c4d"
REWARD_THERMOS = "01953f6b-5f60-7b7c-9d8e-0f1a2b3c4d5e"
REDEMPTION = "0195ae61-2a3b-7c4d-8e5f-6a7b8c9d0e1f"
COUPON = "0195ae61-29f0-7e1d-a2b3-c4d5e6f7a8b9"
TIER_MEMBER = "01953f69-0a1b-7c2d-8e3f-4a5b6c7d8e9f"
TIER_SILVER = "01953f69-1b2c-7d3e-9f4a-5b6c7d8e9f0a"
TIER_GOLD = "01953f69-2c3d-7e4f-a05b-6c7d8e9f0a1b"
TIER_DIAMOND = "01953f69-3d4e-7f50-b16c-7d8e9f0a1b2c"
TIER_CHANGE = "0194981f-6c7d-7e8f-9a0b-1c2d3e4f5a6b"
BENEFIT_SILVER_DISCOUNT = "01953f68-0f1a-7b2c-8d3e-4f5a6b7c8d9e"
BENEFIT_GOLD_DISCOUNT = "01953f68-1a2b-7c3d-9e4f-5a6b7c8d9e0f"
BENEFIT_FREE_SHIPPING = "01953f68-2b3c-7d4e-8f5a-6b7c8d9e0f1a"
BENEFIT_BIRTHDAY_50 = "01953f68-3c4d-7e5f-9a6b-7c8d9e0f1a2b"
BENEFIT_MEMBER_DAY = "01953f68-4d5e-7f6a-8b7c-8d9e0f1a2b3c"
BENEFIT_PLUS_DISCOUNT = "01953f6c-5e6f-7a7b-9c8d-9e0f1a2b3c4d"
BENEFIT_PLUS_POINTS = "01953f6c-6f7a-7b8c-8d9e-0f1a2b3c4d5e"
BENEFIT_BOOKSHOP_READING_ROOM = "0195a0f3-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
PLAN_PLUS = "01953f6d-7a8b-7c9d-9e0f-1a2b3c4d5e6f"
PLAN_PLUS_PRO = "01953f6d-8b9c-7d0e-8f1a-2b3c4d5e6f7a"
SUBSCRIPTION = "01944c1e-9c0d-7e1f-a2b3-c4d5e6f7a8b9"
WANG_FANG_SUBSCRIPTION = "0195ad5a-0d1e-7f2a-8b3c-4d5e6f7a8b9c"
PAYMENT_2026 = "01947012-1e2f-7a3b-9c4d-5e6f7a8b9c0d"
PAYMENT_2027 = "019d5c80-2f3a-7b4c-8d5e-6f7a8b9c0d1e"
ENDPOINT = "0194c8a2-3a4b-7c5d-9e6f-7a8b9c0d1e2f"
DELIVERY = "0195ad4e-4b5c-7d6e-8f7a-8b9c0d1e2f3a"
DELIVERY_DONE = "0195ad4e-5c6d-7e7f-9a8b-9c0d1e2f3a4b"
EVENT = "0195ad4e-0357-7a68-b9c0-d1e2f3a4b5c6"
EVENT_EARLIER = "0195ad47-1468-7b79-8ad1-e2f3a4b5c6d7"

NOW = "2026-03-18T06:32:10Z"  # a Wednesday, 14:32 in Shanghai: member day
# The rest of 李娜's day, in this order (tests/http/test_examples.py checks the figures follow): she redeems
# at the till, holds points for a web order and captures most of them, returns part of the receipt, buys a
# voucher with points, quotes a cart, asks for her data, gets goodwill points, and sends points to 王芳 that
# the operator brings back.
CAPTURED_AT = "2026-03-18T09:05:44Z"
REFUNDED_AT = "2026-03-18T10:14:26Z"
TRANSFERRED_AT = "2026-03-18T12:51:40Z"
TRANSFER_REVERSED_AT = "2026-03-18T13:20:05Z"

# ---- members -------------------------------------------------------------------------------------------

SILVER: dict[str, Any] = {"code": "silver", "name": "银卡", "rank": 1}
GOLD: dict[str, Any] = {"code": "gold", "name": "金卡", "rank": 2}
DIAMOND: dict[str, Any] = {"code": "diamond", "name": "钻石", "rank": 3}
ENTRY_TIER: dict[str, Any] = {"code": "member", "name": "普通会员", "rank": 0}

MEMBER: dict[str, Any] = {
    "id": LI_NA,
    "member_number": "6204185372",
    "status": "active",
    "tier": GOLD,
    "points": 13585,
    "phone": "+8613812345678",
    "email": "li.na@example.cn",
    "name": "李娜",
    "birthday": "1990-07-08",
    "channel": "store",
    "marketing_consent": True,
    "leaderboard_opt_in": True,
    "referral_code": "3KPX5LKJ",
    "referred_by": None,
    "external_ids": {"pos": "C-1001", "webshop": "WEB-500087"},
    "lifecycle": {"stage": "active", "since": "2026-02-11T09:20:05Z"},
    "created_at": "2025-06-02T03:15:42Z",
    "updated_at": "2026-02-11T09:20:05Z",
}

ENROLMENT: dict[str, Any] = {
    "phone": "+86 139 2996 8754",
    "email": "Wang.Fang@Example.cn",
    "name": "王芳",
    "birthday": "1995-11-23",
    "channel": "store",
    "external_ids": {"pos": "C-2087"},
    "marketing_consent": True,
}

ENROLLED: dict[str, Any] = {
    "id": WANG_FANG,
    "member_number": "7302150946",
    "status": "active",
    "tier": ENTRY_TIER,
    "points": 0,
    "phone": "+8613929968754",
    "email": "wang.fang@example.cn",
    "name": "王芳",
    "birthday": "1995-11-23",
    "channel": "store",
    "marketing_consent": True,
    "leaderboard_opt_in": False,
    "referral_code": "UZ8Y8LJN",
    "referred_by": None,
    "external_ids": {"pos": "C-2087"},
    "lifecycle": {"stage": "new", "since": NOW},
    "created_at": NOW,
    "updated_at": NOW,
}

# ---- points --------------------------------------------------------------------------------------------

EARN_ORDER = "SH0012-20260318-0087"
REDEEM_ORDER = "SH0012-20260318-0093"
WEB_ORDER = "WEB-20260318-55321"

BREAKDOWN: list[dict[str, Any]] = [
    {"rule": "base", "kind": "base_rate", "points": 458},
    {"rule": "金卡", "kind": "tier_multiplier", "points": 229},
    {"rule": "PLUS 双倍积分", "kind": "points_multiplier", "points": 458},
    {"rule": "周三会员日", "kind": "member_day", "points": 458},
]

# The earn on the example receipt, as the ledger shows it.
LEDGER_EARN_ENTRY: dict[str, Any] = {
    "id": ENTRY_EARN,
    "type": "earn",
    "amount": 1603,
    "balance_after": 13985,
    "held_change": 0,
    "held_after": 0,
    "order_ref": EARN_ORDER,
    "hold_id": None,
    "details": {
        "breakdown": BREAKDOWN,
        "amount": cny(45800),
        "store_id": "SH0012",
        "channel": "store",
        "occurred_at": NOW,
    },
    "actor_key_id": POS_KEY,
    "created_at": NOW,
}

EARN: dict[str, Any] = {
    "order_ref": EARN_ORDER,
    "amount": cny(45800),
    "items": [
        {"sku": "MILK-1L", "category": "fresh", "quantity": 2, "unit_price": cny(1900)},
        {"sku": "RICE-5KG", "category": "grocery", "quantity": 1, "unit_price": cny(6990)},
    ],
    "store_id": "SH0012",
    "channel": "store",
}

REDEEM: dict[str, Any] = {"points": 400, "order_ref": REDEEM_ORDER, "order_total": cny(12800)}

HELD: dict[str, Any] = {
    "id": HOLD,
    "member_id": LI_NA,
    "order_ref": WEB_ORDER,
    "points": 1000,
    "captured_points": 0,
    "status": "active",
    "created_at": "2026-03-18T06:40:03Z",
    "expires_at": "2026-03-18T07:10:03Z",
    "resolved_at": None,
    "balance": 13585,
    "available": 12585,
}

RULE_MEMBER_DAY_READ: dict[str, Any] = {
    "id": RULE_MEMBER_DAY,
    "name": "周三会员日",
    "kind": "member_day",
    "properties": {"channels": [], "store_ids": [], "weekday": 3, "multiplier": "2"},
    "priority": 5,
    "stackable": True,
    "active": True,
    "valid_from": None,
    "valid_until": None,
    "created_at": "2025-05-20T02:00:00Z",
    "updated_at": "2025-05-20T02:00:00Z",
}

PROGRAM: dict[str, Any] = {
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "earn_rate": "1",
    "point_value_minor": "1",
    "rounding": "down",
    "expiry_months": 12,
    "min_redeem_points": 100,
    "max_redeem_share": "0.5",
    "tier_downgrade": "one_step",
    "lifecycle_at_risk_days": 30,
    "lifecycle_lapsed_days": 90,
    "lifecycle_churned_days": 365,
    "referral_friend_points": 200,
    "referral_referrer_points": 500,
    "referral_min_purchase_minor": 5_000,
    "rfm_window_days": 365,
    "transfers_enabled": True,
    "transfer_daily_limit": 5_000,
    "return_window_days": 14,
    "expiry_reminder_days": 30,
    "tier_reminder_days": 30,
}

# ---- rewards and coupons -------------------------------------------------------------------------------

VOUCHER_OFFER: dict[str, Any] = {
    "kind": "fixed_discount",
    "min_subtotal": None,
    "categories": [],
    "channels": [],
    "amount": 1000,
}

REWARD_VOUCHER_READ: dict[str, Any] = {
    "id": REWARD_VOUCHER,
    "name": "100 积分兑 10 元券",
    "description": "100 积分兑换一张 10 元代金券，兑换后 30 天内有效。",
    "cost_points": 100,
    "stock_left": None,
    "per_member_limit": None,
    "coupon": VOUCHER_OFFER,
    "coupon_valid_days": 30,
    "currency": "CNY",
    "active": True,
    "valid_from": None,
    "valid_until": None,
    "available": True,
    "created_at": "2025-05-20T02:00:00Z",
    "updated_at": "2025-05-20T02:00:00Z",
}

THERMOS: dict[str, Any] = {
    "name": "2000 积分兑保温杯",
    "description": "品牌不锈钢保温杯一只（SKU THERMOS-01），结账时出示券码免费领取。限量 50 个。",
    "cost_points": 2000,
    "stock": 50,
    "per_member_limit": 1,
    "coupon": {"kind": "free_item", "sku": "THERMOS-01", "quantity": 1},
    "coupon_valid_days": 30,
    "valid_until": "2026-06-30T16:00:00Z",
}

REWARD_THERMOS_READ: dict[str, Any] = {
    "id": REWARD_THERMOS,
    "name": THERMOS["name"],
    "description": THERMOS["description"],
    "cost_points": 2000,
    "stock_left": 50,
    "per_member_limit": 1,
    "coupon": {
        "kind": "free_item",
        "min_subtotal": None,
        "categories": [],
        "channels": [],
        "sku": "THERMOS-01",
        "quantity": 1,
    },
    "coupon_valid_days": 30,
    "currency": "CNY",
    "active": True,
    "valid_from": None,
    "valid_until": "2026-06-30T16:00:00Z",
    "available": True,
    "created_at": NOW,
    "updated_at": NOW,
}

COUPON_READ: dict[str, Any] = {
    "id": COUPON,
    "code": "7KQM-X3RD-9VHT-PZ2C",
    "member_id": LI_NA,
    "name": "100 积分兑 10 元券",
    "kind": "fixed_discount",
    "properties": {"min_subtotal": None, "categories": [], "channels": [], "amount": 1000},
    "currency": "CNY",
    "status": "active",
    "valid_from": "2026-03-18T11:45:09Z",
    "valid_until": "2026-04-17T11:45:09Z",
    "used_at": None,
    "used_order_ref": None,
    "source": {"type": "reward", "id": REWARD_VOUCHER},
    "created_at": "2026-03-18T11:45:09Z",
}

# ---- tiers and benefits --------------------------------------------------------------------------------


def _ref(benefit_id: str, name: str, kind: str) -> dict[str, Any]:
    return {"id": benefit_id, "name": name, "kind": kind, "active": True}


TIERS: list[dict[str, Any]] = [
    {
        "id": TIER_MEMBER,
        "code": "member",
        "name": "普通会员",
        "rank": 0,
        "metric": "spend",
        "window": "calendar_year",
        "window_days": None,
        "threshold": 0,
        "points_multiplier": "1",
        "grace_days": 0,
        "benefits": [],
    },
    {
        "id": TIER_SILVER,
        "code": "silver",
        "name": "银卡",
        "rank": 1,
        "metric": "spend",
        "window": "calendar_year",
        "window_days": None,
        "threshold": 200000,
        "points_multiplier": "1.2",
        "grace_days": 30,
        "benefits": [_ref(BENEFIT_SILVER_DISCOUNT, "银卡95折", "percent_discount")],
    },
    {
        "id": TIER_GOLD,
        "code": "gold",
        "name": "金卡",
        "rank": 2,
        "metric": "spend",
        "window": "calendar_year",
        "window_days": None,
        "threshold": 800000,
        "points_multiplier": "1.5",
        "grace_days": 60,
        "benefits": [
            _ref(BENEFIT_GOLD_DISCOUNT, "金卡9折", "percent_discount"),
            _ref(BENEFIT_FREE_SHIPPING, "包邮", "free_shipping"),
            _ref(BENEFIT_BIRTHDAY_50, "生日礼券 50 元", "birthday_gift"),
            _ref(BENEFIT_MEMBER_DAY, "周三会员日生鲜8折", "member_day_price"),
        ],
    },
    {
        "id": TIER_DIAMOND,
        "code": "diamond",
        "name": "钻石",
        "rank": 3,
        "metric": "spend",
        "window": "calendar_year",
        "window_days": None,
        "threshold": 2000000,
        "points_multiplier": "2",
        "grace_days": 90,
        "benefits": [_ref(BENEFIT_FREE_SHIPPING, "包邮", "free_shipping")],
    },
]
TIER_GOLD_READ = TIERS[2]

GOLD_TIER_WRITE: dict[str, Any] = {
    "name": "金卡",
    "rank": 2,
    "metric": "spend",
    "window": "calendar_year",
    "threshold": 800000,
    "points_multiplier": "1.5",
    "grace_days": 60,
    "benefit_ids": [BENEFIT_GOLD_DISCOUNT, BENEFIT_FREE_SHIPPING, BENEFIT_BIRTHDAY_50, BENEFIT_MEMBER_DAY],
}

LADDER_VERSION: dict[str, Any] = {
    "version": 4,
    "tiers": [
        {
            "id": tier["id"],
            "rank": tier["rank"],
            "code": tier["code"],
            "name": tier["name"],
            "metric": tier["metric"],
            "window": tier["window"],
            "window_days": tier["window_days"],
            "threshold": tier["threshold"],
            "points_multiplier": tier["points_multiplier"],
            "grace_days": tier["grace_days"],
            "benefit_ids": [benefit["id"] for benefit in tier["benefits"]],
        }
        for tier in TIERS
    ],
    "created_at": "2025-05-20T02:00:04Z",
}


def _goal(tier: dict[str, Any], threshold: int, by: str | None) -> dict[str, Any]:
    value = 920800
    return {
        "tier": tier,
        "metric": "spend",
        "window_start": "2025-12-31T16:00:00Z",
        "value": value,
        "threshold": threshold,
        "remaining": max(threshold - value, 0),
        "by": by,
    }


MEMBER_TIER: dict[str, Any] = {
    "member_id": LI_NA,
    "tier": GOLD,
    "since": "2026-01-24T05:11:37Z",
    "kept_until": "2027-03-01T16:00:00Z",
    "override_until": None,
    "next": _goal(DIAMOND, 2000000, None),
    "keep": _goal(GOLD, 800000, "2026-12-31T16:00:00Z"),
    "ladder_version": 4,
}


def _benefit(
    benefit_id: str, name: str, properties: dict[str, Any], sources: list[dict[str, str]]
) -> dict[str, Any]:
    kind = properties["kind"]
    return {
        "id": benefit_id,
        "name": name,
        "kind": kind,
        "properties": {key: value for key, value in properties.items() if key != "kind"},
        "sources": sources,
    }


CONDITIONS: dict[str, Any] = {"min_subtotal": None, "categories": [], "channels": []}
FROM_GOLD: list[dict[str, str]] = [{"type": "tier", "ref": "gold", "name": "金卡"}]
FROM_PLUS: list[dict[str, str]] = [{"type": "plan", "ref": "plus", "name": "PLUS 年卡"}]
GOLD_DISCOUNT = _benefit(
    BENEFIT_GOLD_DISCOUNT, "金卡9折", {"kind": "percent_discount", **CONDITIONS, "percent": "10"}, FROM_GOLD
)
FREE_SHIPPING = _benefit(
    BENEFIT_FREE_SHIPPING,
    "包邮",
    {"kind": "free_shipping", **CONDITIONS, "channels": ["online"]},
    [*FROM_GOLD, {"type": "tier", "ref": "diamond", "name": "钻石"}],
)
MEMBER_DAY_PRICE = _benefit(
    BENEFIT_MEMBER_DAY,
    "周三会员日生鲜8折",
    {
        "kind": "member_day_price",
        **CONDITIONS,
        "categories": ["fresh", "bakery"],
        "weekday": 3,
        "percent": "20",
    },
    FROM_GOLD,
)
PLUS_DISCOUNT = _benefit(
    BENEFIT_PLUS_DISCOUNT,
    "PLUS 额外95折",
    {"kind": "percent_discount", **CONDITIONS, "percent": "5"},
    FROM_PLUS,
)
PLUS_POINTS = _benefit(
    BENEFIT_PLUS_POINTS,
    "PLUS 双倍积分",
    {"kind": "points_multiplier", "multiplier": "2", "channels": [], "min_subtotal": None},
    FROM_PLUS,
)


def _benefit_read(benefit: dict[str, Any], *, updated_at: str = "2025-05-20T02:00:00Z") -> dict[str, Any]:
    return {
        **{key: benefit[key] for key in ("id", "name", "kind", "properties")},
        "active": True,
        "sources": benefit["sources"],
        "created_at": "2025-05-20T02:00:00Z",
        "updated_at": updated_at,
    }


# ---- paid membership -----------------------------------------------------------------------------------

PLUS_REF: dict[str, Any] = {"code": "plus", "name": "PLUS 年卡"}
PLUS_PRO_REF: dict[str, Any] = {"code": "plus-pro", "name": "PLUS 尊享年卡"}
MONTHLY_COUPON: dict[str, Any] = {
    "name": "PLUS 每月 10 元券",
    "coupon": {"kind": "fixed_discount", "amount": 1000, "min_subtotal": 9900},
    "valid_days": 30,
    "every": "month",
}
PLUS_WRITE: dict[str, Any] = {
    "name": "PLUS 年卡",
    "price": cny(19800),
    "interval": {"unit": "year", "count": 1},
    "trial_days": 7,
    "grace_days": 7,
    "benefit_ids": [BENEFIT_PLUS_DISCOUNT, BENEFIT_PLUS_POINTS],
    "coupons": [MONTHLY_COUPON],
    "partner_perks": [
        {"partner": "bookshop", "name": "钟书阁 阅读室月卡", "source": "ours", "perk": None},
        {"partner": "bookshop", "name": "钟书阁 咖啡券", "source": "pool", "perk": "cafe-voucher"},
    ],
}


def _plan(plan_id: str, ref: dict[str, str], price: int, trial_days: int) -> dict[str, Any]:
    return {
        "id": plan_id,
        **ref,
        "family": "plus",
        "price": cny(price),
        "interval": {"unit": "year", "count": 1},
        "trial_days": trial_days,
        "grace_days": 7,
        "benefits": [
            _ref(BENEFIT_PLUS_DISCOUNT, "PLUS 额外95折", "percent_discount"),
            _ref(BENEFIT_PLUS_POINTS, "PLUS 双倍积分", "points_multiplier"),
        ],
        "coupons": [
            {
                **MONTHLY_COUPON,
                "coupon": {**CONDITIONS, "kind": "fixed_discount", "min_subtotal": 9900, "amount": 1000},
            }
        ],
        "partner_perks": PLUS_WRITE["partner_perks"],
        "active": True,
        "created_at": "2025-05-20T02:00:00Z",
        "updated_at": "2025-05-20T02:00:00Z",
    }


PLUS = _plan(PLAN_PLUS, PLUS_REF, 19800, 7)
PLUS_PRO = _plan(PLAN_PLUS_PRO, PLUS_PRO_REF, 39800, 0)

SUBSCRIPTION_READ: dict[str, Any] = {
    "id": SUBSCRIPTION,
    "member_id": LI_NA,
    "plan": PLUS_REF,
    "family": "plus",
    "state": "active",
    "period": 1,
    "period_start": "2026-01-16T04:22:31Z",
    "period_end": "2027-01-16T04:22:31Z",
    "trial_end": "2026-01-16T04:22:31Z",
    "price": cny(19800),
    "grace_until": None,
    "benefits_until": "2027-01-23T04:22:31Z",
    "cancel_at_period_end": False,
    "pending_plan": None,
    "payment_ref": "ALIPAY-2026011622001412345678",
    "canceled_at": None,
    "ended_at": None,
    "created_at": "2026-01-09T04:22:31Z",
    "updated_at": "2026-01-16T04:22:31Z",
}

PAYMENT_READ: dict[str, Any] = {
    "id": PAYMENT_2027,
    "subscription_id": SUBSCRIPTION,
    "period": 2,
    "status": "succeeded",
    "payment_ref": "ALIPAY-2027011322001476543210",
    "amount": cny(19800),
    "recorded_at": "2027-01-13T04:22:40Z",
    "unused_at": None,
}

# ---- webhooks ------------------------------------------------------------------------------------------

ENDPOINT_READ: dict[str, Any] = {
    "id": ENDPOINT,
    "url": "https://crm.example.cn/hooks/loyalty",
    "description": "CRM: points and tier changes",
    "event_types": ["points.earned", "points.redeemed", "tier.upgraded", "tier.downgraded"],
    "partner_id": None,
    "enabled": True,
    "previous_secret_until": None,
    "failing_since": None,
    "next_probe_at": None,
    "disabled_reason": None,
    "created_at": "2026-02-03T08:00:12Z",
    "updated_at": "2026-02-03T08:00:12Z",
}

DELIVERY_RETRYING: dict[str, Any] = {
    "id": DELIVERY,
    "endpoint_id": ENDPOINT,
    "event_id": EVENT,
    "event_type": "points.earned",
    "status": "pending",
    "attempts": 3,
    "next_attempt_at": "2026-03-18T07:09:27Z",
    "leased_until": None,
    "last_attempt_at": "2026-03-18T06:39:27Z",
    "last_status_code": 503,
    "last_error": "HTTP 503",
    "created_at": NOW,
    "delivered_at": None,
}

DELIVERY_SUCCEEDED: dict[str, Any] = {
    "id": DELIVERY_DONE,
    "endpoint_id": ENDPOINT,
    "event_id": EVENT_EARLIER,
    "event_type": "points.redeemed",
    "status": "succeeded",
    "attempts": 1,
    "next_attempt_at": "2026-03-18T06:24:51Z",
    "leased_until": None,
    "last_attempt_at": "2026-03-18T06:24:51Z",
    "last_status_code": 204,
    "last_error": None,
    "created_at": "2026-03-18T06:24:51Z",
    "delivered_at": "2026-03-18T06:24:51Z",
}

METRICS = """\
# HELP loyalty_http_requests_total HTTP requests by method, route template and status
# TYPE loyalty_http_requests_total counter
loyalty_http_requests_total{method="POST",route="/v1/members/{member_id}/earn",status="200"} 18342.0
loyalty_http_requests_total{method="POST",route="/v1/members/{member_id}/earn",status="409"} 12.0
# HELP loyalty_webhook_deliveries Webhook deliveries by status: pending (the queue), succeeded, failed \
(given up after retries)
# TYPE loyalty_webhook_deliveries gauge
loyalty_webhook_deliveries{status="pending"} 3.0
loyalty_webhook_deliveries{status="succeeded"} 52113.0
loyalty_webhook_deliveries{status="failed"} 4.0
# HELP loyalty_webhook_deliveries_retrying Pending webhook deliveries that have failed at least once
# TYPE loyalty_webhook_deliveries_retrying gauge
loyalty_webhook_deliveries_retrying 1.0
# HELP loyalty_webhook_oldest_pending_seconds Age of the oldest pending webhook delivery (0 when none)
# TYPE loyalty_webhook_oldest_pending_seconds gauge
loyalty_webhook_oldest_pending_seconds 1877.0
"""


# ---- API keys ----------------------------------------------------------------------------------------

TILL_KEY_READ: dict[str, Any] = {
    "prefix": "3f9c1a7e5b2d",
    "name": "Store 7 tills",
    "scopes": ["pos"],
    "partner_id": None,
    "rate_limit": None,
    "allowed_networks": ["203.0.113.0/24"],
    "created_at": "2026-03-02T02:00:00Z",
    "expires_at": "2027-03-02T02:00:00Z",
    "last_used_at": "2026-03-18T06:24:00Z",
    "status": "active",
}
ADMIN_KEY_READ: dict[str, Any] = {
    **TILL_KEY_READ,
    "prefix": "a41d0c9e8f27",
    "name": "Back office",
    "scopes": ["admin"],
    "allowed_networks": None,
    "created_at": "2026-03-01T01:00:00Z",
    "expires_at": None,
}
ISSUED_TILL_KEY: dict[str, Any] = {
    "key": {**TILL_KEY_READ, "last_used_at": None},
    "token": "lk_3f9c1a7e5b2d_c2hvd24gb25jZSwga2VwdCBub3doZXJl",
}


# ---- activities ----------------------------------------------------------------------------------------

RULE_CHECK_IN = "0195a0f4-2b3c-7d4e-8f5a-6b7c8d9e0f1a"
RULE_REVIEW = "0195a0f4-3c4d-7e5f-9a6b-7c8d9e0f1a2b"
ACTIVITY = "0195ad4f-7d8e-7f9a-8b0c-1d2e3f4a5b6c"
CHECK_IN_RULE: dict[str, Any] = {
    "type": "check_in",
    "name": "每日签到",
    "points": 10,
    "daily_cap": 1,
    "period_cap": None,
    "cap_period": "month",
    "streak_bonuses": [{"days": 7, "points": 50}],
    "active": True,
    "valid_from": None,
    "valid_until": None,
}
CHECK_IN_RULE_READ: dict[str, Any] = {
    "id": RULE_CHECK_IN,
    **CHECK_IN_RULE,
    "created_at": "2026-03-02T02:00:00Z",
    "updated_at": "2026-03-02T02:00:00Z",
}
REVIEW_RULE_READ: dict[str, Any] = {
    **CHECK_IN_RULE_READ,
    "id": RULE_REVIEW,
    "type": "review",
    "name": "商品评价",
    "points": 30,
    "daily_cap": 2,
    "period_cap": 10,
    "streak_bonuses": [],
    # A review month: the rule is in force for March 2026 (Shanghai) only.
    "valid_from": "2026-02-28T16:00:00Z",
    "valid_until": "2026-03-31T16:00:00Z",
}
CHECK_IN_DONE: dict[str, Any] = {
    "id": ACTIVITY,
    "member_id": LI_NA,
    "type": "check_in",
    "ref": "2026-03-18",
    "rule_id": RULE_CHECK_IN,
    "points_earned": 60,
    "breakdown": [
        {"rule": "每日签到", "kind": "activity", "points": 10},
        {"rule": "每日签到: 7-day streak", "kind": "streak_bonus", "points": 50},
    ],
    "streak": 7,
    "day": "2026-03-18",
    "balance": 13645,
    "recorded_at": NOW,
    "already_recorded": False,
}


# ---- campaigns -----------------------------------------------------------------------------------------

CAMPAIGN_WIN_BACK = "0195ae80-4c5d-7e6f-8a7b-9c0d1e2f3a4b"
CAMPAIGN_BIRTHDAY = "0195ae81-5d6e-7f70-9b8c-0d1e2f3a4b5c"
WIN_BACK_COUPON: dict[str, Any] = {
    "kind": "fixed_discount",
    "min_subtotal": 10_000,
    "categories": [],
    "channels": [],
    "amount": 2_000,
}
WIN_BACK: dict[str, Any] = {
    "name": "金卡会员回归礼",
    "audience": {"tier": "gold", "lifecycle": "lapsed"},
    "action": {
        "type": "issue_coupon",
        "coupon_name": "满100减20",
        "coupon": {"kind": "fixed_discount", "amount": 2_000, "min_subtotal": 10_000},
        "valid_days": 14,
    },
}
BIRTHDAY_POINTS: dict[str, Any] = {
    "name": "三月寿星双倍积分",
    "audience": {"birthday_month": 3},
    "action": {"type": "grant_points", "points": 200, "reason": "三月寿星礼"},
}
_NO_AUDIENCE: dict[str, Any] = {
    "tier": None,
    "plan": None,
    "lifecycle": None,
    "segment": None,
    "birthday_month": None,
}
WIN_BACK_READ: dict[str, Any] = {
    "id": CAMPAIGN_WIN_BACK,
    "name": WIN_BACK["name"],
    "status": "running",
    "audience": {**_NO_AUDIENCE, "tier": "gold", "lifecycle": "lapsed"},
    "action": {
        "type": "issue_coupon",
        "coupon_name": "满100减20",
        "coupon": WIN_BACK_COUPON,
        "valid_days": 14,
    },
    "counts": {"reached": 3_000, "coupons_issued": 3_000, "points_granted": 0, "purchased_since": 212},
    "created_at": "2026-03-18T06:30:00Z",
    "started_at": "2026-03-18T06:30:04Z",
    "finished_at": None,
}
WIN_BACK_CREATED: dict[str, Any] = {
    **WIN_BACK_READ,
    "status": "pending",
    "counts": {"reached": 0, "coupons_issued": 0, "points_granted": 0, "purchased_since": 0},
    "started_at": None,
}
BIRTHDAY_POINTS_READ: dict[str, Any] = {
    "id": CAMPAIGN_BIRTHDAY,
    "name": BIRTHDAY_POINTS["name"],
    "status": "completed",
    "audience": {**_NO_AUDIENCE, "birthday_month": 3},
    "action": BIRTHDAY_POINTS["action"],
    "counts": {"reached": 8_412, "coupons_issued": 0, "points_granted": 1_682_400, "purchased_since": 1_377},
    "created_at": "2026-03-01T01:00:00Z",
    "started_at": "2026-03-01T01:00:03Z",
    "finished_at": "2026-03-01T01:00:41Z",
}

# ---- partners ------------------------------------------------------------------------------------------

PARTNER_BOOKSHOP = "0195a0f2-4e5f-7a60-9b1c-3d4e5f6a7b8c"
BOOKSHOP_READ: dict[str, Any] = {
    "id": PARTNER_BOOKSHOP,
    "code": "bookshop",
    "name": "钟书阁",
    "status": "active",
    "earn_rate": "0.5",
    "exchange_out_rate": "0.1",
    "exchange_in_rate": "8",
    "daily_exchange_limit": 5_000_000,
    "member_daily_exchange_limit": 20_000,
    "exchange_timeout_seconds": 3600,
    "benefit_ids": [BENEFIT_BOOKSHOP_READING_ROOM],
    "benefit_tiers": ["gold"],
    "benefit_plans": [],
    "created_at": "2026-03-02T02:00:00Z",
    "updated_at": "2026-03-02T02:00:00Z",
}
BOOKSHOP_TERMS: dict[str, Any] = {
    key: BOOKSHOP_READ[key]
    for key in (
        "earn_rate",
        "exchange_out_rate",
        "exchange_in_rate",
        "daily_exchange_limit",
        "member_daily_exchange_limit",
        "exchange_timeout_seconds",
        "benefit_ids",
        "benefit_tiers",
        "benefit_plans",
    )
}
EXCHANGE_OUT_ID = "0195a1b2-7c8d-7e9f-8a0b-1c2d3e4f5a6b"
EXCHANGE_OUT: dict[str, Any] = {
    "id": EXCHANGE_OUT_ID,
    "partner": "bookshop",
    "partner_customer_ref": "ZSG-88231",
    "direction": "out",
    "status": "pending",
    "points": 2_000,
    "partner_points": 200,
    "rate": "0.1",
    "value": {"amount": 2_000, "currency": "CNY"},
    "partner_ref": None,
    "expires_at": "2026-03-18T07:32:10Z",
    "created_at": NOW,
    "resolved_at": None,
}
EXCHANGE_IN: dict[str, Any] = {
    **EXCHANGE_OUT,
    "id": "0195a1b3-0d1e-7f2a-9b3c-4d5e6f7a8b9c",
    "direction": "in",
    "status": "completed",
    "points": 800,
    "partner_points": 100,
    "rate": "8",
    "value": {"amount": 800, "currency": "CNY"},
    "partner_ref": "ZSG-T-55120",
    "expires_at": None,
    "resolved_at": NOW,
}
PERK_ISSUED: dict[str, Any] = {
    "code": "7KQM-X3RD-9VHT-2PLA",
    "partner": "bookshop",
    "name": "钟书阁 阅读室月卡",
    "plan": "plus",
    "period": 1,
    "source": "ours",
    "status": "issued",
    "partner_customer_ref": None,
    "granted_at": "2026-03-01T02:00:00Z",
    "redeemed_at": None,
}
SETTLEMENT: dict[str, Any] = {
    "partner": "bookshop",
    "from": "2026-02-28T16:00:00Z",
    "to": "2026-03-31T16:00:00Z",
    "currency": "CNY",
    "earned": {
        "points": 61_250,
        "partner_points": None,
        "value": {"amount": 61_250, "currency": "CNY"},
        "entries": 412,
    },
    "refunded": {
        "points": 1_840,
        "partner_points": None,
        "value": {"amount": 1_840, "currency": "CNY"},
        "entries": 9,
    },
    "exchanged_out": {
        "points": 150_000,
        "partner_points": 15_000,
        "value": {"amount": 150_000, "currency": "CNY"},
        "entries": 63,
    },
    "returned": {
        "points": 4_000,
        "partner_points": 400,
        "value": {"amount": 4_000, "currency": "CNY"},
        "entries": 2,
    },
    "exchanged_in": {
        "points": 96_000,
        "partner_points": 12_000,
        "value": {"amount": 96_000, "currency": "CNY"},
        "entries": 31,
    },
    "net_points": 9_410,
    "net_value": {"amount": 9_410, "currency": "CNY"},
    "perks_granted": 120,
    "perks_redeemed": 97,
    "benefit_uses": 1_284,
}
LI_NA_PROFILE_LINK: dict[str, Any] = {
    "partner": "bookshop",
    "partner_name": "钟书阁",
    "grants": ["basic", "points"],
    "linked_at": NOW,
}
LI_NA_AT_BOOKSHOP: dict[str, Any] = {
    "partner_customer_ref": "ZSG-88231",
    "member_id": LI_NA,
    "status": "active",
    "tier": GOLD,
    "paid_plans": ["plus"],
    "joint_benefits": [
        {"id": BENEFIT_BOOKSHOP_READING_ROOM, "name": "钟书阁 reading room", "kind": "priority_service"}
    ],
    "points": {"balance": 12_480, "available": 12_480},
    "grants": ["basic", "points"],
    "linked_at": NOW,
}


def _one(summary: str, value: Any, name: str = "example") -> dict[str, Example]:
    return {name: Example(summary, value)}


def _catalogue() -> dict[tuple[str, str], OperationExamples]:
    # Imported here: these read catalogues that are complete only once every domain module is imported.
    from loyalty_api.http.problem_catalogue import problem_types
    from loyalty_api.http.problem_pages import PROBLEM_TYPES, ProblemTypeRead
    from loyalty_api.webhooks.catalogue import list_event_types

    problems = problem_types()
    problem = ProblemTypeRead.of(problems["insufficient_points"]).model_dump(mode="json")
    problem_page = page_after(
        list(problems.values()),
        limit=2,
        cursor=None,
        key=lambda p: (p.code,),
        shape=(str,),
        scope=PROBLEM_TYPES,
    )
    event_page = list_event_types(limit=2, cursor=None)

    return {
        # -- operations ---------------------------------------------------------------------------------
        ("GET", "/healthz"): OperationExamples(responses=_one("The process is up", {"status": "ok"})),
        ("GET", "/readyz"): OperationExamples(
            responses=_one(
                "Ready",
                {"status": "ready", "database": "ok", "migration": "0007", "expected_migration": "0007"},
            )
        ),
        ("GET", "/metrics"): OperationExamples(
            responses=_one("Part of a scrape", METRICS), response_media_type="text/plain"
        ),
        ("GET", "/problems"): OperationExamples(
            responses=_one(
                "The first page of two as JSON (`?limit=2`, `Accept: application/json`)",
                {
                    "items": [ProblemTypeRead.of(p).model_dump(mode="json") for p in problem_page.items],
                    "next_cursor": problem_page.next_cursor,
                },
            )
        ),
        ("GET", "/problems/{code}"): OperationExamples(
            responses=_one("`/problems/insufficient_points` as JSON", problem)
        ),
        # -- members ------------------------------------------------------------------------------------
        ("POST", "/v1/members"): OperationExamples(
            requests={
                "at_the_till": Example("Enrolment at the till", ENROLMENT),
                "online_referred": Example(
                    "Online sign-up, referred by another member",
                    {
                        "email": "zhang.wei@example.cn",
                        "name": "张伟",
                        "channel": "online",
                        "referral_code": "3KPX5LKJ",
                    },
                ),
            },
            responses=_one("王芳 enrolled: entry tier, no points yet", ENROLLED),
        ),
        ("POST", "/v1/members/import"): OperationExamples(
            requests={
                "two_members": Example(
                    "Two members from the old system: one with her card, points and gold tier",
                    {
                        "members": [
                            {
                                "phone": "+86 137 1234 5678",
                                "name": "赵敏",
                                "member_number": "7305128469",
                                "points": [
                                    {"points": 1200, "expires_at": "2026-06-30T15:59:59Z"},
                                    {"points": 800},
                                ],
                                "tier": {"code": "gold", "until": "2026-12-31T15:59:59Z"},
                                "marketing_consent": True,
                            },
                            {"email": "chen.jie@example.cn", "external_ids": {"legacy_card": "VIP-004417"}},
                        ]
                    },
                )
            },
            responses=_one(
                "Both imported",
                {
                    "members": [
                        {"id": IMPORTED_ZHAO, "member_number": "7305128469", "tier": GOLD, "points": 2000},
                        {"id": IMPORTED_CHEN, "member_number": "4819302755", "tier": ENTRY_TIER, "points": 0},
                    ]
                },
            ),
        ),
        ("GET", "/v1/members"): OperationExamples(
            responses=_one(
                "A page of two (`?limit=2`)",
                {"items": [MEMBER, ENROLLED], "next_cursor": encode_cursor(uuid.UUID(WANG_FANG), MEMBERS)},
            )
        ),
        ("GET", "/v1/members/lookup"): OperationExamples(
            responses=_one("Found by card number (`?member_number=6204185372`)", MEMBER)
        ),
        ("GET", "/v1/members/{member_id}"): OperationExamples(
            responses=_one("李娜, a gold member", MEMBER | {"partner_links": [LI_NA_PROFILE_LINK]})
        ),
        ("POST", "/v1/members/{member_id}/qr-code"): OperationExamples(
            responses=_one(
                "For 李娜's app to show, five minutes",
                {
                    "qr_code": "LQ1AGK2HQSLDZ6J3DZANIOT4W34IFU3USAWK5SUCMC2WJMSMUU2",
                    "expires_at": "2026-03-18T06:37:10Z",
                },
            )
        ),
        ("PATCH", "/v1/members/{member_id}"): OperationExamples(
            requests={
                "contact": Example(
                    "A new e-mail address, and her web-shop account linked",
                    {"email": "lina.home@example.cn", "external_ids": {"webshop": "WEB-500087"}},
                ),
                "clear_phone": Example("Forget the phone number", {"phone": None}),
                "suspend": Example("Suspend the member (admin key)", {"status": "suspended"}),
            },
            responses=_one(
                "The member after the change",
                {**MEMBER, "email": "lina.home@example.cn", "updated_at": NOW},
            ),
        ),
        ("POST", "/v1/members/{member_id}/erase"): OperationExamples(
            responses=_one(
                "李娜 asked to be forgotten",
                {
                    "member_id": LI_NA,
                    "erased_at": NOW,
                    "newly_erased": True,
                    "external_ids": 1,
                    "partner_links": ["bookshop"],
                    "events_rewritten": 3,
                    "webhook_answers_dropped": 12,
                    "idempotency_replies_rewritten": 2,
                    "idempotency_replies_dropped": 0,
                },
            )
        ),
        ("GET", "/v1/members/{member_id}/export"): OperationExamples(
            responses=_one("李娜's data (each list cut to one item here)", _member_export())
        ),
        # -- points -------------------------------------------------------------------------------------
        ("POST", "/v1/members/{member_id}/earn"): OperationExamples(
            requests={"receipt": Example("A 458-yuan receipt at store SH0012", EARN)},
            responses=_one(
                "Base points, the gold and PLUS multipliers and the member-day bonus",
                {
                    "order_ref": EARN_ORDER,
                    "points_earned": 1603,
                    "breakdown": BREAKDOWN,
                    "balance": 13985,
                    "available": 13985,
                    "tier": GOLD,
                    "tier_changed": False,
                },
            ),
        ),
        ("POST", "/v1/members/{member_id}/redeem"): OperationExamples(
            requests={"till": Example("Pay 4 yuan of a 128-yuan receipt with 400 points", REDEEM)},
            responses=_one(
                "400 points, worth 4 yuan",
                {
                    "order_ref": REDEEM_ORDER,
                    "points_redeemed": 400,
                    "value": cny(400),
                    "balance": 13585,
                    "available": 13585,
                },
            ),
        ),
        ("POST", "/v1/members/{member_id}/holds"): OperationExamples(
            requests={
                "checkout": Example(
                    "Hold 1,000 points for a web order for 30 minutes",
                    {"points": 1000, "order_ref": WEB_ORDER, "ttl_seconds": 1800},
                )
            },
            responses=_one("The hold; 1,000 fewer points available", HELD),
        ),
        ("GET", "/v1/holds/{hold_id}"): OperationExamples(
            responses=_one("An active hold", {**HELD, "balance": None, "available": None})
        ),
        ("POST", "/v1/holds/{hold_id}/capture"): OperationExamples(
            requests={
                "partly": Example(
                    "The order shipped without one item: capture 800 of the 1,000 points",
                    {"points": 800, "order_total": cny(19900)},
                ),
                "all": Example("Capture every held point", {}),
            },
            responses=_one(
                "Captured: 800 points spent, 200 freed",
                {
                    **HELD,
                    "captured_points": 800,
                    "status": "captured",
                    "resolved_at": CAPTURED_AT,
                    "balance": 12785,
                    "available": 12785,
                },
            ),
        ),
        ("POST", "/v1/holds/{hold_id}/release"): OperationExamples(
            responses=_one(
                "Released: the 300 points are available again",
                {
                    **HELD,
                    "id": HOLD_CANCELLED,
                    "order_ref": "WEB-20260318-55400",
                    "points": 300,
                    "status": "released",
                    "created_at": "2026-03-18T06:52:30Z",
                    "expires_at": "2026-03-18T07:07:30Z",
                    "resolved_at": "2026-03-18T06:58:12Z",
                },
            )
        ),
        ("POST", "/v1/orders/{order_ref}/refund"): OperationExamples(
            requests={
                "amount": Example("Refund 100 yuan of the 458-yuan receipt", {"amount": cny(10000)}),
                "points": Example("Give back 400 of the points the order redeemed", {"points": 400}),
                "full": Example("Refund everything left of the order", {"full": True}),
            },
            responses=_one(
                "100 of 458 yuan refunded: 350 of the 1,603 earned points taken back",
                {
                    "order_ref": EARN_ORDER,
                    "member_id": LI_NA,
                    "refunded_by": "amount",
                    "refunded": cny(10000),
                    "refunded_total": cny(10000),
                    "order_total": cny(45800),
                    "points_taken_back": 350,
                    "points_given_back": 0,
                    "shortfall": 0,
                    "shortfall_settled": 0,
                    "already_expired": 0,
                    "points_refundable": 0,
                    "referral_taken_back": 0,
                    "balance": 12435,
                    "available": 12435,
                },
            ),
        ),
        ("GET", "/v1/members/{member_id}/points"): OperationExamples(
            responses=_one(
                "12,435 points, worth 124.35 yuan; 1,820 expire in June",
                {
                    "balance": 12435,
                    "held": 0,
                    "available": 12435,
                    "lifetime_earned": 21460,
                    "available_value": cny(12435),
                    "expiring": [
                        {"month": "2026-06", "points": 1820, "expires_at": "2026-06-02T03:15:42Z"},
                        {"month": "2027-03", "points": 10615, "expires_at": "2027-03-02T10:26:48Z"},
                    ],
                },
            )
        ),
        ("GET", "/v1/members/{member_id}/ledger"): OperationExamples(
            responses=_one(
                "Earns and redemptions (`?type=earn&type=redeem&limit=2`)",
                {
                    "items": [
                        {
                            "id": ENTRY_REDEEM,
                            "type": "redeem",
                            "amount": -400,
                            "balance_after": 13585,
                            "held_change": 0,
                            "held_after": 0,
                            "order_ref": REDEEM_ORDER,
                            "hold_id": None,
                            # The lots that paid: a refund gives the points back with their end.
                            "details": {
                                "value": cny(400),
                                "lots": [{"lot_id": LOT_JUNE, "points": 400}],
                            },
                            "actor_key_id": POS_KEY,
                            "created_at": "2026-03-18T06:35:48Z",
                        },
                        LEDGER_EARN_ENTRY,
                    ],
                    "next_cursor": encode_cursor(uuid.UUID(ENTRY_EARN), scope_of("ledger", uuid.UUID(LI_NA))),
                },
            )
        ),
        ("POST", "/v1/members/{member_id}/adjustments"): OperationExamples(
            requests={
                "goodwill": Example(
                    "Goodwill points",
                    {"points": 200, "reason": "Goodwill: the advertised rice was out of stock at SH0012"},
                ),
                "correction": Example(
                    "Take back points given twice",
                    {"points": -500, "reason": "Correction: receipt SH0012-20260301-0042 was entered twice"},
                ),
            },
            responses=_one(
                "200 points added",
                {
                    "entry_id": ENTRY_ADJUST,
                    "points": 200,
                    "reason": "Goodwill: the advertised rice was out of stock at SH0012",
                    "balance": 12535,
                    "available": 12535,
                },
            ),
        ),
        ("POST", "/v1/members/{member_id}/transfers"): OperationExamples(
            requests={
                "gift": Example(
                    "Li Na gives Wang Fang 2,000 points", {"to_member_id": WANG_FANG, "points": 2000}
                )
            },
            responses=_one(
                "2,000 points sent",
                {
                    "transfer_id": TRANSFER,
                    "from_member_id": LI_NA,
                    "to_member_id": WANG_FANG,
                    "points": 2000,
                    "balance": 10535,
                    "available": 10535,
                    "created_at": TRANSFERRED_AT,
                },
            ),
        ),
        ("POST", "/v1/members/{member_id}/transfers/{transfer_id}/reversal"): OperationExamples(
            requests={
                "wrong_member": Example(
                    "Li Na sent the points to the wrong member",
                    {"reason": "sent to the wrong member (ticket 4411)"},
                )
            },
            responses=_one(
                "The 2,000 points are back with Li Na",
                {
                    "transfer_id": TRANSFER,
                    "from_member_id": LI_NA,
                    "to_member_id": WANG_FANG,
                    "points": 2000,
                    "balance": 12535,
                    "recipient_balance": 840,
                    "reversed_at": TRANSFER_REVERSED_AT,
                },
            ),
        ),
        # -- programme and earning rules ------------------------------------------------------------------
        ("GET", "/v1/program"): OperationExamples(
            responses=_one("1 point per yuan; 100 points are worth 1 yuan", PROGRAM)
        ),
        ("PUT", "/v1/program"): OperationExamples(
            requests={"demo": Example("1 point per yuan, 100 points = 1 yuan, 12 months to expiry", PROGRAM)},
            responses=_one("The settings now in force", PROGRAM),
        ),
        ("POST", "/v1/earning-rules"): OperationExamples(
            requests={
                "member_day": Example(
                    "Double base points every Wednesday",
                    {
                        "name": "周三会员日",
                        "kind": "member_day",
                        "properties": {"weekday": 3, "multiplier": "2"},
                    },
                ),
                "category": Example(
                    "Triple points on fresh food in April, online only",
                    {
                        "name": "四月生鲜三倍积分",
                        "kind": "category_bonus",
                        "properties": {"categories": ["fresh"], "multiplier": "3", "channels": ["online"]},
                        "priority": 8,
                        "valid_from": "2026-03-31T16:00:00Z",
                        "valid_until": "2026-04-30T16:00:00Z",
                    },
                ),
                "birthday": Example(
                    "Double points all through the birthday month",
                    {
                        "name": "生日月双倍积分",
                        "kind": "birthday",
                        "properties": {"multiplier": "2", "period": "month"},
                        "priority": 10,
                    },
                ),
            },
            responses=_one("The member-day rule", {**RULE_MEMBER_DAY_READ, "priority": 0}),
        ),
        ("GET", "/v1/earning-rules"): OperationExamples(
            responses=_one(
                "The demo programme's two rules",
                {
                    "items": [
                        {
                            **RULE_MEMBER_DAY_READ,
                            "id": RULE_BIRTHDAY,
                            "name": "生日月双倍积分",
                            "kind": "birthday",
                            "properties": {
                                "channels": [],
                                "store_ids": [],
                                "multiplier": "2",
                                "period": "month",
                            },
                            "priority": 10,
                        },
                        RULE_MEMBER_DAY_READ,
                    ],
                    "next_cursor": None,
                },
            )
        ),
        ("GET", "/v1/earning-rules/{rule_id}"): OperationExamples(
            responses=_one("The member-day rule", RULE_MEMBER_DAY_READ)
        ),
        ("PUT", "/v1/earning-rules/{rule_id}"): OperationExamples(
            requests={
                "stores": Example(
                    "Member day in the Shanghai stores only",
                    {
                        "name": "周三会员日",
                        "kind": "member_day",
                        "properties": {"weekday": 3, "multiplier": "2", "store_ids": ["SH0012", "SH0019"]},
                        "priority": 5,
                    },
                )
            },
            responses=_one(
                "The rule as replaced",
                {
                    **RULE_MEMBER_DAY_READ,
                    "properties": {
                        "channels": [],
                        "store_ids": ["SH0012", "SH0019"],
                        "weekday": 3,
                        "multiplier": "2",
                    },
                    "updated_at": NOW,
                },
            ),
        ),
        # -- rewards and coupons --------------------------------------------------------------------------
        ("POST", "/v1/rewards"): OperationExamples(
            requests={"thermos": Example("A thermos for 2,000 points, 50 in stock, one each", THERMOS)},
            responses=_one("The new reward", REWARD_THERMOS_READ),
        ),
        ("GET", "/v1/rewards"): OperationExamples(
            responses=_one(
                "The catalogue", {"items": [REWARD_VOUCHER_READ, REWARD_THERMOS_READ], "next_cursor": None}
            )
        ),
        ("GET", "/v1/rewards/{reward_id}"): OperationExamples(
            responses=_one("A 10-yuan voucher for 100 points", REWARD_VOUCHER_READ)
        ),
        ("PUT", "/v1/rewards/{reward_id}"): OperationExamples(
            requests={
                "extend": Example(
                    "Offer it until the end of July, stock left as it is",
                    {
                        key: value if key != "valid_until" else "2026-07-31T16:00:00Z"
                        for key, value in THERMOS.items()
                        if key != "stock"
                    },
                )
            },
            responses=_one(
                "The reward as replaced (37 left)",
                {
                    **REWARD_THERMOS_READ,
                    "stock_left": 37,
                    "valid_until": "2026-07-31T16:00:00Z",
                    "created_at": "2026-03-01T02:00:00Z",
                    "updated_at": NOW,
                },
            ),
        ),
        ("POST", "/v1/members/{member_id}/rewards/{reward_id}/redeem"): OperationExamples(
            responses=_one(
                "100 points spent; the voucher's coupon issued",
                {
                    "id": REDEMPTION,
                    "reward_id": REWARD_VOUCHER,
                    "member_id": LI_NA,
                    "points_spent": 100,
                    "balance": 12335,
                    "available": 12335,
                    "coupon": COUPON_READ,
                    "created_at": "2026-03-18T11:45:09Z",
                },
            )
        ),
        ("GET", "/v1/members/{member_id}/coupons"): OperationExamples(
            responses=_one("One active coupon", {"items": [COUPON_READ], "next_cursor": None})
        ),
        ("POST", "/v1/coupons/{code}/use"): OperationExamples(
            requests={
                "web_shop": Example(
                    "The web shop uses it, naming the member (ecommerce key)",
                    {"order_ref": "WEB-20260319-56012", "member_id": LI_NA},
                ),
                "till": Example(
                    "The till uses it by its code alone (pos key)", {"order_ref": "SH0012-20260320-0011"}
                ),
            },
            responses=_one(
                "Used",
                {
                    **COUPON_READ,
                    "status": "used",
                    "used_at": "2026-03-19T12:03:27Z",
                    "used_order_ref": "WEB-20260319-56012",
                },
            ),
        ),
        # -- tiers ----------------------------------------------------------------------------------------
        ("GET", "/v1/tiers"): OperationExamples(
            responses=_one(
                "The demo programme's four tiers", {"version": 4, "items": TIERS, "next_cursor": None}
            )
        ),
        ("POST", "/v1/tiers"): OperationExamples(
            requests={
                "gold": Example(
                    "Gold: 8,000 yuan in a calendar year, 1.5 × points",
                    {"code": "gold", **GOLD_TIER_WRITE},
                ),
                "rolling": Example(
                    "Silver: 2,000 points earned in the last 365 days",
                    {
                        "code": "silver",
                        "name": "银卡",
                        "rank": 1,
                        "metric": "points",
                        "window": "rolling_days",
                        "window_days": 365,
                        "threshold": 2000,
                        "points_multiplier": "1.2",
                        "grace_days": 30,
                        "benefit_ids": [BENEFIT_SILVER_DISCOUNT],
                    },
                ),
            },
            responses=_one("The new tier", TIER_GOLD_READ),
        ),
        ("GET", "/v1/tiers/{code}"): OperationExamples(responses=_one("`/v1/tiers/gold`", TIER_GOLD_READ)),
        ("PUT", "/v1/tiers/{code}"): OperationExamples(
            requests={
                "longer_grace": Example(
                    "Gold kept 90 days past the year", {**GOLD_TIER_WRITE, "grace_days": 90}
                )
            },
            responses=_one("The tier as replaced", {**TIER_GOLD_READ, "grace_days": 90}),
        ),
        ("GET", "/v1/tier-versions"): OperationExamples(
            responses=_one(
                "The latest version (`?limit=1`)",
                {"items": [LADDER_VERSION], "next_cursor": encode_place((4,), LADDER_VERSIONS)},
            )
        ),
        ("GET", "/v1/tier-versions/{version}"): OperationExamples(
            responses=_one("`/v1/tier-versions/4`", LADDER_VERSION)
        ),
        ("GET", "/v1/members/{member_id}/tier"): OperationExamples(
            responses=_one("Gold, kept to March 2027; 10,792 yuan more reaches diamond", MEMBER_TIER)
        ),
        ("GET", "/v1/members/{member_id}/tier/history"): OperationExamples(
            responses=_one(
                "The upgrade to gold",
                {
                    "items": [
                        {
                            "id": TIER_CHANGE,
                            "from_tier": SILVER,
                            "to_tier": GOLD,
                            "change": "upgrade",
                            "reason": "qualified",
                            "ladder_version": 4,
                            "qualification": {
                                code: {
                                    "metric": "spend",
                                    "window_start": "2025-12-31T16:00:00Z",
                                    "value": 812300,
                                    "threshold": threshold,
                                }
                                for code, threshold in (
                                    ("silver", 200000),
                                    ("gold", 800000),
                                    ("diamond", 2000000),
                                )
                            },
                            "kept_until": "2027-03-01T16:00:00Z",
                            "created_at": "2026-01-24T05:11:37Z",
                        }
                    ],
                    "next_cursor": None,
                },
            )
        ),
        ("PUT", "/v1/members/{member_id}/tier/override"): OperationExamples(
            requests={
                "vip": Example(
                    "Diamond until the end of June",
                    {
                        "tier": "diamond",
                        "until": "2026-06-30T16:00:00Z",
                        "reason": "Spring launch VIP guest, approved by the store manager",
                    },
                )
            },
            responses=_one(
                "Diamond by hand until 1 July (Shanghai time)",
                {
                    **MEMBER_TIER,
                    "tier": DIAMOND,
                    "since": NOW,
                    "kept_until": "2026-06-30T16:00:00Z",
                    "override_until": "2026-06-30T16:00:00Z",
                    "next": None,
                    "keep": None,
                },
            ),
        ),
        ("DELETE", "/v1/members/{member_id}/tier/override"): OperationExamples(
            responses=_one("Back on gold, the tier she qualifies for", {**MEMBER_TIER, "since": NOW})
        ),
        # -- benefits -------------------------------------------------------------------------------------
        ("POST", "/v1/benefits"): OperationExamples(
            requests={
                "percent": Example(
                    "10 % off for gold members",
                    {"name": "金卡9折", "kind": "percent_discount", "properties": {"percent": "10"}},
                ),
                "member_day": Example(
                    "20 % off fresh food and bakery on Wednesdays",
                    {
                        "name": "周三会员日生鲜8折",
                        "kind": "member_day_price",
                        "properties": {"weekday": 3, "percent": "20", "categories": ["fresh", "bakery"]},
                    },
                ),
                "birthday": Example(
                    "A 50-yuan coupon on the member's birthday",
                    {
                        "name": "生日礼券 50 元",
                        "kind": "birthday_gift",
                        "properties": {
                            "coupon_name": "生日快乐 50 元券",
                            "coupon": {"kind": "fixed_discount", "amount": 5000},
                        },
                    },
                ),
            },
            responses=_one(
                "The new benefit, given by no tier or plan yet",
                {**_benefit_read(GOLD_DISCOUNT), "sources": []},
            ),
        ),
        ("GET", "/v1/benefits"): OperationExamples(
            responses=_one(
                "The first page of two (`?limit=2`)",
                {
                    "items": [_benefit_read(GOLD_DISCOUNT), _benefit_read(FREE_SHIPPING)],
                    "next_cursor": encode_cursor(uuid.UUID(BENEFIT_FREE_SHIPPING), BENEFITS),
                },
            )
        ),
        ("GET", "/v1/benefits/{benefit_id}"): OperationExamples(
            responses=_one("Gold's 10 % off", _benefit_read(GOLD_DISCOUNT))
        ),
        ("PUT", "/v1/benefits/{benefit_id}"): OperationExamples(
            requests={
                "minimum": Example(
                    "10 % off from 50 yuan",
                    {
                        "name": "金卡9折",
                        "kind": "percent_discount",
                        "properties": {"percent": "10", "min_subtotal": 5000},
                    },
                )
            },
            responses=_one(
                "The benefit as replaced",
                _benefit_read(
                    {
                        **GOLD_DISCOUNT,
                        "properties": {**GOLD_DISCOUNT["properties"], "min_subtotal": 5000},
                    },
                    updated_at=NOW,
                ),
            ),
        ),
        ("GET", "/v1/members/{member_id}/benefits"): OperationExamples(
            responses=_one(
                "From the gold tier and the PLUS card",
                {
                    "member_id": LI_NA,
                    "tier": GOLD,
                    "plans": ["plus"],
                    "benefits": [GOLD_DISCOUNT, FREE_SHIPPING, MEMBER_DAY_PRICE, PLUS_DISCOUNT, PLUS_POINTS],
                },
            )
        ),
        # -- checkout -------------------------------------------------------------------------------------
        ("POST", "/v1/checkout/quote"): OperationExamples(
            requests={
                "web_cart": Example(
                    "A web-shop cart with a coupon, paying 2,000 points",
                    {
                        "member_id": LI_NA,
                        "channel": "online",
                        "cart": {
                            "subtotal": cny(45800),
                            "shipping": cny(1200),
                            "items": [
                                {
                                    "sku": "MILK-1L",
                                    "category": "fresh",
                                    "quantity": 2,
                                    "unit_price": cny(1900),
                                }
                            ],
                        },
                        "coupon_codes": ["7KQM-X3RD-9VHT-PZ2C"],
                        "points_to_use": 2000,
                    },
                )
            },
            responses=_one(
                "Member-day price, gold and PLUS discounts, the coupon, free shipping, then points",
                {
                    "member_id": LI_NA,
                    "tier": GOLD,
                    "currency": "CNY",
                    "subtotal": cny(45800),
                    "shipping": cny(1200),
                    "discounts": [
                        _discount("tier", MEMBER_DAY_PRICE, 760),
                        _discount("tier", GOLD_DISCOUNT, 4504),
                        _discount("plan", PLUS_DISCOUNT, 2026),
                        {
                            "source": "coupon",
                            "source_ref": "7KQM-X3RD-9VHT-PZ2C",
                            "source_name": "100 积分兑 10 元券",
                            "benefit_id": None,
                            "kind": "fixed_discount",
                            "name": "100 积分兑 10 元券",
                            "amount": cny(1000),
                            "applies_to": "goods",
                        },
                        {**_discount("tier", FREE_SHIPPING, 1200), "applies_to": "shipping"},
                    ],
                    "coupons_applied": ["7KQM-X3RD-9VHT-PZ2C"],
                    "coupons_rejected": [],
                    "perks": [],
                    "goods_total": cny(37510),
                    "shipping_total": cny(0),
                    "points": {
                        "available": 12335,
                        "max_usable": 12335,
                        "max_value": cny(12335),
                        "applied": 2000,
                        "applied_value": cny(2000),
                        "capped_by": "none",
                    },
                    "total": cny(35510),
                },
            ),
        ),
        # -- paid membership ------------------------------------------------------------------------------
        ("GET", "/v1/plans"): OperationExamples(
            responses=_one("The PLUS family", {"items": [PLUS, PLUS_PRO], "next_cursor": None})
        ),
        ("POST", "/v1/plans"): OperationExamples(
            requests={
                "plus": Example(
                    "PLUS: 198 yuan a year, a week's trial, a 10-yuan coupon every month",
                    {"code": "plus", **PLUS_WRITE},
                )
            },
            responses=_one("The new plan", PLUS),
        ),
        ("GET", "/v1/plans/{code}"): OperationExamples(responses=_one("`/v1/plans/plus`", PLUS)),
        ("PUT", "/v1/plans/{code}"): OperationExamples(
            requests={
                "new_price": Example(
                    "218 yuan a year from each next period", {**PLUS_WRITE, "price": cny(21800)}
                )
            },
            responses=_one("The plan as replaced", {**PLUS, "price": cny(21800), "updated_at": NOW}),
        ),
        ("POST", "/v1/members/{member_id}/subscriptions"): OperationExamples(
            requests={
                "trial": Example("With the plan's 7-day trial", {"plan": "plus"}),
                "paid": Example(
                    "No trial: billing took the first year's fee",
                    {"plan": "plus", "trial": False, "payment_ref": "ALIPAY-2026031822001456781234"},
                ),
            },
            responses=_one(
                "王芳 starts the trial",
                {
                    **SUBSCRIPTION_READ,
                    "id": WANG_FANG_SUBSCRIPTION,
                    "member_id": WANG_FANG,
                    "state": "trialing",
                    "period": 0,
                    "period_start": "2026-03-18T06:45:12Z",
                    "period_end": "2026-03-25T06:45:12Z",
                    "trial_end": "2026-03-25T06:45:12Z",
                    "benefits_until": "2026-04-01T06:45:12Z",
                    "payment_ref": None,
                    "created_at": "2026-03-18T06:45:12Z",
                    "updated_at": "2026-03-18T06:45:12Z",
                },
            ),
        ),
        ("GET", "/v1/members/{member_id}/subscriptions"): OperationExamples(
            responses=_one("Her PLUS card", {"items": [SUBSCRIPTION_READ], "next_cursor": None})
        ),
        ("GET", "/v1/subscriptions/{subscription_id}"): OperationExamples(
            responses=_one("Active, paid to January 2027", SUBSCRIPTION_READ)
        ),
        ("POST", "/v1/subscriptions/{subscription_id}/cancel"): OperationExamples(
            requests={
                "period_end": Example(
                    "Keep the benefits to the end of the paid year", {"at_period_end": True}
                ),
                "now": Example("End it now", {"at_period_end": False}),
            },
            responses=_one(
                "Canceled at period end: benefits until 16 January 2027",
                {
                    **SUBSCRIPTION_READ,
                    "state": "canceled",
                    "cancel_at_period_end": True,
                    "benefits_until": "2027-01-16T04:22:31Z",
                    "canceled_at": NOW,
                    "updated_at": NOW,
                },
            ),
        ),
        ("POST", "/v1/subscriptions/{subscription_id}/resume"): OperationExamples(
            responses=_one("Renewing again", {**SUBSCRIPTION_READ, "updated_at": NOW})
        ),
        ("POST", "/v1/subscriptions/{subscription_id}/change-plan"): OperationExamples(
            requests={
                "downgrade": Example("From PLUS 尊享 back to PLUS at period end", {"plan": "plus"}),
                "upgrade": Example(
                    "Up to PLUS 尊享 now, a new year paid by billing",
                    {"plan": "plus-pro", "payment_ref": "ALIPAY-2026031822001498765432"},
                ),
            },
            responses=_one(
                "A downgrade waiting for the period end",
                {
                    **SUBSCRIPTION_READ,
                    "plan": PLUS_PRO_REF,
                    "price": cny(39800),
                    "pending_plan": PLUS_REF,
                    "updated_at": NOW,
                },
            ),
        ),
        ("POST", "/v1/subscriptions/{subscription_id}/payments"): OperationExamples(
            requests={
                "succeeded": Example(
                    "Billing charged the second year, three days before it begins",
                    {
                        "status": "succeeded",
                        "payment_ref": "ALIPAY-2027011322001476543210",
                        "amount": cny(19800),
                        "period": 2,
                    },
                ),
                "failed": Example(
                    "The charge failed",
                    {
                        "status": "failed",
                        "payment_ref": "ALIPAY-2027011322001476540001",
                        "amount": cny(19800),
                        "period": 2,
                    },
                ),
            },
            responses=_one(
                "Recorded; the renewal job uses it at period end",
                {
                    "payment": PAYMENT_READ,
                    "subscription": {**SUBSCRIPTION_READ, "updated_at": "2027-01-13T04:22:40Z"},
                },
            ),
        ),
        ("GET", "/v1/subscriptions/{subscription_id}/payments"): OperationExamples(
            responses=_one(
                "Two years paid",
                {
                    "items": [
                        PAYMENT_READ,
                        {
                            "id": PAYMENT_2026,
                            "subscription_id": SUBSCRIPTION,
                            "period": 1,
                            "status": "succeeded",
                            "payment_ref": "ALIPAY-2026011622001412345678",
                            "amount": cny(19800),
                            "recorded_at": "2026-01-16T04:22:31Z",
                            "unused_at": None,
                        },
                    ],
                    "next_cursor": None,
                },
            )
        ),
        ("GET", "/v1/analytics/paid-membership"): OperationExamples(
            responses=_one(
                "1,284 paying members, 22,536 yuan a month",
                {
                    "paying_members": 1284,
                    "monthly_recurring_revenue": cny(2253600),
                    "plans": [
                        {
                            "plan": PLUS_REF,
                            "paying": 1203,
                            "trialing": 57,
                            "past_due": 9,
                            "monthly_recurring_revenue": cny(1984950),
                        },
                        {
                            "plan": PLUS_PRO_REF,
                            "paying": 81,
                            "trialing": 0,
                            "past_due": 1,
                            "monthly_recurring_revenue": cny(268650),
                        },
                    ],
                },
            )
        ),
        # -- partners ---------------------------------------------------------------------------------------
        ("POST", "/v1/partners"): OperationExamples(
            requests={
                "bookshop": Example(
                    "A bookshop chain: half a point per yuan spent there; ten of our points make one of "
                    "theirs, one of theirs makes eight of ours",
                    {"code": "bookshop", "name": "钟书阁", **BOOKSHOP_TERMS},
                )
            },
            responses=_one("The new partner", BOOKSHOP_READ),
        ),
        ("GET", "/v1/partners"): OperationExamples(
            responses=_one("The partners", {"items": [BOOKSHOP_READ], "next_cursor": None})
        ),
        ("GET", "/v1/partners/{code}"): OperationExamples(responses=_one("The bookshop", BOOKSHOP_READ)),
        ("PUT", "/v1/partners/{code}"): OperationExamples(
            requests={
                "suspend": Example(
                    "Suspend it, terms unchanged", {"name": "钟书阁", "status": "suspended", **BOOKSHOP_TERMS}
                )
            },
            responses=_one("Suspended", {**BOOKSHOP_READ, "status": "suspended", "updated_at": NOW}),
        ),
        ("POST", "/v1/members/{member_id}/partner-link-codes"): OperationExamples(
            requests={
                "with_points": Example(
                    "李娜 lets the bookshop see her tier, her paid card and her points",
                    {"partner": "bookshop", "grants": ["basic", "points"]},
                )
            },
            responses=_one(
                "The code to show her",
                {
                    "code": "7KQM-X3RD-9VHT",
                    "partner": "bookshop",
                    "grants": ["basic", "points"],
                    "expires_at": "2026-03-18T06:42:10Z",
                },
            ),
        ),
        ("GET", "/v1/members/{member_id}/partner-links"): OperationExamples(
            responses=_one(
                "Linked to the bookshop",
                {
                    "items": [LI_NA_PROFILE_LINK | {"partner_customer_ref": "ZSG-88231"}],
                    "next_cursor": None,
                },
            )
        ),
        ("POST", "/v1/partner/links"): OperationExamples(
            requests={
                "link": Example(
                    "The bookshop links its customer ZSG-88231 with the code 李娜 gave it",
                    {"code": "7KQM-X3RD-9VHT", "partner_customer_ref": "ZSG-88231"},
                )
            },
            responses=_one("Her joint view", LI_NA_AT_BOOKSHOP),
        ),
        ("GET", "/v1/partner/members/{ref}"): OperationExamples(
            responses=_one("李娜 as the bookshop sees her", LI_NA_AT_BOOKSHOP)
        ),
        ("POST", "/v1/partner/members/{ref}/earn"): OperationExamples(
            requests={
                "receipt": Example(
                    "李娜 bought books for 256 yuan at the bookshop",
                    {"order_ref": "ZSG-R-20260318-0042", "amount": {"amount": 25_600, "currency": "CNY"}},
                )
            },
            responses=_one(
                "128 points at half a point per yuan",
                {
                    "order_ref": "ZSG-R-20260318-0042",
                    "points_earned": 128,
                    "rate": "0.5",
                    "points": {"balance": 12_608, "available": 12_608},
                },
            ),
        ),
        ("POST", "/v1/partner/members/{ref}/refunds"): OperationExamples(
            requests={
                "half": Example(
                    "Half the books came back",
                    {"order_ref": "ZSG-R-20260318-0042", "amount": {"amount": 12_800, "currency": "CNY"}},
                )
            },
            responses=_one(
                "Half the points taken back",
                {
                    "order_ref": "ZSG-R-20260318-0042",
                    "refunded": {"amount": 12_800, "currency": "CNY"},
                    "points_reversed": 64,
                    "points_taken_back": 64,
                    "shortfall": 0,
                    "already_expired": 0,
                    "points": {"balance": 12_544, "available": 12_544},
                },
            ),
        ),
        ("POST", "/v1/members/{member_id}/exchanges"): OperationExamples(
            requests={
                "to_bookshop": Example(
                    "李娜 sends 2,000 points to her bookshop account",
                    {"partner": "bookshop", "points": 2_000},
                )
            },
            responses=_one("Pending until the bookshop confirms", EXCHANGE_OUT),
        ),
        ("GET", "/v1/members/{member_id}/exchanges"): OperationExamples(
            responses=_one("Both ways", {"items": [EXCHANGE_IN, EXCHANGE_OUT], "next_cursor": None})
        ),
        ("POST", "/v1/partner/members/{ref}/exchanges-in"): OperationExamples(
            requests={
                "from_bookshop": Example(
                    "Her 100 bookshop points come over",
                    {"partner_ref": "ZSG-T-55120", "partner_points": 100},
                )
            },
            responses=_one("800 of ours credited", EXCHANGE_IN),
        ),
        ("GET", "/v1/partner/exchanges/{exchange_id}"): OperationExamples(
            responses=_one("Waiting for you", EXCHANGE_OUT)
        ),
        ("POST", "/v1/partner/exchanges/{exchange_id}/confirm"): OperationExamples(
            responses=_one(
                "Confirmed", {**EXCHANGE_OUT, "status": "confirmed", "resolved_at": "2026-03-18T06:33:02Z"}
            )
        ),
        ("POST", "/v1/partner/exchanges/{exchange_id}/fail"): OperationExamples(
            responses=_one(
                "Failed: the points went back to 李娜",
                {**EXCHANGE_OUT, "status": "failed", "resolved_at": "2026-03-18T06:33:02Z"},
            )
        ),
        ("GET", "/v1/partners/{code}/settlements"): OperationExamples(
            responses=_one("March with the bookshop", SETTLEMENT)
        ),
        ("GET", "/v1/partner/settlements"): OperationExamples(responses=_one("Your March", SETTLEMENT)),
        # -- analytics ----------------------------------------------------------------------------------
        ("GET", "/v1/analytics/points"): OperationExamples(
            responses=_one(
                "March by week (`?from=2026-03-01T00:00:00+08:00&to=2026-03-15T00:00:00+08:00&period=week`)",
                {
                    "items": [
                        _points_figures("2026-02-28T16:00:00Z", "2026-03-01T16:00:00Z", 1_240),
                        _points_figures("2026-03-01T16:00:00Z", "2026-03-08T16:00:00Z", 58_310),
                        _points_figures("2026-03-08T16:00:00Z", "2026-03-14T16:00:00Z", 61_970),
                    ],
                    "next_cursor": None,
                },
            )
        ),
        ("GET", "/v1/audit-events"): OperationExamples(
            responses=_one(
                "Who changed the gold tier (`?subject_type=tiers&subject_id=gold&limit=1`)",
                {
                    "items": [
                        {
                            "id": "0195ae70-1a2b-7c3d-8e4f-5a6b7c8d9e0f",
                            "at": NOW,
                            "channel": "rest",
                            "key_id": ADMIN_KEY,
                            "key_prefix": "3f9c2a7d41be",
                            "actor": "back office",
                            "action": "replace_tier",
                            "method": "PUT",
                            "path": "/v1/tiers/gold",
                            "subject_type": "tiers",
                            "subject_id": "gold",
                            "member_id": None,
                            "status": 200,
                            "before": TIER_GOLD_READ,
                            "after": {**TIER_GOLD_READ, "grace_days": 90},
                            "request_id": "6f1d2c3b4a5e4f60a7b8c9d0e1f2a3b4",
                        }
                    ],
                    "next_cursor": encode_cursor(
                        uuid.UUID("0195ae70-1a2b-7c3d-8e4f-5a6b7c8d9e0f"), AUDIT_EVENTS
                    ),
                },
            )
        ),
        ("POST", "/v1/activity-rules"): OperationExamples(
            requests={
                "check_in": Example(
                    "10 points a day for checking in, 50 more on every 7th day in a row",
                    {k: CHECK_IN_RULE[k] for k in ("type", "name", "points", "daily_cap", "streak_bonuses")},
                ),
                "review": Example(
                    "30 points a review, at most 2 a day and 10 a month",
                    {"type": "review", "name": "商品评价", "points": 30, "daily_cap": 2, "period_cap": 10},
                ),
            },
            responses=_one("The check-in rule", CHECK_IN_RULE_READ),
        ),
        ("GET", "/v1/activity-rules"): OperationExamples(
            responses=_one(
                "Check-ins and reviews",
                {"items": [CHECK_IN_RULE_READ, REVIEW_RULE_READ], "next_cursor": None},
            )
        ),
        ("GET", "/v1/activity-rules/{rule_id}"): OperationExamples(
            responses=_one("The check-in rule", CHECK_IN_RULE_READ)
        ),
        ("PATCH", "/v1/activity-rules/{rule_id}"): OperationExamples(
            requests={
                "double": Example("Double check-in points", {"points": 20}),
                "off": Example("Switch check-ins off", {"active": False}),
            },
            responses=_one(
                "Check-ins earn 20",
                {**CHECK_IN_RULE_READ, "points": 20, "updated_at": NOW},
            ),
        ),
        ("POST", "/v1/members/{member_id}/activities"): OperationExamples(
            requests={
                "check_in": Example("李娜 checks in in the app", {"type": "check_in", "ref": "2026-03-18"}),
                "review": Example("A product review", {"type": "review", "ref": "REVIEW-88123"}),
            },
            responses=_one("The seventh check-in in a row", CHECK_IN_DONE),
        ),
        ("POST", "/v1/campaigns"): OperationExamples(
            requests={
                "win_back": Example("A 20-yuan coupon for every lapsed gold member", WIN_BACK),
                "birthday_points": Example("200 points for everyone born in March", BIRTHDAY_POINTS),
            },
            responses=_one("The win-back campaign, waiting for the worker", WIN_BACK_CREATED),
        ),
        ("GET", "/v1/campaigns"): OperationExamples(
            responses=_one(
                "A finished birthday campaign and a running win-back",
                {"items": [BIRTHDAY_POINTS_READ, WIN_BACK_READ], "next_cursor": None},
            )
        ),
        ("GET", "/v1/campaigns/{campaign_id}"): OperationExamples(
            responses=_one("The win-back, 3,000 members in; 212 of them bought since", WIN_BACK_READ)
        ),
        ("POST", "/v1/campaigns/{campaign_id}/cancel"): OperationExamples(
            responses=_one(
                "The win-back stopped after 3,000 members",
                {**WIN_BACK_READ, "status": "cancelled", "finished_at": "2026-03-18T06:31:00Z"},
            )
        ),
        ("GET", "/v1/campaigns/{campaign_id}/members"): OperationExamples(
            responses=_one(
                "Two members the win-back reached; 李娜 came back",
                {
                    "items": [
                        {
                            "member_id": LI_NA,
                            "outcome": "coupon_issued",
                            "reached_at": "2026-03-18T06:30:04Z",
                            "purchased_since": True,
                        },
                        {
                            "member_id": WANG_FANG,
                            "outcome": "coupon_issued",
                            "reached_at": "2026-03-18T06:30:04Z",
                            "purchased_since": False,
                        },
                    ],
                    "next_cursor": encode_cursor(
                        uuid.UUID(WANG_FANG), scope_of("reached", uuid.UUID(CAMPAIGN_WIN_BACK))
                    ),
                },
            )
        ),
        ("GET", "/v1/leaderboard"): OperationExamples(
            responses=_one(
                "This week's top three",
                {
                    "period": "week",
                    "start": "2026-03-15T16:00:00Z",
                    "end": "2026-03-22T16:00:00Z",
                    "items": [
                        {"rank": 1, "member_id": LI_NA, "alias": "••••••5372", "points": 1205},
                        {"rank": 2, "member_id": WANG_FANG, "alias": "••••••0946", "points": 860},
                        {
                            "rank": 2,
                            "member_id": "0195a3c2-6e18-7b24-87f5-3a01d9e2b463",
                            "alias": "••••••2281",
                            "points": 860,
                        },
                    ],
                    # After the last place shown: its points, member id (never its card number), rank, place,
                    # and which board it is.
                    "next_cursor": encode_place(
                        (860, uuid.UUID("0195a3c2-6e18-7b24-87f5-3a01d9e2b463"), 2, 3),
                        board_scope(Period.week, datetime(2026, 3, 15, 16, tzinfo=UTC)),
                    ),
                },
            )
        ),
        ("GET", "/v1/segments"): OperationExamples(
            responses=_one(
                "After last night's run",
                {
                    "counts": SEGMENT_COUNTS,
                    "computed_at": "2026-03-17T18:00:02Z",
                },
            )
        ),
        ("GET", "/v1/members/{member_id}/segment"): OperationExamples(
            responses=_one(
                "李娜 after last night's run",
                {
                    "member_id": LI_NA,
                    "segment": "loyal",
                    "scores": {
                        "recency": 3,
                        "frequency": 5,
                        "monetary": 4,
                        "last_purchase_at": "2026-03-12T09:41:07Z",
                        "purchases": 14,
                        "spend": {"amount": 486_300, "currency": "CNY"},
                    },
                    "computed_at": "2026-03-17T18:00:02Z",
                },
            )
        ),
        ("GET", "/v1/analytics/overview"): OperationExamples(
            responses=_one(
                "The first quarter",
                {
                    "start": "2025-12-31T16:00:00Z",
                    "end": "2026-03-31T16:00:00Z",
                    "points": _points_figures("2025-12-31T16:00:00Z", "2026-03-31T16:00:00Z", 702_400),
                    "breakage": "0.0400",
                    "redemption_rate": "0.6006",
                    "outstanding_points": 1_932_750,
                    "liability": cny(966_375),
                    "members": 18_204,
                    "new_members": 2_315,
                    "members_by_tier": [
                        {"tier": GOLD, "members": 1_120},
                        {"tier": SILVER, "members": 4_381},
                        {"tier": ENTRY_TIER, "members": 12_703},
                    ],
                    "members_by_lifecycle": {
                        "new": 1_204,
                        "active": 9_876,
                        "at_risk": 3_112,
                        "lapsed": 2_530,
                        "churned": 1_482,
                    },
                    "members_by_segment": SEGMENT_COUNTS,
                    "paying_members": 906,
                    "monthly_recurring_revenue": cny(2_709_400),
                    "paying_members_at_start": 871,
                    "churned_members": 38,
                    "churn": "0.0436",
                },
            )
        ),
        ("POST", "/v1/partner/members/{ref}/benefit-uses"): OperationExamples(
            requests={
                "reading_room": Example(
                    "李娜 spent the afternoon in the reading room",
                    {"benefit_id": BENEFIT_BOOKSHOP_READING_ROOM, "use_ref": "ZSG-V-20260318-17"},
                )
            },
            responses=_one(
                "Recorded",
                {
                    "benefit_id": BENEFIT_BOOKSHOP_READING_ROOM,
                    "benefit_name": "钟书阁 reading room",
                    "use_ref": "ZSG-V-20260318-17",
                    "used_at": NOW,
                },
            ),
        ),
        ("GET", "/v1/members/{member_id}/partner-perks"): OperationExamples(
            responses=_one("Her PLUS card's bookshop perk", {"items": [PERK_ISSUED], "next_cursor": None})
        ),
        ("POST", "/v1/partner/perks/{code}/redeem"): OperationExamples(
            responses=_one(
                "Honoured",
                {
                    **PERK_ISSUED,
                    "status": "redeemed",
                    "partner_customer_ref": "ZSG-88231",
                    "redeemed_at": NOW,
                },
            )
        ),
        ("POST", "/v1/partner/perk-codes"): OperationExamples(
            requests={
                "batch": Example(
                    "Three café voucher codes from the bookshop's own system",
                    {"perk": "cafe-voucher", "codes": ["ZSG-CAFE-40117", "ZSG-CAFE-40118", "ZSG-CAFE-40119"]},
                )
            },
            responses=_one(
                "Added; two members waiting for a voucher got theirs",
                {
                    "perk": "cafe-voucher",
                    "available": 1,
                    "owed": 0,
                    "added": 3,
                    "duplicates": 0,
                    "granted": 2,
                },
            ),
        ),
        ("GET", "/v1/partner/perk-codes/{perk}"): OperationExamples(
            responses=_one("Forty codes left", {"perk": "cafe-voucher", "available": 40, "owed": 0})
        ),
        # -- webhooks -------------------------------------------------------------------------------------
        ("POST", "/v1/webhook-endpoints"): OperationExamples(
            requests={
                "crm": Example(
                    "The CRM listens to points and tier changes",
                    {
                        "url": ENDPOINT_READ["url"],
                        "description": ENDPOINT_READ["description"],
                        "event_types": ENDPOINT_READ["event_types"],
                    },
                )
            },
            responses=_one(
                "Registered; the secret is shown this once",
                {**ENDPOINT_READ, "secret": "whsec_rVbVIXde7pflAkLAByW1ak0iXrAR6CgAwhJGvMPjcXU="},
            ),
        ),
        ("GET", "/v1/webhook-endpoints"): OperationExamples(
            responses=_one("One endpoint", {"items": [ENDPOINT_READ], "next_cursor": None})
        ),
        ("GET", "/v1/webhook-endpoints/{endpoint_id}"): OperationExamples(
            responses=_one(
                "Failing since this morning",
                {
                    **ENDPOINT_READ,
                    "failing_since": "2026-03-18T06:32:12Z",
                    "next_probe_at": "2026-03-18T09:41:07Z",  # hours in: probed every 5 minutes
                    "updated_at": "2026-03-18T06:32:12Z",
                },
            )
        ),
        ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): OperationExamples(
            requests={
                "re_enable": Example("Re-enable it after an outage", {"enabled": True}),
                "types": Example(
                    "Listen to coupons too",
                    {"event_types": [*ENDPOINT_READ["event_types"], "coupon.issued", "coupon.used"]},
                ),
            },
            responses=_one("The endpoint after the change", {**ENDPOINT_READ, "updated_at": NOW}),
        ),
        ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): OperationExamples(
            requests={"day": Example("Keep the old secret signing for a day", {"overlap_hours": 24})},
            responses=_one(
                "The new secret; the old one signs too until tomorrow",
                {
                    **ENDPOINT_READ,
                    "previous_secret_until": "2026-03-19T06:32:10Z",
                    "updated_at": NOW,
                    "secret": "whsec_1IWzanY6URNzhg1Ma9AkT7At//WGg8xb4mgJsH7NtEk=",
                },
            ),
        ),
        ("POST", "/v1/webhook-endpoints/{endpoint_id}/replay"): OperationExamples(
            requests={
                "since": Example(
                    "Everything since midnight, Shanghai time", {"since": "2026-03-17T16:00:00Z"}
                )
            },
            responses=_one("42 deliveries due now", {"deliveries": 42}),
        ),
        ("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): OperationExamples(
            responses=_one(
                "One retrying, one delivered",
                {"items": [DELIVERY_RETRYING, DELIVERY_SUCCEEDED], "next_cursor": None},
            )
        ),
        ("GET", "/v1/webhook-deliveries/{delivery_id}"): OperationExamples(
            responses=_one(
                "Three failed attempts so far",
                {
                    **DELIVERY_RETRYING,
                    "attempt_log": [
                        {
                            "attempted_at": "2026-03-18T06:32:12Z",
                            "status_code": None,
                            "error": "ConnectTimeout: timed out",
                            "duration_ms": 10003,
                            "response_body": None,
                        },
                        {
                            "attempted_at": "2026-03-18T06:32:27Z",
                            "status_code": 503,
                            "error": "HTTP 503",
                            "duration_ms": 48,
                            "response_body": "<html><body>503 Service Unavailable</body></html>",
                        },
                        {
                            "attempted_at": "2026-03-18T06:39:27Z",
                            "status_code": 503,
                            "error": "HTTP 503",
                            "duration_ms": 51,
                            "response_body": "<html><body>503 Service Unavailable</body></html>",
                        },
                    ],
                },
            )
        ),
        ("POST", "/v1/webhook-deliveries/{delivery_id}/retry"): OperationExamples(
            # A fresh run of back-off: its earlier attempts stay in the log but no longer count.
            responses=_one("Due now", {**DELIVERY_RETRYING, "attempts": 0, "next_attempt_at": NOW})
        ),
        ("GET", "/v1/event-types"): OperationExamples(
            responses=_one(
                "The first page of two (`?limit=2`)",
                {
                    "items": [
                        {"type": t.type, "description": t.description, "schema": t.schema}
                        for t in event_page.items
                    ],
                    "next_cursor": event_page.next_cursor,
                },
            )
        ),
        ("POST", "/v1/api-keys"): OperationExamples(
            requests={
                "till": Example(
                    "A key for store 7's tills, for a year, from the store's network only",
                    {
                        "name": "Store 7 tills",
                        "scopes": ["pos"],
                        "expires_in_days": 365,
                        "allowed_networks": ["203.0.113.0/24"],
                    },
                ),
                "partner": Example(
                    "A key for a partner brand's systems",
                    {"name": "Bookshop", "scopes": ["partner"], "partner": "bookshop"},
                ),
            },
            responses=_one("Its token, shown this once", ISSUED_TILL_KEY),
        ),
        ("GET", "/v1/api-keys"): OperationExamples(
            responses=_one(
                "The back office's and a till's",
                {"items": [ADMIN_KEY_READ, TILL_KEY_READ], "next_cursor": None},
            )
        ),
        ("GET", "/v1/api-keys/{prefix}"): OperationExamples(responses=_one("Store 7's tills", TILL_KEY_READ)),
        ("POST", "/v1/api-keys/{prefix}/rotate"): OperationExamples(
            requests={"day": Example("The old key keeps working for a day", {"overlap_minutes": 1440})},
            responses=_one(
                "The replacement, shown this once",
                {
                    "key": {
                        **TILL_KEY_READ,
                        "prefix": "7c2e9a4b1d3f",
                        "created_at": NOW,
                        "expires_at": "2027-03-18T06:00:00Z",
                        "last_used_at": None,
                    },
                    "token": "lk_7c2e9a4b1d3f_V2hhdCBhIHNlY3JldCBsb29rcyBsaWtl",
                },
            ),
        ),
    }


SEGMENT_COUNTS: dict[str, int] = {
    "champions": 1_830,
    "loyal": 2_415,
    "potential": 1_377,
    "at_risk": 2_026,
    "hibernating": 3_611,
    "needs_attention": 1_905,
    "lost": 4_518,
}


def _points_figures(start: str, end: str, issued: int) -> dict[str, Any]:
    """A period's points figures, in proportions a real programme shows."""
    taken_back, redeemed, given_back = issued // 50, issued * 3 // 5, issued // 100
    expired, adjusted = issued // 25, 200
    net = issued - taken_back - redeemed + given_back - expired + adjusted
    return {
        "start": start,
        "end": end,
        "group": None,
        "issued": issued,
        "taken_back": taken_back,
        "redeemed": redeemed,
        "given_back": given_back,
        "expired": expired,
        "adjusted": adjusted,
        "transferred": issued // 200,
        "imported": 0,
        "net": net,
    }


def _discount(source: str, benefit: dict[str, Any], amount: int) -> dict[str, Any]:
    [given_by] = [s for s in benefit["sources"] if s["type"] == source][:1]
    return {
        "source": source,
        "source_ref": given_by["ref"],
        "source_name": given_by["name"],
        "benefit_id": benefit["id"],
        "kind": benefit["kind"],
        "name": benefit["name"],
        "amount": cny(amount),
        "applies_to": "goods",
    }


def _member_export() -> dict[str, Any]:
    """李娜's export, each list cut to one item (hers are longer: a real export holds everything)."""
    profile_fields = ("member_number", "status", "phone", "email", "name", "birthday", "channel")
    return {
        "format_version": 1,
        "exported_at": "2026-03-18T12:03:26Z",
        "member_id": LI_NA,
        "profile": {key: MEMBER[key] for key in profile_fields}
        | {"created_at": MEMBER["created_at"], "updated_at": MEMBER["updated_at"]},
        "identifiers": {
            "external_ids": [
                {"system": system, "external_id": external_id}
                for system, external_id in MEMBER["external_ids"].items()
            ],
            "referral_code": MEMBER["referral_code"],
            "referred_by": None,
        },
        "consents": {
            "marketing_consent": True,
            "leaderboard_opt_in": True,
            "partner_link_consents": [
                {
                    "partner": "bookshop",
                    "grants": ["basic", "points"],
                    "given_at": "2026-03-18T06:25:02Z",
                    "expires_at": "2026-03-18T06:35:02Z",
                    "used_at": NOW,
                }
            ],
        },
        "points": {
            "balance": 12335,
            "held": 0,
            "available": 12335,
            "lifetime_earned": 21460,
            "ledger": [{**LEDGER_EARN_ENTRY, "partner_id": None}],
            "lots": [
                {
                    "id": LOT_EARN,
                    "entry_id": ENTRY_EARN,
                    "order_ref": EARN_ORDER,
                    "points": 1603,
                    "remaining": 1253,
                    "created_at": NOW,
                    "expires_at": "2027-03-18T06:32:10Z",
                }
            ],
            "holds": [
                {
                    key: HELD[key]
                    for key in (
                        "id",
                        "order_ref",
                        "points",
                        "captured_points",
                        "status",
                        "created_at",
                        "expires_at",
                        "resolved_at",
                    )
                }
                | {"status": "captured", "captured_points": 800, "resolved_at": CAPTURED_AT}
            ],
        },
        "orders": [
            {
                "order_ref": EARN_ORDER,
                "partner_customer_ref": None,
                "total": cny(45800),
                "refunded": cny(10000),
                "points_earned": 1603,
                "points_redeemed": 0,
                "points_taken_back": 350,
                "points_given_back": 0,
                "points_shortfall": 0,
                "purchased_at": NOW,
                "earned_at": NOW,
                "redeemed_at": None,
                "created_at": NOW,
                "updated_at": REFUNDED_AT,
            }
        ],
        "tier": {
            "tier": GOLD,
            "since": MEMBER_TIER["since"],
            "kept_until": MEMBER_TIER["kept_until"],
            "override_until": None,
            "history": [
                {
                    "id": TIER_CHANGE,
                    "from_tier": SILVER,
                    "to_tier": GOLD,
                    "change": "upgrade",
                    "reason": "qualified",
                    "ladder_version": 4,
                    "qualification": {
                        "gold": {
                            "metric": "spend",
                            "window_start": "2025-12-31T16:00:00Z",
                            "value": 812300,
                            "threshold": 800000,
                        }
                    },
                    "kept_until": "2027-03-01T16:00:00Z",
                    "created_at": "2026-01-24T05:11:37Z",
                }
            ],
        },
        "coupons": [
            {key: value for key, value in COUPON_READ.items() if key not in ("member_id", "source")}
            | {"source_type": "reward", "source_id": REWARD_VOUCHER}
        ],
        "reward_redemptions": [
            {
                "id": REDEMPTION,
                "reward_id": REWARD_VOUCHER,
                "reward_name": REWARD_VOUCHER_READ["name"],
                "points": 100,
                "coupon_id": COUPON,
                "ledger_entry_id": "0195ae61-29ef-7d0c-8b1a-2c3d4e5f6a7b",
                "created_at": "2026-03-18T11:45:09Z",
            }
        ],
        "subscriptions": [
            {
                key: value
                for key, value in SUBSCRIPTION_READ.items()
                if key not in ("member_id", "plan", "cancel_at_period_end")
            }
            | {
                "plan": PLUS_REF["code"],
                "plan_name": PLUS_REF["name"],
                "payments": [
                    {
                        "id": PAYMENT_2026,
                        "period": 1,
                        "status": "succeeded",
                        "payment_ref": SUBSCRIPTION_READ["payment_ref"],
                        "amount": cny(19800),
                        "recorded_at": "2026-01-16T04:22:31Z",
                        "unused_at": None,
                    }
                ],
            }
        ],
        "partners": {
            "links": [
                {
                    "partner": "bookshop",
                    "partner_name": "钟书阁",
                    "partner_customer_ref": "ZSG-88231",
                    "grants": ["basic", "points"],
                    "linked_at": NOW,
                }
            ],
            "exchanges": [EXCHANGE_OUT],
            "benefit_uses": [
                {
                    "id": "0195ad58-3c4d-7e5f-8a6b-7c8d9e0f1a2b",
                    "partner": "bookshop",
                    "benefit_id": BENEFIT_BOOKSHOP_READING_ROOM,
                    "benefit_name": "钟书阁 reading room",
                    "use_ref": "ZSG-USE-20260318-0042",
                    "used_at": "2026-03-18T08:02:17Z",
                }
            ],
            "perks": [{key: value for key, value in PERK_ISSUED.items() if key != "partner_customer_ref"}],
        },
        "engagement": {
            "lifecycle": MEMBER["lifecycle"],
            "rfm": {
                "recency": 5,
                "frequency": 4,
                "monetary": 5,
                "segment": "champions",
                "last_purchase_at": "2026-03-17T11:04:51Z",
                "purchases": 38,
                "spend": cny(920800),
                "computed_at": "2026-03-17T18:00:04Z",
            },
            "referral_rewards": [],
            "activities": [
                {
                    "type": "check_in",
                    "ref": "STORE-7-0316",
                    "day": "2026-03-16",
                    "streak": 3,
                    "points": 10,
                    "bonus": 0,
                    "entry_id": "01958a6e-2c40-7d1e-9b3a-5c8f0e2d4a61",
                    "created_at": "2026-03-16T02:11:40Z",
                }
            ],
            "campaigns": [
                {
                    "campaign_id": "01958a10-7f00-7c3b-8e2d-1a4b6c8d0e2f",
                    "name": "Spring welcome back",
                    "outcome": "points_granted",
                    "reached_at": "2026-03-10T01:00:12Z",
                }
            ],
        },
        "events": [
            {
                "id": EVENT_EARLIER,
                "type": "points.redeemed",
                "occurred_at": "2026-03-18T06:24:51Z",
                "deliveries": [
                    {
                        "id": DELIVERY_DONE,
                        "endpoint_id": ENDPOINT,
                        "status": "succeeded",
                        "attempts": 1,
                        "created_at": "2026-03-18T06:24:51Z",
                        "delivered_at": "2026-03-18T06:24:51Z",
                    }
                ],
            }
        ],
    }


@functools.cache
def examples() -> Mapping[tuple[str, str], OperationExamples]:
    """Every operation's examples, by method and path template: `("POST", "/v1/members/{member_id}/earn")`."""
    return _catalogue()
