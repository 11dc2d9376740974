"""A page size the schema gives by default counts as given (graphql-core 3.3 keeps an SDL
default as a literal, so the gateway reads it from there)."""

from __future__ import annotations

from graphql import Undefined, build_schema

from gateway.limits import schema_default


def test_a_default_written_in_the_sdl_is_the_arguments_value() -> None:
    schema = build_schema(
        "type Query { items(first: Int! = 20, last: Int, after: String = null): [Int] }"
    )
    assert schema.query_type is not None
    args = schema.query_type.fields["items"].args
    assert schema_default(args["first"]) == 20
    assert schema_default(args["last"]) is Undefined
    assert schema_default(args["after"]) is None
