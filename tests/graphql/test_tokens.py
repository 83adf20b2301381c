"""The early token count agrees with graphql-core's lexer, and stays linear on hostile documents."""

from __future__ import annotations

import pytest
from graphql.language.lexer import Lexer
from graphql.language.source import Source
from graphql.language.token_kind import TokenKind

from graphql import get_introspection_query
from loyalty_api.graphql.tokens import count_tokens


def lexer_count(document: str) -> int:
    lexer, count = Lexer(Source(document)), 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


@pytest.mark.parametrize(
    "document",
    [
        get_introspection_query(descriptions=True),
        '{ loyaltyMember(id: "01a2-x") { id memberNumber points { balance } } }',
        "query Q($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id } } }",
        '{ a(s: "x \\" y", t: """block " text""", n: -1.5e3, b: true, l: [1, 2]) @skip(if: $v) }',
        "# a comment\n{ __typename } # another",
        "mutation { earn(input: {amount: 100}) { balance } }",
    ],
)
def test_counts_what_the_lexer_counts(document: str) -> None:
    assert count_tokens(document, 10_000) == lexer_count(document)


def test_counting_stops_one_past_the_limit() -> None:
    document = "{" + " x" * 5_000 + "}"
    assert count_tokens(document, 100) == 101


@pytest.mark.parametrize(
    "document",
    ['"\\"' * 20_000, '"""' + 'a"' * 20_000, '"' * 60_000, '\\"' * 30_000, '"""' * 20_000],
)
def test_unclosed_strings_are_counted_in_one_pass(document: str) -> None:
    # Each of these took seconds to minutes when an unclosed string was scanned again from every position.
    assert 1 <= count_tokens(document, 1_000) <= 1_001
