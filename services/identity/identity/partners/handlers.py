"""Identity's webhook queue (``identity.webhooks.events``, bound per tenant to the types its
webhook endpoints take: :mod:`identity.partners.fanout`): each event of a tenant with webhook
endpoints is kept and queued for delivery."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope
from crm_shared.events.consumer import AnyEvent, Handler, Registry, registry
from identity.partners import service
from identity.settings import IdentitySettings


async def keep_for_webhooks(
    event: AnyEvent, *, envelope: Envelope, session: AsyncSession, settings: IdentitySettings
) -> None:
    """Keep the event and queue its deliveries (once per event id: the inbox sees to it)."""
    await service.keep_event(
        session=session,
        envelope=envelope,
        window=timedelta(seconds=settings.webhook_retry_window_seconds),
    )


def webhook_handlers(settings: IdentitySettings) -> Registry:
    """The handlers of the ``webhooks`` queue, with the settings bound."""
    return registry(Handler(AnyEvent, partial(keep_for_webhooks, settings=settings)))
