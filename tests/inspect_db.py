"""Read-only looks at the database, for asserting what was (not) written."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Uuid, bindparam, text

from loyalty_api.db.uow import UnitsOfWork


async def rows(app: FastAPI, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Run raw SQL; uuid.UUID parameters are bound as UUIDs (SQLite stores them as hex text)."""
    units: UnitsOfWork = app.state.units
    statement = text(sql).bindparams(
        *[bindparam(name, type_=Uuid()) for name, value in params.items() if isinstance(value, uuid.UUID)]
    )
    async with units.database.engine.connect() as connection:
        result = await connection.execute(statement, params)
        return [dict(row._mapping) for row in result]


async def count(app: FastAPI, table: str) -> int:
    found = await rows(app, f"SELECT COUNT(*) AS n FROM {table}")
    return int(found[0]["n"])


async def table_counts(app: FastAPI, *tables: str) -> dict[str, int]:
    return {table: await count(app, table) for table in tables}


async def events(app: FastAPI, event_type: str) -> list[dict[str, Any]]:
    found = await rows(app, "SELECT * FROM outbox_events WHERE type = :t ORDER BY id", t=event_type)
    for row in found:
        if isinstance(row["payload"], str):  # SQLite hands JSON back as text
            row["payload"] = json.loads(row["payload"])
    return found
