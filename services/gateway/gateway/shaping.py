"""Result shaping: the client's response built from the merged subgraph data.

Walks the client operation over the data the fetches merged: keeps only the fields asked
for, in the asked order and under their aliases, computes ``__typename``, checks leaf values
and applies null propagation for non-null fields as the GraphQL spec (and Apollo's gateway)
do. It reads the data by response key, so whatever a fetch added for joins is dropped here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    SelectionSetNode,
    is_composite_type,
)

from gateway.operation import CollectedField, FieldCollector
from gateway.planner import INTROSPECTION_FIELDS, QueryPlan

_BUBBLE = object()

JsonPath = list[str | int]


def _error(message: str, path: JsonPath) -> dict[str, Any]:
    return {"message": message, "path": list(path), "extensions": {"code": "INVALID_GRAPHQL"}}


def _valid_leaf(value: Any, type_: GraphQLOutputType) -> bool:
    if isinstance(type_, GraphQLEnumType):
        return isinstance(value, str) and value in type_.values
    if isinstance(type_, GraphQLScalarType):
        name = type_.name
        if name == "String":
            return isinstance(value, str)
        if name == "Int":
            return isinstance(value, int) and not isinstance(value, bool)
        if name == "Float":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if name == "Boolean":
            return isinstance(value, bool)
        if name == "ID":
            return isinstance(value, str | int) and not isinstance(value, bool)
        return True
    return False


class Shaper:
    """Shapes responses for one plan; memoizes field collection per (type, selections).

    Each field knows its kind (leaf, object, list of objects, ...) from the schema, so the
    common values (a valid leaf, a null in a nullable field, an object of the expected type,
    a list of them) are copied without the generic walk; anything else (errors, abstract
    types, nested lists, introspection) takes the generic walk. ``fast_paths=False`` shapes
    with the generic walk only: the reference the fast paths are tested against.
    """

    def __init__(self, schema: GraphQLSchema, plan: QueryPlan, *, fast_paths: bool = True) -> None:
        self.schema = schema
        self.plan = plan
        self.fast_paths = fast_paths
        self.collector = FieldCollector(schema, plan.fragments, plan.bools)
        self._fields: dict[tuple[str, tuple[int, ...]], list[_ShapeField]] = {}
        self._root_fields: list[_ShapeField] | None = None

    def fields(
        self, type_name: str, selection_sets: tuple[SelectionSetNode, ...]
    ) -> list[_ShapeField]:
        """The fields to output for an object of ``type_name``."""
        cache_key = (type_name, tuple(id(s) for s in selection_sets))
        found = self._fields.get(cache_key)
        if found is None:
            parent = self.schema.get_type(type_name)
            found = [
                _ShapeField(collected, parent, self.schema, fast_paths=self.fast_paths)
                for collected in self.collector.collect(type_name, selection_sets)
            ]
            self._fields[cache_key] = found
        return found

    def shape(
        self, data: Mapping[str, Any], introspection: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The client's ``data`` and the value-completion errors found on the way."""
        errors: list[dict[str, Any]] = []
        root = self.plan.root_type
        output: dict[str, Any] = {}
        if self._root_fields is None:
            self._root_fields = self.fields(root, (self.plan.operation.selection_set,))
        result = self._object(data, output, root, self._root_fields, [], errors, introspection)
        return (None if result is _BUBBLE else output), errors

    def _children(self, shape_field: _ShapeField, runtime_name: str) -> list[_ShapeField]:
        child_fields = shape_field.children.get(runtime_name)
        if child_fields is None:
            child_fields = self.fields(runtime_name, shape_field.selection_sets)
            shape_field.children[runtime_name] = child_fields
        return child_fields

    def _object(  # noqa: C901 (to split, issue 18)
        self,
        value: Mapping[str, Any],
        output: dict[str, Any],
        type_name: str,
        fields: list[_ShapeField],
        path: JsonPath,
        errors: list[dict[str, Any]],
        introspection: Mapping[str, Any] | None = None,
    ) -> object:
        for shape_field in fields:
            key = shape_field.key
            kind = shape_field.kind
            # Fast paths: each either finishes the field (continue) or falls through to the
            # generic walk below having done nothing, so no error is reported twice.
            if kind is _LEAF:
                leaf = value.get(key)
                if leaf is None:
                    if shape_field.nullable:
                        output[key] = None
                        continue
                else:
                    accepted = shape_field.accepted
                    if accepted is None or (
                        type(leaf) in accepted
                        if shape_field.enum is None
                        else type(leaf) is str and leaf in shape_field.enum
                    ):
                        output[key] = leaf
                        continue
            elif kind is _OBJECT:
                child = value.get(key)
                if type(child) is dict:
                    name = shape_field.static_name
                    typename = child.get("__typename")
                    if typename is None or typename == name:
                        path.append(key)
                        shaped: dict[str, Any] = {}
                        bubbled = self._object(
                            child, shaped, name, self._children(shape_field, name), path, errors
                        )
                        path.pop()
                        if bubbled is _BUBBLE:
                            # Reported below: null here, and further up if non-null.
                            output[key] = None
                            if not shape_field.nullable:
                                return _BUBBLE
                        else:
                            output[key] = shaped
                        continue
                elif child is None and shape_field.nullable:
                    output[key] = None
                    continue
            elif kind is _OBJECT_LIST:
                items = value.get(key)
                if type(items) is list:
                    name = shape_field.static_name
                    child_fields = self._children(shape_field, name)
                    item_type = shape_field.item_type
                    assert item_type is not None
                    item_non_null = shape_field.item_non_null
                    path.append(key)
                    shaped_items: list[Any] = []
                    nullify = False
                    for index, item in enumerate(items):
                        path.append(index)
                        if type(item) is dict and item.get("__typename", name) == name:
                            shaped = {}
                            if (
                                self._object(item, shaped, name, child_fields, path, errors)
                                is _BUBBLE
                            ):
                                shaped_items.append(None)
                                nullify = nullify or item_non_null
                            else:
                                shaped_items.append(shaped)
                        else:
                            updated, invalid, _ = self._value(
                                item, item_type, shape_field, path, errors
                            )
                            shaped_items.append(updated)
                            nullify = nullify or invalid
                        path.pop()
                    path.pop()
                    if nullify:
                        # An invalid item was reported where it failed: the list is null.
                        output[key] = None
                        if not shape_field.nullable:
                            return _BUBBLE
                    else:
                        output[key] = shaped_items
                    continue
                if items is None and shape_field.nullable:
                    output[key] = None
                    continue
            elif kind is _TYPENAME:
                typename = value.get("__typename")
                runtime = self.schema.get_type(typename) if isinstance(typename, str) else None
                if runtime is None:
                    runtime = self.schema.get_type(type_name)
                if not isinstance(runtime, GraphQLObjectType):
                    return _BUBBLE
                output[key] = runtime.name
                continue
            if shape_field.name in INTROSPECTION_FIELDS and introspection is not None:
                output[key] = introspection.get(key)
                continue
            path.append(key)
            updated, invalid, _ = self._value(
                value.get(key), shape_field.type, shape_field, path, errors
            )
            path.pop()
            output[key] = updated
            if invalid:
                return _BUBBLE
        return None

    def _value(
        self,
        value: Any,
        type_: GraphQLOutputType,
        shape_field: _ShapeField,
        path: JsonPath,
        errors: list[dict[str, Any]],
    ) -> tuple[Any, bool, bool]:
        """(output value, invalid (bubbles to the parent), already reported)."""
        if isinstance(type_, GraphQLNonNull):
            updated, _, reported = self._value(value, type_.of_type, shape_field, path, errors)
            if updated is None:
                if not reported:
                    errors.append(
                        _error(
                            "Cannot return null for non-nullable "
                            f"{_describe(path, type_.of_type, shape_field.label)}.",
                            path,
                        )
                    )
                return None, True, True
            return updated, False, False
        if value is None:
            return None, False, False
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):
                errors.append(
                    _error(
                        f"Invalid value found for {_describe(path, type_, shape_field.label)}.",
                        path,
                    )
                )
                return None, False, True
            items: list[Any] = []
            nullify = False
            reported = False
            item_type = type_.of_type
            for index, item in enumerate(value):
                path.append(index)
                updated, invalid, item_reported = self._value(
                    item, item_type, shape_field, path, errors
                )
                path.pop()
                nullify = nullify or invalid
                reported = reported or item_reported
                items.append(updated)
            return (None if nullify else items), False, reported
        if is_composite_type(type_):
            if not isinstance(value, dict):
                errors.append(
                    _error(
                        f"Invalid value found for {_describe(path, type_, shape_field.label)}.",
                        path,
                    )
                )
                return None, False, True
            typename = value.get("__typename")
            runtime_name = type_.name
            if typename is not None:
                runtime = self.schema.get_type(typename) if isinstance(typename, str) else None
                if runtime is None or not is_composite_type(runtime):
                    errors.append(
                        _error(
                            "Invalid __typename found for object at "
                            f"{_describe(path, type_, shape_field.label)}.",
                            path,
                        )
                    )
                    return None, False, True
                runtime_name = runtime.name
            output: dict[str, Any] = {}
            child_fields = self._children(shape_field, runtime_name)
            bubbled = self._object(value, output, runtime_name, child_fields, path, errors)
            if bubbled is _BUBBLE:
                return None, False, True
            return output, False, False
        if _valid_leaf(value, type_):
            return value, False, False
        errors.append(
            _error(f"Invalid value found for {_describe(path, type_, shape_field.label)}.", path)
        )
        return None, False, True


def _describe(path: JsonPath, current_type: GraphQLOutputType, label: str) -> str:
    element = path[-1]
    if isinstance(element, str):
        return f"field {label}.{element}"
    return f"array element of type {current_type} at index {element}"


# The Python types a subgraph's JSON gives for a valid value of each built-in scalar
# (exact types: a bool is not an Int).
_SCALAR_TYPES: dict[str, frozenset[type]] = {
    "String": frozenset({str}),
    "ID": frozenset({str, int}),
    "Int": frozenset({int}),
    "Float": frozenset({float, int}),
    "Boolean": frozenset({bool}),
}

# Field kinds (see Shaper._object).
_GENERIC = "generic"
_TYPENAME = "typename"
_LEAF = "leaf"
_OBJECT = "object"
_OBJECT_LIST = "object list"


class _ShapeField:
    __slots__ = (
        "key",
        "name",
        "type",
        "label",
        "selection_sets",
        "children",
        "kind",
        "nullable",
        "accepted",
        "enum",
        "static_name",
        "item_type",
        "item_non_null",
    )

    def __init__(
        self, collected: CollectedField, parent: Any, schema: GraphQLSchema, *, fast_paths: bool
    ) -> None:
        self.key = collected.key
        self.name = collected.name
        self.label = collected.label
        self.selection_sets = collected.selection_sets()
        # Fields to output per runtime type of this field's objects.
        self.children: dict[str, list[_ShapeField]] = {}
        self.kind = _GENERIC
        self.nullable = True
        # _LEAF: the accepted Python types (None: any non-null value), or the enum's values.
        self.accepted: frozenset[type] | None = None
        self.enum: Mapping[str, Any] | None = None
        # _OBJECT, _OBJECT_LIST: the object type's name; the item type of a list.
        self.static_name = ""
        self.item_type: GraphQLOutputType | None = None
        self.item_non_null = False
        self.type: GraphQLOutputType
        if collected.name == "__typename" or collected.name in INTROSPECTION_FIELDS:
            self.type = GraphQLNonNull(schema.get_type("String"))  # type: ignore[arg-type]
            if collected.name == "__typename":
                self.kind = _TYPENAME
            return
        fields = getattr(parent, "fields", {})
        field_def = fields.get(collected.name)
        if field_def is None:
            parent_name = getattr(parent, "name", parent)
            raise KeyError(f"{parent_name}.{collected.name} is not in the schema")
        self.type = field_def.type
        if fast_paths:
            self._classify(self.type)

    def _classify(self, type_: GraphQLOutputType) -> None:
        if isinstance(type_, GraphQLNonNull):
            self.nullable = False
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            item = type_.of_type
            named = item.of_type if isinstance(item, GraphQLNonNull) else item
            if isinstance(named, GraphQLObjectType):
                self.kind = _OBJECT_LIST
                self.static_name = named.name
                self.item_type = item
                self.item_non_null = isinstance(item, GraphQLNonNull)
        elif isinstance(type_, GraphQLObjectType):
            self.kind = _OBJECT
            self.static_name = type_.name
        elif isinstance(type_, GraphQLEnumType):
            self.kind = _LEAF
            self.accepted = frozenset({str})
            self.enum = type_.values
        elif isinstance(type_, GraphQLScalarType):
            self.kind = _LEAF
            # A custom scalar accepts any non-null value, as _valid_leaf does.
            self.accepted = _SCALAR_TYPES.get(type_.name)
