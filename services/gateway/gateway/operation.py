"""Client operation helpers: field collection (fragments, @skip/@include), depth, variables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    VariableNode,
    is_abstract_type,
)


def response_key(node: FieldNode) -> str:
    """The key a field's value has in the response: its alias, else its name."""
    return node.alias.value if node.alias else node.name.value


def _condition(directive: DirectiveNode, bools: Mapping[str, bool]) -> bool | None:
    for argument in directive.arguments or ():
        if argument.name.value != "if":
            continue
        value = argument.value
        if isinstance(value, BooleanValueNode):
            return value.value
        if isinstance(value, VariableNode):
            return bools.get(value.name.value, False)
    return None


def is_included(node: SelectionNode, bools: Mapping[str, bool]) -> bool:
    """Whether @skip/@include keep the selection, given the boolean variable values."""
    for directive in node.directives or ():
        name = directive.name.value
        if name == "skip" and _condition(directive, bools) is True:
            return False
        if name == "include" and _condition(directive, bools) is False:
            return False
    return True


def condition_variables(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> tuple[str, ...]:
    """Variables used as the ``if`` of @skip/@include anywhere the operation reaches."""
    names: list[str] = []
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            for directive in selection.directives or ():
                if directive.name.value not in ("skip", "include"):
                    continue
                for argument in directive.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        variable = argument.value.name.value
                        if variable not in names:
                            names.append(variable)
            if isinstance(selection, FieldNode | InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    walk(fragments[name].selection_set)

    walk(operation.selection_set)
    return tuple(names)


def operation_depth(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    """The deepest field nesting of the operation (a root field is depth 1)."""
    memo: dict[str, int] = {}

    def depth(selection_set: SelectionSetNode | None, stack: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__") and selection.selection_set is None:
                    below = 1
                else:
                    below = 1 + depth(selection.selection_set, stack)
            elif isinstance(selection, InlineFragmentNode):
                below = depth(selection.selection_set, stack)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in stack or name not in fragments:
                    continue
                if name not in memo:
                    memo[name] = depth(fragments[name].selection_set, stack | {name})
                below = memo[name]
            else:
                continue
            deepest = max(deepest, below)
        return deepest

    return depth(operation.selection_set, frozenset())


@dataclass(frozen=True, slots=True)
class CollectedField:
    """All nodes of one response key at one place, for one runtime type."""

    key: str
    name: str
    nodes: tuple[FieldNode, ...]
    # The type named where the field was written (fragment condition or parent), for messages.
    label: str

    def selection_sets(self) -> tuple[SelectionSetNode, ...]:
        """The sub-selections of every node, to be merged."""
        return tuple(n.selection_set for n in self.nodes if n.selection_set is not None)


class FieldCollector:
    """CollectFields of the spec, for one document and one set of @skip/@include values."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        bools: Mapping[str, bool],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.bools = bools
        self._applies: dict[tuple[str, str], bool] = {}

    def applies(self, condition: str, type_name: str) -> bool:
        """Whether a fragment on ``condition`` applies to an object of ``type_name``."""
        if condition == type_name:
            return True
        cache_key = (condition, type_name)
        cached = self._applies.get(cache_key)
        if cached is not None:
            return cached
        condition_type = self.schema.get_type(condition)
        runtime_type = self.schema.get_type(type_name)
        result = (
            condition_type is not None
            and runtime_type is not None
            and is_abstract_type(condition_type)
            and self.schema.is_sub_type(condition_type, runtime_type)
        )
        self._applies[cache_key] = result
        return result

    def collect(
        self, type_name: str, selection_sets: Iterable[SelectionSetNode]
    ) -> list[CollectedField]:
        """Fields of the merged selection sets that apply to an object of ``type_name``."""
        nodes: dict[str, list[FieldNode]] = {}
        labels: dict[str, str] = {}
        visited: set[str] = set()

        def walk(selections: Sequence[SelectionNode], label: str) -> None:
            for selection in selections:
                if selection.directives and not is_included(selection, self.bools):
                    continue
                if isinstance(selection, FieldNode):
                    key = response_key(selection)
                    if key in nodes:
                        nodes[key].append(selection)
                    else:
                        nodes[key] = [selection]
                        labels[key] = label
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    if condition is None:
                        walk(selection.selection_set.selections, label)
                    elif self.applies(condition.name.value, type_name):
                        walk(selection.selection_set.selections, condition.name.value)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if name in visited or fragment is None:
                        continue
                    visited.add(name)
                    condition_name = fragment.type_condition.name.value
                    if self.applies(condition_name, type_name):
                        walk(fragment.selection_set.selections, condition_name)

        for selection_set in selection_sets:
            walk(selection_set.selections, type_name)
        return [
            CollectedField(key, group[0].name.value, tuple(group), labels[key])
            for key, group in nodes.items()
        ]
