"""Whether LOYALTY_ENCRYPTION_KEY is the key that encrypted what the database holds, asked before a command
(`serve`, `worker`, `jobs`) works on it."""

from __future__ import annotations

from loyalty_api.crypto import DecryptionFailed
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.idempotency.repository import IdempotencyRepository
from loyalty_api.members.repository import MemberRepository
from loyalty_api.partners.repository import PerkRepository
from loyalty_api.webhooks.endpoint_repository import EndpointRepository


async def what_the_key_does_not_open(uow: UnitOfWork) -> str | None:
    """What the database holds encrypted that the unit's encryption key does not open, named for the operator
    (None: the key opens it, or the database holds nothing encrypted): the first value found is tried. A
    service started with another key would fail on every member it read, and its blind indexes would match
    no stored phone or e-mail: lookups would miss and the same phone would be enrolled again. Members'
    personal data is looked for first (the most of it, and what another key breaks the most), then the
    secrets encrypted beside it: a database whose members were all erased, or none enrolled yet, may still
    hold a webhook endpoint's signing secret, a partner's pooled codes or a recorded Idempotency-Key reply,
    and another key would fail on each (every delivery to the endpoint, every code handed out or shown, every
    retry with the key). One read of one row each, until one is found."""
    session = uow.session
    for find, what in (
        (MemberRepository(session).get_any_ciphertext, "the members' personal data"),
        (EndpointRepository(session).get_any_ciphertext, "the webhook endpoints' signing secrets"),
        (PerkRepository(session).get_any_ciphertext, "the partners' pooled perk codes"),
        (IdempotencyRepository(session).get_any_ciphertext, "the recorded Idempotency-Key replies"),
    ):
        sealed = await find()
        if sealed is None:
            continue
        try:
            uow.vault.decrypt(sealed)
        except DecryptionFailed:
            return what
        return None
    return None
