"""API keys: create, list, revoke, and authenticate a bearer token."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from loyalty_api.auth import keys
from loyalty_api.auth.errors import ApiKeyNotFound, InvalidApiKey, PartnerRequired
from loyalty_api.auth.models import ApiKey
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.auth.repository import ApiKeyRepository
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.settings import check_rate

_CACHE_PREFIX = "api_key:"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: `token` is shown once and never stored."""

    principal: Principal
    token: str


def _principal(row: ApiKey) -> Principal:
    return Principal(
        key_id=row.id,
        key_prefix=row.prefix,
        name=row.name,
        scopes=frozenset(Scope(s) for s in row.scopes),
        partner_id=row.partner_id,
        rate_limit=row.rate_limit,
    )


async def create_key(
    uow: UnitOfWork,
    *,
    name: str,
    scopes: Sequence[Scope],
    partner_id: uuid.UUID | None = None,
    rate_limit: str | None = None,
) -> IssuedKey:
    """A new key. A `partner` key is bound to its partner (`partner_id`), which the caller has found to
    exist: partners.service.create_partner_key."""
    if (Scope.partner in scopes) != (partner_id is not None):
        raise PartnerRequired()
    if rate_limit is not None:
        try:
            check_rate(rate_limit)
        except ValueError as exc:
            raise InvalidField("rate_limit", str(exc)) from None
    parts = keys.generate()
    row = ApiKey(
        prefix=parts.prefix,
        secret_hash=keys.hash_secret(parts.secret),
        name=name,
        scopes=sorted({str(s) for s in scopes}),
        partner_id=partner_id,
        rate_limit=rate_limit,
        created_at=uow.clock.now(),
        revoked_at=None,
    )
    await ApiKeyRepository(uow.session).insert_key(row)
    return IssuedKey(principal=_principal(row), token=parts.token)


@dataclass(frozen=True, slots=True)
class KeySummary:
    principal: Principal
    revoked: bool


async def list_keys(uow: UnitOfWork) -> list[KeySummary]:
    rows = await ApiKeyRepository(uow.session).list_keys()
    return [KeySummary(principal=_principal(r), revoked=r.revoked_at is not None) for r in rows]


async def revoke_key(uow: UnitOfWork, *, prefix: str) -> None:
    if not await ApiKeyRepository(uow.session).revoke(prefix, uow.clock.now()):
        raise ApiKeyNotFound(f"no active API key with prefix {prefix!r}")
    uow.after_commit(lambda: uow.cache.forget(_cache_key(prefix)))


@dataclass(frozen=True, slots=True)
class _RememberedKey:
    """What a process keeps of a key's row: enough to check a secret without the database."""

    secret_hash: str
    principal: Principal | None  # None once revoked


def _cache_key(prefix: str) -> str:
    return f"{_CACHE_PREFIX}{prefix}"


async def authenticate(units: UnitsOfWork, parts: keys.KeyParts) -> Principal:
    """The key's principal. A key's row is remembered for settings.cache_seconds, so revoking a key takes
    effect in other processes within that time (at once in the process that revoked it). Only a key not in
    memory opens a unit of work of its own."""
    cache_key = _cache_key(parts.prefix)
    remembered: _RememberedKey | None = units.cache.get(cache_key)
    if remembered is None:
        async with units.read() as uow:
            row = await ApiKeyRepository(uow.session).get_by_prefix(parts.prefix)
            if row is None:
                raise InvalidApiKey()
            principal = None if row.revoked_at is not None else _principal(row)
            remembered = _RememberedKey(secret_hash=row.secret_hash, principal=principal)
        units.cache.put(cache_key, remembered)
    if remembered.principal is None or not keys.secret_matches(parts.secret, remembered.secret_hash):
        raise InvalidApiKey()
    return remembered.principal
