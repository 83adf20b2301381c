"""What an audit entry keeps of a representation: everything but personal data and secrets.

An auditor needs to see what changed (a tier's threshold, a member's status, a balance), never who the
member is: a member is named by their id, which the ledger keeps after an erasure too. Secrets shown once
(a webhook's signing secret, a new API key) are not kept either.
"""

from __future__ import annotations

from typing import Any

# Keys never kept, wherever they appear (a partner's customer ref may be a phone number).
_ALWAYS = frozenset(
    {
        "phone",
        "email",
        "birthday",
        "member_number",  # the card in the member's pocket; the entry names the member by id
        "partner_customer_ref",
        "secret",
        "previous_secret",
        "token",
        "api_key",
        # A webhook receiver's answer (a delivery's attempt, retried by hand): it may echo what it was sent,
        # or more, and an erasure forgets it; the attempt's status and error say what happened.
        "response_body",
    }
)
# Keys that are personal data in an object about a person (a member's name) and not elsewhere (a tier's).
_OF_A_PERSON = frozenset({"name", "external_ids"})
# An object holding any of these is about a member.
_A_PERSON = frozenset({"member_number", "phone", "email", "birthday"})


def redacted(value: Any) -> Any:
    """`value` (parsed JSON) without personal data and secrets."""
    if isinstance(value, dict):
        about_a_person = not _A_PERSON.isdisjoint(value)
        return {
            key: redacted(item)
            for key, item in value.items()
            if key not in _ALWAYS and not (about_a_person and key in _OF_A_PERSON)
        }
    if isinstance(value, list):
        return [redacted(item) for item in value]
    return value
