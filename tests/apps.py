"""A second instance of the service on the test database, with some settings changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from loyalty_api.app import create_app
from loyalty_api.settings import Settings


def client_for(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client of `app` that calls from `address`."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://loyalty.test")


@asynccontextmanager
async def serving(settings: Settings, **changes: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings.model_copy(update=changes))
    async with app.router.lifespan_context(app), client_for(app) as client:
        yield app, client
