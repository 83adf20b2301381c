"""API key format `lk_<prefix>_<secret>`: the prefix finds the key, only a hash of the secret is kept.

The secret is 256 random bits, so one SHA-256 is enough to store it: there is nothing to brute-force that a
slow hash would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

_PREFIX_BYTES = 6
# What a key's prefix looks like, as a path names it (`/v1/api-keys/{prefix}`).
PREFIX_PATTERN = rf"^[0-9a-f]{{{2 * _PREFIX_BYTES}}}$"


@dataclass(frozen=True, slots=True)
class KeyParts:
    prefix: str
    secret: str

    @property
    def token(self) -> str:
        return f"lk_{self.prefix}_{self.secret}"


def generate() -> KeyParts:
    return KeyParts(prefix=secrets.token_hex(_PREFIX_BYTES), secret=secrets.token_urlsafe(32))


def parse(token: str) -> KeyParts | None:
    marker, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if marker != "lk" or len(prefix) != 2 * _PREFIX_BYTES or not secret or len(token) > 200:
        return None
    return KeyParts(prefix=prefix, secret=secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
