"""Key changes made on the host (`loyalty-api init`, `keys create|rotate|revoke`, the demo's keys): each is
an audit entry naming `cli` as who made it, as a change made over the API names the key that made it."""

from __future__ import annotations

from typing import Any

from loyalty_api.audit import service as audit
from loyalty_api.auth.principal import Principal
from loyalty_api.clock import format_instant
from loyalty_api.db.uow import UnitOfWork


def shown(principal: Principal) -> dict[str, Any]:
    """A key as the audit log keeps it: everything but its secret."""
    return {
        "prefix": principal.key_prefix,
        "name": principal.name,
        "scopes": sorted(principal.scopes),
        "partner_id": None if principal.partner_id is None else str(principal.partner_id),
        "rate_limit": principal.rate_limit,
        "expires_at": None if principal.expires_at is None else format_instant(principal.expires_at),
        "allowed_networks": None if principal.networks is None else [str(n) for n in principal.networks],
    }


async def record(uow: UnitOfWork, action: str, prefix: str, after: dict[str, Any]) -> None:
    """The change `action` to the key `prefix`, made on the host, in the unit of work that makes it."""
    change = audit.Change(action=action, subject_type="api_keys", subject_id=prefix, after=after)
    await audit.record(uow, audit.CLI, change)


async def record_made(uow: UnitOfWork, key: Principal) -> None:
    """A key made on the host."""
    await record(uow, "keys_create", key.key_prefix, shown(key))
