from loyalty_api.errors import LoyaltyError


class CartItemsExceedSubtotal(LoyaltyError):
    code = "cart_items_exceed_subtotal"
    status = 422
    title = "The cart's items add up to more than its subtotal"
