"""job marks (job_marks): how far a job that works through days has looked, so that its next run takes up the
days a stopped worker (an outage, a long deploy) did not run on; the birthday job's first, whose gifts of
birthdays that fell while the worker was down were never given

No job has a mark until its first run after this revision: that run looks at its own day only, as before. A
downgrade drops the marks, and the job goes back to looking at the day it runs on.

Revision ID: 0050
Revises: 0049
Create Date: 2026-12-17 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0050"
down_revision: str | None = "0049"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_marks",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("reached_at", loyalty_api.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_marks")),
    )


def downgrade() -> None:
    op.drop_table("job_marks")
