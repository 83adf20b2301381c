"""API keys as the back office makes them, over the API with an `admin` key or with `loyalty-api keys` on the
host: a `partner` key is bound to its partner, named by its code (or, on the host, its id). A key made or
rotated over the API is bound by the key that makes it (auth.service.create_key's `maker`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from loyalty_api.auth import service as auth
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.partners.service import create_partner_key

API_KEYS = scope_of("api_keys")  # the key list's cursors carry it


async def create_key(
    uow: UnitOfWork,
    *,
    name: str,
    scopes: Sequence[Scope],
    partner: uuid.UUID | str | None,
    rate_limit: str | None,
    lifetime: timedelta | None,
    allowed_networks: Sequence[str] | None,
    maker: Principal | None,
) -> auth.IssuedKey:
    if partner is None:
        return await auth.create_key(
            uow,
            name=name,
            scopes=scopes,
            rate_limit=rate_limit,
            lifetime=lifetime,
            allowed_networks=allowed_networks,
            maker=maker,
        )
    return await create_partner_key(
        uow,
        partner,
        name=name,
        scopes=scopes,
        rate_limit=rate_limit,
        lifetime=lifetime,
        allowed_networks=allowed_networks,
        maker=maker,
    )


async def list_keys(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[auth.KeySummary]:
    """Every key, revoked and expired ones too, oldest first, a page at a time (a chain may give each till
    a key of its own: thousands)."""
    keys = await auth.list_keys(uow, after=decode_cursor(cursor, API_KEYS), limit=limit + 1)
    return page_of(keys, limit, lambda key: key.principal.key_id, API_KEYS)
