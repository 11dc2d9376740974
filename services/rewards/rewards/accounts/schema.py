"""The rewards subgraph's part of the customer graph: balances, history, spending, corrections."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared import audit
from crm_shared.auth import Permission
from crm_shared.errors import BadUserInput
from crm_shared.graphql import CrmInfo, keyed_loader, live_updates
from crm_shared.pagination import (
    Connection,
    encode_cursor,
)
from crm_shared.resolvers import needs, page
from crm_shared.validation import parse_id
from rewards.accounts import service
from rewards.accounts.events import PointsCredited, PointsDebited, PointsExpired
from rewards.accounts.models import JournalEntry
from rewards.settings import RewardsSettings
from rewards.tiers.events import TierChanged

if TYPE_CHECKING:
    from rewards.schema import Customer

MAX_EXPIRING_DAYS = 3650


def _settings(info: CrmInfo) -> RewardsSettings:
    found = getattr(info.context.request.app.state, "settings", None)
    return found if isinstance(found, RewardsSettings) else RewardsSettings()


@strawberry.type(name="PointsEntry")
class PointsEntryType:
    """One journal entry as the customer sees it: how it changed their balance, and why."""

    id: strawberry.ID
    kind: str = strawberry.field(description="earn, spend, expire, reversal or adjustment.")
    points: int = strawberry.field(description="The change to the balance (negative: taken).")
    reason: str
    created_at: datetime
    reverses_entry_id: strawberry.ID | None

    @classmethod
    def from_model(cls, entry: JournalEntry, points: int) -> PointsEntryType:
        return cls(
            id=strawberry.ID(str(entry.id)),
            kind=entry.kind,
            points=points,
            reason=entry.reason,
            created_at=entry.created_at,
            reverses_entry_id=(
                strawberry.ID(str(entry.reverses_entry_id)) if entry.reverses_entry_id else None
            ),
        )


@strawberry.type
class ExpiringPoints:
    """Points that expire together."""

    points: int
    expires_at: datetime


@strawberry.type
class RewardsAccount:
    """A customer's points."""

    balance: int
    customer_id: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="Points expiring within `days` (1..3650), soonest first.",
        extensions=[needs(Permission.REWARDS_READ, customer="self.customer_id")],
    )
    async def expiring_soon(self, info: CrmInfo, days: int = 30) -> list[ExpiringPoints]:
        principal = info.context.principal
        if not 1 <= days <= MAX_EXPIRING_DAYS:
            raise BadUserInput(f"days: must be between 1 and {MAX_EXPIRING_DAYS}", field="days")
        async with info.context.session() as session:
            rows = await service.expiring_soon(
                session,
                tenant_id=principal.tenant_id,
                customer_id=self.customer_id,
                within=timedelta(days=days),
            )
        return [ExpiringPoints(points=points, expires_at=at) for points, at in rows]

    @strawberry.field(
        description="The account's entries, newest first.",
        extensions=[needs(Permission.REWARDS_READ, customer="self.customer_id")],
    )
    async def history(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[PointsEntryType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.history(
                session,
                tenant_id=tenant_id,
                customer_id=self.customer_id,
                limit=limit,
                before=position,
            ),
            cursor=lambda r: encode_cursor(r[0].created_at, r[0].id),
            node=lambda r: PointsEntryType.from_model(*r),
        )


@strawberry.type
class PointsMovement:
    """What a ledger mutation did; a replay (same key, same content) returns the first result."""

    entry: PointsEntryType
    balance: int = strawberry.field(description="The customer's balance after the entry.")
    replayed: bool = strawberry.field(
        description="True when the idempotency key had already been used for this movement."
    )

    @classmethod
    def from_movement(cls, movement: service.Movement) -> PointsMovement:
        return cls(
            entry=PointsEntryType.from_model(movement.entry, movement.points),
            balance=movement.balance_after,
            replayed=movement.replayed,
        )


async def _balances(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, int | None]:
    found: Mapping[uuid.UUID, int | None] = await service.get_balances(
        session=session, tenant_id=tenant_id, customer_ids=list(ids)
    )
    return found


def balance_loader(info: CrmInfo) -> DataLoader[uuid.UUID, int | None]:
    """The request's batch loader of balances (None: no account yet)."""
    return keyed_loader(info, "balances", _balances, None)


async def _account(info: CrmInfo, customer_id: uuid.UUID) -> RewardsAccount | None:
    balance = await balance_loader(info).load(customer_id)
    return None if balance is None else RewardsAccount(balance=balance, customer_id=customer_id)


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType:
    id: strawberry.ID

    @strawberry.field(
        description="Points; null until the customer's account is opened.",
        extensions=[needs(Permission.REWARDS_READ, customer="self.id")],
    )
    async def rewards(self, info: CrmInfo) -> RewardsAccount | None:
        customer_id = parse_id(self.id, field="id")
        return await _account(info, customer_id)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> CustomerType:
        return cls(id=id)


@strawberry.type
class Query:
    @strawberry.field(
        description="A customer's points account, or null.",
        extensions=[needs(Permission.REWARDS_READ, customer="customer_id")],
    )
    async def rewards_account(
        self, info: CrmInfo, customer_id: strawberry.ID
    ) -> RewardsAccount | None:
        customer = parse_id(customer_id, field="customerId")
        return await _account(info, customer)


@strawberry.input
class SpendPointsInput:
    customer_id: strawberry.ID
    points: int = strawberry.field(description="How many points to spend (> 0).")
    reason: str
    idempotency_key: str = strawberry.field(
        description="The caller's key for this spend: sending it again never spends twice."
    )


@strawberry.input
class AdjustPointsInput:
    customer_id: strawberry.ID
    points: int = strawberry.field(description="Points to add (> 0) or take away (< 0).")
    reason: str
    idempotency_key: str


@strawberry.input
class ReverseEntryInput:
    entry_id: strawberry.ID
    reason: str
    idempotency_key: str


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Spend a customer's points, expiring-first (rewards:redeem; a customer "
        "token only its own).",
        extensions=[
            needs(Permission.REWARDS_REDEEM, customer="input.customer_id", field="customerId")
        ],
    )
    async def spend_points(self, info: CrmInfo, input: SpendPointsInput) -> PointsMovement:
        customer_id = parse_id(input.customer_id, field="customerId")
        principal = info.context.principal
        async with info.context.transaction() as session:
            movement = await service.spend(
                session,
                tenant_id=principal.tenant_id,
                customer_id=customer_id,
                points=input.points,
                reason=input.reason,
                idempotency_key=service.request_key(input.idempotency_key),
                actor=principal.actor,
            )
        return PointsMovement.from_movement(movement)

    @strawberry.mutation(
        description="Add or take away points, with a reason (points:adjust).",
        extensions=[
            needs(Permission.POINTS_ADJUST, customer="input.customer_id", field="customerId")
        ],
    )
    async def adjust_points(self, info: CrmInfo, input: AdjustPointsInput) -> PointsMovement:
        customer_id = parse_id(input.customer_id, field="customerId")
        principal = info.context.principal
        async with info.context.transaction() as session:
            movement = await service.adjust(
                session,
                tenant_id=principal.tenant_id,
                customer_id=customer_id,
                points=input.points,
                reason=input.reason,
                idempotency_key=service.request_key(input.idempotency_key),
                actor=principal.actor,
                ttl_days=_settings(info).points_ttl_days,
            )
            if not movement.replayed:
                await audit.record_staff_action(
                    session=session,
                    principal=principal,
                    action="points.adjusted",
                    record_type="journal_entry",
                    record_id=movement.entry.id,
                    details={
                        "customer_id": str(customer_id),
                        "points": input.points,
                    },
                )
        return PointsMovement.from_movement(movement)

    @strawberry.mutation(
        description="Undo an earn, spend or adjustment with an opposite entry, once "
        "(points:adjust).",
        extensions=[needs(Permission.POINTS_ADJUST)],
    )
    async def reverse_entry(self, info: CrmInfo, input: ReverseEntryInput) -> PointsMovement:
        principal = info.context.principal
        entry_id = parse_id(input.entry_id, field="entryId")
        async with info.context.transaction() as session:
            movement = await service.reverse(
                session,
                tenant_id=principal.tenant_id,
                entry_id=entry_id,
                reason=input.reason,
                idempotency_key=service.request_key(input.idempotency_key),
                actor=principal.actor,
            )
            if not movement.replayed:
                await audit.record_staff_action(
                    session=session,
                    principal=principal,
                    action="points.entry_reversed",
                    record_type="journal_entry",
                    record_id=movement.entry.id,
                    details={
                        "customer_id": str(movement.entry.customer_id),
                        "reverses_entry_id": str(entry_id),
                        "points": movement.points,
                    },
                )
        return PointsMovement.from_movement(movement)


BALANCE_EVENTS = (PointsCredited.type, PointsDebited.type, PointsExpired.type)
TIER_EVENTS = (TierChanged.type,)


async def _customer_updates(
    info: CrmInfo, customer_id: strawberry.ID, event_types: tuple[str, ...]
) -> AsyncGenerator[Annotated[Customer, strawberry.lazy("rewards.schema")], None]:
    """The customer (rewards:read; a customer token: its own) after each of these events."""
    from rewards.schema import Customer  # the entity every feature adds its fields to

    customer = parse_id(customer_id, field="customerId")
    principal = info.context.principal
    async for _ in live_updates(
        info,
        event_types=event_types,
        tenant_id=principal.tenant_id,
        match=lambda envelope: envelope.subject == str(customer),
    ):
        yield Customer(id=strawberry.ID(str(customer)))


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The customer, each time their points balance changes (at most once: a "
        "console that reconnects reads the current state with a query).",
        extensions=[needs(Permission.REWARDS_READ, customer="customer_id")],
    )
    async def balance_changed(
        self, info: CrmInfo, customer_id: strawberry.ID
    ) -> AsyncGenerator[Annotated[Customer, strawberry.lazy("rewards.schema")], None]:
        async for customer in _customer_updates(info, customer_id, BALANCE_EVENTS):
            yield customer

    @strawberry.subscription(
        description="The customer, each time their tier changes (at most once).",
        extensions=[needs(Permission.REWARDS_READ, customer="customer_id")],
    )
    async def tier_changed(
        self, info: CrmInfo, customer_id: strawberry.ID
    ) -> AsyncGenerator[Annotated[Customer, strawberry.lazy("rewards.schema")], None]:
        async for customer in _customer_updates(info, customer_id, TIER_EVENTS):
            yield customer
