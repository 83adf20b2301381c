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
from loyalty_api.graphql.documents import may_keep
from loyalty_api.graphql.errors import VALIDATION_FAILED

# Far past what a client's fragments nest (a handful), and well within Python's stack for the validators
# that walk spread by spread, whatever the token limit lets a document hold.
MAX_SPREAD_DEPTH = 50


class Unexpandable(Exception):
    """The document's fragments cannot be spread: it is refused before validation, with this message."""


def expanded_fields(document: DocumentNode) -> int:
    """The fields the document's operations select, each fragment counted wherever it is spread.
    Unexpandable when a spread names no fragment, a fragment spreads itself (directly or not), or spreads
    nest past MAX_SPREAD_DEPTH: validation refuses the first two, but strawberry's depth and alias limiters
    walk the spreads before it does, and fail or never end."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    sizes: dict[str, int] = {}
    spreading: list[str] = []

    def fragment(name: str) -> int:
        if name in sizes:
            return sizes[name]
        definition = fragments.get(name)
        if definition is None:
            raise Unexpandable(f'Unknown fragment "{name}".')
        if name in spreading:
            raise Unexpandable(f'Cannot spread fragment "{name}" within itself.')
        if len(spreading) >= MAX_SPREAD_DEPTH:
            raise Unexpandable(f"Fragment spreads nest more than {MAX_SPREAD_DEPTH} deep.")
        spreading.append(name)
        sizes[name] = selected(definition.selection_set)
        spreading.pop()
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

    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fields = sum(selected(operation.selection_set) for operation in operations)
    for name in fragments:  # an unused fragment is walked by the limiters too
        fragment(name)
    return fields


class BoundedValidation(ValidationCache):
    """Strawberry's validation cache for the documents it may keep (graphql/documents.py), behind the count
    of the document's fields: a document over `max_fields` is refused without being validated (nor priced,
    nor run). Another document is validated by strawberry itself, with the same rules, as no error is set
    before it is: a refusal of its own set by an extension (OperationChosen) refuses the request anyway."""

    def __init__(self, *, max_fields: int, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.max_fields = max_fields

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        refusal: GraphQLError | None = None
        try:
            fields = 0 if document is None else expanded_fields(document)
        except Unexpandable as exc:
            refusal = GraphQLError(str(exc), extensions={"code": VALIDATION_FAILED})
        except RecursionError:  # fields nested past Python's stack: past any limit too
            refusal = GraphQLError("The document nests too deeply.", extensions={"code": VALIDATION_FAILED})
        else:
            if fields > self.max_fields:
                refusal = GraphQLError(
                    f"The document selects {fields} fields once its fragments are spread, more than the "
                    f"limit of {self.max_fields}: spread fewer fragments, or split it",
                    extensions={"code": VALIDATION_FAILED, "fields": fields, "maxFields": self.max_fields},
                )
        if refusal is not None:
            context.pre_execution_errors = [refusal]
            yield
            return
        if may_keep(context.query):
            yield from super().on_validate()
        else:
            yield
