"""Normal forms of phone numbers (E.164) and e-mail addresses, used for storage and for lookups alike."""

from __future__ import annotations

import phonenumbers

from loyalty_api.errors import InvalidField


def normalise_phone(raw: str, default_region: str, *, field: str = "phone") -> str:
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidField(field, "not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidField(field, "not a valid phone number for its region")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalise_email(raw: str) -> str:
    # Addresses are compared case-insensitively: the local part too, as every real mail provider does.
    return raw.strip().lower()
