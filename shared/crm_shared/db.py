"""Database access for a service: one async engine over asyncpg, sessions bound to the schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import Field
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.settings import ServiceSettings


def sqlalchemy_url(database_url: str) -> str:
    """The SQLAlchemy form of a ``postgresql://`` URL, on the asyncpg driver."""
    scheme, sep, rest = database_url.partition("://")
    if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError(f"not a PostgreSQL URL: {database_url!r}")
    return f"postgresql+asyncpg{sep}{rest}"


def asyncpg_dsn(database_url: str) -> str:
    """The plain libpq form of a URL, as asyncpg's own ``connect`` wants it."""
    return "postgresql://" + database_url.partition("://")[2]


class Database:
    """A service's database: its engine, its schema, and sessions that know both.

    Sessions carry ``info["schema"]`` and ``info["source"]`` so that shared mechanics
    (outbox, inbox) write to the owning service's own tables.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.schema = settings.db_schema
        self.source = f"/crm/{settings.service_name}"
        self.dsn = asyncpg_dsn(settings.database_url)
        # No pre-ping (three round trips per checkout): a connection found dead fails its
        # statement, SQLAlchemy invalidates the whole pool on that disconnect error, and the
        # next checkouts connect afresh. A full pool fails after ``db_pool_timeout_seconds``.
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(settings.database_url),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            connect_args={
                "server_settings": {"application_name": settings.service_name},
                "timeout": settings.db_connect_timeout_seconds,
            },
        )
        self._sessions = async_sessionmaker(
            self.engine,
            class_=AsyncSession,
            expire_on_commit=False,
            info={"schema": self.schema, "source": self.source},
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for one unit of work; the caller commits (``async with s.begin()``)."""
        async with self._sessions() as session:
            yield session

    def new_session(self) -> AsyncSession:
        """A session the caller closes (a GraphQL request's, closed when the request ends)."""
        return self._sessions()

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def utcnow() -> datetime:
    """Now, in UTC (timestamps are always aware)."""
    return datetime.now(UTC)


def created_at_field() -> Any:
    """A ``timestamptz`` column that defaults to now."""
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), nullable=False)


async def lock_keys(session: AsyncSession, keys: Iterable[str]) -> None:
    """Hold a transaction-scoped advisory lock on each of ``keys`` until the transaction ends.

    Locks are taken in one statement, in the order of their hashes, so two transactions that
    lock overlapping sets never deadlock on each other. Two keys whose hashes collide only
    serialise more than needed.
    """
    wanted = sorted(set(keys))
    if not wanted:
        return
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(key, 0) AS k "
            "FROM unnest(CAST(:keys AS text[])) AS key ORDER BY k) AS ordered"
        ),
        {"keys": wanted},
    )
