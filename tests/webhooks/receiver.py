"""A real webhook receiver on loopback: uvicorn serving a tiny ASGI app that records what it gets and
answers with the statuses a test lines up."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    answers: deque[int] = field(default_factory=deque)  # statuses to answer with, then 204 for the rest

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
        self.received.append(
            Received(headers={k.decode(): v.decode() for k, v in scope["headers"]}, body=body)
        )
        status = self.answers.popleft() if self.answers else 204
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"nope" if status >= 300 else b""})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    port = _free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}/hooks")
    server = uvicorn.Server(
        uvicorn.Config(receiver.app, host="127.0.0.1", port=port, log_level="warning", interface="asgi3")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # uvicorn offers no event to wait on; it starts in a few milliseconds
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
