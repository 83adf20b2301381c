"""API keys' rates: the one a key without a rate of its own gets, and whether one rate allows no more than
another (what a key made or rotated over the API may have, next to the key that makes it:
auth.service._rate_bounded_by)."""

from __future__ import annotations

from collections.abc import Iterable

from limits import parse

from loyalty_api.auth.principal import Scope
from loyalty_api.settings import Settings


def default_rate(settings: Settings, scopes: Iterable[Scope]) -> str:
    """The rate of a key without one of its own: the most generous of its scopes' defaults."""
    by_scope = {
        Scope.admin: settings.rate_limit_admin,
        Scope.pos: settings.rate_limit_pos,
        Scope.ecommerce: settings.rate_limit_ecommerce,
        Scope.partner: settings.rate_limit_partner,
        Scope.billing: settings.rate_limit_billing,
    }
    return max((by_scope[scope] for scope in scopes), key=_average)


def _average(rate: str) -> float:
    parsed = parse(rate)
    return parsed.amount / parsed.get_expiry()


def within_rate(rate: str, bound: str) -> bool:
    """Whether `rate` (such as "600/minute") lets a key send no more than `bound` does over any span of time:
    no more calls in its window than `bound` allows in its own (else a longer window's budget is spent at
    once: 6000/minute against 100/second), and no more on average (else a shorter window refills faster:
    100/second against 1000/hour). Both are rates a key or the settings were given (settings.check_rate)."""
    asked, most = parse(rate), parse(bound)
    return (
        asked.amount <= most.amount and asked.amount * most.get_expiry() <= most.amount * asked.get_expiry()
    )
