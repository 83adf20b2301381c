"""Events about members go out for those not erased: a batch whose members' statuses the caller did not read
is judged by one read of them all, not one per event."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.members.events import MemberLifecycleChanged
from loyalty_api.members.models import MemberStatus
from loyalty_api.members.service import emit_unless_erased
from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import events
from tests.points.helpers import set_program


@contextmanager
def reads_of_members(units: UnitsOfWork) -> Iterator[list[str]]:
    """The SELECTs on the members table that go through SQLAlchemy while the block runs."""
    ran: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM members" in statement:
            ran.append(statement)

    engine = units.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield ran
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)


class TestEmitUnlessErased:
    async def test_a_batch_skips_erased_members_and_reads_their_statuses_once(
        self, app: FastAPI, units: UnitsOfWork, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        kept, gone, other = [uuid.UUID((await enrol(client, pos_key))["id"]) for _ in range(3)]
        erased = await client.post(f"/v1/members/{gone}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text
        known_before = len(await events(app, "member.lifecycle_changed"))

        async with units.begin() as uow:
            now = uow.clock.now()

            def moved(member_id: uuid.UUID, stage: str) -> MemberLifecycleChanged:
                return MemberLifecycleChanged(member_id=member_id, previous="new", stage=stage, at=now)

            with reads_of_members(units) as reads:
                await emit_unless_erased(
                    uow,
                    [
                        (moved(kept, "active"), kept, None),
                        (moved(gone, "active"), gone, None),
                        (moved(other, "active"), other, None),
                        (moved(gone, "at_risk"), gone, None),
                        (moved(other, "at_risk"), other, MemberStatus.active),  # read by the caller
                    ],
                )

        written = (await events(app, "member.lifecycle_changed"))[known_before:]
        assert sorted((row["payload"]["member_id"], row["payload"]["stage"]) for row in written) == sorted(
            [(str(kept), "active"), (str(other), "active"), (str(other), "at_risk")]
        )
        assert len(reads) == 1, reads
