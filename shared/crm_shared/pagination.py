"""Cursor connections: stable keyset paging over ``(created_at, id)``, or over any sort key
and the id (:class:`SortCursor`)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    has_previous_page: bool = strawberry.field(
        default=False,
        description="Whether rows come before this page (answered when paging backward, or "
        "forward from a cursor; false otherwise).",
    )
    start_cursor: str | None = strawberry.field(
        default=None, description="The first edge's cursor: ask `before` it for the page before."
    )


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
    return check_page_size(first, "first")


def check_page_size(size: int, field: str) -> int:
    """A page size (``first``, ``last``) within 1..MAX_PAGE, or BAD_USER_INPUT naming it."""
    if not 1 <= size <= MAX_PAGE:
        raise BadUserInput(f"{field}: must be between 1 and {MAX_PAGE}", field=field)
    return size


@dataclass(frozen=True)
class SortCursor:
    """Cursors of a list sorted by ``sort`` (either way) then id: each carries its row's sort
    key (a string, a number or a timestamp), and one made for another order is refused."""

    sort: str
    descending: bool = False

    def encode(self, key: object, id_: uuid.UUID) -> str:
        """The opaque cursor of the row with sort key ``key`` and id ``id_``."""
        if isinstance(key, datetime):
            value: object = {"at": key.isoformat()}
        elif isinstance(key, str | int | float) and not isinstance(key, bool):
            value = key
        else:
            raise TypeError(f"no cursor for a sort key of type {type(key).__name__}")
        raw = json.dumps([self.sort, self.descending, value, str(id_)], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode()

    def decode(self, cursor: str, field: str) -> tuple[object, uuid.UUID]:
        """The ``(sort key, id)`` a cursor stands for; BAD_USER_INPUT naming ``field`` on a
        cursor we did not make or made for another order."""
        try:
            sort, descending, value, id_ = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            if isinstance(value, dict):
                value = datetime.fromisoformat(value["at"])
            valid = isinstance(value, str | int | float | datetime) and not isinstance(value, bool)
            if valid and (sort, descending) == (self.sort, self.descending):
                return value, uuid.UUID(id_)
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            pass
        raise BadUserInput(f"{field}: not a cursor of this list and order", field=field)


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
            has_next_page=len(rows) > limit,
            end_cursor=edges[-1].cursor if edges else None,
            start_cursor=edges[0].cursor if edges else None,
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
