"""Orders: what each order earned, redeemed and had refunded, and what members bought, which points, refunds,
tiers, lifecycles, segments and partners' purchases read."""
