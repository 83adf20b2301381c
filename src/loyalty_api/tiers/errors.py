from loyalty_api.errors import Conflict, NotFound


class TierNotFound(NotFound):
    code = "tier_not_found"
    title = "No such tier"


class TierExists(Conflict):
    code = "tier_exists"
    title = "A tier with this code already exists"


class TierRankTaken(Conflict):
    code = "tier_rank_taken"
    title = "Another tier already has this rank"


class TierInUse(Conflict):
    code = "tier_in_use"
    title = "Members hold this tier: move them first"


class LadderVersionNotFound(NotFound):
    code = "tier_ladder_version_not_found"
    title = "No such version of the tier ladder"


class NoOverride(NotFound):
    code = "tier_override_not_found"
    title = "The member's tier is not overridden"


class LadderChangedMeanwhile(Conflict):
    code = "tier_ladder_changed_meanwhile"
    title = "Another change to the ladder was saved at the same moment: read the ladder and try again"
