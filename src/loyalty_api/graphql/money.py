"""Money and large whole numbers in GraphQL.

GraphQL's `Int` is a 32-bit signed integer, too small for money in minor units (a 10,000,000.00 CNY order
is 10⁹ fen) and for large points balances. `Long` is a whole number up to ±(2⁵³ − 1), sent as a JSON number
like REST sends it, so no client ever meets a float or a string where REST has an integer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, NewType, overload

import strawberry
from strawberry.types.scalar import ScalarDefinition

from graphql import IntValueNode, ValueNode
from loyalty_api.errors import LoyaltyError
from loyalty_api.graphql.dates import DATE
from loyalty_api.graphql.instants import DATE_TIME
from loyalty_api.http.schemas import MoneyRead
from loyalty_api.money import Money as MoneyValue

Long = NewType("Long", int)
_LIMIT = 2**53 - 1


def _whole(value: Any) -> int:
    # Reasons short enough to outlast the cut of long quoted pieces in an error's message (graphql/schema.py
    # `_without_echo`), which quotes them.
    if isinstance(value, bool) or not isinstance(value, int):
        # A fraction is a float, however it was read (graphql/numbers.py: `NotWhole` is one).
        kind = "float" if isinstance(value, float) else type(value).__name__
        raise TypeError(f"must be a whole number, not {kind}")
    if abs(value) > _LIMIT:
        raise ValueError("must be within ±(2^53 - 1)")
    return value


class LongOutOfRange(LoyaltyError):
    """A figure of the answer (a sum of purchases, a balance) is past what GraphQL's `Long` carries, ±(2^53 −
    1): a JSON number beyond it loses digits in JavaScript. The field is null; the rest of the answer stands.

    Read the figure over REST, which sends whole numbers of any size (a member's tier and its goals at
    `GET /v1/members/{id}/tier`, their points at `GET /v1/members/{id}/points`).
    """

    code = "long_out_of_range"
    status = 422
    title = "The figure is too large for GraphQL's Long"


def _shown(value: Any) -> int:
    """A figure of ours as a `Long`: out of range, it is the answer's to explain, not a bug to mask."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LIMIT:
        raise LongOutOfRange(f"{value} is past ±(2^53 - 1); REST sends it whole")
    return _whole(value)


def _variable(value: Any) -> int:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _LIMIT:
        # A whole number written with a fraction or an exponent in a variable (`100.0`, `1e3`): the number, as
        # REST reads one in a body and GraphQL's Int in a variable. The request's JSON gives such a number as
        # an int already (graphql/numbers.py), and one whose float only looks whole as a `NotWhole`, which
        # says it is no integer; a float here came some other way, and every whole float in range is exact.
        return int(value)
    return _whole(value)


def _literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> int:
    if not isinstance(node, IntValueNode):
        raise TypeError("Long must be a whole number literal")
    return _whole(int(node.value))


LONG: ScalarDefinition = strawberry.scalar(
    name="Long",
    description="A whole number between -(2^53 - 1) and 2^53 - 1, sent as a JSON number (GraphQL's Int "
    "stops at 2^31 - 1): money in minor units, and points.",
    serialize=_shown,
    parse_value=_variable,
    parse_literal=_literal,
)
# Every scalar the schema maps a Python type to: Long, DateTime written as everywhere else (UTC, `Z`), and
# Date and DateTime read as REST reads them.
SCALARS: dict[object, ScalarDefinition] = {Long: LONG, datetime: DATE_TIME, date: DATE}


# Shareable: other teams' subgraphs (orders, payments) declare their own `Money`; Federation 2 refuses two
# subgraphs resolving the same field unless it is @shareable in each (INVALID_FIELD_SHARING). The field names
# and types must match theirs (`amount: Long!`, `currency: String!`).
@strawberry.federation.type(
    shareable=True,
    description="Money in minor units (12990 is 129.90 CNY) with its ISO 4217 currency.",
)
class Money:
    amount: Long
    currency: str

    @classmethod
    def of(cls, money: MoneyValue) -> Money:
        return cls(amount=Long(money.amount_minor), currency=money.currency)

    @overload
    @classmethod
    def of_read(cls, read: MoneyRead) -> Money: ...

    @overload
    @classmethod
    def of_read(cls, read: MoneyRead | None) -> Money | None: ...

    @classmethod
    def of_read(cls, read: MoneyRead | None) -> Money | None:
        """Money as a REST reply shows it; null stays null (an order total nobody sent)."""
        return None if read is None else cls.of(read.money())


@strawberry.input(description="Money in minor units (12990 is 129.90 CNY) with its ISO 4217 currency.")
class MoneyInput:
    amount: Long
    currency: str
