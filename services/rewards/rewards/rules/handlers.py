"""The events rules trigger on, as rewards reads them, and what it does with each.

Every trigger event is stored with its facts (for dry runs and tiers), then paid: the
customer's account is opened and locked first, so one customer's payouts run one at a time.
An event of a social profile no customer is linked to yet is kept pending; the profile's link
pays it as the customer then, as if it had arrived with them (same event id, so once).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import BatchHandler, Handler
from crm_shared.privacy import ProfileRef
from rewards.accounts import service as ledger
from rewards.purchases.events import PurchaseRecorded, PurchaseRefunded
from rewards.rules import batch, service
from rewards.rules.conditions import Trigger
from rewards.tiers import service as tiers

E = TypeVar("E", bound=Event)


class TenantCreated(Event):
    type = "identity.tenant.created.v1"

    tenant_id: uuid.UUID


class InteractionRecorded(Event):
    type = "engagement.interaction.recorded.v1"

    interaction_id: uuid.UUID
    customer_id: uuid.UUID | None
    channel: str
    kind: str
    # The author's account: set when no customer is linked to it (the event is kept pending).
    platform_user_id: str | None = None
    sentiment: float | None = None
    sentiment_label: str | None = None
    occurred_at: datetime


class PollVoted(Event):
    type = "engagement.poll.voted.v1"

    poll_id: uuid.UUID
    customer_id: uuid.UUID


class IdeaStatusChanged(Event):
    type = "engagement.idea.status_changed.v1"

    idea_id: uuid.UUID
    customer_id: uuid.UUID | None
    status: str


class ContestWinnerChosen(Event):
    type = "engagement.contest.winner_chosen.v1"

    contest_id: uuid.UUID
    customer_id: uuid.UUID
    rank: int | None = None


class ContentShared(Event):
    type = "engagement.content.shared.v1"

    interaction_id: uuid.UUID
    customer_id: uuid.UUID | None
    channel: str | None = None


class SocialProfileLinked(Event):
    type = "identity.social_profile.linked.v1"

    customer_id: uuid.UUID
    channel: str
    platform_user_id: str


class SegmentChanged(Event):
    type = "engagement.segment.changed.v1"

    customer_id: uuid.UUID
    segment: str


async def pay_trigger(
    session: AsyncSession,
    *,
    envelope: Envelope,
    trigger: Trigger,
    customer_id: uuid.UUID | None,
    occurred_at: datetime,
    welcome_points: int,
    ttl_days: int,
    profile: ProfileRef | None = None,
    **data: Any,
) -> None:
    """Store a trigger event and pay the rules it matches; without a customer, keep it pending
    for the profile's link (no profile either: nothing)."""
    await service.ensure_tenant(session, tenant_id=envelope.tenantid, welcome_points=welcome_points)
    if customer_id is None:
        if profile is not None:
            await service.keep_pending(
                session,
                tenant_id=envelope.tenantid,
                event_id=envelope.id,
                trigger=trigger,
                profile=profile,
                occurred_at=occurred_at,
                **data,
            )
        return
    await ledger.hold_account(session=session, tenant_id=envelope.tenantid, customer_id=customer_id)
    await _pay_customer(
        session,
        tenant_id=envelope.tenantid,
        event_id=envelope.id,
        trigger=trigger,
        customer_id=customer_id,
        occurred_at=occurred_at,
        ttl_days=ttl_days,
        **data,
    )


async def _pay_customer(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    trigger: Trigger,
    customer_id: uuid.UUID,
    occurred_at: datetime,
    ttl_days: int,
    **data: Any,
) -> None:
    # The caller has opened (and so locked) the customer's account.
    facts = await service.record_trigger(
        session,
        tenant_id=tenant_id,
        event_id=event_id,
        trigger=trigger,
        customer_id=customer_id,
        occurred_at=occurred_at,
        **data,
    )
    await service.pay(
        session, tenant_id=tenant_id, event_id=event_id, facts=facts, ttl_days=ttl_days
    )
    if trigger is Trigger.INTERACTION_RECORDED:
        # Engagement tiers count interactions.
        await tiers.recompute(session, tenant_id=tenant_id, customer_id=customer_id)


async def pay_pending(
    event: SocialProfileLinked,
    *,
    envelope: Envelope,
    session: AsyncSession,
    welcome_points: int,
    ttl_days: int,
    pending_days: int,
) -> None:
    """Pay the linked profile's pending triggers as the customer, oldest first; those older
    than ``pending_days`` are dropped unpaid. Unlinking takes nothing back (the points were
    earned while the profile was the customer's)."""
    tenant_id = envelope.tenantid
    await service.ensure_tenant(session, tenant_id=tenant_id, welcome_points=welcome_points)
    await ledger.hold_account(session=session, tenant_id=tenant_id, customer_id=event.customer_id)
    pending = await service.take_pending(
        session,
        tenant_id=tenant_id,
        profile=ProfileRef(channel=event.channel, platform_user_id=event.platform_user_id),
        since=utcnow() - timedelta(days=pending_days),
    )
    for trigger in pending:
        await _pay_customer(
            session,
            tenant_id=tenant_id,
            event_id=trigger.event_id,
            trigger=Trigger(trigger.type),
            customer_id=event.customer_id,
            occurred_at=trigger.occurred_at,
            ttl_days=ttl_days,
            **trigger.data,
        )


async def set_up_tenant(
    event: TenantCreated, *, envelope: Envelope, session: AsyncSession, welcome_points: int
) -> None:
    """Make the new tenant's default rules."""
    await service.ensure_tenant(session, tenant_id=event.tenant_id, welcome_points=welcome_points)


async def pay_one_interaction(
    event: InteractionRecorded,
    *,
    envelope: Envelope,
    session: AsyncSession,
    welcome_points: int,
    ttl_days: int,
) -> None:
    """Rules on interactions (channel, kind, sentiment)."""
    await pay_trigger(
        session,
        envelope=envelope,
        trigger=Trigger.INTERACTION_RECORDED,
        customer_id=event.customer_id,
        occurred_at=event.occurred_at,
        channel=event.channel,
        kind=event.kind,
        sentiment=event.sentiment,
        sentiment_label=event.sentiment_label,
        welcome_points=welcome_points,
        ttl_days=ttl_days,
        profile=(
            ProfileRef(channel=event.channel, platform_user_id=event.platform_user_id)
            if event.platform_user_id
            else None
        ),
    )


async def pay_interaction(
    events: list[InteractionRecorded],
    *,
    envelopes: list[Envelope],
    session: AsyncSession,
    welcome_points: int,
    ttl_days: int,
) -> None:
    """Rules on interactions, for a batch of them (named as the one-event handler was: its
    inbox key). Per tenant: the customers' accounts locked in one statement (in customer
    order), their events paid together (``batch.pay_many``, or one by one, in order, when the
    batch holds a redelivered event), the events of unlinked authors kept pending in one
    statement."""
    by_tenant: dict[uuid.UUID, list[tuple[InteractionRecorded, Envelope]]] = {}
    for event, envelope in zip(events, envelopes, strict=True):
        by_tenant.setdefault(envelope.tenantid, []).append((event, envelope))
    for tenant_id, items in by_tenant.items():
        await service.ensure_tenant(session, tenant_id=tenant_id, welcome_points=welcome_points)
        await service.keep_pending_many(
            session,
            tenant_id=tenant_id,
            pending=[
                service.Pending(
                    event_id=envelope.id,
                    trigger=Trigger.INTERACTION_RECORDED,
                    profile=ProfileRef(channel=e.channel, platform_user_id=e.platform_user_id),
                    occurred_at=e.occurred_at,
                    data=_interaction_data(e),
                )
                for e, envelope in items
                if e.customer_id is None and e.platform_user_id
            ],
        )
        known = [(e, envelope) for e, envelope in items if e.customer_id is not None]
        if not known:
            continue
        accounts = await ledger.hold_accounts(
            session=session,
            tenant_id=tenant_id,
            customer_ids=[e.customer_id for e, _ in known if e.customer_id is not None],
        )
        calls = [
            batch.TriggerCall(
                event_id=envelope.id,
                customer_id=e.customer_id,
                occurred_at=e.occurred_at,
                data=_interaction_data(e),
            )
            for e, envelope in known
            if e.customer_id is not None
        ]
        rules = await service.current_rules(session, tenant_id, Trigger.INTERACTION_RECORDED)
        paid = await batch.pay_many(
            session,
            batch=batch.Batch(
                tenant_id=tenant_id,
                trigger=Trigger.INTERACTION_RECORDED,
                calls=calls,
                accounts=accounts,
                ttl_days=ttl_days,
            ),
            rules=rules,
        )
        if paid:
            continue
        for event, envelope in known:
            await pay_one_interaction(
                event,
                envelope=envelope,
                session=session,
                welcome_points=welcome_points,
                ttl_days=ttl_days,
            )


def _interaction_data(event: InteractionRecorded) -> dict[str, Any]:
    """The facts of an interaction that rules look at."""
    return {
        "channel": event.channel,
        "kind": event.kind,
        "sentiment": event.sentiment,
        "sentiment_label": event.sentiment_label,
    }


@dataclass(frozen=True)
class TriggerSource(Generic[E]):
    """How one consumed event type triggers rules: which trigger, when it happened and the
    facts conditions look at (besides the customer's context)."""

    event: type[E]
    trigger: Trigger
    # The handler's name, and so its inbox key: kept from when each had a function of its own.
    handler: str
    facts: Callable[[E], dict[str, Any]] = lambda _: {}
    occurred_at: Callable[[E, Envelope], datetime] = lambda _, envelope: envelope.time


# Every event that pays rules one at a time (interactions come in batches: pay_interaction;
# sign-ups: accounts' handler).
TRIGGER_SOURCES: tuple[TriggerSource[Any], ...] = (
    TriggerSource(PollVoted, Trigger.POLL_VOTED, "pay_poll_vote"),
    TriggerSource(
        IdeaStatusChanged,
        Trigger.IDEA_STATUS_CHANGED,
        "pay_idea_status",
        facts=lambda e: {"status": e.status},
    ),
    TriggerSource(
        ContestWinnerChosen,
        Trigger.CONTEST_WINNER_CHOSEN,
        "pay_contest_winner",
        facts=lambda e: {"rank": e.rank},
    ),
    TriggerSource(
        ContentShared,
        Trigger.CONTENT_SHARED,
        "pay_content_share",
        facts=lambda e: {"channel": e.channel},
    ),
    TriggerSource(
        PurchaseRecorded,
        Trigger.PURCHASE_RECORDED,
        "pay_purchase",
        facts=lambda e: {
            "amount_cents": e.amount_cents,
            "currency": e.currency,
            "purchase_id": e.purchase_id,
        },
        occurred_at=lambda e, _: e.occurred_at,
    ),
)


def trigger_handler(source: TriggerSource[Any]) -> Callable[..., Awaitable[None]]:
    """The handler of ``source``'s events: store the event, pay the rules it matches."""

    async def handle(
        event: Event,
        *,
        envelope: Envelope,
        session: AsyncSession,
        welcome_points: int,
        ttl_days: int,
    ) -> None:
        await pay_trigger(
            session,
            envelope=envelope,
            trigger=source.trigger,
            customer_id=getattr(event, "customer_id", None),
            occurred_at=source.occurred_at(event, envelope),
            welcome_points=welcome_points,
            ttl_days=ttl_days,
            **source.facts(event),
        )

    handle.__name__ = handle.__qualname__ = source.handler
    handle.__doc__ = f"Rules on {source.event.type}."
    return handle


async def refund_purchase(
    event: PurchaseRefunded, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Take back, in proportion, what the refunded purchase's payouts earned."""
    await service.refund_purchase(
        session,
        tenant_id=envelope.tenantid,
        purchase_id=event.purchase_id,
        refund_id=event.refund_id,
        amount_cents=event.amount_cents,
        original_amount_cents=event.purchase_amount_cents,
    )


async def project_segment(
    event: SegmentChanged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Keep the customer's segment for conditions on segments."""
    await service.segment_changed(
        session,
        tenant_id=envelope.tenantid,
        customer_id=event.customer_id,
        segment=event.segment,
        changed_at=envelope.time,
    )


def link_handlers(*, welcome_points: int, ttl_days: int, pending_days: int) -> list[Handler[Any]]:
    """The handler of profile links, with its settings bound (before privacy's erasure)."""
    return [
        Handler(
            SocialProfileLinked,
            partial(
                pay_pending,
                welcome_points=welcome_points,
                ttl_days=ttl_days,
                pending_days=pending_days,
            ),
        ),
    ]


def rule_handlers(*, welcome_points: int, ttl_days: int) -> list[Handler[Any]]:
    """The handlers of rules, with their settings bound (sign-up is accounts' handler)."""
    return [
        Handler(TenantCreated, partial(set_up_tenant, welcome_points=welcome_points)),
        BatchHandler(
            InteractionRecorded,
            partial(pay_interaction, welcome_points=welcome_points, ttl_days=ttl_days),
        ),
        *(
            Handler(
                source.event,
                partial(trigger_handler(source), welcome_points=welcome_points, ttl_days=ttl_days),
            )
            for source in TRIGGER_SOURCES
        ),
        Handler(PurchaseRefunded, refund_purchase),
        Handler(SegmentChanged, project_segment),
    ]
