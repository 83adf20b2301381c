"""an API key keeps the lifetime it was made with, which a rotation passes on: rotating a key twice read the
overlap its first rotation had set as the key's lifetime

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 16:00:00.000000+00:00
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = sa.table(
    "api_keys",
    sa.column("id", sa.Uuid()),
    sa.column("prefix", sa.String()),
    sa.column("created_at", loyalty_api.db.types.UTCDateTime()),
    sa.column("expires_at", loyalty_api.db.types.UTCDateTime()),
    sa.column("lifetime_seconds", sa.BigInteger()),
)
_AUDIT = sa.table(
    "audit_events",
    sa.column("action", sa.String()),
    sa.column("subject_type", sa.String()),
    sa.column("subject_id", sa.String()),
    sa.column("after", loyalty_api.db.types.JSONDocument),
)


def upgrade() -> None:
    # Native ADD COLUMN on both databases: a nullable column needs no copy of the table on SQLite.
    op.add_column("api_keys", sa.Column("lifetime_seconds", sa.BigInteger(), nullable=True))
    # Since 0018 the CLI (the only place keys are made and rotated) writes to the audit log the expiry each key
    # was made with (keys_create, subject the prefix) and the end a rotation gave the old key (keys_rotate).
    # A key's expiry is its lifetime's end only when no rotation set it: a key made to last forever and rotated
    # with an overlap ends at rotation + overlap, and its age plus the overlap would pass to its successor.
    bind = op.get_bind()
    made_with: dict[str, str | None] = {}
    rotated: set[str] = set()
    entries = bind.execute(
        sa.select(_AUDIT.c.action, _AUDIT.c.subject_id, _AUDIT.c.after).where(
            _AUDIT.c.subject_type == "api_keys", _AUDIT.c.action.in_(("keys_create", "keys_rotate"))
        )
    )
    for action, prefix, after in entries:
        if action == "keys_create":
            made_with[prefix] = (after or {}).get("expires_at")
        else:
            rotated.add(prefix)
    # Few rows: read and written here, the same on both databases.
    rows = bind.execute(
        sa.select(_KEYS.c.id, _KEYS.c.prefix, _KEYS.c.created_at, _KEYS.c.expires_at).where(
            _KEYS.c.expires_at.is_not(None)
        )
    ).all()
    for key_id, prefix, created_at, expires_at in rows:
        if prefix in made_with:
            # What it was made with (None: never), whatever a rotation did since.
            made = made_with[prefix]
            lifetime = None if made is None else round((_instant(made) - created_at).total_seconds())
        elif prefix in rotated:
            # Its expiry is a rotation's, and its making is not on record (before the audit log, or past its
            # retention): keys made before 0018 could not expire, so it is taken to have been made with none.
            lifetime = None
        else:
            lifetime = round((expires_at - created_at).total_seconds())
        if lifetime is not None:
            bind.execute(sa.update(_KEYS).where(_KEYS.c.id == key_id).values(lifetime_seconds=lifetime))


def _instant(written: str) -> datetime:
    """An instant as the audit log writes it (clock.format_instant: RFC 3339, UTC, `Z`)."""
    return datetime.fromisoformat(written.replace("Z", "+00:00"))


def downgrade() -> None:
    """Drops the lifetime each key was made with. Upgrading again takes it from the audit log's keys_create
    entries still kept; failing those, a key a rotation gave its expiry gets none, and any other key the time
    from its creation to its expiry."""
    op.drop_column("api_keys", "lifetime_seconds")
