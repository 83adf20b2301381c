"""Card numbers: nine random digits and a Luhn check digit, so a mistyped number at the till is caught."""

from __future__ import annotations

import secrets

LENGTH = 10
# A Chinese or Japanese input method types digits full width: the same number, not a mistyped one.
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def luhn_check_digit(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:  # these digits are doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def as_typed(number: str) -> str:
    """A card number as a person typed it, full-width digits read as the digits they are."""
    return number.translate(_FULL_WIDTH_DIGITS)


def is_valid(number: str) -> bool:
    if len(number) != LENGTH or not number.isascii() or not number.isdigit():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def generate() -> str:
    payload = str(secrets.choice("123456789")) + "".join(
        secrets.choice("0123456789") for _ in range(LENGTH - 2)
    )
    return payload + luhn_check_digit(payload)
