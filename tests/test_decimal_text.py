"""The OpenAPI document's pattern for a rate written as text (money.DECIMAL_PATTERN) says what the API reads:
every string it admits is read as the number it writes, every other string is refused, and each rate field's
string form in the generated document carries it."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from loyalty_api.money import DECIMAL_PATTERN, decimal_text
from tests.conftest import bearer

DOCUMENT = Path(__file__).parents[1] / "openapi" / "openapi.json"


def read(text: str) -> Decimal | None:
    try:
        value = decimal_text(text)
    except ValueError:
        return None
    assert isinstance(value, Decimal)
    return value


@settings(max_examples=200, deadline=None)
@given(st.from_regex(DECIMAL_PATTERN, fullmatch=True))
def test_every_string_the_pattern_admits_is_read_as_the_number_it_writes(text: str) -> None:
    assert read(text) == Decimal(text)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(alphabet="0123456789.eE+- _\u0661x", max_size=12), st.text(max_size=12)))
@example("1_0")
@example(" 1")
@example("\u0661")
@example("01")
@example("1.")
@example(".5")
@example("NaN")
@example("Infinity")
def test_the_pattern_admits_exactly_the_strings_read(text: str) -> None:
    assert (re.search(DECIMAL_PATTERN, text) is not None) == (read(text) is not None), text


def _decimal_unions(node: Any) -> list[dict[str, Any]]:
    """Every schema of the document that takes a number or a string: the rates read with `decimal_text`."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        types = {form.get("type") for form in node.get("anyOf", [])}
        if {"number", "string"} <= types:
            found.append(node)
        for value in node.values():
            found += _decimal_unions(value)
    elif isinstance(node, list):
        for value in node:
            found += _decimal_unions(value)
    return found


def test_every_rate_field_says_which_text_it_reads() -> None:
    unions = _decimal_unions(json.loads(DOCUMENT.read_text()))
    assert len(unions) >= 20  # the programme's, tiers', partners', offers' and earning rules' rates
    for union in unions:
        strings = [form for form in union["anyOf"] if form.get("type") == "string"]
        assert [form.get("pattern") for form in strings] == [DECIMAL_PATTERN], union


async def test_a_rate_outside_the_pattern_is_refused_and_one_inside_is_taken(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    program = await client.get("/v1/program", headers=bearer(admin_key))
    assert program.status_code == 200
    body = {
        key: value
        for key, value in program.json().items()
        if key not in {"updated_at", "version", "created_at", "currency_minor_unit"}
    }
    refused = await client.put("/v1/program", json={**body, "earn_rate": "1_0"}, headers=bearer(admin_key))
    assert refused.status_code == 422 and refused.json()["code"] == "validation_error"
    assert (await client.get("/v1/program", headers=bearer(admin_key))).json() == program.json()
    taken = await client.put("/v1/program", json={**body, "earn_rate": "2.5e0"}, headers=bearer(admin_key))
    assert taken.status_code == 200, taken.text
    assert taken.json()["earn_rate"] == "2.5"


@pytest.mark.parametrize(
    "written",
    [
        '"1e9999999999999999999"',
        '"1e-9999999999999999999"',
        '"1e1234567"',
        "1e400",
        "-1e-400",
        "1e9999999999999999999",
    ],
)
async def test_a_rate_with_an_exponent_past_what_is_read_is_refused(
    client: httpx.AsyncClient, admin_key: str, written: str
) -> None:
    """As a string or as a JSON number (as the body is written, not as Python would write it)."""
    before = (await client.get("/v1/program", headers=bearer(admin_key))).json()
    others = {key: before[key] for key in ("point_value_minor", "rounding", "max_redeem_share")}
    body = json.dumps(others)[:-1] + f', "earn_rate": {written}}}'
    refused = await client.put(
        "/v1/program", content=body, headers=bearer(admin_key, Content_Type="application/json")
    )
    assert refused.status_code == 422 and refused.json()["code"] == "validation_error", refused.text
    assert (await client.get("/v1/program", headers=bearer(admin_key))).json() == before
