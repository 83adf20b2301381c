"""Settings, read once from the environment (prefix LOYALTY_) and passed to create_app."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Self, cast
from urllib.parse import urlsplit

import phonenumbers
from limits import parse, parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy import make_url
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.exc import ArgumentError

from loyalty_api.crypto import check_key

# The longest window a rate may count over: a key locked for longer is a revoked key (and a window of many
# years gave a 429 a Retry-After of twenty digits). `limits` reads "1/0 second" as one a second: refused.
_LONGEST_WINDOW = 366 * 24 * 3600  # seconds; `limits` counts "1/year" as 360 days
_NO_WINDOW = re.compile(r"(/|per)\s*0+\s*[a-z]", re.IGNORECASE)
# The most a rate may allow in its window, 2^53 - 1 (GraphQL's Long stops there too): `limits` counts in Redis
# with Lua, whose numbers are doubles, so a larger rate (`99999999999999999999/second`) was another number
# there, read through a float; a key meant to be limited is one no count would ever stop anyway.
_MOST_IN_A_WINDOW = 2**53 - 1


def check_rate(value: str) -> str:
    """A rate such as "100/second" (one limit: several would make the 429's headers ambiguous), over a
    window of a year at most, in ASCII (`limits` would take a rate spaced with U+3000, say)."""
    try:
        parsed = parse_many(value)
    except ValueError:
        parsed = []
    if (
        len(parsed) != 1
        or not 1 <= parsed[0].amount <= _MOST_IN_A_WINDOW
        or len(value) > 32
        or not value.isascii()
        or parsed[0].get_expiry() > _LONGEST_WINDOW
        or _NO_WINDOW.search(value)
    ):
        raise ValueError(
            'must be one rate such as "100/second" or "6000/minute", of at most 2^53 - 1 '
            f"({_MOST_IN_A_WINDOW}), over a year at most"
        )
    return value


def _one_to(most: int) -> str:
    """A regular expression for the whole numbers 1 to `most`, leading zeros allowed (`int()` takes them)."""
    digits = str(most)
    ways = []
    if len(digits) > 1:
        ways.append("[1-9]" + (f"[0-9]{{0,{len(digits) - 2}}}" if len(digits) > 2 else ""))
    for place, digit in enumerate(digits):
        lowest, highest = (1 if place == 0 else 0), int(digit) - 1
        if highest >= lowest:
            rest = len(digits) - place - 1
            ways.append(
                digits[:place]
                + (str(lowest) if highest == lowest else f"[{lowest}-{highest}]")
                + ("" if rest == 0 else "[0-9]" if rest == 1 else f"[0-9]{{{rest}}}")
            )
    ways.append(digits)
    return "0*" + (ways[0] if len(ways) == 1 else f"(?:{'|'.join(ways)})")


def _either_case(word: str) -> str:
    return "".join(f"[{letter.upper()}{letter}]" for letter in word)


def _rate_pattern() -> str:
    # `limits`' grammar for one limit, "<amount> / [<multiple>] <unit>" ("/" or "per", the unit in either case
    # and plural or not, spaces around each part), with what check_rate adds: an amount from 1 to 2^53 - 1, a
    # multiple of at least 1, and a window of a year at most (for each unit, the largest multiple within it).
    # The only space is " ": `limits` takes any, but check_rate refuses what is not ASCII, and the input guard
    # the others. More than 32 characters is the schema's maxLength.
    windows = "|".join(
        f"(?:{_one_to(_LONGEST_WINDOW // parse(f'1/{unit}').get_expiry())} *)?{_either_case(unit)}[Ss]?"
        for unit in ("second", "minute", "hour", "day", "month", "year")
    )
    return f"^ *{_one_to(_MOST_IN_A_WINDOW)} *(?:/|{_either_case('per')}) *(?:{windows}) *$"


# What check_rate takes, as the OpenAPI document's pattern for a rate (tests/test_rates.py checks they agree).
RATE_PATTERN = _rate_pattern()


# The service reaches PostgreSQL through asyncpg and SQLite through aiosqlite. A URL naming no driver (as
# hosting platforms hand them out: postgres://…, postgresql://…) gets the one the service ships with.
_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


# What a PostgreSQL URL may set beside libpq's `sslmode`: what SQLAlchemy's asyncpg dialect hands asyncpg (a
# socket folder or several hosts as `host`, failover's `target_session_attrs`, timeouts, statement caches).
_ASYNCPG_SETTINGS = {
    "ssl",
    "sslmode",
    "host",
    "port",
    "target_session_attrs",
    "timeout",
    "command_timeout",
    "statement_cache_size",
    "prepared_statement_cache_size",
    "max_cached_statement_lifetime",
    "max_cacheable_statement_size",
    "direct_tls",
}


def _seconds(text: str) -> float:
    seconds = float(text)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError
    return seconds


def _count(text: str) -> int:
    count = int(text)
    if count < 0:
        raise ValueError
    return count


def _flag(text: str) -> bool:
    flags = {"true": True, "false": False, "1": True, "0": False}
    if text.lower() not in flags:
        raise ValueError
    return flags[text.lower()]


# The size of the statement cache of SQLAlchemy's asyncpg adaptor, not asyncpg's own.
ADAPTOR_STATEMENT_CACHE = "prepared_statement_cache_size"
# Those asyncpg (or SQLAlchemy's adaptor) takes as numbers or a flag, which a URL can only carry as text:
# SQLAlchemy's dialect hands them on as text, and asyncpg would fail on every connection with it.
_ASYNCPG_TYPED: dict[str, tuple[Callable[[str], Any], str]] = {
    "timeout": (_seconds, "a number of seconds above 0"),
    "command_timeout": (_seconds, "a number of seconds above 0"),
    "statement_cache_size": (_count, "a whole number"),
    ADAPTOR_STATEMENT_CACHE: (_count, "a whole number"),
    "max_cached_statement_lifetime": (_count, "a whole number"),
    "max_cacheable_statement_size": (_count, "a whole number"),
    "direct_tls": (_flag, "true or false"),
}


def asyncpg_url_arguments(url: str) -> dict[str, Any]:
    """What a PostgreSQL URL sets that asyncpg takes as a number or a flag, typed, to hand asyncpg beside the
    URL; ValueError naming a setting whose text is not one, or that is set twice."""
    query = make_url(url).query
    typed: dict[str, Any] = {}
    for name, (convert, meaning) in _ASYNCPG_TYPED.items():
        value = query.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"sets {name} more than once")
        try:
            typed[name] = convert(value)
        except ValueError:
            raise ValueError(f"sets {name} to {value!r}: it takes {meaning}") from None
    return typed


def _values(query: Mapping[str, str | tuple[str, ...]], name: str) -> tuple[str, ...]:
    value = query.get(name, ())
    return (value,) if isinstance(value, str) else value


def asyncpg_connect_arguments(url: str) -> dict[str, Any]:
    """What asyncpg.connect is given for a PostgreSQL URL, read as SQLAlchemy's asyncpg dialect reads it for
    the pool's connections (the hosts and ports however the URL writes them, the user, the database, the
    URL's settings), with the numbers and flags typed; ValueError, naming what to write instead, where the
    dialect or asyncpg would fail at every connection: several hosts each need a port (libpq lets one port,
    or none, serve all)."""
    for port in _values(make_url(url).query, "port"):
        if not port.replace(",", "").isdigit():
            raise ValueError(f"sets port to {port!r}: it takes a whole number")
    typed = asyncpg_url_arguments(url)
    try:
        _, arguments = PGDialect_asyncpg().create_connect_args(make_url(url))  # type: ignore[no-untyped-call]
    except (ArgumentError, ValueError) as exc:  # ValueError: an IPv6 address among several hosts
        raise ValueError(f"{exc}: write each host as host=name:port (host=a:5432&host=b:5432)") from None
    return cast(dict[str, Any], arguments) | typed


def check_database_url(value: str) -> str:
    """A database URL with the service's driver; libpq's `sslmode` becomes asyncpg's `ssl` (same modes)."""
    # A secret written with a trailing newline (a common slip in a Kubernetes secret) would name another
    # database, or another SQLite file.
    scheme, separator, rest = value.strip().partition("://")
    scheme = _DRIVERS.get(scheme, scheme)
    if not separator or scheme not in _DRIVERS.values():
        raise ValueError(
            "must be a PostgreSQL URL (postgresql://user:password@host/database) or an SQLite one "
            "(sqlite:///./loyalty.db)"
        )
    url = f"{scheme}://{rest}"
    try:
        parsed = make_url(url)
    except (ValueError, ArgumentError):
        raise ValueError("is not a URL such as postgresql://user:password@host:5432/database") from None
    if scheme == "postgresql+asyncpg":
        try:
            url.encode("utf-8")
        except UnicodeEncodeError:
            # Bytes that are not UTF-8 (a secret saved as GBK or Latin-1), which Python keeps as lone
            # surrogates: asyncpg fails on them at every connection, with an error of its own.
            raise ValueError("is not UTF-8 text: PostgreSQL takes its names and passwords in UTF-8") from None
        others = sorted(set(parsed.query) - _ASYNCPG_SETTINGS)
        if others:
            # The driver would be handed them as arguments it does not take, and fail on every connection.
            raise ValueError(f"holds settings asyncpg does not take (libpq's): remove {', '.join(others)}")
        asyncpg_connect_arguments(url)
        if "sslmode" in parsed.query:
            parsed = parsed.difference_update_query(["sslmode"]).update_query_dict(
                {"ssl": parsed.query["sslmode"]}
            )
            url = parsed.render_as_string(hide_password=False)
    return url


def is_in_memory(url: str) -> bool:
    """Whether the URL names an SQLite database in memory (`sqlite://`, `sqlite:///:memory:`), which lasts
    only as long as the connection that opened it."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite":
        return False
    if database in ("", ":memory:"):
        return True
    # A URI filename (`uri=true`): `file::memory:`, or any `file:` one opened with `mode=memory`.
    return (
        parsed.query.get("uri") == "true"
        and database.startswith("file:")
        and (database.startswith("file::memory:") or parsed.query.get("mode") == "memory")
    )


# What stands between the service and PostgreSQL (LOYALTY_DATABASE_POOLER).
Pooler = Literal["none", "pgbouncer"]
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./loyalty.db"
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALTY_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # Connections beyond the pool's size are closed as they come back: under steady load a pool smaller than
    # the requests in flight opens and closes connections (and prepares its statements anew) all the time.
    # Requests that find every connection busy wait for one; more connections add no speed to one process.
    database_pool_size: int = Field(default=20, ge=1, le=200)
    database_max_overflow: int = Field(default=0, ge=0, le=200)
    # How long a unit of work waits for a busy pool's connection before it is answered 503
    # `database_unavailable` (a request's own time limit, counted from its start, usually answers first).
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # How long /readyz waits for the database before it answers 503 `unreachable`: below the probe's own
    # timeout (a load balancer's, an orchestrator's), so that a database that takes connections and never
    # answers makes the probe say "not ready" rather than hang until the prober gives up.
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    database_echo: bool = False
    # `pgbouncer` when LOYALTY_DATABASE_URL names a PgBouncer in transaction pooling mode (before 1.21, or
    # without max_prepared_statements): consecutive transactions of one client connection may then run on
    # different server connections, so no prepared statement may outlive its transaction. Statements are
    # then prepared unnamed, afresh each time (a round trip more per statement); `none` keeps them prepared.
    database_pooler: Pooler = "none"
    # Where each process LISTENs for notifications (cache invalidations; the worker's webhook wake-ups):
    # LISTEN needs a session of its own, so behind a transaction-mode pooler point this at the database
    # itself (or a session-mode pool). Unset: LOYALTY_DATABASE_URL.
    listen_database_url: str | None = None
    # A streaming replica for the analytics reports (/v1/analytics/…): they read many rows in one snapshot,
    # and a few seconds of replication lag do not matter to them. Unset: LOYALTY_DATABASE_URL. The pool and
    # pooler settings apply to it too.
    reports_database_url: str | None = None

    # 32 random bytes, url-safe base64. Personal data is encrypted with a key derived from it, and blind
    # indexes are keyed with another. Losing it makes personal data unreadable: back it up.
    encryption_key: SecretStr | None = None

    # Phone numbers written without a country code are read as numbers of this region (ISO 3166 alpha-2).
    default_phone_region: str = Field(default="CN", min_length=2, max_length=2)

    # How long a process may serve the programme, earning rules, tiers, plans, partners' joint offers and
    # verified API keys from memory. On PostgreSQL a change (a revoked key too) reaches every process at once
    # by a notification, and this is the fallback should one be missed; on SQLite a change made by another
    # process (the CLI) takes effect within this time.
    cache_seconds: float = Field(default=2.0, ge=0, le=3600)

    # The edge: what one request may cost before any domain code runs.
    # A body larger than this is refused with 413 before it is read (Content-Length) or as it streams.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # JSON nested deeper than this is refused (real bodies nest three or four levels).
    max_json_depth: int = Field(default=32, ge=4, le=256)
    # A request still running after this long is cut off and rolled back (503); an Idempotency-Key held by
    # a request whose process died is free again after the same time.
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # GraphQL documents with more tokens than this are refused while parsing, before any validation.
    graphql_max_tokens: int = Field(default=1000, ge=100, le=100_000)
    # Refused at validation, before anything runs: documents nested deeper than this (introspection aside),
    # documents with more aliases than this, `_entities` calls with more representations than this.
    graphql_max_depth: int = Field(default=10, ge=3, le=50)
    # Refused before validation: documents selecting more fields than this once their fragments are spread.
    graphql_max_fields: int = Field(default=2_000, ge=100, le=100_000)
    graphql_max_aliases: int = Field(default=30, ge=1, le=1_000)
    graphql_max_entities: int = Field(default=100, ge=1, le=10_000)
    # Whether a call without a key may read the subgraph's SDL (`{ _service { sdl } }`) and introspect,
    # for composition tools that cannot send a key. Such calls are small and share the per-address budget.
    graphql_public_sdl: bool = False
    # A document whose cost (objects it may read, lists at their `first` or assumed size) is over this is
    # refused before it runs; one within it spends cost / 100 units of the key's rate budget.
    graphql_max_cost: int = Field(default=10_000, ge=100, le=1_000_000)
    # Off in production: introspection maps the whole schema for anyone with a key, and GraphiQL is a page
    # for people trying the API. `serve --demo` turns both on.
    graphql_introspection: bool = False
    graphql_ide: bool = False

    # Rate limits (the `limits` library: "100/second", "6000/minute"). `memory://` counts per process;
    # `redis://host:6379/0` shares one budget between every process that names the same server.
    rate_limits_enabled: bool = True
    rate_limit_storage: str = "memory://"
    # Per API key, by scope (a key with several scopes gets the largest; `keys create --rate` overrides).
    rate_limit_admin: str = "100/second"
    rate_limit_pos: str = "100/second"
    rate_limit_ecommerce: str = "100/second"
    rate_limit_partner: str = "50/second"
    rate_limit_billing: str = "20/second"
    # Member lookups by phone or e-mail, per API key: enough for a till, too slow to walk a number range.
    rate_limit_contact_lookup: str = "60/minute"
    # Member look-ups that find no one (any identifier, REST or GraphQL), per API key: a till mistypes a card
    # now and then; a walk through card numbers is almost all misses. Once spent, look-ups are refused.
    rate_limit_lookup_misses: str = "30/minute"
    # Calls without a valid key, per client address and per key prefix tried. Once spent, further calls
    # from that address or for that prefix are refused without checking the key.
    rate_limit_unauthenticated_per_address: str = "30/minute"
    rate_limit_failed_auth_per_prefix: str = "10/minute"

    # Web pages on these origins (`https://backoffice.example.com`) may call the API from a browser with a
    # key. None by default: no CORS headers at all, and browsers keep other sites' scripts from reading
    # answers. The environment takes a comma-separated list or a JSON array.
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, max_length=100)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Webhooks. Targets on loopback, private or link-local addresses are refused unless this allows them
    # (local development and tests): a webhook URL must not reach into the network the service runs in.
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # An endpoint that has failed every attempt for this long is disabled (its deliveries wait for it); time
    # nobody tried it (the worker stopped) does not count.
    webhook_disable_after_hours: float = Field(default=120.0, gt=0, le=24 * 90)
    webhook_max_payload_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Deliveries made this long ago that are done (delivered or given up) are purged, with their attempts.
    webhook_retention_days: int = Field(default=30, ge=1, le=3650)
    # Events made this long ago go too once dispatched and their deliveries purged (the events list and
    # replays reach back this far); audit entries are kept this long.
    event_retention_days: int = Field(default=90, ge=1, le=3650)
    audit_retention_days: int = Field(default=730, ge=30, le=36500)

    # Paid membership: billing hears `subscription.renewal_due` (and `trial_will_end`) this long before a
    # period ends, time to collect the next fee.
    subscription_notice_hours: float = Field(default=72.0, ge=0, le=24 * 60)

    @field_validator(
        "rate_limit_admin",
        "rate_limit_pos",
        "rate_limit_ecommerce",
        "rate_limit_partner",
        "rate_limit_billing",
        "rate_limit_contact_lookup",
        "rate_limit_lookup_misses",
        "rate_limit_unauthenticated_per_address",
        "rate_limit_failed_auth_per_prefix",
    )
    @classmethod
    def _a_rate(cls, value: str) -> str:
        return check_rate(value)

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _a_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("["):
                return [o for o in text.split(",") if o.strip()]
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ValueError(
                    "a JSON array of origins, or origins separated by commas "
                    f"(the array does not parse: {exc})"
                ) from None
        return value

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        origins = [origin.strip() for origin in value]
        for origin in origins:
            # Browsers send `Origin` as scheme://host[:port], lower-case, with no path: an entry written
            # otherwise (a trailing slash, `*`) would never match, or match every site.
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin such as https://backoffice.example.com")
        return origins

    @field_validator("rate_limit_storage")
    @classmethod
    def _a_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must be memory:// or a redis:// URL")
        try:
            urlsplit(value).port  # noqa: B018 - read for the check it makes
        except ValueError:
            raise ValueError("names a port that is not a number from 0 to 65535") from None
        return value

    @field_validator("encryption_key")
    @classmethod
    def _a_usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_key(value.get_secret_value())
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _a_phone_region(cls, value: str) -> str:
        # phonenumbers reads no national number in a region it does not know ("cn", "UK"): every phone number
        # written without its country code would be refused as "not a phone number".
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"{value!r} is not a region phone numbers are read in: an ISO 3166 alpha-2 code in capitals, "
                "such as CN or GB"
            )
        return value

    @field_validator("database_url", "listen_database_url", "reports_database_url")
    @classmethod
    def _a_database(cls, value: str | None) -> str | None:
        return None if value is None else check_database_url(value)

    @model_validator(mode="after")
    def _listening_past_the_pooler(self) -> Self:
        # Through transaction pooling, LISTEN holds no session: notifications (cache invalidations, a revoked
        # key among them) would be lost without a word, and changes would wait for the cache's lifetime.
        if self.database_pooler == "pgbouncer" and self.listen_database_url is None and not self.is_sqlite:
            raise ValueError(
                "LOYALTY_DATABASE_POOLER=pgbouncer needs LOYALTY_LISTEN_DATABASE_URL: PostgreSQL itself (or "
                "a session-mode pool), where each process LISTENs for cache changes, since LISTEN through "
                "transaction pooling misses them"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def listen_url(self) -> str:
        """The database URL to LISTEN on."""
        return self.listen_database_url or self.database_url


# Variables of the project's own tooling (the test suite, benchmarks, CI), which share the prefix.
_TOOLING = ("LOYALTY_TEST_", "LOYALTY_BENCH_", "LOYALTY_CI_")


def variable(field: str) -> str:
    """The environment variable a setting is read from."""
    return f"{Settings.model_config['env_prefix']}{field}".upper()


def unknown_variables(environ: Mapping[str, str]) -> dict[str, str | None]:
    """LOYALTY_ variables in `environ` that are no setting (so nothing reads them), each with the setting's
    variable it most likely meant to be, if one is close."""
    known = {variable(field) for field in Settings.model_fields}
    unknown: dict[str, str | None] = {}
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith("LOYALTY_") and upper not in known and not upper.startswith(_TOOLING):
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.85)
            unknown[name] = close[0] if close else None
    return unknown
