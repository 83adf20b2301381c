from loyalty_api.errors import LoyaltyError


class CartItemsExceedSubtotal(LoyaltyError):
    """The cart's items (quantity × unit price) add up to more than its `subtotal`; `items_total` and
    `subtotal` give both sums.

    Send a subtotal that covers every listed item, or correct the items.
    """

    code = "cart_items_exceed_subtotal"
    status = 422
    title = "The cart's items add up to more than its subtotal"
