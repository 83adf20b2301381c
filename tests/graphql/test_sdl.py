"""The committed subgraph SDL (graphql/schema.graphql) is what the service serves as `_service { sdl }`."""

from __future__ import annotations

from pathlib import Path

from loyalty_api.graphql.sdl import subgraph_sdl

COMMITTED = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"


def test_committed_sdl_matches_the_schema() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == subgraph_sdl(), (
        "graphql/schema.graphql is stale: run `loyalty-api graphql-schema --output graphql/schema.graphql`"
    )


def test_money_is_shareable_with_other_subgraphs() -> None:
    sdl = subgraph_sdl()
    assert "type Money @shareable {" in sdl
    assert '"@shareable"' in sdl.split("\n", 1)[0]  # imported in the @link
