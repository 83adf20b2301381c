"""A request sent while a close of its member is under way, for tests of what waits for the close."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable

import httpx
from fastapi import FastAPI
from sqlalchemy import Uuid, bindparam, text

from tests.conftest import units_of

_CLOSE = text("UPDATE members SET status = 'closed' WHERE id = :id").bindparams(bindparam("id", type_=Uuid()))


async def during_a_close(app: FastAPI, member_id: str, call: Awaitable[httpx.Response]) -> httpx.Response:
    """What `call` answers when it is sent while a close of the member is under way (the member's row
    changed in a transaction not yet committed), the close committing half a second later."""
    async with units_of(app).database.engine.connect() as closing:
        await closing.execute(_CLOSE, {"id": uuid.UUID(member_id)})
        answer = asyncio.ensure_future(call)
        await asyncio.sleep(0.5)  # the call reaches the member's row and waits behind the close
        await closing.commit()
    return await answer
