"""The OpenAPI document's pattern for an API key's rate (settings.RATE_PATTERN) says what check_rate takes:
every string it admits is taken, and every string taken (through the input guard) it admits."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from loyalty_api.http.input_guard import string_problem
from loyalty_api.settings import RATE_PATTERN, check_rate

LONGEST = 32  # the schema's maxLength


def taken(rate: str) -> bool:
    """Whether a key may be made with `rate` over REST: the input guard, then check_rate."""
    if string_problem(rate) is not None:
        return False
    try:
        check_rate(rate)
    except ValueError:
        return False
    return True


def admitted(rate: str) -> bool:
    return len(rate) <= LONGEST and re.search(RATE_PATTERN, rate) is not None


@settings(max_examples=150, deadline=None)
@given(st.from_regex(RATE_PATTERN, fullmatch=True).filter(lambda rate: len(rate) <= LONGEST))
def test_every_rate_the_pattern_admits_is_taken(rate: str) -> None:
    assert taken(rate), rate


spaces = st.sampled_from(["", " ", "  ", "\t", "\u3000", "\xa0"])
digits = st.one_of(
    st.from_regex(r"\A0{0,2}[0-9]{1,9}\Z"), st.sampled_from(["0", "00", "1", "12", "13", "366"])
)
units = st.sampled_from(
    ["second", "minute", "hour", "day", "month", "year", "week", "sec", "ſecond"]
).flatmap(lambda unit: st.sampled_from([unit, unit.upper(), unit.title(), unit + "s", unit.upper() + "S"]))


@st.composite
def rates(draw: st.DrawFn) -> str:
    """Strings near `limits`' grammar: right and wrong amounts, separators, multiples, units and spaces."""
    parts = [
        draw(spaces),
        draw(digits),
        draw(spaces),
        draw(st.sampled_from(["/", "per", "PER", "Per", "//", "-", ""])),
        draw(spaces),
        draw(st.one_of(st.just(""), digits)),
        draw(spaces),
        draw(units),
        draw(spaces),
    ]
    return "".join(parts)


@settings(max_examples=400, deadline=None)
@given(st.one_of(rates(), st.text(max_size=40)))
@example("100/minute")
@example("1/31622400 seconds")
@example("1/31622401 seconds")
@example("1 per 12 months")
@example("1/13 months")
@example("1/2 years")
@example("100\u3000/minute")
@example("9007199254740991/second")
@example("09007199254740991/second")
@example("9007199254740992/second")
@example("99999999999999999999/second")
def test_the_pattern_admits_exactly_the_rates_taken(rate: str) -> None:
    assert admitted(rate) == taken(rate), rate
