"""Alembic plumbing shared by every service: each migrates only its own schema.

A service's ``migrations/env.py`` is one call: ``run_alembic_env(SettingsClass())``. The
version table lives in the service's schema, so services migrate independently.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from crm_shared.db import sqlalchemy_url
from crm_shared.settings import ServiceSettings


def run_alembic_env(settings: ServiceSettings) -> None:
    """Run the migrations of ``settings.db_schema`` (online) against ``settings.database_url``."""
    schema = settings.db_schema

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        # Autogenerate looks only at this service's schema.
        return type_ != "schema" or name == schema

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(sqlalchemy_url(settings.database_url), poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run())
