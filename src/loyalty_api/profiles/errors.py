from loyalty_api.errors import Conflict, InvalidField, LoyaltyError


class MemberExists(Conflict):
    """Another member already has this phone number, e-mail address, external id or card number (`field` says
    which), so nothing was created or changed. In an import, `row` is the index in `members` of the member
    refused (the other may be earlier in the same import); nothing of the import was written.

    Look that member up (`GET /v1/members/lookup`) and use them, or send a different value.
    """

    code = "member_exists"
    title = "A member with this identifier already exists"

    def __init__(self, field: str, *, row: int | None = None) -> None:
        if row is None:
            super().__init__(f"Another member already has this {field}", field=field)
        else:
            super().__init__(f"members.{row}: another member already has this {field}", field=field, row=row)


class InvalidMemberNumber(LoyaltyError):
    """The member number's check digit does not match, so the number was mistyped or misread; no lookup was
    made.

    Scan or type the card number again.
    """

    code = "invalid_member_number"
    status = 422
    title = "The member number's check digit does not match: it was probably mistyped"


class UnknownReferralCode(InvalidField):
    """No member has the `referral_code` given at enrolment, so the member was not created.

    Check the code with the person who referred the customer, or enrol without it.
    """

    code = "unknown_referral_code"
    title = "No member has this referral code"
    final = True  # a rule's refusal with a code of its own, replayed like one

    def __init__(self) -> None:
        super().__init__("referral_code", "no member has this referral code")


class LookupNeedsOneIdentifier(LoyaltyError):
    """A lookup names the member in exactly one way, and this one gives none, or more than one.

    Send exactly one of `member_number`, `phone`, `email`, `qr_code`, or `external_system` together with
    `external_id`.
    """

    code = "lookup_needs_one_identifier"
    status = 422
    title = "Give exactly one of member_number, phone, email, qr_code, or external_system with external_id"


class ReferrerNotActive(InvalidField):
    """The member whose `referral_code` was given is suspended or closed, so the member was not created: only
    an active member can refer.

    Enrol without the code, or ask the operator about the referrer.
    """

    code = "referrer_not_active"
    title = "The referring member is not active"
    final = True  # a rule's refusal with a code of its own, replayed like one

    def __init__(self) -> None:
        super().__init__("referral_code", "the member with this referral code is not active")


class QrCodeInvalid(LoyaltyError):
    """The QR code is not a member's code this service made (misread, cut short, or from elsewhere); no
    member was looked up.

    Scan the member's app again; a code from another programme or a damaged print will not work.
    """

    code = "qr_code_invalid"
    status = 422
    title = "Not a member's QR code"


class QrCodeExpired(LoyaltyError):
    """The member's QR code was good for a few minutes and that time is over (`expired_at`): an old
    screenshot or photo of it. No member was looked up.

    Ask the member to open the app again: it shows a fresh code.
    """

    code = "qr_code_expired"
    status = 422
    title = "The member's QR code has expired"
