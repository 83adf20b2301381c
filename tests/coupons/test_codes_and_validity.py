"""Pure rules: what a coupon code looks like, and when a coupon is usable."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from loyalty_api.coupons.codes import ALPHABET, SYMBOLS, generate_code, normalize_code
from loyalty_api.coupons.validity import coupon_state, listed_status

FROM = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)


class TestCodes:
    def test_at_least_80_bits_from_an_alphabet_without_look_alikes(self) -> None:
        assert math.log2(len(ALPHABET)) * SYMBOLS >= 80
        assert not set("0O1I") & set(ALPHABET)
        assert len(set(ALPHABET)) == len(ALPHABET)

    def test_format_and_spread(self) -> None:
        codes = [generate_code() for _ in range(2000)]
        assert all(re.fullmatch(r"[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){3}", c) for c in codes)
        assert len(set(codes)) == len(codes)
        used_symbols = set("".join(codes).replace("-", ""))
        assert used_symbols == set(ALPHABET)

    def test_normalize(self) -> None:
        code = generate_code()
        for typed in (code, code.lower(), code.replace("-", ""), " ".join(code.split("-"))):
            assert normalize_code(typed) == code

    @pytest.mark.parametrize(
        "typed",
        ["", "ABCD", "ABCD-EFGH-JKLM-NPQR-STUV", "ABCD-EFGH-JKLM-NPQ0", "ABCD-EFGH-JKLM-NPQI", "äBCD" * 4],
    )
    def test_what_cannot_be_a_code(self, typed: str) -> None:
        assert normalize_code(typed) is None


@dataclass
class _Coupon:
    status: str
    valid_from: datetime = FROM
    valid_until: datetime = UNTIL


class TestValidity:
    @pytest.mark.parametrize(
        ("coupon", "at", "state", "listed"),
        [
            (_Coupon("active"), FROM, "usable", "active"),
            (_Coupon("active"), UNTIL - timedelta(microseconds=1), "usable", "active"),
            (_Coupon("active"), UNTIL, "expired", "expired"),
            (_Coupon("active"), FROM - timedelta(microseconds=1), "not_yet_valid", "active"),
            (_Coupon("used"), FROM + timedelta(days=1), "used", "used"),
            (_Coupon("used"), UNTIL + timedelta(days=1), "used", "used"),
            (_Coupon("used"), FROM - timedelta(days=1), "used", "used"),
        ],
    )
    def test_state(self, coupon: _Coupon, at: datetime, state: str, listed: str) -> None:
        assert coupon_state(coupon, at) == state
        assert listed_status(coupon, at) == listed
