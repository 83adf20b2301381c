"""Cursor connections (`edges { cursor node }`, `pageInfo`) over REST's keyset pages: the cursors are REST's,
so a client can page through either API with the same cursor."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

import strawberry

from loyalty_api.errors import InvalidField
from loyalty_api.graphql.errors import as_graphql_error, domain_errors

MAX_PAGE = 100  # the most items one connection page or list field gives (`first`); REST's pages go to 200
Node = TypeVar("Node")
Item = TypeVar("Item")


# Shareable: every Relay-style subgraph declares a PageInfo; Federation 2 refuses two that resolve the same
# field unless each marks it @shareable.
@strawberry.federation.type(shareable=True)
class PageInfo:
    """Relay's page info, field for field, so it is one type with every Relay-style subgraph's."""

    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="Always false: pages go forward only (`first`, `after`), as REST's do."
    )
    start_cursor: str | None
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor: give it as `after` for the next page (after the last page, for "
        "what comes later in the list's order)."
    )


@strawberry.type
class Edge(Generic[Node]):
    cursor: str
    node: Node


@strawberry.type
class Connection(Generic[Node]):
    edges: list[Edge[Node]]
    page_info: PageInfo

    @classmethod
    def of(
        cls,
        items: Sequence[Item],
        next_cursor: str | None,
        node: Callable[[Item], Node],
        cursor: Callable[[Item], str],
    ) -> Connection[Node]:
        """A page of `items` (REST's page: its items and the cursor after them) as a connection."""
        edges = [Edge(cursor=cursor(item), node=node(item)) for item in items]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=next_cursor is not None,
                has_previous_page=False,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


def cursor_of(after: str | None) -> str | None:
    """`after` as REST's cursor: an empty one is the first page, as in REST."""
    return after or None


@contextmanager
def paged() -> Iterator[None]:
    """`domain_errors()` around reading a connection's page: the service refuses a cursor as REST's `cursor`
    (not one it returned, another list's), which the client sent here as `after`: the error names that."""
    with domain_errors():
        try:
            yield
        except InvalidField as exc:
            refused = exc.extra.get("errors", [])
            if [error.get("field") for error in refused] != ["cursor"]:
                raise
            raise InvalidField("after", refused[0]["message"]) from exc


def page_size(first: int) -> int:
    """`first` checked: a page has 1 to MAX_PAGE items."""
    if not 1 <= first <= MAX_PAGE:
        raise as_graphql_error(InvalidField("first", f"must be between 1 and {MAX_PAGE}"))
    return first
