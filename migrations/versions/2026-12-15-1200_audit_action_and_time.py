"""indexes on audit_events (action, id) and (at): a page of the audit log filtered by action
(GET /v1/audit-events?action=) or by a window of time (?since=&until=) read the log newest first and
filtered it, every entry made since the action's last ones or since the window, and the whole log for an
action it does not hold.

On a large log build them by hand first, without holding writes (docs/scaling.md):
`CREATE INDEX CONCURRENTLY ix_audit_events__action_id ON audit_events (action, id)` and
`CREATE INDEX CONCURRENTLY ix_audit_events__at ON audit_events (at)`; this revision then finds them there.

Revision ID: 0048
Revises: 0047
Create Date: 2026-12-15 12:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0048"
down_revision: str | None = "0047"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events__action_id", "audit_events", ["action", "id"], if_not_exists=True)
    op.create_index("ix_audit_events__at", "audit_events", ["at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_audit_events__at", table_name="audit_events")
    op.drop_index("ix_audit_events__action_id", table_name="audit_events")
