"""The partner exchange: identity republishes there what partners may see.

Identity's queue ``identity.partners.events`` is bound per tenant to the types its live
subscriptions want (:mod:`identity.partners.fanout`). For each event of a tenant with a live
partner subscription wanting its type (checked again here), :func:`forward_to_partners`
checks ``partner_sharing`` (:mod:`identity.partners.sharing`) and, when the event may go,
publishes it unchanged (same body, id and routing key ``<type>.<tenant id>``) to the partner
exchange with a publisher confirm, inside the handler: a failed publish fails the handler
(the consumer retries, then parks in ``identity.partners.parked``), and a crash after the
confirm and before the inbox commit republishes it (a duplicate, which partners drop by id).
Partner queues are bound only to this exchange, so they never see the raw stream.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope
from crm_shared.events.consumer import AnyEvent, Handler, Registry, registry
from crm_shared.events.topology import declare_exchange
from identity.partners import sharing
from identity.partners.models import PartnerSubscription
from identity.settings import IdentitySettings

log = logging.getLogger(__name__)


class PartnerFeed:
    """A publisher to the partner exchange: one robust connection and a confirming channel,
    made on first use (the app's lifespan closes it)."""

    def __init__(self, *, amqp_url: str, exchange: str) -> None:
        self._url = amqp_url
        self.exchange_name = exchange
        self._lock = asyncio.Lock()
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def _ready(self) -> AbstractExchange:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                self._connection = await aio_pika.connect_robust(self._url)
                self._channel = None
            if self._channel is None or self._channel.is_closed or self._exchange is None:
                self._channel = await self._connection.channel(publisher_confirms=True)
                self._exchange = await declare_exchange(self._channel, self.exchange_name)
            return self._exchange

    async def publish(self, envelope: Envelope) -> None:
        """Publish ``envelope`` as it was (routing key ``<type>.<tenant>``); returns once
        the broker confirmed it."""
        exchange = await self._ready()
        await exchange.publish(
            aio_pika.Message(
                body=envelope.to_json(),
                content_type="application/cloudevents+json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(envelope.id),
                type=envelope.type,
                headers=dict(envelope.trace_headers),
            ),
            routing_key=envelope.routing_key,
        )

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection, self._channel, self._exchange = None, None, None


async def subscribed(session: AsyncSession, envelope: Envelope) -> bool:
    """Whether a live subscription of the event's tenant wants its type."""
    count = await session.exec(
        select(func.count())
        .select_from(PartnerSubscription)
        .where(
            PartnerSubscription.tenant_id == envelope.tenantid,
            col(PartnerSubscription.revoked_at).is_(None),
            col(PartnerSubscription.event_types).contains([envelope.type]),
        )
    )
    return bool(count.one())


async def forward_to_partners(
    event: AnyEvent, *, envelope: Envelope, session: AsyncSession, feed: PartnerFeed
) -> None:
    """Republish the event to the partner exchange when a partner wants it and may have it."""
    if not await subscribed(session, envelope):
        return
    reason = await sharing.withheld_one(session, envelope)
    if reason is not None:
        sharing.withheld_events.add(1, {"event_type": envelope.type, "channel": "broker"})
        log.info("event %s (%s) not forwarded to partners: %s", envelope.id, envelope.type, reason)
        return
    await feed.publish(envelope)
    sharing.shared_events.add(1, {"event_type": envelope.type, "channel": "broker"})


def partner_handlers(feed: PartnerFeed) -> Registry:
    """The handlers of the ``partners`` queue, with the feed bound."""
    return registry(Handler(AnyEvent, partial(forward_to_partners, feed=feed)))


def partner_feed(settings: IdentitySettings) -> PartnerFeed:
    """The feed of identity's broker and partner exchange, from its settings."""
    return PartnerFeed(amqp_url=settings.amqp_url, exchange=settings.partner_exchange)
