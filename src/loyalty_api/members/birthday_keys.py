"""Keyed hashes of a birthday's day of the year and of its month, stored beside the encrypted birthday: the
birthday job finds the members whose birthday it is, and member lists filter by birthday month, through an
index, without decrypting anyone's birthday or storing any part of it in the clear.

They are blind indexes (crypto.Vault.blind_index). Without the key, a reader of the database sees 366 and 12
groups of members with no label on them, but groups can be named: by one member whose birthday is known,
or by their sizes (29 February's group is a quarter of the others, and the day groups nest in the month
groups). That is the price of finding today's members without decrypting everyone's birthday. The year
never enters them."""

from __future__ import annotations

import calendar
from datetime import date

from loyalty_api.crypto import Vault


def day_key(vault: Vault, month: int, day: int) -> str:
    return vault.blind_index("birthday-day", f"{month:02d}-{day:02d}")


def month_key(vault: Vault, month: int) -> str:
    return vault.blind_index("birthday-month", f"{month:02d}")


def birthday_keys(vault: Vault, birthday: date | None) -> tuple[str | None, str | None]:
    """The day key and the month key of a birthday (None for none)."""
    if birthday is None:
        return None, None
    return day_key(vault, birthday.month, birthday.day), month_key(vault, birthday.month)


def day_keys_celebrating_on(vault: Vault, today: date) -> list[str]:
    """The day keys of everyone whose birthday is `today`: those born on 29 February celebrate on the 28th in
    common years (as earning.kinds.is_birthday has it)."""
    keys = [day_key(vault, today.month, today.day)]
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        keys.append(day_key(vault, 2, 29))
    return keys
