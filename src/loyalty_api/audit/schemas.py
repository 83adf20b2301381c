from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from loyalty_api.http.schemas import ReadModel


class AuditEventRead(ReadModel):
    """One write by a back-office, billing or partner key (or the CLI), recorded in the write's own
    transaction. `before` and `after` show the subject as its GET route shows it and as the write answered,
    without personal data (a member's phone, e-mail, name, birthday) or secrets."""

    id: uuid.UUID
    at: datetime
    channel: str = Field(description="`rest`, `graphql` or `cli`.")
    key_id: uuid.UUID | None = Field(description="The API key that made the change (null: the CLI).")
    key_prefix: str | None
    actor: str = Field(description="The key's name, or `cli`.")
    action: str = Field(
        description="The REST operation (`replace_tier`) or GraphQL mutation (`adjustPoints`)."
    )
    method: str | None
    path: str | None = Field(description="The request's path, ids filled in.")
    subject_type: str = Field(description="What was changed: `program`, `tiers`, `members`, `plans`…")
    subject_id: str | None = Field(description="Which one: the id or code its path names.")
    member_id: uuid.UUID | None = Field(description="The member the change was about, if any.")
    status: int | None = Field(description="The HTTP status the write answered.")
    before: dict[str, Any] | None = Field(description="The subject before (null: created, or not readable).")
    after: dict[str, Any] | None = Field(description="What the write answered (null: nothing, as a delete).")
    request_id: str | None = Field(description="The request's `X-Request-Id`, as the logs have it.")


class AuditEventPage(ReadModel):
    items: list[AuditEventRead]
    next_cursor: str | None
