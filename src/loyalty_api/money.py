"""Money in minor units, and the one way rates turn amounts into points and points into money."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Any, Final

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

# ISO 4217 currencies whose minor unit is not 1/100 (the rest have two decimals): none, three, or four (the
# Chilean and Uruguayan units of account, CLF and UYW).
_EXPONENTS: Final = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}

# The ISO 4217 currencies that have a minor unit, funds codes included (CLF, UYI, …): a programme's currency
# is one of them (program.service.put_program). Three letters are not enough: YEN is no code (yen is JPY, and
# amounts in YEN would be read with two decimals, 1,000 yen as 10.00), RMB names China's money, not its code
# (CNY); gold, silver, the IMF's and the bond markets' units, the testing code and XXX have no minor unit.
CURRENCIES: Final = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN
    BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN
    MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
    SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD
    USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905 - a table to read, not a list of 170 lines
)


class Rounding(StrEnum):
    """How a fractional number of points becomes whole: down (the default), half up, or up."""

    down = "down"
    half_up = "half_up"
    up = "up"


_DECIMAL_ROUNDING: Final = {Rounding.down: ROUND_DOWN, Rounding.half_up: ROUND_HALF_UP, Rounding.up: ROUND_UP}


def minor_unit_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def major(self) -> Decimal:
        """The amount in major units (yuan, not fen), exactly."""
        return Decimal(self.amount_minor).scaleb(-minor_unit_exponent(self.currency))


# JSON's number grammar: no leading zeros, no sign but a minus, digits 0-9 only.
# An exponent of up to six digits: Decimal cannot hold one of twenty (InvalidOperation), and every rate's
# bounds refuse one past six anyway.
DECIMAL_PATTERN = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]{1,6})?$"
_DECIMAL_TEXT = re.compile(DECIMAL_PATTERN.removeprefix("^").removesuffix("$"))


def decimal_text(value: object) -> object:
    """A rate given as text is written as JSON writes a number, in the digits 0-9: Python's Decimal would also
    read `1_0` as 10, `١` (an Arabic-Indic one) as 1 and ` 1 ` as 1. A JSON number is taken as it is
    written (`1.5` as 1.5). The result is the Decimal that strict validation then takes."""
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        return Decimal(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    raise ValueError('must be a decimal number written with the digits 0-9, such as "1.5"')


@dataclass(frozen=True, slots=True)
class DecimalText:
    """A rate's annotation: read with `decimal_text`, and the document's string form says which text that
    takes (`DECIMAL_PATTERN`), so a generated client or a fuzzer obeying it sends only what is read."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(decimal_text, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        for form in json_schema.get("anyOf", [json_schema]):
            if form.get("type") == "string":
                form["pattern"] = DECIMAL_PATTERN
        return json_schema


def plain_decimal(value: Decimal) -> Decimal:
    """A stored rate as its fewest digits write it (`1.50` is `1.5`, `1E+2` is `100`): pydantic's digit limits
    do not count trailing zeros, so a rate within them could still be longer than the column that keeps it."""
    return Decimal(format((value + 0).normalize(), "f"))


# The two rates requests give in several places, each one declaration: points per major unit of the currency
# (the programme's base rate, a rule's rate), and a multiplier of points (a tier's, a rule's). A column that
# keeps one adds `AfterValidator(plain_decimal)`.
Rate = Annotated[Decimal, Field(ge=0, le=100_000, max_digits=18, decimal_places=6), DecimalText()]
Multiplier = Annotated[Decimal, Field(ge=1, le=100, max_digits=8, decimal_places=4), DecimalText()]


def round_points(value: Decimal | Fraction, rounding: Rounding) -> int:
    if isinstance(value, Fraction):
        # A share of a receipt (paid over listed) need not be a finite decimal: round the exact ratio, since
        # 1/3 as a Decimal is 0.333…3 and a whole result would come out a hair under or over.
        whole, rest = divmod(abs(value), 1)
        if rest and (rounding is Rounding.up or (rounding is Rounding.half_up and rest >= Fraction(1, 2))):
            whole += 1
        return int(whole) if value >= 0 else -int(whole)
    return int(value.quantize(Decimal(1), rounding=_DECIMAL_ROUNDING[rounding]))


def points_for(amount: Money, rate: Decimal, rounding: Rounding = Rounding.down) -> int:
    """Points for spending `amount` at `rate` points per major currency unit."""
    return round_points(amount.major() * rate, rounding)


# The most points one request spends, holds, sends or sets a price in: a checkout quote offers no more, so a
# hold or a redeem of what it offered is accepted.
MOST_POINTS_AT_ONCE = 10**9


def value_of_points(points: int, point_value_minor: Decimal, currency: str) -> Money:
    """What `points` are worth, in minor units, rounded down: a member never gets more than the rate says."""
    return Money(
        amount_minor=int((point_value_minor * points).quantize(Decimal(1), rounding=ROUND_DOWN)),
        currency=currency,
    )


def most_points_within_share(total_minor: int, share: Decimal, point_value_minor: Decimal) -> int:
    """The most points that may pay `share` of a total of `total_minor`: the exact value of the points, not
    the rounded-down money they bring, stays within it (points × value ≤ total × share). The quote offers
    this many and a redeem or a capture accepts up to it, so what one offers the other takes."""
    return (Fraction(share) * total_minor) // Fraction(point_value_minor)
