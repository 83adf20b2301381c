"""Normal forms of phone numbers (E.164) and e-mail addresses, and the form of an external system's name, used
for storage and for lookups alike."""

from __future__ import annotations

import re

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
    # The e-mail rule enrolment and update check, so a lookup by a malformed address is refused as a malformed
    # phone is, rather than answered 404 at the cost of the key's misses budget.
    try:
        _, address = validate_email(raw.strip())
    except PydanticCustomError as exc:
        raise InvalidField(field, "not an e-mail address") from exc
    # Addresses are compared case-insensitively: the local part too, as every real mail provider does.
    return address.lower()


# The names of the systems external ids belong to, as enrolment takes them (profiles/schemas.SystemName): not
# trimmed nor lower-cased, so " crm " or "CRM" is refused there and no member can be found by it.
SYSTEM_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}$"


def check_system_name(raw: str, *, field: str = "external_system") -> str:
    # A lookup by a name no member can have is refused as at enrolment, rather than answered 404 at the cost
    # of the key's misses budget.
    if re.fullmatch(SYSTEM_NAME_PATTERN, raw) is None:
        raise InvalidField(field, "not a system name: 1 to 32 of a-z 0-9 _ . - starting with a-z or 0-9")
    return raw
