from loyalty_api.errors import Conflict, InvalidField, LoyaltyError, NotFound


class MemberNotFound(NotFound):
    code = "member_not_found"
    title = "No such member"


class MemberExists(Conflict):
    code = "member_exists"
    title = "A member with this identifier already exists"

    def __init__(self, field: str) -> None:
        super().__init__(f"Another member already has this {field}", field=field)


class InvalidMemberNumber(LoyaltyError):
    code = "invalid_member_number"
    status = 422
    title = "The member number's check digit does not match: it was probably mistyped"


class UnknownReferralCode(InvalidField):
    code = "unknown_referral_code"

    def __init__(self) -> None:
        super().__init__("referral_code", "no member has this referral code")


class LookupNeedsOneIdentifier(LoyaltyError):
    code = "lookup_needs_one_identifier"
    status = 422
    title = "Give exactly one of member_number, phone, email, or external_system with external_id"
