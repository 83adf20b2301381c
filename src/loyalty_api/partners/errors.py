from __future__ import annotations

from loyalty_api.errors import Conflict, NotFound


class PartnerNotFound(NotFound):
    """No partner has this code or id.

    Check it against `GET /v1/partners`.
    """

    code = "partner_not_found"
    title = "No such partner"


class PartnerExists(Conflict):
    """A partner already has this code; nothing was created.

    Pick another code, or change the existing partner with `PUT /v1/partners/{code}`.
    """

    code = "partner_exists"
    title = "A partner with this code exists"


class PartnerNotActive(Conflict):
    """The partner is suspended: it cannot be linked to, and its keys reach no member.

    An operator reactivates it with `PUT /v1/partners/{code}` and `"status": "active"`.
    """

    code = "partner_not_active"
    title = "The partner is suspended"


class LinkCodeInvalid(NotFound):
    """The link code is unknown, expired, used already, or was given for another partner. Nothing was
    linked; the four look the same, so a code cannot be probed.

    Ask the member for a new code: the till or shop gets one with `POST /v1/members/{id}/partner-link-codes`.
    """

    code = "link_code_invalid"
    title = "The link code is unknown, expired or used"


class AlreadyLinked(Conflict):
    """The member is linked to this partner already, or the partner's customer reference is linked to
    another member. Nothing was linked.

    Unlink first (`DELETE /v1/partner/links/{ref}`), then link again with a new code.
    """

    code = "already_linked"
    title = "Already linked"


class LinkNotFound(NotFound):
    """The partner has no member linked under this customer reference, or the member has no link to this
    partner. A partner's key never learns anything of members not linked to it.

    Check the reference; link the customer first with `POST /v1/partner/links`.
    """

    code = "link_not_found"
    title = "No such link"
