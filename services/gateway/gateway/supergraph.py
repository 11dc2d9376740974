"""Reads a composed supergraph SDL: who owns what (join directives) and the API schema."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from graphql import (
    REMOVE,
    BooleanValueNode,
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumValueDefinitionNode,
    FieldDefinitionNode,
    GraphQLSchema,
    GraphQLUnionType,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    NamedTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    OperationDefinitionNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
    Visitor,
    build_ast_schema,
    is_abstract_type,
    parse,
    visit,
)


class SupergraphError(Exception):
    """The supergraph SDL cannot be used (not a supergraph, or an unsupported feature)."""


@dataclass(frozen=True, slots=True)
class FieldJoin:
    """One ``@join__field`` application: how one subgraph relates to a field."""

    graph: str | None
    external: bool = False
    requires: str | None = None
    provides: str | None = None
    override: str | None = None
    used_overridden: bool = False
    # Progressive override: the label that switches the override on (``overrideLabel``).
    override_label: str | None = None

    def active(self, labels: frozenset[str]) -> bool:
        """Whether this join applies, given the enabled progressive-override labels.

        The overriding subgraph's join carries ``override`` and the label: it applies when the
        label is on. The overridden subgraph's join carries the label alone: it applies while
        the label is off.
        """
        if self.override_label is None:
            return True
        enabled = self.override_label in labels
        return enabled if self.override else not enabled


@dataclass(frozen=True, slots=True)
class Key:
    """One ``@key`` of an entity in one subgraph."""

    fields: str
    selection: SelectionSetNode
    resolvable: bool


@dataclass(slots=True)
class TypeMeta:
    """Join metadata of one composite type."""

    name: str
    graphs: list[str] = field(default_factory=list)
    keys: dict[str, list[Key]] = field(default_factory=dict)
    interface_object_in: set[str] = field(default_factory=set)
    # field name -> its @join__field applications; absent/empty means "wherever the type is".
    fields: dict[str, list[FieldJoin]] = field(default_factory=dict)
    implements: dict[str, set[str]] = field(default_factory=dict)
    union_members: dict[str, set[str]] = field(default_factory=dict)


def parse_field_set(text: str) -> SelectionSetNode:
    """Parses a federation FieldSet string such as ``"id org { id }"``."""
    document = parse("{" + text + "}", no_location=True)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return operation.selection_set


def _arguments(node: DirectiveNode) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for argument in node.arguments or ():
        value = argument.value
        if isinstance(value, StringValueNode):
            values[argument.name.value] = value.value
        elif isinstance(value, BooleanValueNode):
            values[argument.name.value] = value.value
        else:
            values[argument.name.value] = getattr(value, "value", None)
    return values


@dataclass(frozen=True, slots=True)
class _Features:
    """Directive names of the linked specs, honouring ``@link(as: ...)`` renames."""

    join: str
    inaccessible: str | None
    # Every prefix a linked spec owns: its elements are machinery, not API.
    prefixes: frozenset[str]

    def is_machinery(self, name: str) -> bool:
        if name in self.prefixes:
            return True
        head, sep, _ = name.partition("__")
        return bool(sep) and head in self.prefixes


def _features(document: DocumentNode) -> _Features:
    prefixes = {"link"}
    join = None
    inaccessible = None
    for definition in document.definitions:
        if not isinstance(definition, SchemaDefinitionNode):
            continue
        for directive in definition.directives or ():
            if directive.name.value != "link":
                continue
            args = _arguments(directive)
            url = str(args.get("url", ""))
            parts = [part for part in url.rstrip("/").split("/") if part]
            if len(parts) < 2:
                continue
            spec = parts[-2]
            prefix = str(args.get("as") or spec)
            prefixes.add(prefix)
            if spec == "join":
                join = prefix
            elif spec == "inaccessible":
                inaccessible = prefix
    if join is None:
        raise SupergraphError("not a supergraph: no @link to the join spec on the schema")
    return _Features(join=join, inaccessible=inaccessible, prefixes=frozenset(prefixes))


class Supergraph:
    """The composed supergraph: full schema, API schema and per-subgraph ownership."""

    def __init__(
        self,
        sdl: str,
        url_overrides: dict[str, str] | None = None,
        override_labels: Iterable[str] = (),
    ) -> None:
        # Progressive-override labels switched on (none: every labelled override is off).
        self.override_labels = frozenset(override_labels)
        document = parse(sdl, no_location=True)
        self.features = _features(document)
        self.schema: GraphQLSchema = build_ast_schema(document, assume_valid=True)
        self.api_schema: GraphQLSchema = build_ast_schema(self._api_document(document))
        self.subgraph_urls: dict[str, str] = {}
        self._graph_names: dict[str, str] = {}
        self.types: dict[str, TypeMeta] = {}
        self._read_graphs(document, url_overrides or {})
        self._read_types(document)
        self._possible_types_cache: dict[tuple[str, str], list[str]] = {}

    @classmethod
    def from_file(
        cls,
        path: Path,
        url_overrides: dict[str, str] | None = None,
        override_labels: Iterable[str] = (),
    ) -> Supergraph:
        """Loads the supergraph SDL from a file."""
        return cls(path.read_text(encoding="utf-8"), url_overrides, override_labels)

    # -- reading --------------------------------------------------------------------------

    def _read_graphs(self, document: DocumentNode, overrides: dict[str, str]) -> None:
        graph_enum = f"{self.features.join}__Graph"
        graph_directive = f"{self.features.join}__graph"
        for definition in document.definitions:
            if (
                isinstance(definition, EnumTypeDefinitionNode)
                and definition.name.value == graph_enum
            ):
                for value in definition.values or ():
                    for directive in value.directives or ():
                        if directive.name.value == graph_directive:
                            args = _arguments(directive)
                            name = str(args["name"])
                            self._graph_names[value.name.value] = name
                            url = overrides.get(name) or overrides.get(value.name.value.lower())
                            self.subgraph_urls[name] = url or str(args["url"])
        if not self.subgraph_urls:
            raise SupergraphError(f"supergraph declares no subgraphs (enum {graph_enum})")

    def _graph(self, enum_value: Any) -> str:
        name = self._graph_names.get(str(enum_value))
        if name is None:
            raise SupergraphError(f"unknown join__Graph value {enum_value!r}")
        return name

    def _read_types(self, document: DocumentNode) -> None:
        join = self.features.join
        for definition in document.definitions:
            if not isinstance(
                definition,
                ObjectTypeDefinitionNode
                | ObjectTypeExtensionNode
                | InterfaceTypeDefinitionNode
                | UnionTypeDefinitionNode,
            ):
                continue
            name = definition.name.value
            if self.features.is_machinery(name):
                continue
            meta = self.types.setdefault(name, TypeMeta(name))
            for directive in definition.directives or ():
                directive_name = directive.name.value
                args = _arguments(directive)
                if directive_name == f"{join}__type":
                    graph = self._graph(args["graph"])
                    if graph not in meta.graphs:
                        meta.graphs.append(graph)
                    if args.get("isInterfaceObject"):
                        meta.interface_object_in.add(graph)
                    key_text = args.get("key")
                    if key_text:
                        meta.keys.setdefault(graph, []).append(
                            Key(
                                fields=str(key_text),
                                selection=parse_field_set(str(key_text)),
                                resolvable=args.get("resolvable", True) is not False,
                            )
                        )
                elif directive_name == f"{join}__implements":
                    graph = self._graph(args["graph"])
                    meta.implements.setdefault(graph, set()).add(str(args["interface"]))
                elif directive_name == f"{join}__unionMember":
                    graph = self._graph(args["graph"])
                    meta.union_members.setdefault(graph, set()).add(str(args["member"]))
            if isinstance(definition, UnionTypeDefinitionNode):
                continue
            for field_node in definition.fields or ():
                joins: list[FieldJoin] = []
                for directive in field_node.directives or ():
                    if directive.name.value != f"{join}__field":
                        continue
                    args = _arguments(directive)
                    graph_value = args.get("graph")
                    joins.append(
                        FieldJoin(
                            graph=self._graph(graph_value) if graph_value else None,
                            external=bool(args.get("external")),
                            requires=args.get("requires"),
                            provides=args.get("provides"),
                            override=args.get("override"),
                            used_overridden=bool(args.get("usedOverridden")),
                            override_label=args.get("overrideLabel"),
                        )
                    )
                meta.fields[field_node.name.value] = joins
        # Types composed from a single subgraph may carry no @join__type at all.
        only = next(iter(self.subgraph_urls)) if len(self.subgraph_urls) == 1 else None
        for meta in self.types.values():
            if not meta.graphs and only is not None:
                meta.graphs.append(only)

    def _api_document(self, document: DocumentNode) -> DocumentNode:
        """The supergraph minus the link/join machinery and minus ``@inaccessible`` elements."""
        features = self.features
        hidden_directive = features.inaccessible

        def hidden(node: Any) -> bool:
            if hidden_directive is None:
                return False
            return any(d.name.value == hidden_directive for d in node.directives or ())

        hidden_types = {
            definition.name.value
            for definition in document.definitions
            if isinstance(definition, TypeDefinitionNode)
            and (hidden(definition) or features.is_machinery(definition.name.value))
        }

        def visible_named(nodes: Iterable[NamedTypeNode] | None) -> tuple[NamedTypeNode, ...]:
            return tuple(n for n in nodes or () if n.name.value not in hidden_types)

        class ApiVisitor(Visitor):
            def enter_schema_definition(self, node: SchemaDefinitionNode, *_: Any) -> Any:
                return replace(node, directives=())

            def enter_directive_definition(self, node: DirectiveDefinitionNode, *_: Any) -> Any:
                return REMOVE if features.is_machinery(node.name.value) else None

            def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
                return REMOVE if features.is_machinery(node.name.value) else None

            def enter_object_type_definition(self, node: ObjectTypeDefinitionNode, *_: Any) -> Any:
                if node.name.value in hidden_types:
                    return REMOVE
                return replace(node, interfaces=visible_named(node.interfaces))

            def enter_interface_type_definition(
                self, node: InterfaceTypeDefinitionNode, *_: Any
            ) -> Any:
                if node.name.value in hidden_types:
                    return REMOVE
                return replace(node, interfaces=visible_named(node.interfaces))

            def enter_union_type_definition(self, node: UnionTypeDefinitionNode, *_: Any) -> Any:
                if node.name.value in hidden_types:
                    return REMOVE
                return replace(node, types=visible_named(node.types))

            def enter_enum_type_definition(self, node: EnumTypeDefinitionNode, *_: Any) -> Any:
                return REMOVE if node.name.value in hidden_types else None

            def enter_scalar_type_definition(self, node: ScalarTypeDefinitionNode, *_: Any) -> Any:
                return REMOVE if node.name.value in hidden_types else None

            def enter_input_object_type_definition(
                self, node: InputObjectTypeDefinitionNode, *_: Any
            ) -> Any:
                return REMOVE if node.name.value in hidden_types else None

            def enter_field_definition(self, node: FieldDefinitionNode, *_: Any) -> Any:
                return REMOVE if hidden(node) else None

            def enter_input_value_definition(self, node: InputValueDefinitionNode, *_: Any) -> Any:
                return REMOVE if hidden(node) else None

            def enter_enum_value_definition(self, node: EnumValueDefinitionNode, *_: Any) -> Any:
                return REMOVE if hidden(node) else None

        result = visit(document, ApiVisitor())
        assert isinstance(result, DocumentNode)
        return result

    # -- questions the planner asks -------------------------------------------------------

    @property
    def subgraph_names(self) -> list[str]:
        """Subgraph names in supergraph order."""
        return list(self.subgraph_urls)

    def type_in(self, graph: str, type_name: str) -> bool:
        """Whether the subgraph defines the type."""
        meta = self.types.get(type_name)
        return meta is not None and graph in meta.graphs

    def field_graphs(self, type_name: str, field_name: str, *, internal: bool = False) -> list[str]:
        """Subgraphs that resolve ``type.field`` themselves (not external), supergraph order."""
        meta = self.types.get(type_name)
        if meta is None:
            return []
        joins = meta.fields.get(field_name)
        if not joins:
            return [g for g in meta.graphs if g not in meta.interface_object_in or internal]
        graphs: list[str] = []
        for join in joins:
            if join.graph is None or join.external:
                continue
            if join.used_overridden and not internal:
                continue
            if join.override_label is not None and not join.active(self.override_labels):
                continue
            if join.graph not in graphs:
                graphs.append(join.graph)
        if not graphs and all(j.graph is None for j in joins):
            # A bare @join__field: the field comes from an @interfaceObject of an interface
            # the type implements (composition adds it to every implementation).
            via = self._interface_object_graphs(type_name, field_name)
            return via if via else list(meta.graphs)
        return graphs

    def _interface_object_graphs(self, type_name: str, field_name: str) -> list[str]:
        graphs: list[str] = []
        object_type = self.schema.get_type(type_name)
        for interface in getattr(object_type, "interfaces", ()):
            meta = self.types.get(interface.name)
            if meta is None or not meta.interface_object_in:
                continue
            for join in meta.fields.get(field_name, ()):
                if join.graph in meta.interface_object_in and join.graph not in graphs:
                    graphs.append(join.graph)
        return graphs

    def entity_type_in(self, graph: str, type_name: str) -> str:
        """The type a subgraph knows an entity by: its own name, or the name of an interface it
        implements that the subgraph declares as an ``@interfaceObject``."""
        if self.type_in(graph, type_name):
            return type_name
        object_type = self.schema.get_type(type_name)
        for interface in getattr(object_type, "interfaces", ()):
            meta = self.types.get(interface.name)
            if meta is not None and graph in meta.interface_object_in:
                return str(interface.name)
        return type_name

    def is_interface_object(self, graph: str, type_name: str) -> bool:
        """Whether the subgraph declares the interface as an ``@interfaceObject``."""
        meta = self.types.get(type_name)
        return meta is not None and graph in meta.interface_object_in

    def interface_owner(self, type_name: str) -> list[str]:
        """Subgraphs that define an entity interface as an interface (they know its types)."""
        meta = self.types.get(type_name)
        if meta is None:
            return []
        return [g for g in meta.graphs if g not in meta.interface_object_in]

    def can_resolve(
        self, graph: str, type_name: str, field_name: str, *, internal: bool = False
    ) -> bool:
        """Whether the subgraph can resolve the field of an object it returned."""
        if field_name == "__typename":
            return True
        return graph in self.field_graphs(type_name, field_name, internal=internal)

    def field_join(self, type_name: str, field_name: str, graph: str) -> FieldJoin | None:
        """The ``@join__field`` of the field for this subgraph, if any."""
        meta = self.types.get(type_name)
        if meta is None:
            return None
        for join in meta.fields.get(field_name, ()):
            if join.graph == graph:
                return join
        return None

    def keys(self, type_name: str, graph: str) -> list[Key]:
        """The resolvable keys of an entity in one subgraph (through its interface object)."""
        meta = self.types.get(self.entity_type_in(graph, type_name))
        if meta is None:
            return []
        return [key for key in meta.keys.get(graph, ()) if key.resolvable]

    def possible_types_in(self, graph: str, abstract_name: str) -> list[str]:
        """Object types a subgraph can return for an interface or union."""
        cache_key = (graph, abstract_name)
        cached = self._possible_types_cache.get(cache_key)
        if cached is not None:
            return cached
        abstract = self.schema.get_type(abstract_name)
        result: list[str] = []
        if abstract is not None and is_abstract_type(abstract):
            meta = self.types.get(abstract_name)
            is_union = isinstance(abstract, GraphQLUnionType)
            for object_type in self.schema.get_possible_types(abstract):
                name = object_type.name
                if not self.type_in(graph, name):
                    continue
                if is_union:
                    if meta is not None and meta.union_members:
                        if name not in meta.union_members.get(graph, set()):
                            continue
                else:
                    implements = self.types[name].implements if name in self.types else {}
                    if implements and abstract_name not in implements.get(graph, set()):
                        continue
                result.append(name)
        self._possible_types_cache[cache_key] = result
        return result


__all__ = [
    "FieldJoin",
    "Key",
    "Supergraph",
    "SupergraphError",
    "TypeMeta",
    "parse_field_set",
]
