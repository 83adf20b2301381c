"""The subgraph's SDL as a supergraph reads it (`_service { sdl }`), committed as graphql/schema.graphql."""

from __future__ import annotations

from loyalty_api import crypto
from loyalty_api.graphql.schema import graphql_router
from loyalty_api.settings import Settings


def subgraph_sdl() -> str:
    # The schema does not depend on the key or the database; a throwaway key lets the router be built, and
    # nothing connects. `_service.sdl` is strawberry's `print_schema` of the federation schema, i.e. as_str().
    settings = Settings(encryption_key=crypto.generate_key(), database_url="sqlite+aiosqlite://")
    return graphql_router(settings).schema.as_str().rstrip("\n") + "\n"
