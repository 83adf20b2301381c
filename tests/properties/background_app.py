"""The real app on its own event loop in a thread, for synchronous drivers such as hypothesis'
stateful machines (which cannot run inside pytest-asyncio's loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from loyalty_api import crypto
from loyalty_api.app import create_app
from loyalty_api.clock import FrozenClock
from loyalty_api.db.migrations import upgrade
from loyalty_api.settings import Settings
from tests.databases import fresh_database

T = TypeVar("T")


class BackgroundApp:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.clock = FrozenClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # see LedgerMachine.enrol
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.stack = AsyncExitStack()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def __enter__(self) -> BackgroundApp:
        self.thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *_: object) -> None:
        self.call(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    async def _start(self) -> None:
        url = await self.stack.enter_async_context(fresh_database(self.folder, "properties"))
        settings = Settings(database_url=url, encryption_key=crypto.generate_key())
        self.app = create_app(settings, clock=self.clock)
        await self.stack.enter_async_context(self.app.router.lifespan_context(self.app))
        await upgrade(self.app.state.units.database.engine)
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.client = await self.stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://loyalty.test")
        )
