"""Coupon codes: random, unguessable, and easy to read out or type at a till.

A code is 16 symbols from a 32-symbol alphabet (5 bits each: 80 bits from `secrets`), written in four
groups of four: `7KQM-X3RD-9VHT-PZ2C`. The alphabet has no 0/O and no 1/I, so a code read aloud or from a
receipt cannot be mistyped into another valid code by those look-alikes. Uniqueness is the database's job
(`uq_coupons__code`); the issuer draws again on the (about 2⁻⁸⁰) chance of a collision.
"""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
GROUPS = 4
GROUP_LENGTH = 4
SYMBOLS = GROUPS * GROUP_LENGTH
_VALID = frozenset(ALPHABET)


def _grouped(symbols: str) -> str:
    return "-".join(symbols[i : i + GROUP_LENGTH] for i in range(0, SYMBOLS, GROUP_LENGTH))


def generate_code() -> str:
    # 80 random bits read at once, five to a symbol (the alphabet has 32): uniform, as sixteen draws of
    # `secrets.choice` were, and a campaign issuing a thousand coupons a batch no longer spends a third of
    # its time in sixteen reads of the OS's randomness per code.
    bits = int.from_bytes(secrets.token_bytes(SYMBOLS * 5 // 8), "big")
    return _grouped("".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(SYMBOLS)))


def normalize_code(typed: str) -> str | None:
    """The code as stored, from what a person or a program sent (any case, with or without hyphens or
    spaces); None when it cannot be a code."""
    compact = typed.upper().replace("-", "").replace(" ", "")
    if len(compact) != SYMBOLS or not _VALID.issuperset(compact):
        return None
    return _grouped(compact)
