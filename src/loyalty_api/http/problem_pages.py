"""`GET /problems` and `GET /problems/{code}`: the pages a problem's `type` opens.

A person gets HTML (the default: a browser, curl's `*/*`, no Accept header at all); a program that asks for
JSON (`Accept: application/json`, ranked above `text/html`) gets the same text as a ProblemTypeRead. No media
type is refused: an Accept header that names neither gets the page. The pages load nothing from elsewhere and
run no scripts, and they link with relative URLs, so they work behind a proxy under any root path.

An unknown code is a 404 problem `problem_type_not_found` (whose own page says so), not `route_not_found`:
the route exists, the code does not.
"""

from __future__ import annotations

import html
import re
from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from loyalty_api.db.pagination import page_after, scope_of
from loyalty_api.errors import NotFound
from loyalty_api.http.dependencies import Paging
from loyalty_api.http.negotiation import HTML, JSON, VARY_ON_ACCEPT, preferred
from loyalty_api.http.problem_catalogue import ProblemType, problem_types
from loyalty_api.http.problems import problem_responses

PROBLEM_TYPES = scope_of("problem_types")  # the catalogue's cursors carry it

router = APIRouter(tags=["operations"])

# What the pages may load: their own inline style, nothing else (no scripts, no other hosts).
_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_CACHE = "public, max-age=3600"


class ProblemTypeNotFound(NotFound):
    """No problem has this code: the `/problems/{code}` link was mistyped, or comes from another service.

    See `/problems` for every code this service answers with.
    """

    code = "problem_type_not_found"
    title = "No such problem type"


class ProblemTypeRead(BaseModel):
    """What a problem code means and what the caller should do about it."""

    code: str = Field(description="The problem's stable `code`", examples=["insufficient_points"])
    status: int | None = Field(description="The HTTP status it comes with; null where it varies")
    title: str
    description: str = Field(description="What it means (paragraphs separated by a blank line)")
    what_to_do: str = Field(description="What the caller should do about it")

    @classmethod
    def of(cls, problem: ProblemType) -> ProblemTypeRead:
        return cls(
            code=problem.code,
            status=problem.status,
            title=problem.title,
            description="\n\n".join(problem.meaning),
            what_to_do="\n\n".join(problem.what_to_do),
        )


class ProblemTypeList(BaseModel):
    items: list[ProblemTypeRead]
    next_cursor: str | None


def wants_json(accept: str | None) -> bool:
    """JSON when the Accept header prefers it to HTML (by q, then by how precisely it names it)."""
    return preferred(accept, (HTML, JSON)) == JSON


_CODE_SPAN = re.compile(r"`([^`]+)`")


def _text(paragraph: str) -> str:
    """A paragraph of a docstring as HTML: escaped, with `code` spans."""
    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(paragraph, quote=False))


def _status_text(status: int | None) -> str:
    if status is None:
        return "varies"
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; color: #1b1b1b; margin: 0; }
main { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
code { font: 0.9em ui-monospace, monospace; background: #f1f1f1; padding: 0 0.2em; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def problem_page(problem: ProblemType) -> str:
    meaning = "\n".join(f"<p>{_text(p)}</p>" for p in problem.meaning)
    what_to_do = "\n".join(f"<p>{_text(p)}</p>" for p in problem.what_to_do)
    body = (
        # Relative: from <root>/problems/<code> this is <root>/problems, whatever the root path.
        '<p><a href="../problems">All problem types</a></p>\n'
        f"<h1>{html.escape(problem.title)}</h1>\n"
        f"<dl>\n<dt>Code</dt><dd><code>{html.escape(problem.code)}</code></dd>\n"
        f"<dt>HTTP status</dt><dd>{_status_text(problem.status)}</dd>\n</dl>\n"
        f"<h2>What it means</h2>\n{meaning}\n<h2>What to do</h2>\n{what_to_do}"
    )
    return _page(f"{problem.code} · loyalty-api problem", body)


def index_page(problems: list[ProblemType]) -> str:
    rows = "\n".join(
        # Relative: from <root>/problems this is <root>/problems/<code>.
        f'<tr><td><a href="problems/{html.escape(p.code)}"><code>{html.escape(p.code)}</code></a></td>'
        f"<td>{_status_text(p.status)}</td><td>{html.escape(p.title)}</td></tr>"
        for p in problems
    )
    body = (
        "<h1>Problem types</h1>\n"
        "<p>Errors are RFC 9457 <code>application/problem+json</code> documents. Their <code>code</code> "
        "is stable and meant for programs; their <code>type</code> links to the page that explains it.</p>\n"
        f"<table>\n<tr><th>Code</th><th>Status</th><th>Title</th></tr>\n{rows}\n</table>"
    )
    return _page("Problem types · loyalty-api", body)


def _html(content: str) -> HTMLResponse:
    return HTMLResponse(
        content, headers={**VARY_ON_ACCEPT, "Cache-Control": _CACHE, "Content-Security-Policy": _POLICY}
    )


def _json(model: BaseModel) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), headers={**VARY_ON_ACCEPT, "Cache-Control": _CACHE})


_BOTH_FORMS = (
    "The page as HTML, or as JSON when the `Accept` header prefers `application/json`. Public: no API key."
)


@router.get(
    "/problems",
    summary="Every problem code the API answers with",
    description=_BOTH_FORMS + " The JSON form pages by code like every list (`limit`, `cursor`, "
    "`next_cursor`); the HTML page lists every code.",
    response_model=ProblemTypeList,
    responses={200: {"content": {HTML: {"schema": {"type": "string"}}}}},
)
async def list_problem_types(request: Request, paging: Paging) -> Response:
    problems = list(problem_types().values())
    if wants_json(request.headers.get("accept")):
        page = page_after(
            problems,
            limit=paging.limit,
            cursor=paging.cursor,
            key=lambda p: (p.code,),
            shape=(str,),
            scope=PROBLEM_TYPES,
        )
        return _json(
            ProblemTypeList(items=[ProblemTypeRead.of(p) for p in page.items], next_cursor=page.next_cursor)
        )
    return _html(index_page(problems))


@router.get(
    "/problems/{code}",
    summary="What a problem code means and what to do about it",
    description=f"The page a problem's `type` links to. {_BOTH_FORMS}",
    response_model=ProblemTypeRead,
    responses={
        200: {"content": {HTML: {"schema": {"type": "string"}}}},
        **problem_responses(ProblemTypeNotFound),
    },
)
async def read_problem_type(
    code: Annotated[str, Path(max_length=100, description="The problem's `code`")], request: Request
) -> Response:
    problem = problem_types().get(code)
    if problem is None:
        raise ProblemTypeNotFound("No problem has this code; the index of problem types lists them all")
    if wants_json(request.headers.get("accept")):
        return _json(ProblemTypeRead.of(problem))
    return _html(problem_page(problem))
