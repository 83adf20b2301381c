"""The jobs the worker runs, and how often. Each job is idempotent and safe to run from several processes at
once. Webhook delivery runs beside them, paced by wake-ups as well as time (see worker.runner)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from loyalty_api.audit.service import purge_audit_events
from loyalty_api.benefits.birthdays import issue_birthday_gifts
from loyalty_api.campaigns.service import run_campaigns
from loyalty_api.coalition.exchanges import expire_exchanges
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.idempotency.service import purge_expired
from loyalty_api.members.jobs import assess_lifecycles
from loyalty_api.partners.service import purge_link_codes
from loyalty_api.points.expiry import expire_points
from loyalty_api.points.holds import expire_holds
from loyalty_api.points.referrals import credit_referrers
from loyalty_api.points.reminders import remind_expiring_points
from loyalty_api.segments.service import compute_segments
from loyalty_api.subscriptions.jobs import run_subscriptions
from loyalty_api.tiers.membership import review_tiers
from loyalty_api.tiers.redating import redate_window_ends
from loyalty_api.tiers.reminders import remind_tier_reviews
from loyalty_api.webhooks.delivery import deliver_webhooks
from loyalty_api.webhooks.retention import purge_deliveries, purge_events


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[UnitsOfWork], Awaitable[int]]


async def _release_expired_holds(units: UnitsOfWork) -> int:
    return await expire_holds(units)


async def _expire_points(units: UnitsOfWork) -> int:
    return (await expire_points(units)).points


async def _deliver_webhooks(units: UnitsOfWork) -> int:
    return await deliver_webhooks(units)


DELIVER_WEBHOOKS = Job("deliver-webhooks", timedelta(milliseconds=250), _deliver_webhooks)

JOBS: tuple[Job, ...] = (
    Job("release-holds", timedelta(seconds=15), _release_expired_holds),
    Job("expire-partner-exchanges", timedelta(seconds=15), expire_exchanges),
    Job("expire-points", timedelta(minutes=1), _expire_points),
    Job("expiry-reminders", timedelta(hours=1), remind_expiring_points),
    Job("referral-rewards", timedelta(seconds=15), credit_referrers),
    Job("review-tiers", timedelta(minutes=10), review_tiers),
    Job("redate-tier-windows", timedelta(seconds=5), redate_window_ends),
    Job("tier-reminders", timedelta(hours=1), remind_tier_reviews),
    Job("member-lifecycle", timedelta(minutes=5), assess_lifecycles),
    Job("rfm-segments", timedelta(hours=6), compute_segments),
    Job("subscriptions", timedelta(minutes=1), run_subscriptions),
    Job("birthdays", timedelta(hours=1), issue_birthday_gifts),
    Job("run-campaigns", timedelta(seconds=5), run_campaigns),
    Job("purge-idempotency", timedelta(hours=1), purge_expired),
    Job("purge-webhook-deliveries", timedelta(hours=1), purge_deliveries),
    Job("purge-events", timedelta(hours=1), purge_events),
    Job("purge-audit-events", timedelta(hours=1), purge_audit_events),
    Job("purge-partner-link-codes", timedelta(hours=1), purge_link_codes),
)

# Everything `loyalty-api jobs NAME` can run once.
ALL_JOBS: tuple[Job, ...] = (DELIVER_WEBHOOKS, *JOBS)
