"""Whether LOYALTY_ENCRYPTION_KEY is the key that encrypted what the database holds, asked before a command
(`serve`, `worker`, `jobs`) works on it."""

from __future__ import annotations

from loyalty_api.crypto import DecryptionFailed
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.idempotency.repository import IdempotencyRepository
from loyalty_api.members.repository import MemberRepository
from loyalty_api.partners.repository import PerkRepository
from loyalty_api.webhooks.endpoint_repository import EndpointRepository


async def key_opens_what_is_stored(uow: UnitOfWork) -> bool:
    """Whether the unit's encryption key opens what the database holds encrypted (True when it holds nothing):
    the first value found is tried. A service started with another key would fail on every member it read,
    and its blind indexes would match no stored phone or e-mail: lookups would miss and the same phone would
    be enrolled again. Members' personal data is looked for first (the most of it, and what another key
    breaks the most), then the secrets encrypted beside it: a database whose members were all erased, or
    none enrolled yet, may still hold a webhook endpoint's signing secret, a partner's pooled codes or a
    recorded Idempotency-Key reply, and another key would fail on each (every delivery to the endpoint, every
    code handed out or shown, every retry with the key). One read of one row each, until one is found."""
    session = uow.session
    for find in (
        MemberRepository(session).get_any_ciphertext,
        EndpointRepository(session).get_any_ciphertext,
        PerkRepository(session).get_any_ciphertext,
        IdempotencyRepository(session).get_any_ciphertext,
    ):
        sealed = await find()
        if sealed is None:
            continue
        try:
            uow.vault.decrypt(sealed)
        except DecryptionFailed:
            return False
        return True
    return True
