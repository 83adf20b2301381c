"""API keys: create, rotate, list, revoke, and authenticate a bearer token."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from loyalty_api.auth import keys
from loyalty_api.auth.errors import (
    AddressNotAllowed,
    ApiKeyNotFound,
    InvalidApiKey,
    KeyBeyondCaller,
    KeyRotatedAlready,
    PartnerKeyNotAlone,
    PartnerRequired,
)
from loyalty_api.auth.models import ApiKey
from loyalty_api.auth.networks import Network, contains, parse_network, parse_networks, shared, within
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.auth.rates import default_rate, within_rate
from loyalty_api.auth.repository import ApiKeyRepository
from loyalty_api.clock import format_instant
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.settings import Settings, check_rate

logger = logging.getLogger("loyalty_api.auth")

_CACHE_PREFIX = "api_key:"
# A key's last-used time is written at most this often per process.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: `token` is shown once and never stored with the key."""

    principal: Principal
    token: str
    created_at: datetime


def _principal(row: ApiKey) -> Principal:
    scopes = frozenset(Scope(s) for s in row.scopes)
    if Scope.partner in scopes:
        # A partner key reaches its partner's members only, whatever else it was made with: keys made before
        # a partner key was refused other scopes (PartnerKeyNotAlone) may carry some.
        scopes = frozenset({Scope.partner})
    return Principal(
        key_id=row.id,
        key_prefix=row.prefix,
        key_lineage=row.lineage,
        name=row.name,
        scopes=scopes,
        partner_id=row.partner_id,
        rate_limit=row.rate_limit,
        expires_at=row.expires_at,
        networks=None if row.allowed_networks is None else parse_networks(row.allowed_networks),
    )


def _expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and now >= expires_at


_NOT_A_NETWORK = (
    "must be a network in CIDR form, such as 10.0.0.0/8 or 2001:db8::/32 (an address alone is its own), with "
    "no address bits set past its prefix length"
)


def _stored_networks(texts: Sequence[str] | None) -> list[str] | None:
    """The networks as the key keeps them: each in its normal form, once. None (any address) stays None."""
    if texts is None:
        return None
    parsed = []
    for index, text in enumerate(texts):
        try:
            parsed.append(parse_network(text))
        except ValueError:
            # Named by its place, not quoted: input values are never echoed back.
            raise InvalidField(f"allowed_networks.{index}", _NOT_A_NETWORK) from None
    if not parsed:
        raise InvalidField("allowed_networks", "name at least one network, or none to allow any address")
    return list(dict.fromkeys(str(network) for network in parsed))


async def create_key(
    uow: UnitOfWork,
    *,
    name: str,
    scopes: Sequence[Scope],
    partner_id: uuid.UUID | None = None,
    rate_limit: str | None = None,
    lifetime: timedelta | None = None,
    allowed_networks: Sequence[str] | None = None,
    lineage: str | None = None,
    maker: Principal | None = None,
) -> IssuedKey:
    """A new key. A `partner` key is bound to its partner (`partner_id`), which the caller has found to
    exist: partners.service.create_partner_key. It expires `lifetime` from now (None: never), and may be used
    only from `allowed_networks` (CIDR; None: from any address). `lineage` is the line of the key it
    replaces (rotate_key); a key made anew starts a line of its own. `maker` is the API key making it (None:
    the host), whose own expiry, networks and rate bound the new key's (_bounded_by)."""
    if (Scope.partner in scopes) != (partner_id is not None):
        raise PartnerRequired()
    if Scope.partner in scopes and set(scopes) != {Scope.partner}:
        raise PartnerKeyNotAlone()
    if rate_limit is not None and lineage is None:  # a rotation carries its key's rate as it was stored
        try:
            check_rate(rate_limit)
        except ValueError as exc:
            raise InvalidField("rate_limit", str(exc)) from None
    if lifetime is not None and lifetime <= timedelta(0):
        raise InvalidField("lifetime", "must be longer than 0")
    networks = _stored_networks(allowed_networks)
    now = uow.clock.now()
    expires_at = None if lifetime is None else now + lifetime
    if maker is not None:
        expires_at, networks = _bounded_by(maker, expires_at, networks)
        rate_limit = _rate_bounded_by(maker, rate_limit, default_rate(uow.settings, scopes))
    parts = keys.generate()
    row = ApiKey(
        prefix=parts.prefix,
        lineage=parts.prefix if lineage is None else lineage,
        secret_hash=keys.hash_secret(parts.secret),
        name=name,
        scopes=sorted({str(s) for s in scopes}),
        partner_id=partner_id,
        rate_limit=rate_limit,
        created_at=now,
        revoked_at=None,
        expires_at=expires_at,
        lifetime_seconds=None if expires_at is None else int((expires_at - now).total_seconds()),
        last_used_at=None,
    )
    if networks is not None:
        # Left unset otherwise: the ORM would store None as JSON `null`, not as SQL NULL.
        row.allowed_networks = networks
    await ApiKeyRepository(uow.session).insert_key(row)
    return IssuedKey(principal=_principal(row), token=parts.token, created_at=row.created_at)


def _bounded_by(
    maker: Principal, expires_at: datetime | None, networks: list[str] | None
) -> tuple[datetime | None, list[str] | None]:
    """The end and networks of a key `maker` makes: it never reaches further than `maker`, so a key given for
    a week or for one office cannot leave behind a key that outlasts or outreaches it. It ends by `maker`'s
    end, and is used only where `maker` may be: within the networks asked for that `maker` shares, or
    `maker`'s own when none were asked for; KeyBeyondCaller when the ones asked for share no address with
    `maker`'s."""
    if _outlasts(expires_at, maker):
        expires_at = maker.expires_at
    if maker.networks is None:
        return expires_at, networks
    reach = maker.networks if networks is None else shared(parse_networks(networks), maker.networks)
    if not reach:
        raise KeyBeyondCaller(
            f"The networks asked for share no address with your key's ({_listed(maker.networks)})"
        )
    return expires_at, [str(network) for network in reach]


def _rate_bounded_by(maker: Principal, rate_limit: str | None, default: str) -> str | None:
    """The rate of a key `maker` makes, `default` being its scopes' default rate: with a rate of its own,
    `maker` makes no key that sends faster (within_rate), so that a key given a small budget cannot leave
    behind one with a larger. Unasked, the new key keeps its scopes' default when that is within `maker`'s
    rate, else it gets `maker`'s; KeyBeyondCaller refuses a rate asked for that allows more (two rates in
    different windows have no one rate for their lesser, so it is not cut down: the caller chooses). A
    `maker` on its scopes' default rate is not bound by it, as one that never expires is not by an expiry:
    the operator set no limit on that key, and the back office's own key may make a busy web shop's."""
    if maker.rate_limit is None:
        return rate_limit
    if rate_limit is None:
        return None if within_rate(default, maker.rate_limit) else maker.rate_limit
    if not within_rate(rate_limit, maker.rate_limit):
        raise KeyBeyondCaller(
            "The rate asked for allows more calls in its window, or more on average, than your key's rate "
            f"({maker.rate_limit})"
        )
    return rate_limit


def _reach_beyond(key: ApiKey, maker: Principal, settings: Settings) -> str | None:
    """How `key` reaches further than `maker` (works later, from addresses outside its networks, or sends
    faster), or None."""
    if _outlasts(key.expires_at, maker):
        assert maker.expires_at is not None
        ends = "never expires" if key.expires_at is None else f"works until {format_instant(key.expires_at)}"
        return f"{ends}, past your key's expiry ({format_instant(maker.expires_at)})"
    if maker.networks is not None:
        reach = None if key.allowed_networks is None else parse_networks(key.allowed_networks)
        if reach is None or not within(reach, maker.networks):
            shown = "any address" if reach is None else _listed(reach)
            return f"may be used from {shown}, beyond your key's networks ({_listed(maker.networks)})"
    if maker.rate_limit is not None:
        rate = key.rate_limit or default_rate(settings, _principal(key).scopes)
        if not within_rate(rate, maker.rate_limit):
            sends = "may send" if key.rate_limit is not None else "sends at its scopes' default rate,"
            return f"{sends} {rate}, beyond your key's rate ({maker.rate_limit})"
    return None


def _outlasts(expires_at: datetime | None, maker: Principal) -> bool:
    """Whether a key ending at `expires_at` (None: never) works past `maker`'s end."""
    return maker.expires_at is not None and (expires_at is None or expires_at > maker.expires_at)


def _listed(networks: tuple[Network, ...]) -> str:
    return ", ".join(str(network) for network in networks)


@dataclass(frozen=True, slots=True)
class Rotation:
    """The key that replaces a rotated one (its token shown once), and when the old one stops working."""

    issued: IssuedKey
    old_key_ends_at: datetime


async def rotate_key(
    uow: UnitOfWork,
    *,
    prefix: str,
    overlap: timedelta,
    lifetime: timedelta | None = None,
    maker: Principal | None = None,
) -> Rotation:
    """A new key with the active key `prefix`'s name, scopes, partner, rate limit, networks and line (so
    its Idempotency-Keys, see ApiKey.lineage). The old key
    keeps working for `overlap` from now (never past an expiry it had already), time for its callers to
    switch; then it expires. The new key expires `lifetime` from now; without one, it gets the lifetime the
    old key was made with, counted from now, or none if the old key had none (rotating the same key twice
    does not take the overlap for its lifetime). With a `maker` (the API key rotating it; None: the host),
    the new key ends by the maker's end, and KeyBeyondCaller refuses a key that reaches further than the
    maker (_reach_beyond): its replacement carries on its line, and so may replay what it was answered
    (tokens of the keys it made among them), and narrowing its networks or its rate would lock its callers
    out or slow them down.
    KeyRotatedAlready refuses a key whose replacement is in force (the old key is locked first, so two
    rotations at once make one replacement)."""
    if overlap < timedelta(0):
        raise InvalidField("overlap", "must not be negative")
    now = uow.clock.now()
    repository = ApiKeyRepository(uow.session)
    old = await repository.lock_by_prefix(prefix)
    if old is None or old.revoked_at is not None or _expired(old.expires_at, now):
        raise ApiKeyNotFound(f"no active API key with prefix {prefix!r}")
    beyond = None if maker is None else _reach_beyond(old, maker, uow.settings)
    if beyond is not None:
        raise KeyBeyondCaller(f"Key {prefix} {beyond}")
    replacement = await repository.find_replacement(old, now)
    if replacement is not None:
        raise KeyRotatedAlready.by(prefix, replacement)
    if lifetime is None and old.lifetime_seconds is not None:
        lifetime = timedelta(seconds=old.lifetime_seconds)
    issued = await create_key(
        uow,
        name=old.name,
        # What the old key may do: an older partner key's other scopes are not carried over.
        scopes=sorted(_principal(old).scopes),
        partner_id=old.partner_id,
        rate_limit=old.rate_limit,
        lifetime=lifetime,
        allowed_networks=old.allowed_networks,
        # The replacement carries on the old key's line: an Idempotency-Key sent with the old key and retried
        # with the new one replays the first answer instead of doing the work again.
        lineage=old.lineage,
        maker=maker,
    )
    ends_at = now + overlap if old.expires_at is None else min(old.expires_at, now + overlap)
    old.expires_at = ends_at
    await uow.session.flush()
    await uow.forget_cached(_cache_key(prefix))
    return Rotation(issued=issued, old_key_ends_at=ends_at)


class KeyStatus(StrEnum):
    active = "active"
    expired = "expired"
    revoked = "revoked"


@dataclass(frozen=True, slots=True)
class KeySummary:
    principal: Principal
    created_at: datetime
    last_used_at: datetime | None
    status: KeyStatus


def _status(row: ApiKey, now: datetime) -> KeyStatus:
    if row.revoked_at is not None:
        return KeyStatus.revoked
    return KeyStatus.expired if _expired(row.expires_at, now) else KeyStatus.active


def _summary(row: ApiKey, now: datetime) -> KeySummary:
    return KeySummary(
        principal=_principal(row),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        status=_status(row, now),
    )


async def list_keys(
    uow: UnitOfWork, *, after: uuid.UUID | None = None, limit: int | None = None
) -> list[KeySummary]:
    """Every key, oldest first (their ids are time-ordered); or those after the key `after`, at most
    `limit`."""
    now = uow.clock.now()
    rows = await ApiKeyRepository(uow.session).list_keys(after=after, limit=limit)
    return [_summary(row, now) for row in rows]


async def get_key(uow: UnitOfWork, prefix: str) -> KeySummary:
    """The key with this prefix, whatever its status."""
    row = await ApiKeyRepository(uow.session).get_by_prefix(prefix)
    if row is None:
        raise ApiKeyNotFound(f"no API key with prefix {prefix!r}")
    return _summary(row, uow.clock.now())


async def revoke_key(uow: UnitOfWork, *, prefix: str) -> None:
    if not await ApiKeyRepository(uow.session).revoke(prefix, uow.clock.now()):
        raise ApiKeyNotFound(f"no active API key with prefix {prefix!r}")
    await uow.forget_cached(_cache_key(prefix))


class KeyUsage:
    """When keys last authenticated a request, as one process saw it. A write per request would turn every
    call into a write (on SQLite, queued behind the one writer), so a key's row is written at most once per
    LAST_USED_RESOLUTION per process: `note` decides on the request's path, in memory; `write_noted` writes,
    once the response is out, in a unit of work of its own."""

    def __init__(self) -> None:
        # What this process last wrote, or set out to write, per key.
        self._written: dict[uuid.UUID, datetime] = {}
        self._due: dict[uuid.UUID, datetime] = {}

    def note(self, key_id: uuid.UUID, stored: datetime | None, at: datetime) -> None:
        """The key authenticated a request `at`; `stored` is its last-used time as its row was read."""
        last = self._written.get(key_id)
        if stored is not None and (last is None or stored > last):
            last = stored
        if last is None or at - last >= LAST_USED_RESOLUTION:
            # Taken now, so that the requests in flight beside this one leave the write to it.
            self._written[key_id] = at
            self._due[key_id] = at

    async def write_noted(self, units: UnitsOfWork, principal: Principal) -> None:
        """Write the key's last-used time if a request noted one. A failure is logged and dropped (the next
        write is a minute away): it must not fail a request, and this one has been answered already."""
        at = self._due.pop(principal.key_id, None)
        if at is None:
            return
        # Within a request's time limit. On SQLite the unit's waits end there themselves (UnitsOfWork.start):
        # cut off by the asyncio limit alone, its wait for another process's write lock went on to SQLite's
        # 30 s busy timeout, in the driver's thread, and held this process's writer turn meanwhile.
        deadline = asyncio.get_running_loop().time() + units.settings.request_timeout_seconds
        try:
            async with asyncio.timeout_at(deadline), units.begin(deadline=deadline) as uow:
                await ApiKeyRepository(uow.session).record_use(principal.key_id, at)
        except Exception as exc:
            logger.warning(
                "API key last-used time not written",
                extra={"key_prefix": principal.key_prefix, "error": type(exc).__name__},
            )


@dataclass(frozen=True, slots=True)
class _RememberedKey:
    """What a process keeps of a key's row: enough to check a secret without the database."""

    secret_hash: str
    principal: Principal | None  # None once revoked
    last_used_at: datetime | None


async def in_force(uow: UnitOfWork, token: str) -> bool:
    """Whether `token` is a key of this database that would be let in now (not revoked, not expired): the
    demo's remembered keys are checked so, since its database may have been deleted and made again."""
    parts = keys.parse(token)
    row = None if parts is None else await ApiKeyRepository(uow.session).get_by_prefix(parts.prefix)
    return (
        parts is not None
        and row is not None
        and row.revoked_at is None
        and not _expired(row.expires_at, uow.clock.now())
        and keys.secret_matches(parts.secret, row.secret_hash)
    )


def _cache_key(prefix: str) -> str:
    return f"{_CACHE_PREFIX}{prefix}"


async def authenticate(
    units: UnitsOfWork, parts: keys.KeyParts, *, client: str | None, usage: KeyUsage
) -> Principal:
    """The key's principal, when the key is active and may be used from the client address `client`; the use
    is noted in `usage`. A key's row is remembered for settings.cache_seconds; revoking or rotating a key
    makes every process forget it when the change commits (PostgreSQL: db/invalidation.py), or on SQLite
    other processes within that time. An expiry is
    compared with the clock on every request, so a key stops at its expiry in every process at once. Only a
    key not in memory opens a unit of work of its own."""
    cache_key = _cache_key(parts.prefix)
    remembered: _RememberedKey | None = units.cache.get(cache_key)
    if remembered is None:
        stamp = units.cache.stamp()
        async with units.read() as uow:
            row = await ApiKeyRepository(uow.session).get_by_prefix(parts.prefix)
            if row is None:
                raise InvalidApiKey()
            principal = None if row.revoked_at is not None else _principal(row)
            remembered = _RememberedKey(
                secret_hash=row.secret_hash, principal=principal, last_used_at=row.last_used_at
            )
        units.cache.put(cache_key, remembered, stamp)
    principal = remembered.principal
    if principal is None or not keys.secret_matches(parts.secret, remembered.secret_hash):
        raise InvalidApiKey()
    now = units.clock.now()
    if principal.expires_at is not None and now >= principal.expires_at:
        raise InvalidApiKey(f"This API key expired at {format_instant(principal.expires_at)}")
    if principal.networks is not None and not contains(principal.networks, client):
        raise AddressNotAllowed()
    usage.note(principal.key_id, remembered.last_used_at, now)
    return principal
