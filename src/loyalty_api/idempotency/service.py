"""Idempotency-Key semantics.

A key is claimed in a short transaction of its own before the request runs, so a concurrent twin sees it
in flight. The response is then recorded in the request's own transaction, so the work and the record of
it commit together: after a crash either both exist or neither, and a retry never does the work twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from loyalty_api.crypto import Vault
from loyalty_api.db.retention import purge_in_batches
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.idempotency.errors import (
    IdempotencyClaimLost,
    IdempotencyKeyReused,
    IdempotencyRequestInFlight,
    InvalidIdempotencyKey,
)
from loyalty_api.idempotency.repository import IdempotencyRepository

RETENTION = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: str
    content_type: str


@dataclass(frozen=True, slots=True)
class Claim:
    """A request's hold on a key. The lease doubles as a fencing token: a retry that takes the key over
    after the lease sets a new one, and the first request can then neither complete nor release it."""

    record_id: uuid.UUID
    lease: datetime


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and the JSON body regardless of layout (white space,
    the order of keys, and how a number is written: 100, 100.0 and 1e2 are one number, as the strict check
    of a body reads them). Strings are compared as sent: "2.5" and "2.50" are two bodies. No body, an
    empty object and `null` are one body: a route whose body is optional (a hold's capture) reads all three
    as no options given, and a client's retry may send any of them (a route whose body is required refuses
    no body and `null` as input, which leaves the key unrecorded)."""
    try:
        document = json.loads(body, parse_float=_as_read)
    except ValueError:
        canonical = body
    else:
        # `{}` and `null` take the form of no body, not the other way: keys recorded for calls without a body
        # (every release of a hold) before this still match their retries.
        empty = document is None or (isinstance(document, dict) and not document)
        canonical = b"" if empty else json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


# Past this many digits a whole number keeps its exponent: no field takes one, and json.dumps writes no int
# that long.
_LONGEST_WHOLE = 4_300


def _as_read(text: str) -> int | float:
    """A JSON number with a fraction or an exponent as the strict check reads it: a whole one (100.0, 1e2) is
    that int, which json.dumps then writes as it writes 100; another is a float (2.50 is 2.5), which no field
    takes, so such a body is refused whichever way it was written. json.loads calls this for such numbers
    only: a body of whole numbers, a till's, is read as fast as before. An exponent of twenty digits or more,
    past what a Decimal holds, is the float it is read as (infinite, or zero), as a vast one is."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return float(text)
    if value == value.to_integral_value() and value.adjusted() <= _LONGEST_WHOLE:
        return int(value)
    return float(text)


# Visible ASCII: a key is copied between systems, logs and headers; a space or an accented letter in one is
# a key that two of them read differently.
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise InvalidIdempotencyKey()
    return key


async def claim(
    units: UnitsOfWork, *, owner: str, key: str, fingerprint: str, deadline: float | None = None
) -> Claim | StoredResponse:
    """Claim `key` for this request, or return the stored response of the first one to replay it.
    `fingerprint`: the request's, as `fingerprint` computes it; the record keeps it keyed. `deadline`: the
    request's time limit, for its waits on SQLite (UnitsOfWork.start)."""
    check_key(key)
    async with units.begin(deadline=deadline) as uow:
        repo = IdempotencyRepository(uow.session)
        now = uow.clock.now()
        keyed = _keyed(uow.vault, fingerprint)
        # A claim outlives its request by nothing: the edge cuts a request off (and rolls it back) at the
        # request time limit, which starts before this claim. A claim still in flight past its lease
        # belongs to a process that died, and running the request again is safe.
        lease = now + timedelta(seconds=uow.settings.request_timeout_seconds)
        expiry = now + RETENTION
        record_id = await repo.insert_claim(
            owner=owner, key=key, fingerprint=keyed, locked_until=lease, expires_at=expiry
        )
        if record_id is not None:
            return Claim(record_id, lease)
        record = await repo.lock_record(owner=owner, key=key)
        if record is None:  # removed between our insert and select: the key is free again
            raise IdempotencyRequestInFlight()
        if record.expires_at <= now:
            await repo.take_over(record.id, fingerprint=keyed, locked_until=lease, expires_at=expiry)
            return Claim(record.id, lease)
        if not _same_request(record.fingerprint, sent=fingerprint, keyed=keyed):
            raise IdempotencyKeyReused()
        if record.state == "completed":
            assert record.response_status is not None
            assert record.response_body is not None
            return StoredResponse(
                status=record.response_status,
                body=record.response_body,
                content_type=record.response_content_type or "application/json",
            )
        if record.locked_until > now:
            raise IdempotencyRequestInFlight()
        await repo.take_over(record.id, fingerprint=keyed, locked_until=lease, expires_at=expiry)
        return Claim(record.id, lease)


async def _record(uow: UnitOfWork, claimed: Claim, response: StoredResponse) -> bool:
    return await IdempotencyRepository(uow.session).complete(
        claimed.record_id,
        claimed.lease,
        status=response.status,
        body=response.body,
        content_type=response.content_type,
    )


async def complete(uow: UnitOfWork, claimed: Claim, response: StoredResponse) -> None:
    """Record the response inside the unit of work that did the work; IdempotencyClaimLost (roll the work
    back) if a retry took the key over meanwhile."""
    if not await _record(uow, claimed, response):
        raise IdempotencyClaimLost()


async def complete_alone(
    units: UnitsOfWork, claimed: Claim, response: StoredResponse, *, deadline: float | None = None
) -> None:
    """Record a refusal: the request's own transaction was rolled back, so this one stands alone (and does
    nothing if a retry took the key over). `deadline`: the request's time limit, for its wait for SQLite's
    write lock (`lock_deadline` of UnitsOfWork.start)."""
    async with units.begin(lock_deadline=deadline) as uow:
        await _record(uow, claimed, response)


async def release(units: UnitsOfWork, claimed: Claim, *, deadline: float | None = None) -> None:
    """Forget the claim of a request that never ran or was cut off (bad input, no access, the time limit),
    so a retry can run at once; a claim a retry took over is left to it. `deadline`: the request's time
    limit, for its wait for SQLite's write lock (`lock_deadline` of UnitsOfWork.start)."""
    async with units.begin(lock_deadline=deadline) as uow:
        await IdempotencyRepository(uow.session).delete_claim(claimed.record_id, claimed.lease)


# Replies recorded before every reply was encrypted: plain JSON, or this prefix and a ciphertext (secrets).
# They replay as they are, and are gone 24 hours after the upgrade.
_SEALED_BEFORE = "sealed:"


def opened(body: str, vault: Vault) -> str:
    """A stored reply as it was sent."""
    body = body.removeprefix(_SEALED_BEFORE)
    return body if body.startswith(("{", "[")) else vault.decrypt(body)


# A fingerprint keyed with the service's key is this letter and 63 hex digits (a plain one is 64 hex digits).
_KEYED = "k"


def _keyed(vault: Vault, fingerprint: str) -> str:
    """The fingerprint keyed (it is already if it starts with the letter): a plain SHA-256 of a request lets
    whoever reads the table (a backup, a DBA) confirm a guess at what it held, an enrolment's phone number
    or a partner's customer ref in its path, by hashing guesses. So a claim stores it keyed, and an erasure
    keys those stored before every claim did."""
    if fingerprint.startswith(_KEYED):
        return fingerprint
    return _KEYED + vault.blind_index("idempotency-fingerprint", fingerprint)[:63]


def _same_request(stored: str, *, sent: str, keyed: str) -> bool:
    """Whether the record `stored` is of the request whose fingerprint is `sent`, `keyed` once keyed. A record
    claimed before claims were keyed holds the plain form (no letter in front) until it is purged, 24 hours
    after the upgrade: a retry across the upgrade still replays."""
    if stored.startswith(_KEYED):
        return hmac.compare_digest(stored, keyed)
    return hmac.compare_digest(stored, sent)


@dataclass(frozen=True, slots=True)
class RepliesRewritten:
    rewritten: int
    dropped: int


_BATCH = 500


async def rewrite_replies(
    uow: UnitOfWork, about: Callable[[str], bool], rewrite: Callable[[str], str | None]
) -> RepliesRewritten:
    """Rewrite the recorded replies whose text `about` picks (what they said about an erased member) as
    `rewrite` answers, so that a retry with the key replays the reply as it reads now and does nothing again
    (a retried import would make its other members twice). Their fingerprints are keyed. A reply `rewrite`
    answers None for is deleted instead: a retry of that request runs again. Replies are encrypted, so each is
    opened, and sealed again."""
    repo = IdempotencyRepository(uow.session)
    rewritten: list[tuple[uuid.UUID, str, str]] = []
    forgotten: list[uuid.UUID] = []
    after: uuid.UUID | None = None
    while batch := await repo.replies(after_id=after, limit=_BATCH):
        for record_id, body, fingerprint in batch:
            text = opened(body, uow.vault)
            if not about(text):
                continue
            kept = rewrite(text)
            if kept is None:
                forgotten.append(record_id)
            else:
                rewritten.append((record_id, uow.vault.encrypt(kept), _keyed(uow.vault, fingerprint)))
        after = batch[-1][0]
    await repo.replace_replies(rewritten)
    await repo.delete_records(forgotten)
    return RepliesRewritten(rewritten=len(rewritten), dropped=len(forgotten))


async def purge_expired(units: UnitsOfWork) -> int:
    """Purge the records past their expiry; how many."""

    async def batch(uow: UnitOfWork, limit: int) -> int:
        return await IdempotencyRepository(uow.session).delete_expired(uow.clock.now(), limit=limit)

    return await purge_in_batches(units, batch)
