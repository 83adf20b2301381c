"""/docs, /redoc and GraphiQL work without internet: everything they load comes from the app itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from graphql import get_introspection_query
from loyalty_api.http import docs
from tests.conftest import bearer
from tests.http.test_negotiation import varies_with

PAGES = ("/docs", "/redoc", "/graphql")
ANY_URL = re.compile(r"https?://", re.IGNORECASE)
# A reference to another host from an attribute or a stylesheet: what the strict check above already
# forbids, spelled out so that a failure names the culprit.
EXTERNAL_REFERENCE = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""", re.I
)
# Hosts that serve libraries and fonts: a script that fetched from one at run time would not work offline.
CDN_URL = re.compile(
    r"""https?://(?:[\w-]+\.)*(?:unpkg\.com|jsdelivr\.net|googleapis\.com|gstatic\.com|cdnjs\.cloudflare\.com"""
    r"""|esm\.sh|skypack\.dev|jspm\.io|cdn\.[\w.-]+)[^\s"'`)]*""",
    re.IGNORECASE,
)
# The one CDN address in the vendored scripts: ReDoc's side menu shows its vendor's logo as an <img>, which
# the pages' policy keeps the browser from fetching (the menu then shows the text alone).
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class References(HTMLParser):
    """The URLs a page loads: scripts, stylesheets, icons and images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag in ("script", "img") else None
        if tag == "link":
            url = attributes.get("href")
        if url and not url.startswith("data:"):
            self.urls.append(url)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls


async def page(client: httpx.AsyncClient, path: str) -> httpx.Response:
    response = await client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response


async def assets_of(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    """Every asset the three pages reference, as the app serves it."""
    found: dict[str, httpx.Response] = {}
    for path in PAGES:
        for url in references((await page(client, path)).text):
            found[url] = await client.get(url)
    return found


class TestPages:
    @pytest.mark.parametrize("path", PAGES)
    async def test_the_page_names_no_other_host(self, client: httpx.AsyncClient, path: str) -> None:
        html = (await page(client, path)).text
        assert EXTERNAL_REFERENCE.findall(html) == []
        assert ANY_URL.findall(html) == []

    @pytest.mark.parametrize("path", PAGES)
    async def test_every_script_stylesheet_and_icon_is_served_by_the_app(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        urls = references((await page(client, path)).text)
        assert any(url.endswith(".js") for url in urls)
        for url in urls:
            assert url.startswith(f"{docs.ASSETS_PATH}/"), url
            response = await client.get(url)  # without a key: the assets are public
            assert response.status_code == 200, url
            assert response.content, url
            expected = CONTENT_TYPES[Path(url).suffix]
            assert expected in response.headers["content-type"], (url, response.headers["content-type"])

    @pytest.mark.parametrize("path", PAGES)
    async def test_images_and_fonts_may_come_from_this_server_only(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        policy = (await page(client, path)).headers["content-security-policy"]
        directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
        assert set(directives["img-src"]) <= {"'self'", "data:", "blob:"}
        assert set(directives["font-src"]) <= {"'self'", "data:"}

    async def test_swagger_ui_reads_the_openapi_document_and_keeps_try_it_out(
        self, client: httpx.AsyncClient
    ) -> None:
        html = (await page(client, "/docs")).text
        assert "url: '/openapi.json'" in html
        assert "SwaggerUIBundle" in html
        assert "tryItOutEnabled" not in html  # Swagger's default: "Try it out" on every operation
        assert (await client.get("/openapi.json")).status_code == 200

    async def test_redoc_reads_the_openapi_document_without_web_fonts(
        self, client: httpx.AsyncClient
    ) -> None:
        html = (await page(client, "/redoc")).text
        assert '<redoc spec-url="/openapi.json">' in html
        assert "fonts" not in html

    async def test_behind_a_root_path_the_pages_find_their_assets_under_it(self, app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path="/loyalty")
        async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as client:
            for path in PAGES:
                urls = references((await page(client, f"/loyalty{path}")).text)
                assert urls
                for url in urls:
                    assert url.startswith(f"/loyalty{docs.ASSETS_PATH}/"), url
                    assert (await client.get(url)).status_code == 200, url
            assert "url: '/loyalty/openapi.json'" in (await page(client, "/loyalty/docs")).text


class TestAssets:
    async def test_the_scripts_fetch_nothing_from_a_cdn(self, client: httpx.AsyncClient) -> None:
        found = {
            url: sorted(set(CDN_URL.findall(response.text)))
            for url, response in (await assets_of(client)).items()
            if url.endswith((".js", ".css"))
        }
        redoc = f"{docs.ASSETS_PATH}/{docs.REDOC}/redoc.standalone.js"
        assert found.pop(redoc) == [REDOC_LOGO]
        assert f'src:"{REDOC_LOGO}"' in (await client.get(redoc)).text  # only ever an image
        assert {url: hosts for url, hosts in found.items() if hosts} == {}

    async def test_the_stylesheets_load_nothing_from_another_host(self, client: httpx.AsyncClient) -> None:
        for url, response in (await assets_of(client)).items():
            if url.endswith(".css"):
                assert EXTERNAL_REFERENCE.findall(response.text) == [], url
                assert "@import" not in response.text, url

    def test_each_package_has_its_licence_and_is_named_in_the_readme(self) -> None:
        readme = (docs.ASSETS_DIRECTORY / "README.md").read_text(encoding="utf-8")
        folders = sorted(path for path in docs.ASSETS_DIRECTORY.iterdir() if path.is_dir())
        named = {
            docs.SWAGGER_UI,
            docs.REDOC,
            docs.GRAPHIQL,
            docs.GRAPHIQL_EXPLORER,
            docs.REACT,
            docs.REACT_DOM,
        }
        assert {folder.name for folder in folders} == named
        rows = {line.split("|")[1].strip(): line for line in readme.splitlines() if line.startswith("| `")}
        for folder in folders:
            assert (folder / "LICENSE").is_file(), folder.name
            version = folder.name.rpartition("-")[2]
            assert f"@{version} |" in rows[f"`{folder.name}/`"], folder.name

    def test_no_source_maps_are_shipped(self) -> None:
        assert list(docs.ASSETS_DIRECTORY.rglob("*.map")) == []


class TestGraphiQL:
    async def test_the_page_posts_to_its_own_url_with_the_headers_editor_on(
        self, client: httpx.AsyncClient
    ) -> None:
        html = (await page(client, "/graphql")).text
        assert 'GraphiQL.createFetcher({\n        url: window.location.href.split("?")[0]' in html
        assert "isHeadersEditorEnabled: true" in html
        assert "GraphiQLPluginExplorer.explorerPlugin()" in html
        assert "history.replaceState" not in html  # a /graphql URL with a query string needs a key
        assert "shouldPersistHeaders: false" in html  # the API key is not left in the browser's storage

    async def test_the_page_says_it_depends_on_accept(self, client: httpx.AsyncClient) -> None:
        # GET /graphql is the page only for an Accept naming HTML: a cache must not give it to other callers.
        assert "accept" in varies_with(await page(client, "/graphql"))
        other = await client.get("/graphql", headers={"Accept": "application/json"})
        assert "GraphiQL" not in other.text, other.text

    async def test_what_graphiql_sends_runs_with_a_key_from_the_headers_editor(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        # GraphiQL first reads the schema as plain JSON, then runs queries accepting multipart answers.
        introspection = {
            "query": get_introspection_query(input_value_deprecation=True),
            "operationName": "IntrospectionQuery",
        }
        schema = await client.post("/graphql", json=introspection, headers=bearer(pos_key))
        assert schema.status_code == 200, schema.text
        assert schema.json()["data"]["__schema"]["queryType"]["name"] == "Query"
        headers = {**bearer(pos_key), "Accept": "application/json, multipart/mixed"}
        query = await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        assert query.status_code == 200, query.text
        assert query.json() == {"data": {"__typename": "Query"}}
