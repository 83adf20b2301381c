"""Query cost: how much a document may make the service read, priced before anything runs.

Every field that returns an object costs 1 (or its `@cost` weight, or its type's: a type resolved by
statements of its own); scalars cost nothing. A list multiplies what its items cost by its size: the value of
its slicing argument (`first`), else its `@listSize` `assumedSize`; `_entities` adds up the representations
it names, each at its type's weight. Each mutation costs COST_PER_UNIT more. A
document over `LOYALTY_GRAPHQL_MAX_COST` is refused with `GRAPHQL_VALIDATION_FAILED`; one within it spends one
unit of the calling key's rate budget per COST_PER_UNIT beyond the first (the call's unit, spent at the edge),
so a key's budget bounds the rows it can make us read and the writes it can make, not only its calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from graphql.execution.values import get_variable_values
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.federation.schema_directives import Cost, ListSize
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UNSET

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    is_list_type,
)
from loyalty_api.graphql.errors import VALIDATION_FAILED, as_graphql_error
from loyalty_api.http.rate_limits import RateLimited

COST_PER_UNIT = 100
# Each mutation of a document costs a unit of the key's budget, as each REST call does.
MUTATION_WEIGHT = COST_PER_UNIT
ENTITIES = "_entities"


def assumed(size: int) -> ListSize:
    """`@listSize(assumedSize:)`: a list without a slicing argument, priced at this many items."""
    return ListSize(
        assumed_size=size, slicing_arguments=UNSET, sized_fields=UNSET, require_one_slicing_argument=UNSET
    )


def sliced(argument: str = "first", *, sized_fields: list[str] | None = None) -> ListSize:
    """`@listSize(slicingArguments:)`: a list (or a connection's `sized_fields`) of at most `argument` items;
    the argument has a default, so a query need not give it."""
    return ListSize(
        assumed_size=UNSET,
        slicing_arguments=[argument],
        sized_fields=UNSET if sized_fields is None else sized_fields,
        require_one_slicing_argument=False,
    )


def unbatched(statements: int) -> Cost:
    """`@cost` of a relation read for each parent on its own (not through a DataLoader): the statements it
    runs each time, so fifty parents asking for it are priced as the reads they make."""
    return Cost(weight=statements)


def directive_of(field: GraphQLField, kind: type[Any]) -> Any:
    definition = field.extensions.get("strawberry-definition")
    if isinstance(definition, StrawberryField):
        for directive in definition.directives:
            if isinstance(directive, kind):
                return directive
    return None


def _weight(named: GraphQLNamedType | None) -> int:
    """What an object of this type costs: its `@cost` (a type resolved by statements of its own), else 1;
    a scalar or enum nothing."""
    definition = None if named is None else named.extensions.get("strawberry-definition")
    for directive in getattr(definition, "directives", None) or ():
        if isinstance(directive, Cost):
            return int(directive.weight)
    return 1 if named is not None and is_composite_type(named) else 0


def _typename(representation: Any, variables: Mapping[str, Any]) -> str | None:
    """`__typename` of a representation, sent as a variable (a dict) or written in the document (its
    `__typename` written there or a variable)."""
    if isinstance(representation, VariableNode):
        representation = variables.get(representation.name.value)
    if isinstance(representation, Mapping):
        typename = representation.get("__typename")
        return typename if isinstance(typename, str) else None
    if isinstance(representation, ObjectValueNode):
        for field in representation.fields:
            if field.name.value != "__typename":
                continue
            if isinstance(field.value, StringValueNode):
                return field.value.value
            if isinstance(field.value, VariableNode):
                typename = variables.get(field.value.name.value)
                return typename if isinstance(typename, str) else None
    return None


def _value(node: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(node, VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, ListValueNode):
        return node.values
    if isinstance(node, ObjectValueNode):  # one representation given for the list
        return node
    return None


_NONE_SIZED: Mapping[str, int] = {}


def _fields(parent: GraphQLNamedType) -> Mapping[str, GraphQLField]:
    return parent.fields if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) else {}


class _Pricer:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._spreading: set[str] = set()

    def selections(
        self,
        parent: GraphQLNamedType,
        selection_set: SelectionSetNode | None,
        sized: Mapping[str, int] = _NONE_SIZED,
    ) -> int:
        """What a selection costs; `sized` names the fields (a connection's `edges`) that are lists of the
        size their parent's arguments give."""
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found = _fields(parent).get(selection.name.value)
                if found is not None:
                    total += sized.get(selection.name.value, 1) * self.field(found, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(inner or parent, selection.selection_set, sized)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in self._spreading:
                    continue  # validation refuses both
                self._spreading.add(name)
                inner = self.schema.get_type(fragment.type_condition.name.value)
                total += self.selections(inner or parent, fragment.selection_set, sized)
                self._spreading.discard(name)
        return total

    def top_fields(self, selection_set: SelectionSetNode) -> list[FieldNode]:
        """The fields a selection runs, through its inline fragments and fragment spreads: each mutation of a
        document counts, however it is written."""
        found: list[FieldNode] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                found += self.top_fields(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in self._spreading:
                    continue  # validation refuses both
                self._spreading.add(name)
                found += self.top_fields(fragment.selection_set)
                self._spreading.discard(name)
        return found

    def field(self, field: GraphQLField, node: FieldNode) -> int:
        named = get_named_type(field.type)
        if node.name.value == ENTITIES:
            # Each representation at its own type's weight: an entity resolved on its own (not through a
            # DataLoader) costs the statements it runs, however few fields are asked of it.
            typenames = [_typename(r, self.variables) for r in self.representations(node)]
            children = self.selections(named, node.selection_set)
            return sum(max(1, _weight(self.schema.get_type(t or ""))) + children for t in typenames)
        cost = directive_of(field, Cost)
        weight = cost.weight if cost is not None else _weight(named)
        list_size = directive_of(field, ListSize)
        if list_size is not None and list_size.sized_fields:  # a connection: its edges are the list
            sized = dict.fromkeys(list_size.sized_fields, self.size(field, node))
            return weight + self.selections(named, node.selection_set, sized)
        children = self.selections(named, node.selection_set)
        if not is_list_type(get_nullable_type(field.type)) and list_size is None:
            return weight + children
        return self.size(field, node) * (weight + children)

    def arguments(self, node: FieldNode) -> dict[str, Any]:
        return {a.name.value: _value(a.value, self.variables) for a in node.arguments or ()}

    def representations(self, node: FieldNode) -> list[Any]:
        """`_entities`' representations as sent (a variable's dicts, or a literal's nodes, each of which may
        be a variable); one object given for the list is a list of one, as GraphQL takes it; else one
        unknown."""
        representations = self.arguments(node).get("representations")
        if isinstance(representations, ObjectValueNode | Mapping):
            return [representations]
        return list(representations) if isinstance(representations, list | tuple) else [None]

    def size(self, field: GraphQLField, node: FieldNode) -> int:
        arguments = self.arguments(node)
        list_size = directive_of(field, ListSize)
        if list_size is None:
            return 1
        for name in list_size.slicing_arguments or ():  # UNSET is falsy
            given = arguments.get(name)
            if isinstance(given, int):
                return max(given, 0)
            default = field.args[name].default_value if name in field.args else None
            if isinstance(default, int):
                return default
        return int(list_size.assumed_size or 1)  # UNSET is falsy


def cost_of(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any]
) -> int:
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    # The variables as execution sees them: one left out takes its declared default (`query($n: Int = 100)`
    # is priced as `first: 100`), and a value is coerced (`100.0` sent for an Int is 100). Variables that do
    # not coerce stop execution before any field runs.
    found = get_variable_values(schema, operation.variable_definitions or [], dict(variables), max_errors=1)
    pricer = _Pricer(schema, document, {} if isinstance(found, list) else found.coerced)
    writes = 0
    if operation.operation is OperationType.MUTATION:
        writes = sum(
            1 for field in pricer.top_fields(operation.selection_set) if not field.name.value.startswith("__")
        )
    return writes * MUTATION_WEIGHT + pricer.selections(root, operation.selection_set)


class QueryCost(SchemaExtension):
    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            schema = context.schema._schema
            cost = cost_of(schema, document, context.operation_name, context.variables or {})
            if cost > self.max_cost:
                raise GraphQLError(
                    f"The query costs {cost}, more than the limit of {self.max_cost}: ask for fewer items "
                    "(smaller `first`, fewer representations) or split it",
                    extensions={"code": VALIDATION_FAILED, "cost": cost, "maxCost": self.max_cost},
                )
            await _spend(context.context, cost)
        yield


async def _spend(context: Any, cost: int) -> None:
    units = max(0, cost - COST_PER_UNIT) // COST_PER_UNIT  # the first unit is the call's, spent at the edge
    principal = getattr(context, "principal", None)
    if principal is None or units == 0:
        return
    limiter = context.rate_limiter
    try:
        await limiter.spend(limiter.budget_of(principal), principal.key_lineage, cost=units)
    except RateLimited as exc:
        raise as_graphql_error(exc) from exc
