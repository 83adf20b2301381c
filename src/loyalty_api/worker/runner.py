"""The worker: sends webhooks, and runs each scheduled job when it is due, until asked to stop.

`loyalty-api worker` runs it on its own; `loyalty-api serve` on SQLite runs it inside the API process. Each
job runs in a loop of its own, so a long one (a tier review) delays nothing else. A job that fails is logged
and tried again at its next turn; the worker itself keeps going. While the database is out of reach, each
loop says so once, and again once it reaches the database.

Webhook delivery is not a timed job: it keeps one HTTP client (connections to endpoints kept alive) for the
worker's life, runs again at once while it finds work, and otherwise waits for a notification from the
database (PostgreSQL) or its short timer, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Sequence

from loyalty_api.db.outage import database_busy, database_out_of_reach
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.webhooks.delivery import deliver_webhooks, webhook_client
from loyalty_api.webhooks.wakeup import wake_ups
from loyalty_api.worker.schedule import DELIVER_WEBHOOKS, JOBS, Job

logger = logging.getLogger("loyalty_api.worker")

# A job whose run ended on SQLite's write lock held by another process (its wait for it is short:
# UnitsOfWork.for_jobs) runs again this soon, not a whole interval later (an hour, for some).
BUSY_RETRY_SECONDS = 5.0


class Worker:
    def __init__(
        self,
        units: UnitsOfWork,
        jobs: Sequence[Job] = JOBS,
        *,
        tick_seconds: float = 0.25,
        webhooks: bool = True,
    ) -> None:
        # A job waiting for another process's hold on SQLite's write lock gives this process's writer turn
        # up to the requests behind it within their time limit (UnitsOfWork.for_jobs).
        self.units = units.for_jobs()
        self.jobs = jobs
        self.tick_seconds = tick_seconds
        self.webhooks = webhooks
        self._stop = asyncio.Event()
        self._waiting: set[str] = set()  # the loops that found the database out of reach on their last turn
        self._locked_out: set[str] = set()  # the loops whose last run ended on another process's write lock

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        names = [job.name for job in self.jobs] + ([DELIVER_WEBHOOKS.name] if self.webhooks else [])
        logger.info("worker started", extra={"jobs": names})
        loops = [self._repeat(job) for job in self.jobs]
        if self.webhooks:
            loops.append(self._deliver())
        await asyncio.gather(*loops)
        logger.info("worker stopped")

    async def _repeat(self, job: Job) -> None:
        # Intervals are measured on the event loop's monotonic clock: they pace the work, they do not decide
        # what is due (each job asks the injected clock for that).
        while not self._stop.is_set():
            await self._run_once(job.name, job.run(self.units))
            every = job.every.total_seconds()
            if job.name in self._locked_out:
                every = min(every, BUSY_RETRY_SECONDS)
            await self._pause(max(every, self.tick_seconds))

    async def _deliver(self) -> None:
        rng = random.Random()  # noqa: S311 - jitter, not a secret
        async with webhook_client(self.units.settings) as client, wake_ups(self.units.settings) as woken:
            while not self._stop.is_set():
                woken.clear()
                # A run goes on while its sends are out, looking for new work each tick or wake-up.
                sending = deliver_webhooks(
                    self.units,
                    client=client,
                    rng=rng,
                    stop=self._stop,
                    woken=woken,
                    look_every=self.tick_seconds,
                )
                sent = await self._run_once(DELIVER_WEBHOOKS.name, sending)
                if not sent:
                    await self._pause(self.tick_seconds, woken)

    async def _pause(self, seconds: float, woken: asyncio.Event | None = None) -> None:
        waits = [asyncio.ensure_future(self._stop.wait())]
        if woken is not None:
            waits.append(asyncio.ensure_future(woken.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting

    async def _run_once(self, name: str, run: Awaitable[int]) -> int:
        self._locked_out.discard(name)
        try:
            done = await run
        except Exception as exc:
            if database_busy(exc):
                self._locked_out.add(name)
            if not database_out_of_reach(exc):
                logger.exception("job failed", extra={"job": name})
            elif name not in self._waiting:
                # An outage, not a bug: said once as it begins, not at each of the loop's turns (webhook
                # delivery's come four times a second), and with the error's class only.
                self._waiting.add(name)
                logger.warning("job waits for the database", extra={"job": name, "error": type(exc).__name__})
            return 0
        if name in self._waiting:
            self._waiting.discard(name)
            logger.info("job reaches the database again", extra={"job": name})
        if done:
            logger.info("job ran", extra={"job": name, "items": done})
        return done
