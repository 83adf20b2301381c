from loyalty_api.errors import Conflict, NotFound


class RewardNotFound(NotFound):
    code = "reward_not_found"
    title = "No such reward"


class RewardNotAvailable(Conflict):
    code = "reward_not_available"
    title = "The reward is not offered now (inactive, or outside its validity window)"


class RewardOutOfStock(Conflict):
    code = "reward_out_of_stock"
    title = "The reward is out of stock"


class RewardLimitReached(Conflict):
    code = "reward_limit_reached"
    title = "The member has redeemed this reward as many times as allowed"
