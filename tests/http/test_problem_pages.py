"""Every problem `type` opens a page that says what the code means and what to do about it."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import HTTPException

from loyalty_api.errors import LoyaltyError
from loyalty_api.http.problem_catalogue import error_classes, explain, problem_types
from loyalty_api.http.problem_pages import ProblemTypeList, ProblemTypeRead, wants_json
from loyalty_api.http.problems import _HTTP_CODES, CLASSLESS_PROBLEMS
from loyalty_api.settings import Settings
from tests.apps import serving
from tests.conftest import bearer

JSON = {"Accept": "application/json"}
EXTERNAL = re.compile(r"(?:https?:)?//[a-z0-9.-]", re.IGNORECASE)
CODES = sorted(problem_types())


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


async def follow_type(client: httpx.AsyncClient, problem: httpx.Response) -> httpx.Response:
    """Open the problem's `type` as RFC 9457 says: a relative reference, resolved against the request URI."""
    return await client.get(urljoin(str(problem.url), problem.json()["type"]))


async def assert_titled_as_its_page(client: httpx.AsyncClient, problem: httpx.Response) -> None:
    """The problem's `title` is the one the page its `type` opens gives (RFC 9457: a title does not change
    from occurrence to occurrence of a type)."""
    assert problem.headers["content-type"] == "application/problem+json", problem.text
    page = await client.get(urljoin(str(problem.url), problem.json()["type"]), headers=JSON)
    assert page.status_code == 200, page.text
    assert problem.json()["title"] == page.json()["title"], problem.json()["code"]


class TestCatalogue:
    def test_every_error_class_has_a_docstring_of_its_own(self) -> None:
        undocumented = [
            f"{cls.__module__}.{cls.__qualname__}"
            for cls in error_classes()
            if not (cls.__dict__.get("__doc__") or "").strip()
        ]
        assert undocumented == []

    def test_every_docstring_says_what_it_means_then_what_to_do(self) -> None:
        incomplete = [
            f"{cls.__module__}.{cls.__qualname__}"
            for cls in error_classes()
            if cls.code != LoyaltyError.code
            for explanation in [explain(cls.__dict__.get("__doc__"))]
            if not (explanation.meaning and explanation.what_to_do)
        ]
        assert incomplete == []

    def test_the_walk_finds_classes_in_every_kind_of_module(self) -> None:
        found = {f"{cls.__module__}.{cls.__qualname__}" for cls in error_classes()}
        assert {
            "loyalty_api.errors.NotFound",
            "loyalty_api.members.errors.MemberNotFound",
            "loyalty_api.idempotency.errors.IdempotencyClaimLost",  # a subclass of a subclass
            "loyalty_api.http.edge.PayloadTooLarge",
            "loyalty_api.http.input_guard.InvalidInput",
            "loyalty_api.http.rate_limits.RateLimited",
            "loyalty_api.http.errors.MalformedJson",
            "loyalty_api.http.errors.UnsupportedMediaType",
            "loyalty_api.http.errors.MethodNotAllowed",
        } <= found
        assert LoyaltyError not in error_classes()

    def test_every_code_the_handlers_answer_with_has_a_page(self) -> None:
        answered = {*_HTTP_CODES.values(), "validation_error", "internal_error", "http_error"}
        answered |= {cls.code for cls in error_classes()} - {LoyaltyError.code}
        assert answered <= set(problem_types())

    def test_the_code_less_base_has_no_page(self) -> None:
        assert LoyaltyError.code not in problem_types()

    def test_a_code_comes_with_one_status(self) -> None:
        statuses: dict[str, set[int]] = {}
        for cls in error_classes():
            statuses.setdefault(cls.code, set()).add(cls.status)
        for status, code in _HTTP_CODES.items():
            statuses.setdefault(code, set()).add(status)
        for code, (classless_status, _, _) in CLASSLESS_PROBLEMS.items():
            if classless_status is not None:
                statuses.setdefault(code, set()).add(classless_status)
        assert {code: found for code, found in statuses.items() if len(found) > 1} == {}
        for code, problem in problem_types().items():
            assert statuses.get(code, {problem.status}) == {problem.status}, code

    def test_every_class_of_a_code_carries_the_title_of_its_page(self) -> None:
        differing = {
            f"{cls.__module__}.{cls.__qualname__}": (cls.title, problem_types()[cls.code].title)
            for cls in error_classes()
            if cls.code != LoyaltyError.code and cls.title != problem_types()[cls.code].title
        }
        assert differing == {}

    def test_no_two_codes_share_a_title(self) -> None:
        # A title is what a person reads of the problem: a code with its own page says what is wrong in its
        # own words, not in a more general code's.
        codes_by_title: dict[str, list[str]] = {}
        for code, problem in problem_types().items():
            codes_by_title.setdefault(problem.title, []).append(code)
        assert {title: codes for title, codes in codes_by_title.items() if len(codes) > 1} == {}

    def test_a_shared_code_gathers_what_every_class_says(self) -> None:
        problem = problem_types()["validation_error"]
        assert len(problem.meaning) >= 3  # the schema's refusals, InvalidField's and InvalidInput's
        assert "loyalty_api.http.input_guard.InvalidInput" in problem.sources


class TestPages:
    @pytest.mark.parametrize("code", CODES)
    async def test_every_code_has_an_html_page(self, client: httpx.AsyncClient, code: str) -> None:
        response = await client.get(f"/problems/{code}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        page = response.text
        assert f"<code>{code}</code>" in page
        assert "<h2>What it means</h2>\n<p>" in page
        assert "<h2>What to do</h2>\n<p>" in page
        assert 'href="../problems"' in page

    @pytest.mark.parametrize("code", CODES)
    async def test_every_code_has_a_json_description(self, client: httpx.AsyncClient, code: str) -> None:
        response = await client.get(f"/problems/{code}", headers=JSON)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        described = ProblemTypeRead.model_validate(response.json())
        assert described.code == code
        assert described.status == problem_types()[code].status
        assert described.title.strip()
        assert described.description.strip()
        assert described.what_to_do.strip()

    async def test_the_index_lists_every_code(self, client: httpx.AsyncClient) -> None:
        page = await client.get("/problems")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        for code in CODES:
            assert f'href="problems/{code}"' in page.text
        listed, cursor = [], None  # the JSON form pages like every list
        while True:
            params = {"limit": 200} if cursor is None else {"limit": 200, "cursor": cursor}
            answer = await client.get("/problems", params=params, headers=JSON)
            page = ProblemTypeList.model_validate(answer.json())
            listed += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert [item.code for item in listed] == CODES

    async def test_an_unknown_code_is_a_404_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/problems/no_such_code")
        problem = assert_problem(response, 404, "problem_type_not_found")
        assert problem["type"] == "/problems/problem_type_not_found"
        assert (await follow_type(client, response)).status_code == 200

    async def test_the_pages_load_nothing_from_other_hosts_and_run_no_scripts(
        self, client: httpx.AsyncClient
    ) -> None:
        for path in ["/problems", *(f"/problems/{code}" for code in CODES)]:
            response = await client.get(path)
            assert not EXTERNAL.search(response.text), path
            assert "<script" not in response.text.lower()
            assert "default-src 'none'" in response.headers["content-security-policy"]

    async def test_docstring_text_is_escaped(self, client: httpx.AsyncClient) -> None:
        # "quantity × unit price", `code` spans and "<prefix>" in the texts come out as text, not markup.
        page = (await client.get("/problems/invalid_api_key")).text
        assert "lk_&lt;prefix&gt;_&lt;secret&gt;" in page
        assert "<code>Authorization</code>" in page

    async def test_the_answer_varies_with_accept(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/problems/member_not_found", headers=JSON)
        assert response.headers["vary"] == "Accept"


class TestNegotiation:
    @pytest.mark.parametrize(
        ("accept", "json"),
        [
            (None, False),
            ("*/*", False),
            ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),  # a browser
            ("application/json", True),
            ("application/json, */*;q=0.5", True),
            ("application/*", True),
            ("text/html, application/json", False),  # a tie: the page
            ("text/html;q=0.5, application/json", True),
            ("application/json;q=0, */*", False),
            ("application/problem+json", False),  # names neither: the page, not 406
            ("text/plain", False),
            ("application/json;q=nonsense", False),
        ],
    )
    def test_json_only_when_preferred(self, accept: str | None, json: bool) -> None:
        assert wants_json(accept) is json


class TestFollowingTheType:
    async def test_a_missing_key_links_to_its_page(self, client: httpx.AsyncClient) -> None:
        refused = await client.get("/v1/members/lookup", params={"member_number": "1"})
        assert_problem(refused, 401, "invalid_api_key")
        page = await follow_type(client, refused)
        assert page.status_code == 200
        assert "<code>invalid_api_key</code>" in page.text
        described = await client.get(str(page.url), headers=JSON)
        assert described.json()["code"] == "invalid_api_key"

    async def test_a_missing_member_links_to_its_page(self, client: httpx.AsyncClient, pos_key: str) -> None:
        missing = await client.get(f"/v1/members/{uuid.uuid4()}", headers=bearer(pos_key))
        assert_problem(missing, 404, "member_not_found")
        page = await follow_type(client, missing)
        assert page.status_code == 200
        assert "<code>member_not_found</code>" in page.text

    async def test_invalid_input_links_to_its_page(self, client: httpx.AsyncClient, pos_key: str) -> None:
        refused = await client.post("/v1/members", json={"phone": 12}, headers=bearer(pos_key))
        assert_problem(refused, 422, "validation_error")
        page = await follow_type(client, refused)
        assert page.status_code == 200
        assert "<code>validation_error</code>" in page.text

    async def test_an_unknown_route_links_to_its_page(self, client: httpx.AsyncClient, pos_key: str) -> None:
        refused = await client.get("/v1/nowhere", headers=bearer(pos_key))
        assert_problem(refused, 404, "route_not_found")
        assert (await follow_type(client, refused)).status_code == 200


class TestTitles:
    """Every answer's `title` is its code's page's, whoever refused: a route, the schema, or the HTTP layer
    (Starlette's routing, the docs' static files, the GraphQL view), which has titles of its own."""

    @pytest.mark.parametrize(
        ("method", "path", "body", "keyed", "code"),
        [
            ("GET", "/nowhere", None, False, "route_not_found"),
            ("GET", "/v1/nowhere", None, True, "route_not_found"),
            ("GET", "/static/docs/nope.js", None, False, "route_not_found"),
            ("DELETE", "/problems", None, False, "method_not_allowed"),
            ("POST", "/static/docs/nope.js", None, False, "method_not_allowed"),
            ("POST", "/graphql", b"{}", True, "bad_request"),
            ("POST", "/v1/members", b'{"phone": 12}', True, "validation_error"),
            ("POST", "/v1/members", b"{", True, "malformed_json"),
            ("GET", "/v1/program", None, False, "invalid_api_key"),
        ],
    )
    async def test_of_each_refusal(
        self,
        client: httpx.AsyncClient,
        pos_key: str,
        method: str,
        path: str,
        body: bytes | None,
        keyed: bool,
        code: str,
    ) -> None:
        headers = {"Content-Type": "application/json", **(bearer(pos_key) if keyed else {})}
        refused = await client.request(method, path, content=body, headers=headers)
        assert refused.json()["code"] == code, refused.text
        await assert_titled_as_its_page(client, refused)

    async def test_of_each_status_a_library_refuses_with(self, settings: Settings) -> None:
        # A library's HTTPException (strawberry's, Starlette's, FastAPI's) carries a status and words of its
        # own: the code and the title come from the status, the words are the detail.
        async def refuse(status: int) -> None:
            raise HTTPException(status, "a library's own words")

        async with serving(settings) as (app, client):
            app.add_api_route("/refusing/{status}", refuse)
            # (405 is answered with the methods the path has, as the real requests above are.)
            for status in [*sorted(_HTTP_CODES.keys() - {405}), 418]:
                refused = await client.get(f"/refusing/{status}")
                assert refused.status_code == status
                assert refused.json()["code"] == _HTTP_CODES.get(status, "http_error")
                assert refused.json()["detail"] == "a library's own words"
                await assert_titled_as_its_page(client, refused)


@pytest.fixture
async def proxied(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app as mounted behind a proxy under /loyalty."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path="/loyalty")
    async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as client:
        yield client


class TestBehindARootPath:
    async def test_the_pages_link_to_each_other_under_the_root_path(self, proxied: httpx.AsyncClient) -> None:
        index = await proxied.get("/loyalty/problems")
        assert index.status_code == 200
        page_url = urljoin(str(index.url), "problems/member_not_found")
        assert page_url == "http://loyalty.test/loyalty/problems/member_not_found"
        page = await proxied.get(page_url)
        assert page.status_code == 200
        assert urljoin(page_url, "../problems") == "http://loyalty.test/loyalty/problems"

    async def test_a_problem_type_resolves_under_the_root_path(self, proxied: httpx.AsyncClient) -> None:
        refused = await proxied.get("/loyalty/v1/program")
        assert_problem(refused, 401, "invalid_api_key")
        assert urljoin(str(refused.url), refused.json()["type"]).startswith("http://loyalty.test/loyalty/")


class TestOpenApi:
    async def test_the_pages_are_documented_under_operations(self, client: httpx.AsyncClient) -> None:
        document = (await client.get("/openapi.json")).json()
        for path in ("/problems", "/problems/{code}"):
            operation = document["paths"][path]["get"]
            assert operation["tags"] == ["operations"]
            assert operation["summary"]
            content = operation["responses"]["200"]["content"]
            assert {"application/json", "text/html"} <= content.keys()
        single = document["paths"]["/problems/{code}"]["get"]
        assert single["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ProblemTypeRead"
        }
        assert "application/problem+json" in single["responses"]["404"]["content"]


async def test_a_problem_type_from_inside_the_docs_assets_mount_resolves(client: httpx.AsyncClient) -> None:
    missing = await client.get("/static/docs/nope.js")
    assert missing.status_code == 404
    followed = await client.get(missing.json()["type"], headers={"Accept": "application/json"})
    assert followed.status_code == 200
    assert followed.json()["code"] == missing.json()["code"]
