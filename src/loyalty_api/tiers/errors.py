from loyalty_api.errors import Conflict, NotFound


class TierNotFound(NotFound):
    """No tier has this code.

    Check the code against the ladder, `GET /v1/tiers`.
    """

    code = "tier_not_found"
    title = "No such tier"


class TierExists(Conflict):
    """A tier with this code exists already, so nothing was created.

    Choose another code, or change the existing tier with `PUT /v1/tiers/{code}`.
    """

    code = "tier_exists"
    title = "A tier with this code already exists"


class TierRankTaken(Conflict):
    """Another tier already has this rank; ranks order the ladder and are unique. Nothing was changed.

    Choose a free rank, or give the other tier another rank first.
    """

    code = "tier_rank_taken"
    title = "Another tier already has this rank"


class TierInUse(Conflict):
    """Members still hold this tier (`members` says how many), so it cannot be deleted.

    Move those members to another tier first, or keep the tier.
    """

    code = "tier_in_use"
    title = "Members hold this tier: move them first"


class LadderVersionNotFound(NotFound):
    """No version of the tier ladder has this number.

    List the versions with `GET /v1/tier-versions` and use one of those.
    """

    code = "tier_ladder_version_not_found"
    title = "No such version of the tier ladder"


class NoOverride(NotFound):
    """The member's tier is not overridden by hand, so there is no override to end.

    Nothing to do: the member's tier already follows the qualification rules.
    """

    code = "tier_override_not_found"
    title = "The member's tier is not overridden"


class LadderChangedMeanwhile(Conflict):
    """Another change to the tier ladder was saved at the same moment, and this one was rolled back.

    Read the ladder again, and repeat the change if it still applies.
    """

    code = "tier_ladder_changed_meanwhile"
    final = False
    title = "Another change to the ladder was saved at the same moment: read the ladder and try again"
