"""Result shaping: the client's response built from the merged subgraph data.

Walks the client operation over the data the fetches merged: keeps only the fields asked
for, in the asked order and under their aliases, computes ``__typename``, checks leaf values
and applies null propagation for non-null fields as the GraphQL spec (and Apollo's gateway)
do. It reads the data by response key, so whatever a fetch added for joins is dropped here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    get_named_type,
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
    """Shapes responses for one plan; memoizes field collection per (type, selections)."""

    def __init__(self, schema: GraphQLSchema, plan: QueryPlan) -> None:
        self.schema = schema
        self.plan = plan
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
                _ShapeField(collected, parent, self.schema)
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

    def _object(
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
            leaf_check = shape_field.leaf_check
            if leaf_check is not None:
                # Fast path: a valid leaf value needs no further work.
                leaf = value.get(key)
                if leaf is not None and leaf_check(leaf):
                    output[key] = leaf
                    continue
            elif shape_field.name == "__typename":
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
            child_fields = shape_field.children.get(runtime_name)
            if child_fields is None:
                child_fields = self.fields(runtime_name, shape_field.selection_sets)
                shape_field.children[runtime_name] = child_fields
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


def _leaf_check(type_: GraphQLOutputType) -> Callable[[Any], bool] | None:
    """A quick validity test for a field of leaf type (lists and objects get None)."""
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLEnumType):
        values = type_.values
        return lambda value: isinstance(value, str) and value in values
    if isinstance(type_, GraphQLScalarType):
        return lambda value: _valid_leaf(value, type_)
    return None


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_bool(value: Any) -> bool:
    return type(value) is bool


_FAST_SCALARS: dict[str, Callable[[Any], bool]] = {
    "String": _is_str,
    "ID": lambda value: type(value) is str or type(value) is int,
    "Int": _is_int,
    "Float": lambda value: type(value) is float or type(value) is int,
    "Boolean": _is_bool,
}


class _ShapeField:
    __slots__ = ("key", "name", "type", "label", "selection_sets", "children", "leaf_check")

    def __init__(self, collected: CollectedField, parent: Any, schema: GraphQLSchema) -> None:
        self.key = collected.key
        self.name = collected.name
        self.label = collected.label
        self.selection_sets = collected.selection_sets()
        # Fields to output per runtime type of this field's objects.
        self.children: dict[str, list[_ShapeField]] = {}
        self.leaf_check: Callable[[Any], bool] | None = None
        self.type: GraphQLOutputType
        if collected.name == "__typename" or collected.name in INTROSPECTION_FIELDS:
            self.type = GraphQLNonNull(schema.get_type("String"))  # type: ignore[arg-type]
            return
        fields = getattr(parent, "fields", {})
        field_def = fields.get(collected.name)
        if field_def is None:
            parent_name = getattr(parent, "name", parent)
            raise KeyError(f"{parent_name}.{collected.name} is not in the schema")
        self.type = field_def.type
        named = get_named_type(self.type)
        if not isinstance(self.type, GraphQLList) and not (
            isinstance(self.type, GraphQLNonNull) and isinstance(self.type.of_type, GraphQLList)
        ):
            if isinstance(named, GraphQLScalarType) and named.name in _FAST_SCALARS:
                self.leaf_check = _FAST_SCALARS[named.name]
            else:
                self.leaf_check = _leaf_check(self.type)
