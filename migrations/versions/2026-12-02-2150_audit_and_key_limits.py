"""audit log (audit_events: who wrote what, before and after, in the write's transaction); API keys get an
optional expiry, a last-used time and an optional list of allowed client networks.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 21:50:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _on_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=True),
        sa.Column("key_prefix", sa.String(length=16), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("path", sa.String(length=300), nullable=True),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=100), nullable=True),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("before", loyalty_api.db.types.JSONDocument, nullable=True),
        sa.Column("after", loyalty_api.db.types.JSONDocument, nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        "ix_audit_events__subject_type_subject_id_id", "audit_events", ["subject_type", "subject_id", "id"]
    )
    op.create_index("ix_audit_events__key_id_id", "audit_events", ["key_id", "id"])
    op.create_index("ix_audit_events__member_id_id", "audit_events", ["member_id", "id"])
    # Entries are never altered: the database refuses an UPDATE, whoever sends it. (Deleting stays possible,
    # for a retention policy.)
    if _on_postgresql():
        op.execute(
            "CREATE FUNCTION audit_events_unchangeable() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit entries are never changed'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_unchangeable BEFORE UPDATE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_unchangeable()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_events_unchangeable BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit entries are never changed'); END"
        )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", loyalty_api.db.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_used_at", loyalty_api.db.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("allowed_networks", loyalty_api.db.types.JSONDocument, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        for name in ("allowed_networks", "last_used_at", "expires_at"):
            batch.drop_column(name)
    op.execute("DROP TRIGGER audit_events_unchangeable" + (" ON audit_events" if _on_postgresql() else ""))
    if _on_postgresql():
        op.execute("DROP FUNCTION audit_events_unchangeable()")
    op.drop_index("ix_audit_events__member_id_id", "audit_events")
    op.drop_index("ix_audit_events__key_id_id", "audit_events")
    op.drop_index("ix_audit_events__subject_type_subject_id_id", "audit_events")
    op.drop_table("audit_events")
