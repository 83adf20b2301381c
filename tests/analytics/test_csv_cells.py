"""The CSV exports' text cells: a store or channel a spreadsheet would run as a formula is written as text.
The API refuses control characters in a store or channel today, but the ledger keeps whatever entries it was
given before that, and an export reads them all."""

from __future__ import annotations

import csv
import io

import pytest

from loyalty_api.analytics.service import PointsFigures, report_csv
from tests.conftest import START


@pytest.mark.parametrize("store", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1+1", "\r=1+1"])
def test_a_store_a_spreadsheet_would_read_as_a_formula_is_text(store: str) -> None:
    figures = PointsFigures(START, START, group=store, issued=100, net=100)
    written = report_csv([figures], grouped_by="store")
    assert [row["store"] for row in csv.DictReader(io.StringIO(written, newline=""))] == ["'" + store]


def test_an_ordinary_store_is_written_as_it_is() -> None:
    figures = PointsFigures(START, START, group="Shanghai, 1", issued=100, net=100)
    written = report_csv([figures], grouped_by="store")
    assert [row["store"] for row in csv.DictReader(io.StringIO(written, newline=""))] == ["Shanghai, 1"]
