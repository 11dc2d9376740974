"""One database session per GraphQL request: shared by its resolvers and loaders, opened only
if the request reads or writes, a write transaction that commits or rolls back on its own, and
a dead pooled connection failing one request cleanly (no pre-ping), the next one working."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import asyncpg
import pytest
import strawberry
from sqlalchemy import event, text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared import devstack
from crm_shared.auth import Principal
from crm_shared.db import Database
from crm_shared.errors import Conflict
from crm_shared.graphql import Context, CrmInfo, SubgraphSchema, keyed_loader
from tests.conftest import ADMIN_DSN, settings_for

PID = text("SELECT pg_backend_pid()")


async def _pids(
    session: AsyncSession, tenant_id: uuid.UUID, keys: Sequence[int]
) -> Mapping[int, int]:
    pid = (await session.execute(PID)).scalar_one()
    return dict.fromkeys(keys, pid)


async def _tenants(session: AsyncSession, slug: str) -> int:
    found = await session.execute(
        text("SELECT count(*) FROM identity.tenants WHERE slug = :slug"), {"slug": slug}
    )
    return int(found.scalar_one())


@strawberry.type
class Item:
    key: int

    @strawberry.field
    async def pid(self, info: CrmInfo) -> int:
        loader = keyed_loader(info, "pids", _pids, 0)
        return await loader.load(self.key)


@strawberry.type
class Query:
    @strawberry.field
    def constant(self) -> int:
        return 1

    @strawberry.field
    async def pid(self, info: CrmInfo) -> int:
        async with info.context.session() as session:
            return int((await session.execute(PID)).scalar_one())

    @strawberry.field
    def items(self, count: int) -> list[Item]:
        return [Item(key=n) for n in range(count)]

    @strawberry.field
    async def broken(self, info: CrmInfo) -> int | None:
        async with info.context.session() as session:
            return int((await session.execute(text("SELECT 1 / 0"))).scalar_one())

    @strawberry.field
    async def nested(self, info: CrmInfo) -> int:
        async with info.context.session(), info.context.session() as session:
            return int((await session.execute(PID)).scalar_one())

    @strawberry.field
    async def tenants(self, info: CrmInfo, slug: str) -> int:
        async with info.context.session() as session:
            return await _tenants(session, slug)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def add_tenant(self, info: CrmInfo, slug: str, fail: bool = False) -> int | None:
        """Reads, then writes a tenant (refused after the insert with ``fail``), then reads."""
        async with info.context.session() as session:
            if await _tenants(session, slug):
                raise Conflict("taken")
        async with info.context.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO identity.tenants (id, name, slug, created_at) "
                    "VALUES (:id, :slug, :slug, now())"
                ),
                {"id": uuid.uuid4(), "slug": slug},
            )
            if fail:
                raise Conflict("refused after the insert")
        async with info.context.session() as session:
            return await _tenants(session, slug)


SCHEMA = SubgraphSchema(query=Query, mutation=Mutation)


class Statements:
    """What the engine did: pool checkouts, transactions begun, statements sent."""

    def __init__(self, db: Database) -> None:
        self.counts: Counter[str] = Counter()
        engine = db.engine.sync_engine
        event.listen(engine.pool, "checkout", lambda *_: self.counts.update(["checkout"]))
        event.listen(engine, "begin", lambda *_: self.counts.update(["begin"]))
        event.listen(engine, "commit", lambda *_: self.counts.update(["commit"]))
        event.listen(engine, "rollback", lambda *_: self.counts.update(["rollback"]))
        event.listen(engine, "before_cursor_execute", lambda *_: self.counts.update(["statement"]))


@pytest.fixture
async def db(isolated: devstack.Stack) -> AsyncIterator[Database]:
    database = Database(settings_for(isolated, "identity"))
    yield database
    await database.dispose()


async def run(db: Database, query: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    caller = Principal(
        tenant_id=uuid.uuid4(), kind="staff", subject="test", permissions=frozenset()
    )
    context = Context(request=cast(Any, None), response=None, db=db, caller=caller)
    result = await asyncio.wait_for(SCHEMA.execute(query, context_value=context), timeout=30)
    errors = [{"path": e.path, **(e.extensions or {})} for e in result.errors or []]
    return result.data, errors


async def test_a_request_reads_through_one_connection_and_gives_it_back(db: Database) -> None:
    statements = Statements(db)

    data, errors = await run(db, "{ a: pid b: pid c: pid items(count: 5) { pid } }")

    assert errors == []
    assert data is not None
    assert len({data["a"], data["b"], data["c"], *(i["pid"] for i in data["items"])}) == 1
    # Three resolvers and one batch of the loader: one connection, one transaction.
    assert statements.counts == Counter(checkout=1, begin=1, statement=4, rollback=1), (
        statements.counts
    )
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_request_without_sql_opens_no_connection(db: Database) -> None:
    statements = Statements(db)

    data, errors = await run(db, "{ constant }")

    assert (data, errors) == ({"constant": 1}, [])
    assert statements.counts == Counter()


async def test_a_failed_statement_does_not_fail_the_other_fields(db: Database) -> None:
    data, errors = await run(db, "{ broken a: pid b: pid }")

    assert [e["path"] for e in errors] == [["broken"]]
    assert data is not None and data["a"] > 0 and data["b"] > 0


async def test_a_block_inside_another_fails_instead_of_waiting_for_itself(db: Database) -> None:
    data, errors = await run(db, "{ nested }")

    assert [e["code"] for e in errors] == ["INTERNAL_SERVER_ERROR"]
    assert (await run(db, "{ pid }"))[1] == []


async def test_each_mutation_commits_or_rolls_back_on_its_own(db: Database) -> None:
    first, refused, third = (f"t-{uuid.uuid4().hex[:12]}" for _ in range(3))
    statements = Statements(db)

    data, errors = await run(
        db,
        f'mutation {{ a: addTenant(slug: "{first}") b: addTenant(slug: "{refused}", fail: true) '
        f'c: addTenant(slug: "{third}") }}',
    )

    assert [(e["path"], e["code"]) for e in errors] == [(["b"], "CONFLICT")]
    assert data == {"a": 1, "b": None, "c": 1}
    counted, _ = await run(
        db,
        f'{{ a: tenants(slug: "{first}") b: tenants(slug: "{refused}") '
        f'c: tenants(slug: "{third}") }}',
    )
    assert counted == {"a": 1, "b": 0, "c": 1}
    assert statements.counts["commit"] == 2
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_dead_pooled_connection_fails_one_request_cleanly_and_the_next_works(
    db: Database,
) -> None:
    data, _ = await run(db, "{ pid }")
    assert data is not None
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", data["pid"])
    finally:
        await admin.close()
    await asyncio.sleep(0.2)

    _, errors = await run(db, "{ pid }")
    again, errors_after = await run(db, "{ pid }")

    assert [e["code"] for e in errors] == ["SERVICE_UNAVAILABLE"]
    assert errors_after == []
    assert again is not None and again["pid"] != data["pid"]
