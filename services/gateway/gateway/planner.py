"""Query planning: which subgraph fetches which selections, at which response path, after what.

A plan is a DAG of fetches. Root fetches take the operation's root fields from their owners;
entity fetches take the fields another subgraph owns through ``_entities``, one fetch per
(subgraph, response path) whatever the number of objects there, fed with representations
(``__typename`` + key fields + ``@requires`` fields) read from the data merged so far.
Every fetch forwards only the client's selections plus what joins need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from graphql import (
    ArgumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    NameNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
    print_ast,
)

from gateway.operation import CollectedField, FieldCollector
from gateway.supergraph import Key, Supergraph, parse_field_set

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


class PlanningError(Exception):
    """The operation cannot be planned over this supergraph."""


@dataclass(frozen=True, slots=True)
class RepField:
    """A field of an entity representation: its name and where the gateway's data keeps it."""

    name: str
    key: str
    children: tuple[RepField, ...] = ()


@dataclass(frozen=True, slots=True)
class Fetch:
    """One request to one subgraph."""

    id: int
    subgraph: str
    operation: str
    operation_name: str | None
    variables: tuple[str, ...]
    # Response keys from the root to the objects this fetch completes (lists are flattened).
    path: tuple[str, ...]
    # For entity fetches: how to build a representation, per __typename. None for root fetches.
    representations: Mapping[str, tuple[RepField, ...]] | None
    depends_on: tuple[int, ...]
    # Concrete __typename -> the @interfaceObject name the subgraph knows the entity by.
    rep_typenames: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_entity_fetch(self) -> bool:
        """Whether this fetch goes through ``_entities``."""
        return self.representations is not None


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """Everything needed to execute one operation with given @skip/@include values."""

    kind: Literal["query", "mutation", "subscription"]
    root_type: str
    operation: OperationDefinitionNode
    fragments: Mapping[str, FragmentDefinitionNode]
    bools: Mapping[str, bool]
    fetches: tuple[Fetch, ...]
    # Root __schema / __type selections, answered by the gateway from the API schema.
    introspection: tuple[FieldNode, ...]

    def describe(self) -> str:
        """A readable rendering of the plan (for logs and tests)."""
        lines = []
        for fetch in self.fetches:
            where = ".".join(fetch.path) or "<root>"
            after = f" after {list(fetch.depends_on)}" if fetch.depends_on else ""
            lines.append(f"#{fetch.id} {fetch.subgraph} @ {where}{after}: {fetch.operation}")
        return "\n".join(lines)


# -- subgraph selections under construction ----------------------------------------------------


class _SubField:
    __slots__ = ("name", "arguments", "children")

    def __init__(self, name: str, arguments: tuple[ArgumentNode, ...]) -> None:
        self.name = name
        self.arguments = arguments
        self.children: _Selection | None = None


class _Selection:
    """A subgraph selection set; fields are bucketed by type condition (None: no condition)."""

    __slots__ = ("typename", "buckets")

    def __init__(self) -> None:
        self.typename = False
        self.buckets: dict[str | None, dict[str, _SubField]] = {}

    def bucket(self, condition: str | None) -> dict[str, _SubField]:
        found = self.buckets.get(condition)
        if found is None:
            found = self.buckets[condition] = {}
        return found

    def render(self) -> str:
        parts: list[str] = ["__typename"] if self.typename else []
        for condition, fields in self.buckets.items():
            if not fields:
                continue
            body = " ".join(_render_field(key, sub) for key, sub in fields.items())
            parts.append(body if condition is None else f"... on {condition} {{ {body} }}")
        return "{ " + " ".join(parts) + " }"


def _render_field(key: str, sub: _SubField) -> str:
    text = sub.name if key == sub.name else f"{key}: {sub.name}"
    if sub.arguments:
        text += "(" + ", ".join(print_ast(a) for a in sub.arguments) + ")"
    if sub.children is not None:
        text += " " + sub.children.render()
    return text


def _signature(name: str, arguments: Iterable[ArgumentNode] | None) -> str:
    args = ", ".join(sorted(print_ast(a) for a in arguments or ()))
    return f"{name}({args})" if args else name


def _variables_in(value: ValueNode, into: list[str]) -> None:
    if isinstance(value, VariableNode):
        if value.name.value not in into:
            into.append(value.name.value)
    elif isinstance(value, ListValueNode):
        for item in value.values:
            _variables_in(item, into)
    elif isinstance(value, ObjectValueNode):
        for object_field in value.fields:
            _variables_in(object_field.value, into)


def _provided_tree(selection: SelectionSetNode | None) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for node in selection.selections if selection else ():
        if isinstance(node, FieldNode):
            sub = tree.setdefault(node.name.value, {})
            sub.update(_provided_tree(node.selection_set))
        elif isinstance(node, InlineFragmentNode):
            # Type conditions are merged: a provided field is provided whatever the type.
            for name, sub_tree in _provided_tree(node.selection_set).items():
                tree.setdefault(name, {}).update(sub_tree)
    return tree


def _plain_rep(selection: SelectionSetNode | None) -> tuple[RepField, ...]:
    fields: list[RepField] = []
    for node in selection.selections if selection else ():
        if isinstance(node, FieldNode):
            name = node.name.value
            fields.append(RepField(name, name, _plain_rep(node.selection_set)))
    return tuple(fields)


def _merge_reps(into: list[RepField], more: Iterable[RepField]) -> None:
    for rep in more:
        for index, existing in enumerate(into):
            if existing.key == rep.key:
                children = list(existing.children)
                _merge_reps(children, rep.children)
                into[index] = RepField(existing.name, existing.key, tuple(children))
                break
        else:
            into.append(rep)


# -- planning --------------------------------------------------------------------------------


class _FetchBuilder:
    __slots__ = (
        "id",
        "graph",
        "path",
        "entity",
        "selection",
        "variables",
        "deps",
        "reps",
        "renames",
    )

    def __init__(self, fetch_id: int, graph: str, path: tuple[str, ...], entity: bool) -> None:
        self.id = fetch_id
        self.graph = graph
        self.path = path
        self.entity = entity
        self.selection = _Selection()
        self.variables: list[str] = []
        self.deps: set[int] = set()
        self.reps: dict[str, tuple[RepField, ...]] = {}
        self.renames: dict[str, str] = {}


class _Pending:
    """Fields one position must get from another subgraph through ``_entities``."""

    __slots__ = ("fields", "reps", "after", "nested", "whole", "renames")

    def __init__(self) -> None:
        self.fields: dict[str, list[CollectedField]] = {}
        # Interface objects resolved by the interface's owner: the client's whole selections.
        self.whole: dict[str, list[SelectionSetNode]] = {}
        # Concrete type -> the @interfaceObject name the target subgraph knows it by.
        self.renames: dict[str, str] = {}
        self.reps: dict[str, tuple[RepField, ...]] = {}
        # Subgraphs (pending at the same position) whose data the representations need.
        self.after: set[str] = set()
        # Fetches below this position whose data the representations need (nested required
        # fields owned elsewhere): (position, subgraph).
        self.nested: list[tuple[_Position, str]] = []

    def add(self, type_name: str, collected: CollectedField) -> None:
        group = self.fields.setdefault(type_name, [])
        for index, existing in enumerate(group):
            if existing.key == collected.key:
                group[index] = CollectedField(
                    existing.key, existing.name, existing.nodes + collected.nodes, existing.label
                )
                return
        group.append(collected)


class _Position:
    """One place in one fetch's response: the objects found at ``path``."""

    def __init__(
        self,
        planner: Planner,
        fetch: _FetchBuilder,
        path: tuple[str, ...],
        selection: _Selection,
        typed: bool,
        provided: dict[str, Any] | None,
        static_type: str = "",
        requires_satisfied: bool = False,
    ) -> None:
        self.planner = planner
        self.static_type = static_type
        # True for _entities answers: their representations carry the @requires fields.
        self.requires_satisfied = requires_satisfied
        self.supergraph = planner.supergraph
        self.fetch = fetch
        self.graph = fetch.graph
        self.path = path
        self.selection = selection
        # Abstract positions and _entities answers bucket fields by concrete type.
        self.typed = typed
        self.provided = provided
        self.pending: dict[str, _Pending] = {}
        self.children: dict[tuple[str, str], _Position] = {}
        self.signatures: dict[tuple[str, str], str] = {}
        # The entity fetches made at this position, by subgraph (once finished).
        self.built: dict[str, _FetchBuilder] = {}
        self.is_root = not path and not fetch.entity

    # client selections

    def add_sets(self, static_type: str, selection_sets: tuple[SelectionSetNode, ...]) -> None:
        """Plans the client's sub-selections of a field whose type is ``static_type``."""
        if not selection_sets:
            return
        if self.typed:
            self.selection.typename = True
            if self.supergraph.is_interface_object(self.graph, static_type):
                self._delegate(static_type, selection_sets)
                return
            types = self.supergraph.possible_types_in(self.graph, static_type)
        else:
            types = [static_type]
        collector = self.planner.collector
        for type_name in types:
            self.add(type_name, collector.collect(type_name, selection_sets))

    def _delegate(self, interface: str, selection_sets: tuple[SelectionSetNode, ...]) -> None:
        """An ``@interfaceObject`` answers ``__typename: "<interface>"``: the runtime type and
        the rest of the selection come from a subgraph that defines the interface itself."""
        owners = self.supergraph.interface_owner(interface)
        keyed = [g for g in owners if self.supergraph.keys(interface, g)]
        if not keyed:
            raise PlanningError(f"no subgraph resolves the types of interface object {interface}")
        pending = self.pending.setdefault(keyed[0], _Pending())
        pending.whole.setdefault(interface, []).extend(selection_sets)

    def add(self, type_name: str, fields: Iterable[CollectedField]) -> None:
        """Plans client fields asked of objects of ``type_name`` at this position."""
        bucket = self.selection.bucket(type_name if self.typed else None)
        for collected in fields:
            name = collected.name
            if name == "__typename":
                if not self.is_root:
                    bucket.setdefault("__typename", _SubField("__typename", ()))
                continue
            if name in INTROSPECTION_FIELDS:
                continue
            self.signatures[(type_name, collected.key)] = _signature(
                name, collected.nodes[0].arguments
            )
            graph = self._choose(type_name, name, selection_sets=collected.selection_sets())
            if graph == self.graph and not self._needs_requires_hop(type_name, name):
                arguments = tuple(collected.nodes[0].arguments or ())
                self._add_local(
                    type_name, collected.key, name, arguments, collected.selection_sets()
                )
            else:
                self.pending.setdefault(graph, _Pending()).add(type_name, collected)

    def _needs_requires_hop(self, type_name: str, name: str) -> bool:
        """A local field with @requires still goes through _entities to receive what it needs."""
        if self.requires_satisfied:
            return False
        join = self.supergraph.field_join(type_name, name, self.graph)
        return join is not None and bool(join.requires)

    def _resolvable(self, type_name: str, name: str, internal: bool = False) -> bool:
        if self.supergraph.can_resolve(self.graph, type_name, name, internal=internal):
            return True
        return self.provided is not None and name in self.provided

    def _choose(
        self,
        type_name: str,
        name: str,
        internal: bool = False,
        selection_sets: tuple[SelectionSetNode, ...] = (),
        exclude: str | None = None,
    ) -> str:
        """The subgraph to take ``type.name`` from at this position.

        ``exclude`` is the subgraph a representation is being built for: it cannot supply the
        fields of its own representation.
        """
        supergraph = self.supergraph
        local = self._resolvable(type_name, name, internal)
        if local and (
            not selection_sets or self.planner.feasible(self.graph, type_name, name, selection_sets)
        ):
            return self.graph
        candidates = supergraph.field_graphs(type_name, name, internal=internal)
        if not candidates:
            raise PlanningError(f"no subgraph resolves {type_name}.{name}")
        with_keys = [c for c in candidates if c != exclude and supergraph.keys(type_name, c)]
        if local:
            # A shareable field whose value type this subgraph only partly knows: take it from
            # a subgraph that can answer the whole selection, when the parent can hop there.
            for candidate in with_keys:
                if candidate != self.graph and self.planner.feasible(
                    candidate, type_name, name, selection_sets
                ):
                    return candidate
            return self.graph
        if not with_keys:
            raise PlanningError(
                f"{type_name}.{name} is not resolvable from subgraph {self.graph!r} and "
                f"{type_name} has no key in {[c for c in candidates if c != exclude]}"
            )
        reachable = [c for c in with_keys if self._local_key(type_name, c) is not None]
        for candidate in reachable or with_keys:
            if candidate in self.pending:
                return candidate
        return (reachable or with_keys)[0]

    def _local_key(self, type_name: str, graph: str) -> Key | None:
        for key in self.supergraph.keys(type_name, graph):
            names = [n.name.value for n in key.selection.selections if isinstance(n, FieldNode)]
            if all(self._resolvable(type_name, n, internal=True) for n in names):
                return key
        return None

    def _add_local(
        self,
        type_name: str,
        key: str,
        name: str,
        arguments: tuple[ArgumentNode, ...],
        selection_sets: tuple[SelectionSetNode, ...],
    ) -> _Position | None:
        bucket = self.selection.bucket(type_name if self.typed else None)
        sub = bucket.get(key)
        if sub is None:
            sub = bucket[key] = _SubField(name, arguments)
            for argument in arguments:
                _variables_in(argument.value, self.fetch.variables)
        object_type = self.planner.schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType | GraphQLInterfaceType)
        field_def = object_type.fields.get(name)
        if field_def is None:
            raise PlanningError(f"unknown field {type_name}.{name}")
        named = get_named_type(field_def.type)
        if not is_composite_type(named):
            return None
        child = self.children.get((type_name, key))
        if child is None:
            sub.children = _Selection()
            child = _Position(
                self.planner,
                self.fetch,
                self.path + (key,),
                sub.children,
                typed=is_abstract_type(named),
                provided=self._child_provided(type_name, name),
                static_type=named.name,
            )
            self.children[(type_name, key)] = child
        child.add_sets(named.name, selection_sets)
        return child

    def _child_provided(self, type_name: str, name: str) -> dict[str, Any] | None:
        join = self.supergraph.field_join(type_name, name, self.graph)
        if join is not None and join.provides:
            return _provided_tree(parse_field_set(join.provides))
        if self.provided is not None and name in self.provided:
            nested = self.provided[name]
            assert isinstance(nested, dict)
            return nested
        return None

    # what joins need

    def add_internal(
        self,
        type_name: str,
        selection: SelectionSetNode | None,
        deps: set[str],
        nested: list[tuple[_Position, str]],
        exclude: str | None = None,
    ) -> tuple[RepField, ...]:
        """Adds key/@requires fields; returns how to read them back as a representation.

        ``deps`` receives the subgraphs pending at this position whose data the representation
        needs, ``nested`` the (position, subgraph) pairs pending below it (a required field's
        sub-field owned elsewhere); ``exclude`` is the subgraph the representation is for.
        """
        reps: list[RepField] = []
        for node in selection.selections if selection else ():
            if isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                if condition is None or self.planner.collector.applies(
                    condition.name.value, type_name
                ):
                    more = self.add_internal(type_name, node.selection_set, deps, nested, exclude)
                    _merge_reps(reps, more)
                continue
            if not isinstance(node, FieldNode):
                continue
            name = node.name.value
            if name == "__typename":
                continue
            arguments = tuple(node.arguments or ())
            key = self._internal_key(type_name, name, arguments)
            graph = self._choose(type_name, name, internal=True, exclude=exclude)
            if graph == self.graph:
                child = self._add_local(type_name, key, name, arguments, ())
                children: tuple[RepField, ...] = ()
                if child is not None and node.selection_set is not None:
                    child_type = child.static_type
                    if child.typed:
                        raise PlanningError(
                            f"key or @requires selection on abstract {type_name}.{name}"
                            " is not supported"
                        )
                    below: set[str] = set()
                    children = child.add_internal(child_type, node.selection_set, below, nested)
                    nested.extend((child, other) for other in sorted(below))
            else:
                alias = NameNode(value=key) if key != name else None
                forwarded = FieldNode(
                    alias=alias,
                    name=node.name,
                    arguments=arguments,
                    selection_set=node.selection_set,
                )
                collected = CollectedField(key, name, (forwarded,), type_name)
                self.pending.setdefault(graph, _Pending()).add(type_name, collected)
                deps.add(graph)
                children = _plain_rep(node.selection_set)
            _merge_reps(reps, [RepField(name, key, children)])
        return tuple(reps)

    def _internal_key(
        self, type_name: str, name: str, arguments: tuple[ArgumentNode, ...] = ()
    ) -> str:
        signature = _signature(name, arguments)
        key = name
        number = 0
        while True:
            existing = self.signatures.get((type_name, key))
            if existing is None or existing == signature:
                self.signatures[(type_name, key)] = signature
                return key
            # The client used this response key for something else: read ours under an alias.
            number += 1
            key = f"__fed_{name}" if number == 1 else f"__fed_{name}_{number}"

    def finish(self) -> None:
        """Turns pending cross-subgraph fields into entity fetches, depth first."""
        supergraph = self.supergraph
        done: set[tuple[str, str]] = set()
        progressed = True
        while progressed:
            progressed = False
            for target in list(self.pending):
                pending = self.pending[target]
                for type_name in [*pending.fields, *pending.whole]:
                    if (target, type_name) in done:
                        continue
                    done.add((target, type_name))
                    progressed = True
                    key = self._local_key(type_name, target)
                    if key is None:
                        keys = supergraph.keys(type_name, target)
                        if not keys:
                            raise PlanningError(f"{type_name} has no key in subgraph {target!r}")
                        key = keys[0]
                    deps: set[str] = set()
                    nested = pending.nested
                    reps = list(
                        self.add_internal(type_name, key.selection, deps, nested, exclude=target)
                    )
                    sent = supergraph.entity_type_in(target, type_name)
                    if sent != type_name:
                        pending.renames[type_name] = sent
                    for collected in pending.fields.get(type_name, ()):
                        join = supergraph.field_join(sent, collected.name, target)
                        if join is not None and join.requires:
                            required = parse_field_set(join.requires)
                            more = self.add_internal(type_name, required, deps, nested, target)
                            _merge_reps(reps, more)
                    pending.reps[type_name] = tuple(reps)
                    pending.after |= deps - {target}
                    if self.typed:
                        self.selection.typename = True
                    else:
                        self.selection.bucket(None).setdefault(
                            "__typename", _SubField("__typename", ())
                        )
        for child in list(self.children.values()):
            child.finish()
        if not self.pending:
            return
        order = self._dependency_order()
        builders: dict[str, _FetchBuilder] = {}
        for target in order:
            builders[target] = self.built[target] = self.planner.new_fetch(
                target, self.path, entity=True
            )
        for target in order:
            pending = self.pending[target]
            builder = builders[target]
            builder.deps.add(self.fetch.id)
            builder.deps.update(builders[other].id for other in pending.after)
            for child, other in pending.nested:
                below = child.built.get(other)
                if below is None:
                    raise PlanningError(f"no fetch of {other!r} below {'.'.join(self.path)}")
                builder.deps.add(below.id)
            builder.reps = dict(pending.reps)
            builder.renames = dict(pending.renames)
            position = _Position(
                self.planner,
                builder,
                self.path,
                builder.selection,
                typed=True,
                provided=None,
                requires_satisfied=True,
            )
            for type_name, fields in pending.fields.items():
                position.add(pending.renames.get(type_name, type_name), fields)
            for interface, sets in pending.whole.items():
                position.add_sets(interface, tuple(sets))
            position.finish()

    def _dependency_order(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(target: str) -> None:
            mark = state.get(target)
            if mark == 2:
                return
            if mark == 1:
                raise PlanningError(
                    f"circular @requires/key dependency between subgraphs at {self.path}"
                )
            state[target] = 1
            for other in sorted(self.pending[target].after):
                if other not in self.pending:
                    raise PlanningError(f"no fetch of {other!r} at {'.'.join(self.path)}")
                visit(other)
            state[target] = 2
            order.append(target)

        for target in self.pending:
            visit(target)
        return order


class Planner:
    """Plans one operation (with fixed @skip/@include values) over a supergraph."""

    def __init__(
        self,
        supergraph: Supergraph,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        bools: Mapping[str, bool],
    ) -> None:
        self.supergraph = supergraph
        self.schema: GraphQLSchema = supergraph.schema
        self.operation = operation
        self.fragments = fragments
        self.bools = bools
        self.collector = FieldCollector(self.schema, fragments, bools)
        self.builders: list[_FetchBuilder] = []
        self._feasible: dict[tuple[str, str, str, tuple[int, ...]], bool] = {}

    def feasible(
        self,
        graph: str,
        type_name: str,
        name: str,
        selection_sets: tuple[SelectionSetNode, ...],
        depth: int = 0,
    ) -> bool:
        """Whether a subgraph can answer ``type.name { selections }`` itself or through keys."""
        object_type = self.schema.get_type(type_name)
        field_def = getattr(object_type, "fields", {}).get(name)
        if field_def is None or depth > 32:
            return True
        named = get_named_type(field_def.type)
        if not is_composite_type(named) or not selection_sets:
            return True
        cache_key = (graph, type_name, name, tuple(id(s) for s in selection_sets))
        cached = self._feasible.get(cache_key)
        if cached is not None:
            return cached
        self._feasible[cache_key] = True  # recursion guard
        supergraph = self.supergraph
        types = (
            supergraph.possible_types_in(graph, named.name)
            if is_abstract_type(named)
            else [named.name]
        )
        result = True
        for child_type in types:
            for collected in self.collector.collect(child_type, selection_sets):
                child = collected.name
                if child == "__typename" or child in INTROSPECTION_FIELDS:
                    continue
                if supergraph.can_resolve(graph, child_type, child):
                    sets = collected.selection_sets()
                    if self.feasible(graph, child_type, child, sets, depth + 1):
                        continue
                # Reachable through an entity hop: an owner elsewhere has a key for the object.
                owners = supergraph.field_graphs(child_type, child)
                if supergraph.type_in(graph, child_type) and any(
                    owner != graph and supergraph.keys(child_type, owner) for owner in owners
                ):
                    continue
                result = False
                break
            if not result:
                break
        self._feasible[cache_key] = result
        return result

    def new_fetch(self, graph: str, path: tuple[str, ...], entity: bool) -> _FetchBuilder:
        """Allocates the next fetch."""
        builder = _FetchBuilder(len(self.builders), graph, path, entity)
        self.builders.append(builder)
        return builder

    def plan(self) -> QueryPlan:
        """Builds the query plan."""
        operation = self.operation
        if operation.operation == OperationType.QUERY:
            root = self.schema.query_type
            kind: Literal["query", "mutation", "subscription"] = "query"
        elif operation.operation == OperationType.MUTATION:
            root = self.schema.mutation_type
            kind = "mutation"
        else:
            # Its one root field is a subscription to the owning subgraph (fetch 0); each event
            # it sends is completed by the other fetches, as a query's root data would be.
            root = self.schema.subscription_type
            kind = "subscription"
        if root is None:
            raise PlanningError(f"the schema has no {operation.operation.value} type")
        fields = self.collector.collect(root.name, (operation.selection_set,))
        introspection = tuple(
            node for f in fields if f.name in INTROSPECTION_FIELDS for node in f.nodes[:1]
        )
        groups: list[tuple[str, list[CollectedField]]] = []
        for collected in fields:
            if collected.name == "__typename" or collected.name in INTROSPECTION_FIELDS:
                continue
            graphs = self.supergraph.field_graphs(root.name, collected.name)
            if not graphs:
                raise PlanningError(f"no subgraph resolves {root.name}.{collected.name}")
            sets = collected.selection_sets()
            if len(graphs) > 1 and sets:
                graphs = [g for g in graphs if self.feasible(g, root.name, collected.name, sets)]
                graphs = graphs or self.supergraph.field_graphs(root.name, collected.name)
            if kind == "mutation":
                # Mutations run in order: only consecutive fields of one subgraph share a fetch.
                if groups and groups[-1][0] in graphs:
                    groups[-1][1].append(collected)
                else:
                    groups.append((graphs[0], [collected]))
                continue
            for graph, group in groups:
                if graph in graphs:
                    group.append(collected)
                    break
            else:
                groups.append((graphs[0], [collected]))
        for graph, group in groups:
            previous = len(self.builders)
            builder = self.new_fetch(graph, (), entity=False)
            if kind == "mutation":
                builder.deps.update(range(previous))
            position = _Position(self, builder, (), builder.selection, typed=False, provided=None)
            position.add(root.name, group)
            position.finish()
        return QueryPlan(
            kind=kind,
            root_type=root.name,
            operation=operation,
            fragments=self.fragments,
            bools=dict(self.bools),
            fetches=tuple(self._render(b, kind) for b in self.builders),
            introspection=introspection,
        )

    def _render(self, builder: _FetchBuilder, kind: str) -> Fetch:
        definitions: dict[str, VariableDefinitionNode] = {
            d.variable.name.value: d for d in self.operation.variable_definitions or ()
        }
        used = [name for name in builder.variables if name in definitions]
        variables = [print_ast(definitions[name]) for name in used]
        name = None
        if self.operation.name is not None:
            graph = "".join(c if c.isalnum() else "_" for c in builder.graph)
            name = f"{self.operation.name.value}__{graph}__{builder.id}"
        if builder.entity:
            if "representations" in definitions:
                raise PlanningError('variables cannot be named "representations"')
            variables.insert(0, "$representations: [_Any!]!")
            body = "{ _entities(representations: $representations) " + (
                builder.selection.render() + " }"
            )
            operation_kind = "query"
        else:
            body = builder.selection.render()
            operation_kind = kind
        header = operation_kind
        if name:
            header += f" {name}"
        if variables:
            header += "(" + ", ".join(variables) + ")"
        return Fetch(
            id=builder.id,
            subgraph=builder.graph,
            operation=f"{header} {body}",
            operation_name=name,
            variables=tuple(used),
            path=builder.path,
            representations=builder.reps if builder.entity else None,
            depends_on=tuple(sorted(builder.deps)),
            rep_typenames=builder.renames,
        )


def build_plan(
    supergraph: Supergraph,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    bools: Mapping[str, bool],
) -> QueryPlan:
    """Plans an operation; ``bools`` are the values of the @skip/@include variables."""
    return Planner(supergraph, operation, fragments, bools).plan()
