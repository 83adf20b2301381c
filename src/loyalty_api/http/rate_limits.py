"""Rate limits at the edge, counted by the `limits` library in process memory or in Redis.

Budgets: each API key's calls (by scope, or the key's own rate); member lookups by phone or e-mail, and
lookups that find no one, per key; calls without a valid key per client address; failed keys per key prefix.
A key's budgets are counted under its line (Principal.key_lineage), which a rotation's replacement carries
on: the old key and the new one spend one budget during the overlap, not one each.
A spent budget is a 429 problem with `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit` headers.

Counting fails open: if the storage (Redis) cannot be reached or does not answer in time, the call goes
through and a warning is logged, so an outage of the limiter's storage never takes the till down with it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import SlidingWindowCounterSupport, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.auth.rates import default_rate
from loyalty_api.errors import LoyaltyError
from loyalty_api.settings import Settings

logger = logging.getLogger("loyalty_api.rate_limits")
# A storage outage is logged at most this often, not once per request.
_WARN_EVERY_SECONDS = 60.0
# A storage that takes longer than this to count a call is taken to be down (Redis on the same network
# answers in well under a millisecond).
STORAGE_TIMEOUT_SECONDS = 0.25


class RateLimited(LoyaltyError):
    """A budget is spent: the API key's calls, its lookups by phone or e-mail (and the member updates setting
    one, the enrolments refused for one), its lookups that found no one, or the failed authentications of the
    client address or key prefix. The detail names the budget; nothing was done.

    Wait `Retry-After` seconds, then retry; the `RateLimit` and `RateLimit-Policy` headers describe the
    budget. An operator can give a key a rate of its own.
    """

    code = "rate_limited"
    status = 429
    title = "Too many requests"
    # Refused before anything ran: a retry with the same Idempotency-Key, once the budget is back, runs it.
    final = False


@dataclass(frozen=True, slots=True)
class Budget:
    """One named limit: `name` shows in the RateLimit headers, `rate` is how much of it there is."""

    name: str
    rate: RateLimitItem

    @classmethod
    def of(cls, name: str, rate: str) -> Budget:
        return cls(name, parse(rate))


def _storage_uri(setting: str) -> str:
    # The asyncio flavour of each storage; redis goes through coredis, the library's default client.
    return f"async+{setting}"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        # A password holding `@`, `:` or `/` can only be written percent-encoded, and coredis sends it as
        # written unless told to decode it.
        in_redis = {} if settings.rate_limit_storage.startswith("memory://") else {"decode_components": True}
        storage = storage_from_string(
            _storage_uri(settings.rate_limit_storage), key_prefix="loyalty", **in_redis
        )
        assert isinstance(storage, Storage) and isinstance(storage, SlidingWindowCounterSupport)
        self.storage = storage
        self._windows: SlidingWindowCounterSupport = storage
        self._counter = SlidingWindowCounterRateLimiter(self.storage)
        # Memory cannot hang: no timeout around its counts.
        self._may_hang = not settings.rate_limit_storage.startswith("memory://")
        self._settings = settings
        self.contact_lookup = Budget.of("contact-lookup", settings.rate_limit_contact_lookup)
        self.lookup_misses = Budget.of("lookup-misses", settings.rate_limit_lookup_misses)
        self.unauthenticated = Budget.of("unauthenticated", settings.rate_limit_unauthenticated_per_address)
        self.failed_prefix = Budget.of("failed-auth", settings.rate_limit_failed_auth_per_prefix)
        # Keys' budgets, made once (this is every request's path): by a key's own rate, by a key's scopes.
        self._own_rates: dict[str, Budget] = {}
        self._defaults: dict[frozenset[Scope], Budget] = {}
        self._warned_at = -math.inf

    def budget_of(self, principal: Principal) -> Budget:
        """The key's own rate if it has one, else the most generous of its scopes' defaults."""
        if principal.rate_limit is not None:
            own = self._own_rates.get(principal.rate_limit)
            if own is None:
                own = self._own_rates[principal.rate_limit] = Budget.of("key", principal.rate_limit)
            return own
        default = self._defaults.get(principal.scopes)
        if default is None:
            rate = default_rate(self._settings, principal.scopes)
            default = self._defaults[principal.scopes] = Budget.of("key", rate)
        return default

    async def spend(self, budget: Budget, who: str, *, cost: int = 1) -> None:
        """Count `cost` units (one call) against `who`'s budget; RateLimited when it is spent."""
        if self.enabled and not await self._hit(budget, who, cost):
            raise await self._refusal(budget, who, cost)

    async def check(self, budget: Budget, who: str) -> None:
        """RateLimited when `who`'s budget is already spent; counts nothing."""
        if self.enabled and not await self._safely(self._counter.test(budget.rate, budget.name, who)):
            raise await self._refusal(budget, who)

    async def count(self, budget: Budget, who: str, *, cost: int = 1) -> None:
        """Count `cost` units against `who`'s budget for a call that is refused anyway (a failed key, a body
        too large). Nothing is counted when less than `cost` is left: the budget is as good as spent."""
        if self.enabled:
            await self._hit(budget, who, cost)

    async def remaining(self, budget: Budget, who: str) -> int:
        """How much of `who`'s budget is left: all of it when limits are off or the storage is unreachable
        (as `spend` lets calls through then)."""
        if not self.enabled:
            return budget.rate.amount
        try:
            async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS if self._may_hang else None):
                stats = await self._counter.get_window_stats(budget.rate, budget.name, who)
        except Exception:
            return budget.rate.amount
        return max(0, stats.remaining)

    async def refusal(self, budget: Budget, who: str) -> RateLimited:
        """The error a call meets once `who`'s budget is spent, with its Retry-After."""
        return await self._refusal(budget, who)

    async def reset(self) -> None:
        await self.storage.reset()

    async def _hit(self, budget: Budget, who: str, cost: int) -> bool:
        # A cost above the whole budget is charged as the whole budget, else such a call could never pass.
        return await self._safely(
            self._counter.hit(budget.rate, budget.name, who, cost=min(cost, budget.rate.amount))
        )

    async def _safely(self, counting: Awaitable[bool]) -> bool:
        try:
            if self._may_hang:
                async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
                    allowed = await counting
            else:  # even a timeout that never fires costs a quarter of a count in memory
                allowed = await counting
        except Exception as exc:  # TimeoutError included: a storage that hangs is one that is down
            now = time.monotonic()
            if now - self._warned_at > _WARN_EVERY_SECONDS:
                self._warned_at = now
                logger.warning("rate limit storage unreachable", extra={"error": type(exc).__name__})
            return True
        return allowed

    async def _refusal(self, budget: Budget, who: str, cost: int = 1) -> RateLimited:
        try:
            async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
                window = await self._windows.get_sliding_window(
                    budget.rate.key_for(budget.name, who), budget.rate.get_expiry()
                )
            wait = seconds_until_allowed(budget.rate, window, cost)
        except Exception:
            wait = budget.rate.get_expiry()
        error = RateLimited(
            f"This {budget.name} budget ({budget.rate.amount} per {budget.rate.get_expiry()} s) is spent; "
            f"retry in {wait} s"
        )
        quota = f'"{budget.name}";q={budget.rate.amount};w={budget.rate.get_expiry()}'
        error.headers = {
            "Retry-After": str(wait),
            "RateLimit-Policy": quota,
            "RateLimit": f'"{budget.name}";r=0;t={wait}',
        }
        return error


def seconds_until_allowed(rate: RateLimitItem, window: tuple[int, float, int, float], cost: int) -> int:
    """Whole seconds until a call costing `cost` passes, if nothing else is counted meanwhile: the 429's
    `Retry-After`, after which the call goes through.

    `window` is the storage's sliding window (previous count, its weight's time left, current count, the
    current counter's time to live). The counter lets a call through once
    `floor(previous × left / expiry) + current + cost <= limit`, `left` being what is left of the current
    window; when that window ends its count becomes the previous one, weighing less as the next goes by.
    (The library's own reset time is when the next counter drops, which can come while the weighted count
    still refuses.)
    """
    previous, previous_left, current, current_ttl = window
    limit, expiry = rate.amount, rate.get_expiry()
    cost = min(cost, limit)
    # What is left of this window: the previous counter lives that long, the current one a window longer.
    left = max(previous_left, current_ttl - expiry, 0.0)
    if current + cost <= limit:
        # Within this window: once the previous count's weight falls below what the current one leaves.
        wait = left - expiry * (limit - current - cost + 1) / previous if previous else 0.0
    else:
        # After it: the current count becomes the previous one and must weigh little enough.
        wait = left + max(0.0, expiry * (1 - (limit - cost + 1) / current))
    # The counter still refuses at that very instant: the next whole second (a millisecond is allowed for the
    # rounding of the storage's times).
    return max(1, math.floor(wait + 0.001) + 1)
