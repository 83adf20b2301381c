"""Content negotiation on `Accept` (RFC 9110, 12.5.1), for the routes that answer in more than one media type:
reports as JSON or CSV, the problem pages as HTML or JSON.

A type is weighed by the most specific range that names it (`text/csv` over `text/*` over `*/*`), so
`application/json, text/csv;q=0` refuses CSV and `text/*;q=0.5, text/csv;q=0` refuses it too. Between the
types the header weighs alike, the order of the header says nothing (RFC 9110 gives it no meaning): the one a
range names more precisely wins, then the route's own order. Parameters other than `q` are not compared.

Every answer whose form the header chose says so (`Vary: Accept`, added to any Vary already there, such as
CORS's `Origin`): a cache between the caller and us must not hand a CSV to a caller that asked for JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request, Response

JSON = "application/json"
CSV = "text/csv"
HTML = "text/html"

VARY_ON_ACCEPT = {"Vary": "Accept"}  # for an answer a route builds itself (FastAPI adds nothing to it)

# RFC 9110, 12.4.2: 0 to 1, at most three decimals. Anything else is read as 0, never as "fully wanted".
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


def _weight(accept: str, media_type: str) -> tuple[float, int]:
    """How much the Accept header wants `media_type`: (q, how precisely the deciding range names it: 2
    exactly, 1 by `type/*`, 0 by `*/*`, -1 not at all)."""
    kind, _, subtype = media_type.partition("/")
    best = (0.0, -1)
    for entry in accept.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        r_kind, _, r_subtype = name.lower().partition("/")
        if (r_kind, r_subtype) == (kind, subtype):
            specificity = 2
        elif (r_kind, r_subtype) == (kind, "*"):
            specificity = 1
        elif (r_kind, r_subtype) == ("*", "*"):
            specificity = 0
        else:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                value = value.strip()
                q = float(value) if _QVALUE.fullmatch(value) else 0.0
                break  # what follows q is an accept extension, not a media type parameter
        if specificity > best[1]:  # the most specific range decides, wherever it stands
            best = (q, specificity)
    return best


def preferred(accept: str | None, offered: Sequence[str]) -> str:
    """Of `offered` (lower-case media types, the route's default first), the one the Accept header wants most.
    The default is also the answer when there is no header, or it accepts none of them: like every other
    route, these disregard an Accept they cannot satisfy rather than answer 406 (RFC 9110 lets a server do
    either), so a client that names some other type still gets an answer it can read."""
    if not accept or not accept.strip():
        return offered[0]
    weights = [_weight(accept, media_type) for media_type in offered]
    best = max(range(len(offered)), key=lambda i: (weights[i], -i))
    return offered[best] if weights[best][0] > 0 else offered[0]


def wants_csv(accept: str | None) -> bool:
    """A report as CSV rather than its default JSON."""
    return preferred(accept, (JSON, CSV)) == CSV


async def _report_as_csv(request: Request, response: Response) -> bool:
    # On the answer FastAPI builds from the route's model; merged with what middleware adds later.
    response.headers.add_vary_header("Accept")
    return wants_csv(request.headers.get("accept"))


# A report route's parameter: whether to answer CSV (through `csv_response`) rather than JSON.
ReportAsCsv = Annotated[bool, Depends(_report_as_csv)]


def csv_response(text: str) -> Response:
    """A report as CSV, saying that its form depends on Accept."""
    return Response(text, media_type=CSV, headers=VARY_ON_ACCEPT)
