"""A GraphQL request's numbers, read as the numbers they are written as.

JSON read with floats rounds `1000.00000000000001` to 1000.0 before any scalar sees it, so `Long` and `Int`
took it for 1000 where REST refuses it for an integer field (http/transaction.py
`_whole_numbers_as_integers`). A number written with a fraction or an exponent is read here from its
digits: one that is whole (`1000.0`, `1e3`) is that int, as REST reads it; one that is not stays a float,
and when the nearest float happens to be whole it is a `NotWhole`, which every whole-number scalar refuses
as it refuses 1.5. No Decimal comes out of here: a Float argument is given a plain float either way.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

# Past 2^53 every float is whole, and past every whole-number scalar's range (Long stops at 2^53 - 1, Int at
# 2^31 - 1), which refuses it for its size: such a number is read as a float, as it always was.
_EXACT_FLOATS = 2**53
_LONGEST_SHOWN = 40  # characters of a number an error message quotes


class NotWhole(float):
    """A number with a fraction whose nearest float is whole (`1000.00000000000001`, `1e-400`). It is that
    float to whatever takes a float (GraphQL's Float gives `float(value)`), but it is not equal to any whole
    number and says it is no integer: GraphQL's Int (`int(value) != value`) and our Long (`is_integer()`)
    refuse it as a fraction. Errors show it as it was written."""

    text: str

    def __new__(cls, text: str) -> NotWhole:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def is_integer(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NotWhole):
            return _exactly(self.text) == _exactly(other.text)
        if isinstance(other, int | float):
            # Never equal: not to a whole number, being none, nor to a fraction a float holds exactly, since
            # that float would be the nearest one, and this number's nearest float is whole.
            return False
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = float.__hash__

    def __repr__(self) -> str:
        text = self.text
        return text if len(text) <= _LONGEST_SHOWN else f"{text[: _LONGEST_SHOWN - 1]}…"


def _exactly(text: str) -> Decimal | str:
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent of twenty digits or more
        return text


def read_number(text: str) -> Any:
    """json.loads' `parse_float`: a number written with a fraction or an exponent, as an int when it is
    whole, else a float (a NotWhole when that float is whole)."""
    read = float(text)
    if not abs(read) < _EXACT_FLOATS:  # vast, or infinite: out of every whole scalar's range
        return read
    try:
        number = Decimal(text)
    except InvalidOperation:  # an exponent of twenty digits or more, negative here: a speck, or zero
        mantissa = text.lower().partition("e")[0]
        return 0 if Decimal(mantissa) == 0 else NotWhole(text)
    if number == number.to_integral_value():
        return int(number)
    return NotWhole(text) if read.is_integer() else read
