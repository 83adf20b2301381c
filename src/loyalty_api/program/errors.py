from loyalty_api.errors import Conflict


class CurrencyInUse(Conflict):
    """Amounts are recorded in the programme's currency already (`recorded_in` names where: orders, points,
    prices, discounts, thresholds, rates per major unit), and a new currency would read every one of them as
    that many of its own minor units (a rate as that many points per unit of its own). Nothing was changed.

    Keep the currency. A programme in another currency starts on a database of its own.
    """

    code = "currency_in_use"
    title = "The programme's currency holds amounts already"
