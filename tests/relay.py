"""A TCP relay between the service and its database, to lose what travels between them."""

from __future__ import annotations

import asyncio


class Relay:
    """A TCP relay between a test's engine and the database, to lose what travels: `hold` keeps the
    database's replies back until `release`; `dropping` cuts every connection the moment the client next
    sends; `cut` takes the database away (connections end, new ones are refused) until `restore`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.replies = asyncio.Event()
        self.replies.set()
        self.dropping = False
        self.held = 0  # replies the database sent that `hold` keeps back
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port: int = self._server.sockets[0].getsockname()[1]
        return self.port

    def hold(self) -> None:
        self.replies.clear()

    def release(self) -> None:
        self.replies.set()

    async def close(self) -> None:
        self._server.close()
        for writer in self._pipes:
            writer.close()
        self._pipes.clear()

    async def cut(self) -> None:
        await self.close()
        await self._server.wait_closed()

    async def restore(self) -> None:
        await self.start(self.port)

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection(*self.target)
        self._pipes |= {client_out, server_out}
        await asyncio.gather(
            self._pipe(client_in, server_out, (client_out, server_out), sending=True),
            self._pipe(server_in, client_out, (client_out, server_out), sending=False),
        )

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        both: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
        *,
        sending: bool,
    ) -> None:
        try:
            while data := await source.read(65536):
                if sending and self.dropping:
                    break
                if not sending and not self.replies.is_set():
                    self.held += 1
                    await self.replies.wait()
                    self.held -= 1
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        for writer in both:
            writer.close()
