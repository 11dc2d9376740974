"""Text PostgreSQL cannot store (a NUL character) is the caller's error, not a masked 500."""

from __future__ import annotations

import asyncpg
import strawberry

from crm_shared.graphql import SubgraphSchema


class Wrapped(Exception):
    """Stands for SQLAlchemy's wrapping of the driver's error."""


@strawberry.type
class Query:
    @strawberry.field
    def store(self, text: str) -> str:
        try:
            raise asyncpg.exceptions.CharacterNotInRepertoireError(
                'invalid byte sequence for encoding "UTF8": 0x00'
            )
        except asyncpg.exceptions.PostgresError as exc:
            raise Wrapped("while storing") from exc

    @strawberry.field
    def fail(self) -> str:
        raise RuntimeError("a bug")


SCHEMA = SubgraphSchema(query=Query)


async def test_a_nul_character_postgres_refuses_is_bad_user_input() -> None:
    result = await SCHEMA.execute('{ store(text: "a\\u0000b") }')

    assert result.errors is not None
    [error] = result.errors
    assert error.extensions == {"code": "BAD_USER_INPUT"}
    assert "NUL" in error.message


async def test_other_unexpected_errors_stay_masked() -> None:
    result = await SCHEMA.execute("{ fail }")

    assert result.errors is not None
    assert [e.extensions for e in result.errors] == [{"code": "INTERNAL_SERVER_ERROR"}]
