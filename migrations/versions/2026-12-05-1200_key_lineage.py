"""an API key's line across rotations (api_keys.lineage), which its Idempotency-Keys belong to: a request
sent with the old key and retried with the key that replaced it ran a second time, crediting a member twice

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05 12:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = sa.table("api_keys", sa.column("prefix", sa.String()), sa.column("lineage", sa.String()))
_AUDIT = sa.table(
    "audit_events",
    sa.column("id", sa.Uuid()),
    sa.column("at", loyalty_api.db.types.UTCDateTime()),
    sa.column("action", sa.String()),
    sa.column("subject_type", sa.String()),
    sa.column("subject_id", sa.String()),
    sa.column("after", loyalty_api.db.types.JSONDocument),
)
_RECORDS = sa.table("idempotency_records", sa.column("owner", sa.String()), sa.column("key", sa.String()))


def upgrade() -> None:
    # Native ADD COLUMN first (nullable: no copy of the table on SQLite), filled, then made NOT NULL.
    op.add_column("api_keys", sa.Column("lineage", sa.String(length=16), nullable=True))
    bind = op.get_bind()
    # Each key starts a line of its own...
    bind.execute(sa.update(_KEYS).values(lineage=_KEYS.c.prefix))
    # ...unless a rotation made it: since 0018 the CLI (the only place keys are rotated) writes each rotation
    # to the audit log (keys_rotate, subject the old key's prefix, `replaced_by` the new one's). Followed in
    # the order they happened, a key rotated twice passes its first key's line to the third. Rotations past
    # the log's retention are not on record: their keys keep lines of their own, as before this revision.
    prefixes = set(bind.execute(sa.select(_KEYS.c.prefix)).scalars())
    lineage = {prefix: prefix for prefix in prefixes}
    rotations = bind.execute(
        sa.select(_AUDIT.c.subject_id, _AUDIT.c.after)
        .where(_AUDIT.c.subject_type == "api_keys", _AUDIT.c.action == "keys_rotate")
        .order_by(_AUDIT.c.at, _AUDIT.c.id)
    )
    inherited: dict[str, str] = {}
    for old, after in rotations:
        new = (after or {}).get("replaced_by")
        if old in lineage and new in lineage and new != old:
            lineage[new] = lineage[old]
            inherited[new] = lineage[old]
    # Few rows (keys are made by hand): written one by one, the same on both databases.
    for prefix, line in inherited.items():
        bind.execute(sa.update(_KEYS).where(_KEYS.c.prefix == prefix).values(lineage=line))
        # The replies a replacement recorded under its own prefix move to its line, so that it still replays
        # them; one whose Idempotency-Key the line holds already (the request ran twice, as this revision
        # stops) stays where it was, read by nobody, and is purged at its expiry (24 hours at most).
        held = _RECORDS.alias("held")
        bind.execute(
            sa.update(_RECORDS)
            .where(
                _RECORDS.c.owner == prefix,
                ~sa.exists().where(held.c.owner == line, held.c.key == _RECORDS.c.key),
            )
            .values(owner=line)
        )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column("lineage", existing_type=sa.String(length=16), nullable=False)


def downgrade() -> None:
    """Drops the keys' lines. Idempotency-Keys then belong to each key's own prefix again: replies recorded by
    a replacement key under its line's first prefix are no longer found by it (they expire within 24 hours);
    upgrading again rebuilds the lines from the audit log's keys_rotate entries still kept."""
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("lineage")
