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

from loyalty_api.http.input_guard import InvalidInput, load_json
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


@settings(max_examples=400, deadline=None)
@given(
    st.from_regex(r"\A-?(?:0|[1-9][0-9]{0,20})(?:\.[0-9]{1,22})?(?:[eE][-+]?[0-9]{1,3})?\Z").filter(
        lambda written: any(mark in written for mark in ".eE")
    )
)
@example("0.1")
@example("0.10000000000000001")  # the float nearest 0.1 is nearer this, but its repr is 0.1
@example("123456789012345.6")
@example("999999999999999.9")
@example("1e-400")
@example("0e-400")
@example("1.7976931348623157e308")
@example("1.7976931348623159e308")
def test_a_body_s_number_is_read_as_written_or_refused(written: str) -> None:
    """What a rate is made of (the float's shortest repr, money.decimal_text) is the number written, or the
    input guard refuses the number, naming it: never another number."""
    body = b'{"rate": ' + written.encode() + b"}"
    if Decimal(repr(float(written))) == Decimal(written):
        assert decimal_text(load_json(body, max_depth=32)["rate"]) == Decimal(written)
    else:
        with pytest.raises(InvalidInput) as refused:
            load_json(body, max_depth=32)
        errors = refused.value.extra["errors"]
        assert [(e["field"], e["type"]) for e in errors] == [("rate", "number_not_exact")]


def _program_body(program: dict[str, Any], **written: str) -> str:
    """The programme's settings as a PUT takes them, with each of `written` a JSON number as written (not as
    Python would write it)."""
    kept = {
        key: value
        for key, value in program.items()
        if key not in {"updated_at", "version", "created_at", "currency_minor_unit", *written}
    }
    return json.dumps(kept)[:-1] + "".join(f', "{key}": {number}' for key, number in written.items()) + "}"


class TestRatesAsJsonNumbers:
    """A rate sent as a JSON number is read as written: pydantic's JSON parser reads such a number as a
    float, which rounded `1.00000000000000000001` to 1, so a rate of more digits than the field takes (six
    decimals) was stored as another rate, and a share just over 1 passed the `<= 1` bound."""

    @pytest.mark.parametrize(
        ("field", "written"),
        [
            ("earn_rate", "1.00000000000000000001"),
            ("max_redeem_share", "1.00000000000000000001"),
            ("max_redeem_share", "0.99999999999999999999"),
            ("point_value_minor", "0.1000000000000000055511151231257827021181583404541015625"),
        ],
    )
    async def test_a_number_a_float_would_change_is_refused_not_rounded(
        self, client: httpx.AsyncClient, admin_key: str, field: str, written: str
    ) -> None:
        before = (await client.get("/v1/program", headers=bearer(admin_key))).json()
        refused = await client.put(
            "/v1/program",
            content=_program_body(before, **{field: written}),
            headers=bearer(admin_key, Content_Type="application/json"),
        )
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["code"] == "validation_error"
        assert [(e["field"], e["type"]) for e in problem["errors"]] == [(field, "number_not_exact")]
        assert (await client.get("/v1/program", headers=bearer(admin_key))).json() == before

    async def test_a_rate_within_a_rule_is_named_by_its_path(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        body = '{"name": "double", "kind": "base_rate", "properties": {"rate": 2.00000000000000000001}}'
        refused = await client.post(
            "/v1/earning-rules", content=body, headers=bearer(admin_key, Content_Type="application/json")
        )
        assert refused.status_code == 422, refused.text
        assert [(e["field"], e["type"]) for e in refused.json()["errors"]] == [
            ("properties.rate", "number_not_exact")
        ]
        assert (await client.get("/v1/earning-rules", headers=bearer(admin_key))).json()["items"] == []

    async def test_a_number_a_float_holds_is_taken_as_written(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        before = (await client.get("/v1/program", headers=bearer(admin_key))).json()
        written = {"earn_rate": "12345.678901", "point_value_minor": "0.1", "max_redeem_share": "0.3333"}
        taken = await client.put(
            "/v1/program",
            content=_program_body(before, **written),
            headers=bearer(admin_key, Content_Type="application/json"),
        )
        assert taken.status_code == 200, taken.text
        assert {key: taken.json()[key] for key in written} == written
