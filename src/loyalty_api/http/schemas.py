"""Shapes shared by every REST domain: money and whole numbers that must never be floats."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty_api.money import Money

# Strict: a JSON float such as 10.0 is refused rather than quietly turned into points or money.
Points = Annotated[int, Field(strict=True, ge=1, le=1_000_000_000)]
MinorUnits = Annotated[int, Field(strict=True, ge=0, le=10**15)]
OrderRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]


class ReadModel(BaseModel):
    """A response body, read from the service's result object by attribute name."""

    model_config = ConfigDict(from_attributes=True)


class MoneyBody(BaseModel):
    """Money in minor units (fen, cents) with its ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _from_money(cls, value: Any) -> Any:
        if isinstance(value, Money):
            return {"amount": value.amount_minor, "currency": value.currency}
        return value

    amount: MinorUnits = Field(description="Minor units: 12990 is 129.90 CNY")
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    def money(self) -> Money:
        return Money(amount_minor=self.amount, currency=self.currency)
