"""Link codes: what a member hands a partner to consent to one link.

Twelve symbols of the coupon alphabet (no 0/O, no 1/I: read from a screen or aloud without mistakes), in
three groups of four: 60 random bits, good for minutes and for one use. Only a hash is stored: until it is
used, the code is a credential to the member's joint view.
"""

from __future__ import annotations

import hashlib
import secrets

from loyalty_api.coupons.codes import ALPHABET

SYMBOLS = 12
GROUP = 4
_VALID = frozenset(ALPHABET)


def generate_code() -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(SYMBOLS))
    return "-".join(symbols[i : i + GROUP] for i in range(0, SYMBOLS, GROUP))


def code_hash(typed: str) -> str | None:
    """The stored hash of the code a partner sent (any case, hyphens or spaces); None if it cannot be one."""
    compact = typed.upper().replace("-", "").replace(" ", "")
    if len(compact) != SYMBOLS or not _VALID.issuperset(compact):
        return None
    return hashlib.sha256(compact.encode("ascii")).hexdigest()
