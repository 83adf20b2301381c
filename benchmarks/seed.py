"""Bulk-load a benchmark database: members with encrypted personal data, points accounts with an opening
balance (ledger entry and lot behind it, so the ledger invariant holds), and an API key.

Seeding goes around the services on purpose: a hundred thousand enrolments one by one would take longer
than the benchmark itself. The rows are the ones the services would write.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import SystemClock
from loyalty_api.crypto import Vault
from loyalty_api.db.engine import Database
from loyalty_api.db.ids import new_id
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.demo.seed import DEMO_PROGRAM
from loyalty_api.members.member_number import luhn_check_digit
from loyalty_api.members.models import Member
from loyalty_api.points.models import LedgerEntry, PointLot, PointsAccount
from loyalty_api.program.service import put_program
from loyalty_api.settings import Settings

OPENING_POINTS = 1_000_000
CHUNK = 5_000


def member_number(n: int) -> str:
    payload = f"{100_000_000 + n:09d}"
    return payload + luhn_check_digit(payload)


async def seed(engine: AsyncEngine, settings: Settings, members: int) -> tuple[str, list[tuple[str, str]]]:
    """Returns an API key with every scope and (member id, member number) pairs."""
    assert settings.encryption_key is not None
    vault = Vault(settings.encryption_key.get_secret_value())
    units = UnitsOfWork(Database(engine), SystemClock(), vault, settings)
    async with units.begin() as uow:
        await put_program(uow, DEMO_PROGRAM)
        key = await auth_service.create_key(
            uow, name="benchmark", scopes=[Scope.admin, Scope.pos, Scope.ecommerce]
        )
    now = datetime.now(UTC)
    rng = random.Random(7)
    pairs: list[tuple[str, str]] = []
    for start in range(0, members, CHUNK):
        member_rows, accounts, entries, lots = [], [], [], []
        for n in range(start, min(start + CHUNK, members)):
            member_id, entry_id = new_id(), new_id()
            phone = f"+86139{n:08d}"
            number = member_number(n)
            pairs.append((str(member_id), number))
            member_rows.append(
                {
                    "id": member_id,
                    "member_number": number,
                    "status": "active",
                    "tier_id": None,
                    "phone_encrypted": vault.encrypt(phone),
                    "phone_hash": vault.blind_index("phone", phone),
                    "email_encrypted": None,
                    "email_hash": None,
                    "name_encrypted": vault.encrypt(f"会员{n}"),
                    "birthday_encrypted": vault.encrypt(
                        f"19{rng.randrange(50, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}"
                    ),
                    "channel": "store",
                    "marketing_consent": False,
                    "referral_code": f"B{n:07d}",
                    "referred_by_id": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            accounts.append(
                {
                    "member_id": member_id,
                    "balance": OPENING_POINTS,
                    "held": 0,
                    "lifetime_earned": 0,
                    "updated_at": now,
                }
            )
            entries.append(
                {
                    "id": entry_id,
                    "member_id": member_id,
                    "type": "adjust",
                    "amount": OPENING_POINTS,
                    "balance_after": OPENING_POINTS,
                    "held_change": 0,
                    "held_after": 0,
                    "order_ref": None,
                    "hold_id": None,
                    "details": {"reason": "benchmark opening balance"},
                    "actor_key_id": None,
                    "created_at": now,
                }
            )
            lots.append(
                {
                    "id": new_id(),
                    "member_id": member_id,
                    "entry_id": entry_id,
                    "order_ref": None,
                    "points": OPENING_POINTS,
                    "remaining": OPENING_POINTS,
                    "created_at": now,
                    "expires_at": None,
                }
            )
        async with engine.begin() as connection:
            await connection.execute(insert(Member), member_rows)
            await connection.execute(insert(PointsAccount), accounts)
            await connection.execute(insert(LedgerEntry), entries)
            await connection.execute(insert(PointLot), lots)
    return key.token, pairs


__all__ = ["seed", "uuid"]
