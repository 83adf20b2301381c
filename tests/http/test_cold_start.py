"""A fresh process answers its first requests as it answers later ones: what it builds once is built as it
starts, not during a caller's request under that request's time limit."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import httpx

from loyalty_api.settings import Settings
from tests.apps import serving
from tests.conftest import bearer


async def _fastapi_calls(send: Callable[[], Awaitable[httpx.Response]]) -> tuple[int, httpx.Response]:
    """How many FastAPI functions the request called (counted calls, not time: the same on any machine)."""
    calls = 0

    def count(frame: FrameType, event: str, _: Any) -> None:
        nonlocal calls
        if event == "call" and "/fastapi/" in frame.f_code.co_filename:
            calls += 1

    sys.setprofile(count)
    try:
        response = await send()
    finally:
        sys.setprofile(None)
    return calls, response


async def test_the_first_request_to_the_last_route_builds_no_route(settings: Settings, pos_key: str) -> None:
    # GraphQL's route is matched after the others: FastAPI built every route before it during the first
    # request that reached it (27,000 FastAPI calls against the next one's 1,000: over a second on a loaded
    # machine).
    async with serving(settings) as (_, client):

        async def ask() -> httpx.Response:
            return await client.post("/graphql", json={"query": "{ __typename }"}, headers=bearer(pos_key))

        first, answered = await _fastapi_calls(ask)
        second, again = await _fastapi_calls(ask)
    assert answered.status_code == again.status_code == 200, answered.text
    assert answered.json() == {"data": {"__typename": "Query"}}
    assert first <= second * 1.5, (first, second)
