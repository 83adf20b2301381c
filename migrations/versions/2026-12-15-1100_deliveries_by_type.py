"""an index on webhook_deliveries (endpoint_id, event_type, id): a page of an endpoint's deliveries of one
type (GET /v1/webhook-endpoints/{id}/deliveries?event_type=) read the endpoint's deliveries newest first and
filtered them, every delivery made since the type's last ones for a type the endpoint seldom gets.

On a large database build it by hand first, without holding writes (docs/scaling.md):
`CREATE INDEX CONCURRENTLY ix_webhook_deliveries__endpoint_id_event_type_id ON webhook_deliveries
(endpoint_id, event_type, id)`; this revision then finds it there.

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-15 11:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0047"
down_revision: str | None = "0046"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_webhook_deliveries__endpoint_id_event_type_id"


def upgrade() -> None:
    op.create_index(_INDEX, "webhook_deliveries", ["endpoint_id", "event_type", "id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="webhook_deliveries")
