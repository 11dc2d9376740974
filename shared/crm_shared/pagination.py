"""Cursor connections: stable keyset paging over ``(created_at, id)``."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry
from sqlalchemy import ARRAY, Select, Uuid, and_, func, literal, or_, true
from sqlalchemy.orm import aliased
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from crm_shared.errors import BadUserInput

T = TypeVar("T")
R = TypeVar("R")

MAX_PAGE = 100


@strawberry.federation.type(shareable=True)
class PageInfo:
    """Where a page sits in the whole list."""

    has_next_page: bool
    end_cursor: str | None


@strawberry.federation.type(shareable=True)
class Edge(Generic[T]):
    """One item of a page with its cursor."""

    cursor: str
    node: T


@strawberry.federation.type(shareable=True)
class Connection(Generic[T]):
    """A page of a list that can grow; ask for the next with ``after: pageInfo.endCursor``."""

    edges: list[Edge[T]]
    page_info: PageInfo


def encode_cursor(created_at: datetime, id_: uuid.UUID) -> str:
    """An opaque cursor for a row's position."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{id_}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor stands for; BAD_USER_INPUT on a cursor we did not make."""
    try:
        created_at, id_ = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(id_)
    except (ValueError, UnicodeDecodeError):
        raise BadUserInput("after: not a valid cursor", field="after") from None


def check_first(first: int) -> int:
    """``first`` within 1..MAX_PAGE, or BAD_USER_INPUT."""
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first: must be between 1 and {MAX_PAGE}", field="first")
    return first


def by_creation(row: Any) -> str:
    """The cursor of a row listed by ``(created_at, id)``: the common ordering."""
    return encode_cursor(row.created_at, row.id)


def connection(
    rows: Sequence[R],
    limit: int,
    *,
    node: Callable[[R], T],
    cursor: Callable[[R], str] = by_creation,
) -> Connection[T]:
    """The page of ``rows`` fetched with ``limit + 1`` (the extra row only says there is more);
    cursors by ``(created_at, id)`` unless ``cursor`` says otherwise."""
    edges = [Edge(cursor=cursor(row), node=node(row)) for row in rows[:limit]]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > limit, end_cursor=edges[-1].cursor if edges else None
        ),
    )


Q = TypeVar("Q", bound=Select[Any] | SelectOfScalar[Any])


def keyset_page(
    query: Q,
    at: Any,
    id_: Any,
    position: tuple[datetime, uuid.UUID] | None,
    *,
    limit: int,
    newest_first: bool = False,
) -> Q:
    """``query`` ordered by ``(at, id)`` (either way) from after ``position``, ``limit`` rows."""
    page: Any = query
    if position is not None:
        when, key = position
        if newest_first:
            page = page.where(or_(at < when, and_(at == when, id_ < key)))
        else:
            page = page.where(or_(at > when, and_(at == when, id_ > key)))
    order = (at.desc(), id_.desc()) if newest_first else (at, id_)
    result: Q = page.order_by(*order).limit(limit)
    return result


M = TypeVar("M")


async def keyset_pages(
    session: AsyncSession,
    entity: type[M],
    query: SelectOfScalar[M],
    *,
    owner: Any,
    owners: Sequence[uuid.UUID],
    at: Any,
    id_: Any,
    position: tuple[datetime, uuid.UUID] | None,
    limit: int,
    newest_first: bool = False,
) -> dict[uuid.UUID, list[M]]:
    """:func:`keyset_page` of ``query`` for each of ``owners`` at once: the same page of each
    owner's rows (``owner`` is the column naming it), in one statement.

    A lateral join runs the page once per owner, so each walks its own part of an index on
    ``(owner, at, id)``; a batch loader answers a page of customers' connections with it.
    """
    if not owners:
        return {}
    wanted = select(func.unnest(literal(list(owners), ARRAY(Uuid))).label("owner")).subquery(
        "wanted"
    )
    page = keyset_page(
        query.where(owner == wanted.c.owner),
        at,
        id_,
        position,
        limit=limit,
        newest_first=newest_first,
    ).lateral("page")
    row: Any = aliased(entity, page)
    found: dict[uuid.UUID, list[M]] = {}
    for item in await session.exec(select(row).select_from(wanted).join(page, true())):
        found.setdefault(getattr(item, owner.key), []).append(item)
    return found
