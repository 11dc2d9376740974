"""One way to write a resolver: the permission declared on the field, the request's session
from the context, and generic helpers for "one by id" and "a page".

    @strawberry.field(description="...", extensions=[needs(Permission.REWARDS_READ)])
    async def offers(self, info: CrmInfo, first: int = 20, after: str | None = None
                     ) -> Connection[OfferType]:
        return await page(info, first, after, lambda s, tenant, limit, position:
                          service.list_offers(session=s, tenant_id=tenant, limit=limit,
                                              position=position), node=OfferType.from_model)

The permission is a strawberry permission class (:class:`Needs`), run before the resolver by
a field extension (:class:`Authorized`): UNAUTHENTICATED without a valid token,
FORBIDDEN without the scope, and, with ``customer=``, FORBIDDEN when a customer token asks for
another customer (the id named by an argument, ``"customer_id"`` or ``"input.customer_id"``,
or by the object the field belongs to, ``"self.id"``); with ``own=True`` a customer token
that names no customer acts for its own. An id that is not one is BAD_USER_INPUT naming the
argument as the caller spelled it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission
from strawberry.types import Info

from crm_shared.auth import Permission, Principal
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import Connection, by_creation, check_first, connection, decode_cursor
from crm_shared.validation import parse_id

T = TypeVar("T")
R = TypeVar("R")

Position = tuple[datetime, uuid.UUID]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class Needs(BasePermission):
    """The caller holds ``permission``; with ``customer``, a customer token reaches only the
    customer that ``customer`` names (``"self.<attribute>"`` of the source object, or an
    argument path such as ``"customer_id"`` or ``"input.customer_id"``; absent or null: the
    tenant as a whole, which a customer token never reaches, unless ``own``: then a customer
    token acts for its own customer). ``customers``: the permission a customer token needs
    instead of ``permission``, where customers act through the field themselves. ``field``:
    the name an invalid id is reported under, when it is not the path spelled in camelCase."""

    def __init__(
        self,
        permission: Permission,
        *,
        customer: str | None = None,
        own: bool = False,
        customers: Permission | None = None,
        field: str | None = None,
    ) -> None:
        self.permission = permission
        self.customer = customer
        self.own = own
        self.customers = customers or permission
        self._source = customer is not None and customer.startswith("self.")
        self._path = customer.removeprefix("self.").split(".") if customer else []
        self._field = field or ".".join(_camel(part) for part in self._path)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal: Principal = info.context.principal
        customer_id: uuid.UUID | None = None
        if self._path:
            value: Any = source if self._source else kwargs
            for part in self._path:
                value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
            if value is not None:
                customer_id = (
                    value if isinstance(value, uuid.UUID) else parse_id(value, field=self._field)
                )
        if customer_id is None and self.own:
            customer_id = principal.customer_id
        # Raises UNAUTHENTICATED or FORBIDDEN, with the codes callers know.
        permission = self.customers if principal.kind == "customer" else self.permission
        principal.check(permission, customer_id=customer_id)
        return True


class Authorized(FieldExtension):
    """Runs a :class:`Needs` before the field's resolver.

    strawberry's own ``PermissionExtension`` does the same with an extra coroutine per
    resolution (it awaits each check, which may be async); a check here is plain code and the
    resolver's awaitable is handed back as it is (figures in bench/RESULTS.md).
    """

    def __init__(self, needs: Needs) -> None:
        self.needs = needs

    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        self.needs.has_permission(source, info, **kwargs)
        return next_(source, info, **kwargs)

    def resolve_async(  # returns the resolver's awaitable, not a coroutine of its own
        self, next_: Any, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        self.needs.has_permission(source, info, **kwargs)
        return next_(source, info, **kwargs)


def needs(
    permission: Permission,
    *,
    customer: str | None = None,
    own: bool = False,
    customers: Permission | None = None,
    field: str | None = None,
) -> Authorized:
    """The field extension that checks :class:`Needs` before the resolver runs (no schema
    directive: the schema stays as it is)."""
    return Authorized(
        Needs(permission, customer=customer, own=own, customers=customers, field=field)
    )


def principal(info: CrmInfo) -> Principal:
    """The verified caller (the field's permission has been checked already)."""
    return info.context.principal


async def one(
    info: CrmInfo,
    id: str,
    fetch: Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[R | None]],
    node: Callable[[R], T],
    *,
    field: str = "id",
) -> T | None:
    """One row of the caller's tenant by id, converted by ``node``; None when there is none.
    ``fetch(session, tenant_id, id)`` runs in the request's session."""
    key = parse_id(id, field=field)
    async with info.context.session() as session:
        row = await fetch(session, info.context.tenant_id, key)
    return None if row is None else node(row)


async def page(
    info: CrmInfo,
    first: int,
    after: str | None,
    fetch: Callable[[AsyncSession, uuid.UUID, int, Any], Awaitable[Sequence[R]]],
    node: Callable[[R], T],
    *,
    cursor: Callable[[R], str] = by_creation,
    position: Callable[[str], Any] = decode_cursor,
) -> Connection[T]:
    """A page of the caller's tenant's rows: ``fetch(session, tenant_id, limit, position)``
    answers up to ``limit`` rows after ``position`` (None: from the start; ``limit`` is one
    more than the page, to tell whether there is a next one)."""
    limit = check_first(first)
    after_position = position(after) if after is not None else None
    async with info.context.session() as session:
        rows = await fetch(session, info.context.tenant_id, limit + 1, after_position)
    return connection(rows, limit, node=node, cursor=cursor)
