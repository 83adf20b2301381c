"""A real webhook receiver on loopback: uvicorn serving a tiny ASGI app that records what it gets and
answers with the statuses a test lines up."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.apps import on_loopback


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Exchange:
    """One request as the receiver saw it: when it came and was answered (monotonic seconds), and how."""

    started: float
    answered: float
    status: int


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    answers: deque[int] = field(default_factory=deque)  # statuses to answer with, then 204 for the rest
    bodies: deque[bytes] = field(default_factory=deque)  # response bodies to answer with, then the usual
    holds: deque[asyncio.Event] = field(default_factory=deque)  # the next requests wait for these to be set
    on_request: Callable[[], Awaitable[None]] | None = None  # runs before each answer
    drip_chunks: int = 0  # answer the body one byte at a time, this many bytes 0.1 s apart
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # sent with every answer
    # Down: every request is answered 503 after `down_pause` seconds (long enough to see two overlap).
    down: bool = False
    down_pause: float = 0.05
    exchanges: list[Exchange] = field(default_factory=list)
    # Requests to these paths hang until `let_go` is set (a receiver hanging beside others on its host).
    hanging_paths: set[str] = field(default_factory=set)
    let_go: asyncio.Event = field(default_factory=asyncio.Event)

    def fail_next(self, *statuses: int) -> None:
        self.answers.extend(statuses)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        started = time.monotonic()
        if self.down:
            await asyncio.sleep(self.down_pause)
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"down"})
            self.exchanges.append(Exchange(started, time.monotonic(), 503))
            return
        self.received.append(
            Received(headers={k.decode(): v.decode() for k, v in scope["headers"]}, body=body)
        )
        if scope["path"] in self.hanging_paths:
            await self.let_go.wait()
        hold = self.holds.popleft() if self.holds else None
        if self.on_request is not None:
            await self.on_request()
        if hold is not None:
            await hold.wait()
        status = self.answers.popleft() if self.answers else 204
        body = self.bodies.popleft() if self.bodies else (b"nope" if status >= 300 else b"")
        headers = [(b"content-type", b"text/plain"), *self.extra_headers]
        if self.drip_chunks:
            headers.append((b"content-length", str(self.drip_chunks + len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for _ in range(self.drip_chunks):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": body})
        self.exchanges.append(Exchange(started, time.monotonic(), status))


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(url="")
    async with on_loopback(receiver.app) as base_url:
        receiver.url = f"{base_url}/hooks"
        yield receiver
