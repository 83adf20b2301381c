"""The till's read of a member's account (lookup, quote, earn) can use the partial indexes made for it in
a plan made once for every execution, on both databases: its conditions on holds, lots and orders name the
indexes' predicates as constants, not parameters (db/constant.py). PostgreSQL otherwise plans the statement
anew at every execution (a generic plan could not use them), and SQLite, which plans before it binds, never
uses them."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import Uuid, bindparam, select

from loyalty_api.db.types import UTCDateTime
from loyalty_api.members.models import Member
from loyalty_api.points.models import PointsAccount
from loyalty_api.points.repository import stored_account_columns
from tests.conftest import units_of
from tests.databases import is_postgres

PARTIAL_INDEXES = (
    "ix_holds__member_id_expires_at",
    "ix_point_lots__member_id_expires_at",
    "ix_orders__member_id_shortfall",
)

# A member's account as the till's statements read it.
ACCOUNT_READ = (
    select(*stored_account_columns(Member.id, bindparam("now", type_=UTCDateTime())))
    .select_from(Member)
    .join(PointsAccount, PointsAccount.member_id == Member.id)
    .where(Member.id == bindparam("member", type_=Uuid()))
)


async def _plan(app: FastAPI) -> str:
    """The plan each database makes of ACCOUNT_READ without knowing its parameters' values."""
    async with units_of(app).database.engine.connect() as connection:
        compiled = ACCOUNT_READ.compile(dialect=connection.dialect)
        unknown = tuple(None for _ in compiled.positiontup or ())
        if not is_postgres():
            rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", unknown)
            return "\n".join(str(row[-1]) for row in rows.all())
        # asyncpg prepares it so; the generic plan is the one made for every execution. With sequential
        # scans priced out, the plan takes each index it may use, whatever the tables hold.
        await connection.exec_driver_sql(f"PREPARE account_read AS {compiled}")
        await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        arguments = ", ".join("NULL" for _ in unknown)
        rows = await connection.exec_driver_sql(f"EXPLAIN EXECUTE account_read({arguments})")
        plan = "\n".join(str(row[0]) for row in rows.all())
        await connection.exec_driver_sql("DEALLOCATE account_read")  # a session's, whatever the transaction
        await connection.rollback()
        return plan


@pytest.mark.parametrize("index", PARTIAL_INDEXES)
async def test_the_accounts_read_uses_the_partial_index_in_a_plan_for_every_execution(
    app: FastAPI, index: str
) -> None:
    plan = await _plan(app)
    assert index in plan, plan
