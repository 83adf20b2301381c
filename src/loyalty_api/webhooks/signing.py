"""Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, one per secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence


def secret_key(secret: str) -> bytes:
    """The key bytes of a `whsec_…` secret (base64 after the prefix)."""
    encoded = secret.removeprefix("whsec_")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: every secret signs, space-separated, so a receiver that knows either
    the old or the new secret during a rotation verifies the message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode("ascii")
        for s in secrets
    )
