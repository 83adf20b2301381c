"""Fixtures shared by the coupon tests."""

from __future__ import annotations

import httpx
import pytest

from tests.builders import enrol


@pytest.fixture
async def member_id(client: httpx.AsyncClient, pos_key: str) -> str:
    """A newly enrolled member's id."""
    return str((await enrol(client, pos_key))["id"])
