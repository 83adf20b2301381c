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


def test_personal_fields_carry_the_personal_tag() -> None:
    """A partner-facing contract of the supergraph (Apollo contracts, `excludeTags: ["personal"]`) leaves out
    every field with the tag: each field of Member that holds personal data must have it, and no other."""
    sdl = subgraph_sdl()
    member = sdl[sdl.index("type Member ") :]
    member = member[: member.index("\n}\n")]
    tagged = {
        line.strip().split(":")[0].split("(")[0]
        for line in member.splitlines()
        if '@tag(name: "personal")' in line
    }
    assert tagged == {"name", "phone", "email", "birthday", "externalIds"}
    assert '"@tag"' in sdl.split("\n", 1)[0]
