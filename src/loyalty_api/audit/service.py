"""Recording and reading the audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from loyalty_api.audit.models import AuditEvent
from loyalty_api.audit.redaction import redacted
from loyalty_api.audit.repository import AuditFilter, AuditRepository
from loyalty_api.db.ids import first_id_at
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.retention import purge_in_batches
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork

AUDIT_EVENTS = scope_of("audit_events")  # the audit trail's cursors carry it


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an API key (over REST or GraphQL), or the CLI on the host; and in which request."""

    channel: str  # rest | graphql | cli
    key_id: uuid.UUID | None
    key_prefix: str | None
    name: str
    request_id: str | None = None


CLI = Actor(channel="cli", key_id=None, key_prefix=None, name="cli")


@dataclass(frozen=True, slots=True)
class Change:
    """What was changed: the action (a REST operation or GraphQL mutation), its subject, and the subject's
    representation before and after (parsed JSON; personal data and secrets are dropped on the way in)."""

    action: str
    subject_type: str
    subject_id: str | None = None
    member_id: uuid.UUID | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    before: Any = None
    after: Any = None


async def record(uow: UnitOfWork, actor: Actor, *changes: Change) -> None:
    """Add the changes to the audit log, in the unit of work that makes them: all commit, or none."""
    now = uow.clock.now()
    await AuditRepository(uow.session).insert(
        *(
            AuditEvent(
                at=now,
                channel=actor.channel,
                key_id=actor.key_id,
                key_prefix=actor.key_prefix,
                actor=actor.name,
                action=change.action,
                method=change.method,
                path=change.path,
                subject_type=change.subject_type,
                subject_id=change.subject_id,
                member_id=change.member_id,
                status=change.status,
                before=_document(change.before),
                after=_document(change.after),
                request_id=actor.request_id,
            )
            for change in changes
        )
    )


def _document(value: Any) -> dict[str, Any] | None:
    """A JSON object for the column: a list reply is wrapped, so `before` and `after` are always objects."""
    if value is None:
        return None
    kept = redacted(value)
    return kept if isinstance(kept, dict) else {"items": kept}


async def list_events(
    uow: UnitOfWork, where: AuditFilter, *, limit: int, cursor: str | None
) -> Page[AuditEvent]:
    spellings = () if where.subject_id is None else subject_spellings(where.subject_id)
    rows = await AuditRepository(uow.session).list_events(
        where, subject_ids=spellings, before_id=decode_cursor(cursor, AUDIT_EVENTS), limit=limit + 1
    )
    return page_of(rows, limit, lambda event: event.id, AUDIT_EVENTS)


def subject_spellings(subject_id: str) -> tuple[str, ...]:
    """What an entry about `subject_id` is filed under: the text itself, and for a UUID spelt otherwise (upper
    case, without dashes), the id as a path reads it and the entry files it. The text as given stays: a code
    may look like a UUID (32 hex digits is a valid plan code)."""
    try:
        as_read = str(uuid.UUID(subject_id))
    except ValueError:
        return (subject_id,)
    return (subject_id,) if as_read == subject_id else (subject_id, as_read)


async def purge_audit_events(units: UnitsOfWork) -> int:
    """Purge the entries older than `audit_retention_days`; how many."""

    async def batch(uow: UnitOfWork, limit: int) -> int:
        before = uow.clock.now() - timedelta(days=uow.settings.audit_retention_days)
        return await AuditRepository(uow.session).purge(first_id_at(before), limit=limit)

    return await purge_in_batches(units, batch)
