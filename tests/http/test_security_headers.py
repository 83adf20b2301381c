"""What a browser is told: security headers on every answer, and CORS only for the origins settings name."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from loyalty_api.http import docs
from loyalty_api.settings import Settings
from tests.apps import serving
from tests.conftest import bearer
from tests.http.test_negotiation import varies_with

ALLOWED = "https://backoffice.example.com"
OTHER = "https://shop.example.net"
STRICT = "default-src 'none'; frame-ancestors 'none'"
MADE_UP = "0195a3c2-0000-7000-8000-000000000000"
EARN = f"/v1/members/{MADE_UP}/earn"


def _preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }


def assert_secured(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert len(response.headers.get_list("content-security-policy")) == 1
    assert "strict-transport-security" not in response.headers  # the TLS terminator's to send


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


class TestSecurityHeaders:
    async def test_a_v1_answer_has_them_and_is_not_stored(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        response = await client.get("/v1/tiers", headers=bearer(pos_key))
        assert response.status_code == 200, response.text
        assert_secured(response)
        assert response.headers["content-security-policy"] == STRICT
        assert response.headers["cache-control"] == "no-store"

    @pytest.mark.parametrize(
        ("path", "status"),
        [
            ("/v1/tiers", 401),  # no key: the edge's refusal
            (f"/v1/members/{MADE_UP}", 401),
            ("/v1/no-such-route", 401),
            ("/v1/tiers?" + "x" * 17_000, 414),
        ],
        ids=["no key", "no key on a member", "no key on no route", "query string too long"],
    )
    async def test_an_error_answer_has_them(self, client: httpx.AsyncClient, path: str, status: int) -> None:
        response = await client.get(path)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert_secured(response)
        assert response.headers["content-security-policy"] == STRICT
        assert response.headers["cache-control"] == "no-store"

    async def test_a_refusal_with_a_key_has_them(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.get(f"/v1/members/{MADE_UP}", headers=bearer(pos_key))
        assert response.status_code == 404, response.text
        assert_secured(response)
        assert response.headers["cache-control"] == "no-store"

    @pytest.mark.parametrize("path", ["/docs", "/redoc", "/graphql"])
    async def test_the_documentation_pages_keep_the_policy_made_for_them(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        # Their scripts come from /static and from the page itself; the strict policy would stop them.
        response = await client.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 200, response.text
        assert_secured(response)
        assert response.headers["content-security-policy"] == docs.PAGE_POLICY

    async def test_the_problem_pages_keep_theirs_and_their_cache(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/problems/insufficient_points", headers={"Accept": "text/html"})
        assert response.status_code == 200, response.text
        assert_secured(response)
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers.get_list("cache-control") == ["public, max-age=3600"]

    async def test_public_json_answers_and_assets_have_them(self, client: httpx.AsyncClient) -> None:
        for path in ("/healthz", "/openapi.json", f"{docs.ASSETS_PATH}/{docs.SWAGGER_UI}/swagger-ui.css"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert_secured(response)
            assert response.headers["content-security-policy"] == STRICT, path

    async def test_graphql_answers_are_not_stored(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.post("/graphql", json={"query": "{ __typename }"}, headers=bearer(pos_key))
        assert response.status_code == 200, response.text
        assert_secured(response)
        assert response.headers["content-security-policy"] == STRICT
        assert response.headers["cache-control"] == "no-store"

    async def test_behind_a_root_path_v1_answers_are_not_stored_either(self, app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path="/loyalty")
        async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as client:
            response = await client.get("/loyalty/v1/tiers")
        assert response.status_code == 401, response.text
        assert response.headers["cache-control"] == "no-store"


@pytest.fixture
async def cors(app: FastAPI, settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    # The shared app's tables (and their clean-up) serve this second instance too. Two calls without a key a
    # minute: a preflight counted as one would soon show as a 429.
    async with serving(
        settings, cors_allowed_origins=[ALLOWED], rate_limit_unauthenticated_per_address="2/minute"
    ) as served:
        yield served


class TestCors:
    async def test_a_preflight_from_an_allowed_origin_is_answered_without_a_key(
        self, cors: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        _, client = cors
        response = await client.options(EARN, headers=_preflight(ALLOWED))
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert "POST" in response.headers["access-control-allow-methods"]
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "idempotency-key"} <= {h.strip() for h in allowed.split(",")}
        assert "access-control-allow-credentials" not in response.headers
        assert_secured(response)

    async def test_preflights_spend_nothing_of_the_budget_for_calls_without_a_key(
        self, cors: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        _, client = cors
        for _ in range(5):
            response = await client.options(EARN, headers=_preflight(ALLOWED))
            assert response.status_code == 200, response.text
        refused = await client.get("/v1/tiers", headers={"Origin": ALLOWED})
        assert refused.status_code == 401, refused.text  # not 429: the budget is whole

    async def test_a_call_from_an_allowed_origin_may_be_read_with_its_headers(
        self, cors: tuple[FastAPI, httpx.AsyncClient], pos_key: str
    ) -> None:
        _, client = cors
        response = await client.get("/v1/tiers", headers={"Origin": ALLOWED, **bearer(pos_key)})
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert "origin" in response.headers["vary"].lower()
        exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"idempotent-replayed", "x-request-id", "retry-after", "ratelimit"} <= exposed
        assert "access-control-allow-credentials" not in response.headers
        assert_secured(response)

    @pytest.mark.parametrize("accept", ["application/json", "text/csv", "text/html"])
    async def test_an_answer_negotiated_on_accept_varies_with_both(
        self, cors: tuple[FastAPI, httpx.AsyncClient], admin_key: str, accept: str
    ) -> None:
        """Each form of a report (JSON, CSV) and of a problem page (HTML, JSON) says it depends on Accept,
        beside the Origin CORS adds: one does not replace the other."""
        _, client = cors
        window = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"}
        headers = {"Origin": ALLOWED, "Accept": accept, **bearer(admin_key)}
        for path, params in (
            ("/v1/analytics/overview", window),
            ("/v1/analytics/points", window),
            ("/problems/insufficient_points", {}),
        ):
            response = await client.get(path, params=params, headers=headers)
            assert response.status_code == 200, response.text
            assert {"accept", "origin"} <= varies_with(response), (path, accept)

    async def test_a_refusal_from_an_allowed_origin_may_be_read_too(
        self, cors: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        _, client = cors
        response = await client.get("/v1/tiers", headers={"Origin": ALLOWED})
        assert response.status_code == 401, response.text
        assert response.headers["access-control-allow-origin"] == ALLOWED

    async def test_another_origin_gets_no_cors_headers(
        self, cors: tuple[FastAPI, httpx.AsyncClient], pos_key: str
    ) -> None:
        _, client = cors
        preflight = await client.options(EARN, headers=_preflight(OTHER))
        # Starlette names the methods and headers the API takes either way; the grant is the origin's.
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        call = await client.get("/v1/tiers", headers={"Origin": OTHER, **bearer(pos_key)})
        assert call.status_code == 200, call.text
        assert "access-control-allow-origin" not in call.headers  # the browser keeps the answer from the page

    async def test_a_method_the_api_does_not_use_is_not_allowed(
        self, cors: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        _, client = cors
        response = await client.options(
            EARN, headers={**_preflight(ALLOWED), "Access-Control-Request-Method": "TRACE"}
        )
        assert response.status_code == 400  # a browser reads a failed preflight as a refusal
        assert "TRACE" not in response.headers["access-control-allow-methods"]

    async def test_without_the_setting_there_are_no_cors_headers(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        preflight = await client.options(EARN, headers=_preflight(ALLOWED))
        assert cors_headers(preflight) == {}
        call = await client.get("/v1/tiers", headers={"Origin": ALLOWED, **bearer(pos_key)})
        assert call.status_code == 200, call.text
        assert cors_headers(call) == {}


class TestTheSetting:
    def test_none_by_default(self) -> None:
        assert Settings().cors_allowed_origins == []

    @pytest.mark.parametrize(
        "written",
        [
            "https://backoffice.example.com, http://localhost:3000",
            '["https://backoffice.example.com", "http://localhost:3000"]',
        ],
    )
    def test_the_environment_gives_a_comma_separated_list_or_a_json_array(
        self, monkeypatch: pytest.MonkeyPatch, written: str
    ) -> None:
        monkeypatch.setenv("LOYALTY_CORS_ALLOWED_ORIGINS", written)
        assert Settings().cors_allowed_origins == ["https://backoffice.example.com", "http://localhost:3000"]

    def test_a_json_array_that_does_not_parse_says_what_to_write(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """It said only the parser's words ("Expecting value: line 1 column 2 (char 1)")."""
        monkeypatch.setenv("LOYALTY_CORS_ALLOWED_ORIGINS", "[https://backoffice.example.com]")
        with pytest.raises(ValidationError, match="a JSON array of origins, or origins separated by commas"):
            Settings()

    @pytest.mark.parametrize(
        "origin",
        [
            "*",
            "https://backoffice.example.com/",
            "https://example.com/admin",
            "example.com",
            "HTTPS://EXAMPLE.COM",
        ],
    )
    def test_an_entry_that_is_no_origin_is_refused(self, origin: str) -> None:
        with pytest.raises(ValidationError, match="is not an origin"):
            Settings(cors_allowed_origins=[origin])
