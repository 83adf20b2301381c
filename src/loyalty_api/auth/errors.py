from __future__ import annotations

from collections.abc import Iterable

from loyalty_api.errors import Conflict, Forbidden, LoyaltyError, NotFound, Unauthenticated


class InvalidApiKey(Unauthenticated):
    """The `Authorization` header is missing or sent more than once, is not `Bearer lk_<prefix>_<secret>`, or
    names a key that is unknown, revoked or expired (a rotated key expires once its overlap ends). Nothing was
    done, and the body was not read.

    Send an active API key as `Authorization: Bearer lk_…`; retrying with the same key will not help. Repeated
    failures from one address or for one key prefix are answered with `rate_limited` instead.
    """

    code = "invalid_api_key"
    title = "The API key is missing, malformed, unknown, revoked or expired"

    @classmethod
    def missing(cls) -> InvalidApiKey:
        return cls("Send the API key as `Authorization: Bearer lk_…`")

    @classmethod
    def sent_more_than_once(cls, times: int) -> InvalidApiKey:
        return cls(f"The Authorization header was sent {times} times: send one key, once")


class AddressNotAllowed(Forbidden):
    """The API key is valid, but it may only be used from certain client networks, and this request came from
    an address outside them. Nothing was done, and the body was not read. Behind a proxy, the address is the
    one the proxy forwards, when the service trusts that proxy.

    Call from one of the key's networks (`loyalty-api keys list` shows them), or use a key made for this
    network; retrying from here will not help. Repeated refusals from one address are answered with
    `rate_limited` instead.
    """

    code = "address_not_allowed"
    title = "This API key may not be used from this address"


class ScopeNotAllowed(Forbidden):
    """The API key is valid, but none of its scopes allows this call (a `pos` key changing the tier ladder, a
    key other than `admin` suspending a member). `allowed_scopes`, when present, lists the scopes that would.

    Make the call with a key that has one of those scopes; retrying with this key will not help.
    """

    code = "scope_not_allowed"
    title = "This API key's scopes do not allow this call"

    @classmethod
    def needing(cls, scopes: Iterable[str]) -> ScopeNotAllowed:
        """The refusal of a call that needs one of `scopes`."""
        allowed = sorted(scopes)
        return cls(f"This call needs one of the scopes: {', '.join(allowed)}", allowed_scopes=allowed)


class ApiKeyNotFound(NotFound):
    """No API key has this prefix, or, to rotate or revoke one, none that is still in force: it never
    existed, or it is revoked (or, to rotate, expired) already. `/v1/api-keys/{prefix}` and the
    `loyalty-api keys revoke` and `keys rotate` commands give this.

    List the keys (`GET /v1/api-keys`, or `loyalty-api keys list`) and name a key's prefix.
    """

    code = "api_key_not_found"
    title = "No such API key"


class PartnerRequired(LoyaltyError):
    """A key with the `partner` scope must name the partner it acts for, and a key without that scope must
    not. `POST /v1/api-keys` and the `loyalty-api keys create` command give this.

    Name the partner (`partner` in the body, `--partner` on the command line) together with the `partner`
    scope, and only then.
    """

    code = "partner_required"
    status = 422
    title = "A partner key must name its partner, and only a partner key may"


class PartnerKeyNotAlone(LoyaltyError):
    """A key with the `partner` scope carries no other: with `pos`, `ecommerce`, `admin` or `billing` beside
    it, it would reach every member, not only those linked to its partner. `POST /v1/api-keys` and the
    `loyalty-api keys` commands give this (a key made before the rule is used with the partner scope alone).

    Make the partner's key with the `partner` scope alone, and another key for anything else.
    """

    code = "partner_key_not_alone"
    status = 422
    title = "A partner key carries the partner scope alone"


class KeyRotatedAlready(Conflict):
    """The key was rotated already, and the key that replaced it (`replaced_by`, a prefix) is still in force.
    A second replacement would leave the first one working for as long as it was made to, its secret
    wherever it was printed. Nothing was made; the key's overlap is as the first rotation set it.

    If the replacement's key was lost, revoke it (`DELETE /v1/api-keys/{replaced_by}`, or `loyalty-api keys
    revoke`), then rotate this key again. To replace the replacement, rotate `replaced_by` instead.
    """

    code = "key_rotated_already"
    title = "This API key was rotated already and its replacement is in force"

    @classmethod
    def by(cls, prefix: str, replacement: str) -> KeyRotatedAlready:
        return cls(
            f"Key {prefix} was rotated already: its replacement {replacement} is in force. Revoke "
            f"{replacement} if its key was lost, then rotate {prefix} again; or rotate {replacement}.",
            replaced_by=replacement,
        )


class KeyBeyondCaller(Forbidden):
    """The key asked for would reach further than the key making or rotating it: networks that share no
    address with the caller's, a rate faster than the caller's own (more calls in its window than the
    caller's in its own, or more on average), or, to rotate, a key that works later than the caller's, from
    addresses outside its networks or faster than its rate (its replacement would carry on its line, and
    replay what it was answered). A key made over the API never reaches further than the key that makes it
    (its expiry, networks and own rate bound the new key's), so that a key given for a week, for one office
    or a small budget, cannot leave behind a key that outlasts, outreaches or outruns it. Nothing was made.

    Name networks and a rate within your key's (`GET /v1/api-keys/{prefix}` shows them), or make or rotate
    the key with a key that reaches as far, or on the host with `loyalty-api keys`.
    """

    code = "key_beyond_caller"
    title = "A key cannot reach further than the key that makes it"
