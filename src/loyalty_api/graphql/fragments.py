"""How many fields a GraphQL document selects once its fragments are spread, counted before validation.

The depth and alias limiters and the query cost walk a fragment again wherever it is spread. Twenty
fragments, each spreading the next twice, fit in 800 bytes and expand to a million fields: the walks then
held the event loop for seconds, the whole server with it, and more levels would never end. Counted here
with each fragment's size worked out once, such a document is refused in microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import ValidationCache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from loyalty_api.graphql.errors import VALIDATION_FAILED


def expanded_fields(document: DocumentNode) -> int:
    """The fields the document's operations select, each fragment counted wherever it is spread. A spread
    of an unknown fragment, or of one that spreads itself, counts nothing: validation refuses both."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    sizes: dict[str, int] = {}
    spreading: set[str] = set()

    def fragment(name: str) -> int:
        if name in sizes:
            return sizes[name]
        definition = fragments.get(name)
        if definition is None or name in spreading:
            return 0
        spreading.add(name)
        sizes[name] = selected(definition.selection_set)
        spreading.discard(name)
        return sizes[name]

    def selected(selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += 1 + selected(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += selected(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += fragment(selection.name.value)
        return total

    return sum(
        selected(d.selection_set) for d in document.definitions if isinstance(d, OperationDefinitionNode)
    )


class BoundedValidation(ValidationCache):
    """Strawberry's validation cache, behind the count of the document's fields: a document over
    `max_fields` is refused without being validated (nor priced, nor run)."""

    def __init__(self, *, max_fields: int, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.max_fields = max_fields

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        try:
            fields = 0 if document is None else expanded_fields(document)
        except RecursionError:  # nested past Python's stack: past any limit too
            fields = self.max_fields + 1
        if fields > self.max_fields:
            context.pre_execution_errors = [
                GraphQLError(
                    f"The document selects {fields} fields once its fragments are spread, more than the "
                    f"limit of {self.max_fields}: spread fewer fragments, or split it",
                    extensions={"code": VALIDATION_FAILED, "fields": fields, "maxFields": self.max_fields},
                )
            ]
            yield
            return
        yield from super().on_validate()
