"""The ledger invariant, checked straight on the tables after any scenario."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from tests.inspect_db import rows


async def assert_ledger_invariant(app: FastAPI, member_id: str | None = None) -> None:
    """balance == sum(ledger amounts) == sum(live lot remainders); held == sum(held changes) ≤ balance;
    nothing negative — for one member or for every member."""
    where = "WHERE a.member_id = :m" if member_id else ""
    params = {"m": uuid.UUID(member_id)} if member_id else {}
    found = await rows(
        app,
        f"""
        SELECT a.member_id, a.balance, a.held,
               (SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
                    WHERE e.member_id = a.member_id) AS ledger,
               (SELECT COALESCE(SUM(e.held_change), 0) FROM ledger_entries e
                    WHERE e.member_id = a.member_id) AS ledger_held,
               (SELECT COALESCE(SUM(l.remaining), 0) FROM point_lots l
                    WHERE l.member_id = a.member_id) AS lots,
               (SELECT COUNT(*) FROM point_lots l WHERE l.member_id = a.member_id
                    AND (l.remaining < 0 OR l.remaining > l.points)) AS bad_lots,
               (SELECT COALESCE(SUM(h.points), 0) FROM holds h WHERE h.member_id = a.member_id
                    AND h.status = 'active') AS active_holds
        FROM points_accounts a {where}
        """,
        **params,
    )
    assert found, "no points account found"
    for account in found:
        context = dict(account)
        assert account["balance"] == account["ledger"] == account["lots"], context
        assert account["held"] == account["ledger_held"] == account["active_holds"], context
        assert 0 <= account["held"] <= account["balance"], context
        assert account["bad_lots"] == 0, context
