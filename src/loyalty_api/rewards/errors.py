from loyalty_api.errors import Conflict, NotFound


class RewardNotFound(NotFound):
    """No reward has this id.

    Check the id against the catalogue, `GET /v1/rewards`.
    """

    code = "reward_not_found"
    title = "No such reward"


class RewardNotAvailable(Conflict):
    """The reward exists but is not offered now: it is inactive, or outside its validity window. No points
    were spent.

    Offer the member another reward from `GET /v1/rewards`.
    """

    code = "reward_not_available"
    title = "The reward is not offered now (inactive, or outside its validity window)"


class RewardOutOfStock(Conflict):
    """The reward has no stock left; no points were spent.

    Offer another reward, or try again once an operator has restocked it.
    """

    code = "reward_out_of_stock"
    title = "The reward is out of stock"


class RewardLimitReached(Conflict):
    """The member has redeemed this reward as many times as it allows per member (`limit`); no points were
    spent.

    Do not retry for this member; offer another reward.
    """

    code = "reward_limit_reached"
    title = "The member has redeemed this reward as many times as allowed"
