from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class CampaignNotFound(NotFound):
    """No campaign has this id.

    Check the id against `GET /v1/campaigns`.
    """

    code = "campaign_not_found"
    title = "No such campaign"


class CampaignTierUnknown(LoyaltyError):
    """The audience names a `tier` code that no tier has; no campaign was made.

    Send a code that `GET /v1/tiers` lists, or leave `tier` out to reach members on every tier.
    """

    code = "campaign_tier_unknown"
    status = 422
    title = "The campaign's tier does not exist"


class CampaignPlanUnknown(LoyaltyError):
    """The audience names a `plan` code that no paid-membership plan has; no campaign was made.

    Send a code that `GET /v1/plans` lists, or leave `plan` out.
    """

    code = "campaign_plan_unknown"
    status = 422
    title = "The campaign's plan does not exist"


class CampaignFinished(Conflict):
    """The campaign has reached its whole audience already (`completed`): there is nothing left to cancel.

    Nothing was changed; the members it reached keep what it gave them.
    """

    code = "campaign_finished"
    title = "The campaign has finished"
