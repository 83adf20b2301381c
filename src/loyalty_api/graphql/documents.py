"""Which GraphQL documents the parser and validation caches keep: those that carry no string literal.

A client sends the same few documents over and over, and parsing and validating one took a fifth of the
server's CPU for a member page with a quote: those are kept, bounded (a stream of distinct documents evicts,
never grows, the caches). A string literal is a value written into the document (a phone, an e-mail, a card
number): kept, it would stay in the process's memory until evicted, after its member was erased too, and a
document that carries one is seldom sent twice anyway. Such a document is parsed and validated each time;
sent as variables, the same values are never part of the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress

from strawberry.extensions import ParserCache

from graphql import GraphQLError

DOCUMENTS_CACHED = 256


def may_keep(query: str | None) -> bool:
    """Whether the caches may keep the document `query`: no `"` in its text, so no string literal (a `"` in a
    comment costs that document its cache entry, nothing more)."""
    return query is not None and '"' not in query


class ParsedOnce(ParserCache):
    """Strawberry's parser cache for the documents it may keep, leaving the others, and a document that does
    not parse, to strawberry's own parse (where a parse error gets its `GRAPHQL_PARSE_FAILED`: the cache's
    hook raises it before ErrorCodes can see it)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if may_keep(context.query):
            with suppress(GraphQLError):
                context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield
