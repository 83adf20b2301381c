"""The yardstick: a minimal FastAPI app on raw asyncpg, with no auth, no rules, no validation beyond the body
models. Run: `uvicorn benchmarks.baseline_app:app` with BASELINE_DSN set.

- `POST /earn/{member_id}`: only the three statements an earn must do (lock and update the balance row,
  insert the ledger entry, insert the outbox row).
- `POST /quote`: only the reads a checkout quote needs (the member and their tier, the tier's benefits, the
  named coupons, the points account, the programme) in one read-only transaction, and a trivial sum.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from fastapi import FastAPI
from pydantic import BaseModel


class Money(BaseModel):
    amount: int
    currency: str


class EarnBody(BaseModel):
    order_ref: str
    amount: Money


class Item(BaseModel):
    sku: str
    category: str | None = None
    quantity: int
    unit_price: Money


class Cart(BaseModel):
    subtotal: Money
    shipping: Money | None = None
    items: list[Item] = []


class QuoteBody(BaseModel):
    member_id: uuid.UUID
    cart: Cart
    coupon_codes: list[str] = []
    points_to_use: int | None = None
    channel: str | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BASELINE_DSN"], min_size=10, max_size=20)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/earn/{member_id}")
async def earn(member_id: uuid.UUID, body: EarnBody) -> dict[str, object]:
    points = body.amount.amount // 100
    now = datetime.now(UTC)
    async with app.state.pool.acquire() as connection, connection.transaction():
        balance = await connection.fetchval(
            "UPDATE points_accounts SET balance = balance + $1, lifetime_earned = lifetime_earned + $1, "
            "updated_at = $2 WHERE member_id = $3 RETURNING balance",
            points,
            now,
            member_id,
        )
        await connection.execute(
            "INSERT INTO ledger_entries (id, member_id, type, amount, balance_after, held_change, "
            "held_after, order_ref, details, created_at) VALUES ($1, $2, 'earn', $3, $4, 0, 0, $5, '{}', $6)",
            uuid.uuid4(),
            member_id,
            points,
            balance,
            body.order_ref,
            now,
        )
        await connection.execute(
            "INSERT INTO outbox_events (id, type, occurred_at, aggregate_type, aggregate_id, member_id, "
            "payload) VALUES ($1, 'points.earned', $2, 'member', $3, $4, $5)",
            uuid.uuid4(),
            now,
            str(member_id),
            member_id,
            json.dumps({"member_id": str(member_id), "points": points, "order_ref": body.order_ref}),
        )
    return {"order_ref": body.order_ref, "points_earned": points, "balance": balance}


@app.post("/quote")
async def quote(body: QuoteBody) -> dict[str, object]:
    async with app.state.pool.acquire() as connection, connection.transaction(readonly=True):
        member = await connection.fetchrow(
            "SELECT m.status, m.tier_id, t.code, t.name FROM members m "
            "LEFT JOIN tiers t ON t.id = m.tier_id WHERE m.id = $1",
            body.member_id,
        )
        benefits = await connection.fetch(
            "SELECT b.id, b.name, b.kind, b.properties FROM benefit_grants g "
            "JOIN benefits b ON b.id = g.benefit_id "
            "WHERE g.source_type = 'tier' AND g.source_id = $1 AND b.active",
            member["tier_id"],
        )
        coupons = await connection.fetch(
            "SELECT code, name, kind, properties, status, valid_from, valid_until FROM coupons "
            "WHERE member_id = $1 AND code = ANY($2::text[])",
            body.member_id,
            body.coupon_codes,
        )
        available = await connection.fetchval(
            "SELECT balance - held FROM points_accounts WHERE member_id = $1", body.member_id
        )
        program = await connection.fetchrow(
            "SELECT currency, point_value_minor, min_redeem_points, max_redeem_share "
            "FROM programs WHERE id = 1"
        )
    goods = sum(item.quantity * item.unit_price.amount for item in body.cart.items)
    return {
        "member_id": str(body.member_id),
        "tier": member["code"],
        "benefits": len(benefits),
        "coupons": len(coupons),
        "points": available,
        "currency": program["currency"],
        "total": goods + (0 if body.cart.shipping is None else body.cart.shipping.amount),
    }


# The lookup's columns: the member's own (personal data still encrypted), the tier's, the balance, the
# external ids; what `GET /v1/members/lookup` reads, without auth, decryption or the response model.
_LOOKUP = (
    "SELECT m.id, m.member_number, m.status, m.phone_encrypted, m.email_encrypted, m.name_encrypted, "
    "m.birthday_encrypted, m.channel, m.marketing_consent, m.referral_code, m.referred_by_id, m.created_at, "
    "m.updated_at, t.code, t.name, t.rank, a.balance FROM members m "
    "LEFT JOIN tiers t ON t.id = m.tier_id LEFT JOIN points_accounts a ON a.member_id = m.id "
    "WHERE m.member_number = $1"
)


@app.get("/lookup")
async def lookup(member_number: str) -> dict[str, object]:
    async with app.state.pool.acquire() as connection, connection.transaction(readonly=True):
        row = await connection.fetchrow(_LOOKUP, member_number)
        external = await connection.fetch(
            "SELECT system, external_id FROM member_external_ids WHERE member_id = $1", row["id"]
        )
    return {
        "id": str(row["id"]),
        "member_number": row["member_number"],
        "status": row["status"],
        "tier": {"code": row["code"], "name": row["name"], "rank": row["rank"]},
        "points": row["balance"],
        "external_ids": {r["system"]: r["external_id"] for r in external},
    }
