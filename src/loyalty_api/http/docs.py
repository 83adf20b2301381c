"""The API's own pages: /docs (Swagger UI), /redoc and GraphiQL (GET /graphql from a browser).

Every script, stylesheet and icon they load is served by the app from the package, so they work on a network
without internet, as a shop's back office often is. The files are those of the npm packages, unchanged, in
`static/docs/<package>-<version>/` beside their licences (`static/docs/README.md` lists them); the version
in the path means a browser never mixes a cached old file with a new page. The assets are public: the edge
asks for a key only on `/v1` and `/graphql`.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from string import Template

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from loyalty_api.http.negotiation import VARY_ON_ACCEPT

ASSETS_DIRECTORY = Path(__file__).parent / "static" / "docs"
ASSETS_PATH = "/static/docs"

SWAGGER_UI = "swagger-ui-dist-5.35.0"
REDOC = "redoc-2.5.4"
GRAPHIQL = "graphiql-3.8.3"
GRAPHIQL_EXPLORER = "graphiql-plugin-explorer-1.0.2"
REACT = "react-18.2.0"
REACT_DOM = "react-dom-18.2.0"

# The pages may show images and fonts from this server only. ReDoc's side menu has a logo from its vendor's
# CDN: under this policy the browser never asks for it (the menu shows the text without it).
PAGE_POLICY = "img-src 'self' data: blob:; font-src 'self' data:"

router = APIRouter(include_in_schema=False)
router.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIRECTORY), name="docs-assets")


def asset_url(request: Request, path: str) -> str:
    """Where the page finds an asset: a path on this server, behind a proxy's root path too."""
    return f"{_root_path(request)}{ASSETS_PATH}/{path}"


def _root_path(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _openapi_url(request: Request) -> str:
    app: FastAPI = request.app
    return _root_path(request) + (app.openapi_url or "/openapi.json")


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = PAGE_POLICY
    return page


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    return _with_policy(
        get_swagger_ui_html(
            openapi_url=_openapi_url(request),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset_url(request, f"{SWAGGER_UI}/swagger-ui-bundle.js"),
            swagger_css_url=asset_url(request, f"{SWAGGER_UI}/swagger-ui.css"),
            swagger_favicon_url=asset_url(request, f"{SWAGGER_UI}/favicon-32x32.png"),
            # The API's only security scheme is a bearer key: no OAuth2 flow needs a redirect page.
            oauth2_redirect_url=None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    return _with_policy(
        get_redoc_html(
            openapi_url=_openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset_url(request, f"{REDOC}/redoc.standalone.js"),
            redoc_favicon_url=asset_url(request, f"{SWAGGER_UI}/favicon-32x32.png"),
            with_google_fonts=False,  # the browser's own sans-serif instead
        )
    )


def graphiql_page(request: Request) -> HTMLResponse:
    """GraphiQL as strawberry's page has it (the explorer plugin, the headers editor kept in the browser),
    with its scripts from this server, and without the CSRF cookie and subscription URL, which this API
    does not use. It posts to its own URL; the API key goes in the headers editor."""
    urls = {
        "react": f"{REACT}/react.production.min.js",
        "react_dom": f"{REACT_DOM}/react-dom.production.min.js",
        "graphiql_css": f"{GRAPHIQL}/graphiql.min.css",
        "graphiql_js": f"{GRAPHIQL}/graphiql.min.js",
        "explorer_css": f"{GRAPHIQL_EXPLORER}/style.css",
        "explorer_js": f"{GRAPHIQL_EXPLORER}/index.umd.js",
    }
    app: FastAPI = request.app
    page = _GRAPHIQL.substitute(
        title=escape(f"{app.title} - GraphiQL"),
        **{name: escape(asset_url(request, path)) for name, path in urls.items()},
    )
    # Strawberry answers GET /graphql with this page only when Accept names HTML.
    return _with_policy(HTMLResponse(page, headers=VARY_ON_ACCEPT))


_GRAPHIQL = Template("""<!doctype html>
<html>
  <head>
    <meta charset="utf-8" />
    <title>$title</title>
    <link rel="icon" href="data:," />
    <style>
      body {
        height: 100%;
        margin: 0;
        width: 100%;
        overflow: hidden;
      }

      #graphiql {
        height: 100vh;
        display: flex;
      }

      .docExplorerHide {
        display: none;
      }

      .doc-explorer-contents {
        overflow-y: hidden !important;
      }

      .docExplorerWrap {
        width: unset !important;
        min-width: unset !important;
      }

      .graphiql-explorer-actions select {
        margin-left: 4px;
      }
    </style>
    <script src="$react"></script>
    <script src="$react_dom"></script>
    <link rel="stylesheet" href="$graphiql_css" />
    <link rel="stylesheet" href="$explorer_css" />
  </head>

  <body>
    <div id="graphiql" class="graphiql-container">Loading...</div>
    <script src="$graphiql_js"></script>
    <script src="$explorer_js"></script>
    <script>
      const EXAMPLE_QUERY = `# Welcome to GraphiQL
#
# Every query needs an API key: open "Headers" below and enter
#
#     { "Authorization": "Bearer lk_<prefix>_<secret>" }
#
# GraphiQL is an in-browser tool for writing, validating, and
# testing GraphQL queries.
#
# Type queries into this side of the screen, and you will see intelligent
# typeaheads aware of the current GraphQL type schema and live syntax and
# validation errors highlighted within the text.
#
# Keyboard shortcuts:
#
#       Run Query:  Ctrl-Enter (or press the play button above)
#
#   Auto Complete:  Ctrl-Space (or just start typing)
#
`;

      // GraphiQL keeps the tabs (query, variables and headers) in the browser's storage. The page does not
      // put them in its URL as strawberry's does: a GET /graphql with a query string is an API call, which
      // the edge refuses without a key, so the page would not load again.
      const fetcher = GraphiQL.createFetcher({
        url: window.location.href.split("?")[0].split("#")[0],
      });

      const explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();

      function GraphiQLWithExplorer() {
        return React.createElement(GraphiQL, {
          fetcher: fetcher,
          defaultQuery: EXAMPLE_QUERY,
          defaultEditorToolsVisibility: true,
          plugins: [explorerPlugin],
          inputValueDeprecation: true,
          isHeadersEditorEnabled: true,
          // The Authorization header holds an API key: kept for this tab only, never in the browser's
          // storage, where anyone using the back office's shared PC later would find it.
          shouldPersistHeaders: false,
        });
      }

      const root = ReactDOM.createRoot(document.getElementById("graphiql"));
      root.render(React.createElement(GraphiQLWithExplorer));
    </script>
  </body>
</html>
""")
