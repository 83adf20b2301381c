from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class ActivityRuleNotFound(NotFound):
    """No activity rule has this id.

    Check the id against `GET /v1/activity-rules`.
    """

    code = "activity_rule_not_found"
    title = "No such activity rule"


class ActivityRuleExists(Conflict):
    """Another activity rule has this `type` already: each type of activity has one rule; nothing was changed.

    Change that rule instead (`PATCH /v1/activity-rules/{id}`), or pick another `type`.
    """

    code = "activity_rule_exists"
    title = "An activity rule for this type exists"


class UnknownActivityType(LoyaltyError):
    """No activity rule has this `type`, so the activity earns nothing and was not recorded.

    Send a `type` that `GET /v1/activity-rules` lists, or ask an operator to add a rule for it.
    """

    code = "unknown_activity_type"
    status = 422
    title = "No activity rule for this type"


class ActivityRuleInactive(LoyaltyError):
    """The activity rule of this `type` is not in force, so the activity earns nothing and was not recorded:
    it is switched off, or its window has not begun (`valid_from`, when it begins) or is over (`valid_until`,
    when it ended).

    Do not retry now. Before `valid_from`, the same `ref` may be sent once the rule is in force (with a new
    `Idempotency-Key`: a key replays this answer); an operator can switch the rule on again or change its
    window (`PATCH /v1/activity-rules/{id}`).
    """

    code = "activity_rule_inactive"
    status = 422
    title = "The activity rule for this type is not in force"


class ActivityCapReached(Conflict):
    """The member has been rewarded for this type of activity as many times as the rule allows in the
    programme's day (`cap` `daily`) or its period (`cap` `period`); the activity was not recorded and earned
    nothing. `limit` is the cap and `resets_at` when the next one counts (null: a lifetime cap never resets).

    Do not retry before `resets_at`; the same `ref` may be sent again then (with a new `Idempotency-Key`: a
    key replays this answer).
    """

    code = "activity_cap_reached"
    title = "The member reached the cap for this activity"
