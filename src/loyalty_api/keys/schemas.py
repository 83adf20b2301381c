from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from loyalty_api.auth.principal import Scope
from loyalty_api.auth.service import IssuedKey, KeyStatus, KeySummary
from loyalty_api.http.schemas import SHOWN_ONCE, ReadModel
from loyalty_api.settings import RATE_PATTERN
from loyalty_api.text import FilledText

KeyName = Annotated[FilledText, StringConstraints(max_length=100, strip_whitespace=True)]
# Checked by the service (settings.check_rate, as for the settings' rates); the pattern says the same.
Rate = Annotated[str, Field(max_length=32, json_schema_extra={"pattern": RATE_PATTERN})]
ExpiresInDays = Annotated[
    int, Field(ge=1, le=3650, description="Days until the key stops working (null: it never expires).")
]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KeyName = Field(description="Who uses the key: a store's till, the web shop, a partner's system.")
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))
    partner: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The code of the partner a `partner` key acts for; required with that scope, refused "
        "without it.",
    )
    rate_limit: Rate | None = Field(
        default=None,
        description="Requests the key may send, one rate such as `600/minute`, counted over a window of a "
        "year at most (null: the service's default for its scopes). Made with a key that has a rate of its "
        "own, no faster than that rate, and that rate when null and the default would allow more.",
    )
    expires_in_days: ExpiresInDays | None = None
    allowed_networks: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        default=None,
        max_length=50,
        description="The networks (CIDR) the key may be used from (null: any address).",
    )


class ApiKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_minutes: int = Field(
        ge=0,
        le=3650 * 24 * 60,
        description="How long the old key keeps working, for its callers to switch (0: it ends now; never "
        "past its own expiry).",
    )
    expires_in_days: ExpiresInDays | None = Field(
        default=None,
        description="The new key's lifetime in days (null: the lifetime the old key was made with, or none).",
    )


class ApiKeyRead(ReadModel):
    prefix: str = Field(description="The key's public part, which names it here and in the audit log.")
    name: str
    scopes: list[Scope]
    partner_id: uuid.UUID | None
    rate_limit: str | None
    allowed_networks: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute, as the API processes last wrote it.")
    status: KeyStatus

    @classmethod
    def of(cls, summary: KeySummary) -> ApiKeyRead:
        key = summary.principal
        return cls(
            prefix=key.key_prefix,
            name=key.name,
            scopes=sorted(key.scopes),
            partner_id=key.partner_id,
            rate_limit=key.rate_limit,
            allowed_networks=None if key.networks is None else [str(n) for n in key.networks],
            created_at=summary.created_at,
            expires_at=key.expires_at,
            last_used_at=summary.last_used_at,
            status=summary.status,
        )


class ApiKeyList(ReadModel):
    items: list[ApiKeyRead]
    next_cursor: str | None


class IssuedApiKeyRead(ReadModel):
    key: ApiKeyRead
    token: str = Field(
        description="The key itself, to send as `Authorization: Bearer <token>`: shown this once, kept "
        "nowhere.",
        json_schema_extra={SHOWN_ONCE: True},
    )

    @classmethod
    def of(cls, issued: IssuedKey) -> IssuedApiKeyRead:
        summary = KeySummary(
            principal=issued.principal,
            created_at=issued.created_at,
            last_used_at=None,
            status=KeyStatus.active,
        )
        return cls(key=ApiKeyRead.of(summary), token=issued.token)
