"""/healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from loyalty_api.db.migrations import schema_status
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.ops.metrics import Metrics
from loyalty_api.webhooks.delivery import backlog

logger = logging.getLogger("loyalty_api.database")
router = APIRouter(tags=["operations"])

# How long a scrape waits for the webhook backlog: well within Prometheus's scrape timeout (10 s by default),
# so that the request metrics still reach it while the database does not answer.
BACKLOG_SECONDS = 2.0


class DatabaseWatch:
    """Whether /readyz or /metrics last found the database answering, to log an outage once as it begins and
    once as it ends: probes and scrapes come every few seconds, and a line at each would fill the log with the
    same one. One per app; a process starts counting the database up."""

    def __init__(self) -> None:
        self.reachable = True

    def saw(self, *, reachable: bool, error: str | None) -> None:
        # No await between the read and the write: of two probes that find the change at once, one logs it.
        if reachable == self.reachable:
            return
        self.reachable = reachable
        if reachable:
            logger.info("database reachable again")
        else:
            # The error's class only: what the driver said may name the host.
            logger.warning("database unreachable", extra={"error": error})


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    """Liveness: answers `{"status": "ok"}` while the process runs, and checks nothing else.

    For probes (a container orchestrator, a load balancer): no API key."""
    return {"status": "ok"}


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    database: Literal["ok", "unreachable"] = Field(
        description="`unreachable`: the database refused or failed the read of its migration, or did not "
        "answer it within LOYALTY_READINESS_TIMEOUT_SECONDS (2 s by default)"
    )
    migration: str | None = Field(description="The schema's migration")
    expected_migration: str | None = Field(description="The latest migration this version knows")


@router.get(
    "/readyz",
    summary="The database answers and its schema is at the latest migration",
    response_model=Readiness,
    responses={
        503: {"model": Readiness, "description": "Not ready: the database is unreachable or not migrated"}
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and its schema is at the migration this version expects, or at a newer
    release's (a rolling upgrade migrates first, then replaces the processes: those not replaced yet keep
    their traffic). 200 when ready; 503 with the same body when not, so a load balancer sends no traffic yet.
    A database that does not answer within LOYALTY_READINESS_TIMEOUT_SECONDS (2 s by default) is
    `unreachable`: the probe answers before the prober's own timeout rather than hang.
    `migration` and `expected_migration` name the schema's revision and this version's.

    For probes and load balancers: no API key."""
    units: UnitsOfWork = request.app.state.units
    # Bounded: a database that takes the connection and never answers must make the probe say "not ready"
    # before the prober's own timeout, not hang until then.
    status = await schema_status(units.database.engine, within=units.settings.readiness_timeout_seconds)
    watch: DatabaseWatch = request.app.state.database_watch
    watch.saw(reachable=status.reachable, error=status.error)
    body = {
        "status": "ready" if status.ready else "not_ready",
        "database": "ok" if status.reachable else "unreachable",
        "migration": status.revision,
        "expected_migration": status.expected,
    }
    return JSONResponse(body, status_code=200 if status.ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format: requests by method, route template and status, their
    latency, and the webhook backlog (`loyalty_webhook_deliveries`, `loyalty_webhook_deliveries_retrying`,
    `loyalty_webhook_oldest_pending_seconds`), and whether the database answered the scrape's read of that
    backlog (`loyalty_database_up`: while 0, the backlog's gauges keep their last values).

    For the Prometheus scraper: no API key, so keep it off the public network."""
    registry: Metrics = request.app.state.metrics
    units: UnitsOfWork = request.app.state.units
    watch: DatabaseWatch = request.app.state.database_watch
    limit = asyncio.timeout(BACKLOG_SECONDS)
    try:
        async with limit:
            queue = await backlog(units)
    except (SQLAlchemyError, OSError) as exc:  # TimeoutError is an OSError
        # An outage is when the request metrics matter most: they go out, the backlog's gauges keep the
        # last values read, and loyalty_database_up says they are stale. A read that outlasted the scrape's
        # own limit is no outage to log: a long queue's count can take that while the database answers
        # every probe (/readyz, with a limit of its own, tells a database that does not answer at all).
        if not limit.expired():
            watch.saw(reachable=False, error=type(exc).__name__)
        registry.set_database_reachable(False)
    else:
        watch.saw(reachable=True, error=None)
        registry.set_database_reachable(True)
        for status in ("pending", "succeeded", "failed"):
            registry.webhook_deliveries.labels(status=status).set(queue.by_status.get(status, 0))
        registry.webhook_retrying.set(queue.retrying)
        oldest = queue.oldest_pending_since
        age = 0.0 if oldest is None else max((units.clock.now() - oldest).total_seconds(), 0.0)
        registry.webhook_oldest_pending.set(age)
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)
