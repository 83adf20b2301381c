"""The yardstick: a minimal FastAPI app on raw asyncpg doing only the three statements an earn must do
(lock and update the balance row, insert the ledger entry, insert the outbox row), with no auth, no rules,
no validation beyond the body model. Run: `uvicorn benchmarks.baseline_app:app` with BASELINE_DSN set."""

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
