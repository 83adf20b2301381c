"""Content negotiation on Accept (RFC 9110, 12.5.1) for the routes that answer JSON or CSV: q-values weigh,
the most specific range decides a type's weight, a tie goes to the range that names a type more precisely and
then to the route's default, and a header that accepts neither type gets the default rather than a 406."""

from __future__ import annotations

import httpx
import pytest

from loyalty_api.http.negotiation import CSV, JSON, preferred, wants_csv


@pytest.mark.parametrize(
    ("accept", "csv"),
    [
        (None, False),  # no header: the default
        ("", False),
        ("application/json", False),
        ("text/csv", True),
        ("TEXT/CSV", True),  # media types are case-insensitive
        ("text/csv; charset=utf-8", True),  # parameters other than q are not compared
        # Refused outright, or wanted less than JSON: the header names text/csv but does not prefer it.
        ("application/json, text/csv;q=0", False),
        ("application/json;q=1.0, text/csv;q=0.1", False),
        ("text/csv;q=0.5, application/json", False),
        ("text/csv;q=0", False),  # refused, and nothing else named: the default, as for any unmet header
        ("application/json;q=0.5, text/csv", True),
        ("application/json;q=0, */*", True),
        # Ranges: the most specific one names the type's weight, wherever it stands in the header.
        ("text/*", True),
        ("text/*;q=0.9, application/json;q=0.8", True),
        ("text/*, text/csv;q=0", False),
        ("text/csv;q=0, text/*", False),
        ("*/*", False),  # both alike: the default
        ("*/*;q=0.1, text/csv", True),
        ("text/csv, */*;q=0.1", True),
        # A tie in q: the type named more precisely, then the default; the order of the header says nothing.
        ("text/csv, application/*", True),
        ("text/csv, */*", True),
        ("text/*, application/json", False),
        ("text/csv, application/json", False),
        ("application/json, text/csv", False),
        # Not a q-value RFC 9110 allows: not wanted, never fully wanted.
        ("text/csv;q=2", False),
        ("text/csv;q=nan", False),
        ("text/csv;q=0.5000", False),
        ("text/csv;q=1.000", True),
        ("text/csv;q=0.001", True),
        ("text/csv;q=1;foo=bar", True),  # an accept extension after q
        # Nothing either type matches: disregarded, so the default.
        ("text/html", False),
        ("application/xml, text/plain;q=0.5", False),
        ("text/csv;q=0, application/json;q=0", False),
        (",,", False),
    ],
)
def test_csv_only_when_the_header_prefers_it(accept: str | None, csv: bool) -> None:
    assert wants_csv(accept) is csv


def test_the_default_is_the_first_type_offered() -> None:
    assert preferred("*/*", (CSV, JSON)) == CSV
    assert preferred("text/html", (CSV, JSON)) == CSV
    assert preferred("application/json", (CSV, JSON)) == JSON


# What a report route (a settlement, an analytics report) answers for each Accept: JSON unless CSV is
# preferred.
REPORT_ACCEPTS: list[tuple[str | None, str]] = [
    (None, "application/json"),
    ("text/csv", "text/csv"),
    ("application/json, text/csv;q=0", "application/json"),  # CSV refused outright
    ("application/json;q=1.0, text/csv;q=0.1", "application/json"),
    ("text/*;q=0.5, application/json", "application/json"),
    ("application/json;q=0.5, text/*", "text/csv"),
    ("text/html", "application/json"),  # neither acceptable: the default, not a 406
]


def varies_with(response: httpx.Response) -> set[str]:
    """The request headers the answer's `Vary` names, lower-case, however many Vary lines carry them."""
    return {name.strip().lower() for line in response.headers.get_list("vary") for name in line.split(",")}
