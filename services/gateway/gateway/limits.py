"""The edge's checks of a client operation: aliases, root fields, introspection, list sizes, cost.

Every function here reads the document only (plus the coerced variables); none asks a subgraph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    value_from_ast,
)

from gateway.operation import is_included, response_key

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
# What one mutation root field costs before its selection (Shopify charges 10 too).
MUTATION_FIELD_COST = 10
PAGE_ARGUMENTS = ("first", "last")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the edge refuses a request: a GraphQL error with a code, and its HTTP status."""

    message: str
    code: str
    status: int = 400
    path: tuple[str, ...] | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def error(self) -> dict[str, Any]:
        """The GraphQL error of the refusal."""
        error: dict[str, Any] = {
            "message": self.message,
            "extensions": {"code": self.code, **self.extensions},
        }
        if self.path is not None:
            error["path"] = list(self.path)
        return error


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    """The fragment definitions of a (possibly invalid) document, by name."""
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
    return fragments


def _count(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    memo: dict[str, int],
    stack: frozenset[str],
    *,
    aliases: bool,
) -> int:
    """Aliases below a selection set (``aliases``), else the fields directly in it.

    Fragment spreads count every time they are spread (memoized: linear in the document); a
    fragment cycle counts nothing (validation refuses it).
    """
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if aliases:
                total += 1 if selection.alias is not None else 0
                if selection.selection_set is not None:
                    total += _count(selection.selection_set, fragments, memo, stack, aliases=True)
            else:
                total += 1
        elif isinstance(selection, InlineFragmentNode):
            total += _count(selection.selection_set, fragments, memo, stack, aliases=aliases)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in stack:
                continue
            if name not in memo:
                memo[name] = _count(
                    fragment.selection_set, fragments, memo, stack | {name}, aliases=aliases
                )
            total += memo[name]
    return total


def alias_count(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    """How many aliased fields the operation has, each fragment counted per spread."""
    return _count(operation.selection_set, fragments, {}, frozenset(), aliases=True)


def root_field_count(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    """How many root fields the operation selects (fragments at the root included)."""
    return _count(operation.selection_set, fragments, {}, frozenset(), aliases=False)


def uses_introspection(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> bool:
    """Whether the operation reaches ``__schema`` or ``__type`` (``__typename`` is fine)."""
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> bool:
        if selection_set is None:
            return False
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value in INTROSPECTION_FIELDS or walk(selection.selection_set):
                    return True
            elif isinstance(selection, InlineFragmentNode):
                if walk(selection.selection_set):
                    return True
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    if walk(fragments[name].selection_set):
                        return True
        return False

    return walk(operation.selection_set)


def page_size_variables(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> tuple[str, ...]:
    """Variables a ``first``/``last`` argument uses anywhere the operation reaches: with the
    @skip/@include values, all a measure depends on besides the document."""
    names: list[str] = []
    seen: set[str] = set()

    def variables_in(node: Node) -> None:
        if isinstance(node, VariableNode):
            if node.name.value not in names:
                names.append(node.name.value)
        elif isinstance(node, ListValueNode):
            for value in node.values:
                variables_in(value)
        elif isinstance(node, ObjectValueNode):
            for object_field in node.fields:
                variables_in(object_field.value)

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    if argument.name.value in PAGE_ARGUMENTS:
                        variables_in(argument.value)
                walk(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    walk(fragments[name].selection_set)

    walk(operation.selection_set)
    return tuple(names)


@dataclass(slots=True)
class Measure:
    """The cost of one operation for one set of variables, or the first list-size refusal."""

    cost: int
    refusal: Refusal | None = None


def schema_default(argument: GraphQLArgument) -> Any:
    """An argument's default in the schema (Undefined if none). graphql-core 3.3 keeps a
    default built from SDL as a literal in ``argument.default``, not in ``default_value``."""
    if argument.default_value is not Undefined:
        return argument.default_value
    default = argument.default
    if default is None:
        return Undefined
    if default.value is not Undefined:
        return default.value
    if default.literal is None:
        return Undefined
    return value_from_ast(default.literal, argument.type)


class _Meter:
    """Walks a validated operation with the API schema: list sizes and cost."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        bools: Mapping[str, bool],
        max_list_size: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.bools = bools
        self.max_list_size = max_list_size
        self.refusal: Refusal | None = None
        # Within one request a fragment always costs the same: linear however often it is spread.
        self._fragment_costs: dict[tuple[str, int], int] = {}

    def page_size(self, node: FieldNode, definition: GraphQLField, path: tuple[str, ...]) -> int:
        """The largest of ``first``/``last`` (given, else the schema default); -1 if neither."""
        size = -1
        for name in PAGE_ARGUMENTS:
            argument = definition.args.get(name)
            if argument is None:
                continue
            value: Any = Undefined
            for given in node.arguments or ():
                if given.name.value == name:
                    value = value_from_ast(given.value, argument.type, self.variables)
                    break
            else:
                value = schema_default(argument)
            if isinstance(value, int) and not isinstance(value, bool):
                if value > self.max_list_size and self.refusal is None:
                    self.refusal = Refusal(
                        f"`{name}: {value}` on `{node.name.value}` is over the maximum list size "
                        f"of {self.max_list_size}.",
                        "BAD_USER_INPUT",
                        path=path,
                        extensions={"field": name},
                    )
                size = max(size, value)
        return size

    def field_cost(
        self, node: FieldNode, parent: GraphQLNamedType, path: tuple[str, ...], base: int
    ) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0
        path = (*path, response_key(node))
        size = self.page_size(node, definition, path)
        named = get_named_type(definition.type)
        if named.name.endswith("Connection") and not is_leaf_type(named):
            has_page_arguments = any(a in definition.args for a in PAGE_ARGUMENTS)
            if size < 0 and has_page_arguments and self.refusal is None:
                self.refusal = Refusal(
                    f"`{name}` is a connection: give `first` or `last` "
                    f"(at most {self.max_list_size}).",
                    "BAD_USER_INPUT",
                    path=path,
                    extensions={"field": "first"},
                )
        if is_leaf_type(named):
            return 0
        multiplier = 1
        if size >= 0 and (
            named.name.endswith("Connection") or is_list_type(get_nullable_type(definition.type))
        ):
            multiplier = size
        below = self.selection_cost(node.selection_set, named, path)
        return base + multiplier * below

    def selection_cost(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType,
        path: tuple[str, ...],
        base: int = 1,
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if selection.directives and not is_included(selection, self.bools):
                continue
            if isinstance(selection, FieldNode):
                total += self.field_cost(selection, parent, path, base)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_cost(selection.selection_set, inner or parent, path, base)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None:
                    continue
                key = (name, base)
                if key not in self._fragment_costs:
                    self._fragment_costs[key] = 0  # a cycle (refused by validation) costs 0
                    inner = self.schema.get_type(fragment.type_condition.name.value) or parent
                    self._fragment_costs[key] = self.selection_cost(
                        fragment.selection_set, inner, path, base
                    )
                total += self._fragment_costs[key]
        return total


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    bools: Mapping[str, bool],
    max_list_size: int,
) -> Measure:
    """The cost of a validated operation and the first list-size problem, if any.

    Cost: a field returning an object, interface or union costs 1 (a mutation root field 10)
    plus the cost of its selection; a connection (type named ``...Connection``) or a list with a
    ``first``/``last`` argument multiplies the cost of its selection by that size; scalars, enums
    and introspection cost 0. Fragments on different types all count (an upper bound).
    """
    meter = _Meter(schema, fragments, variables, bools, max_list_size)
    if operation.operation == OperationType.MUTATION:
        root: GraphQLObjectType | None = schema.mutation_type
        base = MUTATION_FIELD_COST
    else:
        root = schema.query_type
        base = 1
    if root is None:
        return Measure(0)
    cost = meter.selection_cost(operation.selection_set, root, (), base)
    return Measure(cost, meter.refusal)
