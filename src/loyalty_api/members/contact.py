"""Normal forms of phone numbers (E.164) and e-mail addresses, used for storage and for lookups alike."""

from __future__ import annotations

import phonenumbers
from pydantic.networks import validate_email
from pydantic_core import PydanticCustomError

from loyalty_api.errors import InvalidField


def normalise_phone(raw: str, default_region: str, *, field: str = "phone") -> str:
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidField(field, "not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidField(field, "not a valid phone number for its region")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalise_email(raw: str, *, field: str = "email") -> str:
    # The check enrolment's `EmailStr` makes, so a lookup by a malformed address is refused as a malformed
    # phone is, rather than answered 404 at the cost of the key's misses budget.
    try:
        _, address = validate_email(raw.strip())
    except PydanticCustomError as exc:
        raise InvalidField(field, "not an e-mail address") from exc
    # Addresses are compared case-insensitively: the local part too, as every real mail provider does.
    return address.lower()
