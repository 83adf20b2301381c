from loyalty_api.errors import Conflict


class CurrencyInUse(Conflict):
    """Amounts are recorded in the programme's currency already (`recorded_in` names where: orders, points,
    prices, discounts, thresholds), and a new currency would read every one of them as that many of its own
    minor units. Nothing was changed.

    Keep the currency. A programme in another currency starts on a database of its own.
    """

    code = "currency_in_use"
    title = "The programme's currency holds amounts already"
