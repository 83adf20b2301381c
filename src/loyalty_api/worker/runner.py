"""The worker: runs each scheduled job when it is due, until asked to stop.

`loyalty-api worker` runs it on its own; `loyalty-api serve` on SQLite runs it inside the API process. A job
that fails is logged and tried again at its next turn; the worker itself keeps going.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.worker.schedule import JOBS, Job

logger = logging.getLogger("loyalty_api.worker")


class Worker:
    def __init__(self, units: UnitsOfWork, jobs: Sequence[Job] = JOBS, *, tick_seconds: float = 0.25) -> None:
        self.units = units
        self.jobs = jobs
        self.tick_seconds = tick_seconds
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        # Intervals are measured on the monotonic clock: they pace the work, they do not decide what is due
        # (each job asks the injected clock for that).
        next_run = dict.fromkeys((job.name for job in self.jobs), 0.0)
        logger.info("worker started", extra={"jobs": [job.name for job in self.jobs]})
        while not self._stop.is_set():
            for job in self.jobs:
                if self._stop.is_set():
                    break
                if time.monotonic() >= next_run[job.name]:
                    await self._run_once(job)
                    next_run[job.name] = time.monotonic() + job.every.total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.tick_seconds)
        logger.info("worker stopped")

    async def _run_once(self, job: Job) -> None:
        try:
            done = await job.run(self.units)
        except Exception:
            logger.exception("job failed", extra={"job": job.name})
            return
        if done:
            logger.info("job ran", extra={"job": job.name, "items": done})
