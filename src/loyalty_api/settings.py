"""Settings, read once from the environment (prefix LOYALTY_) and passed to create_app."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./loyalty.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALTY_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # Connections beyond the pool's size are closed as they come back: under steady load a pool smaller than
    # the requests in flight opens and closes connections (and prepares its statements anew) all the time.
    # Requests that find every connection busy wait for one; more connections add no speed to one process.
    database_pool_size: int = Field(default=20, ge=1, le=200)
    database_max_overflow: int = Field(default=0, ge=0, le=200)
    database_echo: bool = False

    # 32 random bytes, url-safe base64. Personal data is encrypted with a key derived from it, and blind
    # indexes are keyed with another. Losing it makes personal data unreadable: back it up.
    encryption_key: SecretStr | None = None

    # Phone numbers written without a country code are read as numbers of this region (ISO 3166 alpha-2).
    default_phone_region: str = Field(default="CN", min_length=2, max_length=2)

    # How long a process may serve the programme, earning rules and verified API keys from memory. A change
    # made through another process (or a revoked key) takes effect there within this time.
    cache_seconds: float = Field(default=2.0, ge=0, le=60)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Webhooks. Targets on loopback, private or link-local addresses are refused unless this allows them
    # (local development and tests): a webhook URL must not reach into the network the service runs in.
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # An endpoint that has failed every attempt for this long is disabled (its deliveries wait for it).
    webhook_disable_after_hours: float = Field(default=120.0, gt=0, le=24 * 90)
    webhook_max_payload_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)

    # Paid membership: billing hears `subscription.renewal_due` (and `trial_will_end`) this long before a
    # period ends, time to collect the next fee.
    subscription_notice_hours: float = Field(default=72.0, ge=0, le=24 * 60)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
