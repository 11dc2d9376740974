"""Each service owns its schema: its role cannot read or write another service's tables."""

from __future__ import annotations

import asyncpg
import pytest

from crm_shared import devstack
from crm_shared.provision import SERVICES


@pytest.mark.parametrize(
    "service,foreign_table",
    [
        ("identity", "rewards.accounts"),
        ("identity", "engagement.interactions"),
        ("rewards", "identity.customers"),
        ("engagement", "rewards.journal_entries"),
    ],
)
async def test_a_service_role_cannot_read_another_services_tables(
    isolated: devstack.Stack, service: str, foreign_table: str
) -> None:
    conn = await asyncpg.connect(isolated.database_url(service))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(f"SELECT * FROM {foreign_table} LIMIT 1")
    finally:
        await conn.close()


async def test_a_service_role_reads_its_own_tables_and_cannot_create_in_public(
    isolated: devstack.Stack,
) -> None:
    for service in SERVICES:
        conn = await asyncpg.connect(isolated.database_url(service))
        try:
            # Its own tables: its role owns them, may read and change them, finds them first.
            assert await conn.fetchval("SELECT current_schema()") == service
            owners = await conn.fetch(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = $1", service
            )
            assert [r["tableowner"] for r in owners] == [f"{service}_svc"]
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                assert await conn.fetchval(
                    "SELECT has_table_privilege($1, $2)", f"{service}.outbox", privilege
                ), (service, privilege)
            assert isinstance(await conn.fetchval(f"SELECT count(*) FROM {service}.outbox"), int)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE public.sneaky (id int)")
        finally:
            await conn.close()
