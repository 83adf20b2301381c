"""Imports every model so that Base.metadata knows all tables (for Alembic and the schema tests)."""

from loyalty_api.activities import models as activity_models
from loyalty_api.audit import models as audit_models
from loyalty_api.auth import models as auth_models
from loyalty_api.campaigns import models as campaign_models
from loyalty_api.coupons import models as coupon_models
from loyalty_api.db.base import Base
from loyalty_api.earning import models as earning_models
from loyalty_api.grants import models as grant_models
from loyalty_api.idempotency import models as idempotency_models
from loyalty_api.job_marks import models as job_mark_models
from loyalty_api.members import models as member_models
from loyalty_api.orders import models as order_models
from loyalty_api.outbox import models as outbox_models
from loyalty_api.partners import models as partner_models
from loyalty_api.plan_catalogue import models as plan_models
from loyalty_api.points import models as points_models
from loyalty_api.program import models as program_models
from loyalty_api.rewards import models as reward_models
from loyalty_api.subscriptions import models as subscription_models
from loyalty_api.tiers import models as tier_models
from loyalty_api.webhooks import models as webhook_models

__all__ = [
    "Base",
    "activity_models",
    "audit_models",
    "auth_models",
    "campaign_models",
    "coupon_models",
    "earning_models",
    "grant_models",
    "idempotency_models",
    "job_mark_models",
    "member_models",
    "order_models",
    "outbox_models",
    "partner_models",
    "plan_models",
    "points_models",
    "program_models",
    "reward_models",
    "subscription_models",
    "tier_models",
    "webhook_models",
]

metadata = Base.metadata
