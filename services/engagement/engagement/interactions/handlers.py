"""The profile→customer projection: identity's link events attach or detach an author's history."""

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from engagement.interactions import service
from engagement.segments import service as segments


class SocialProfileLinked(Event):
    """Identity linked a social profile to a customer (the fields engagement needs)."""

    type = "identity.social_profile.linked.v1"

    link_id: uuid.UUID | None = None
    customer_id: uuid.UUID
    channel: str
    platform_user_id: str


class SocialProfileUnlinked(Event):
    """Identity removed a profile's link to a customer."""

    type = "identity.social_profile.unlinked.v1"

    link_id: uuid.UUID | None = None
    customer_id: uuid.UUID
    channel: str
    platform_user_id: str


async def attach_history(
    event: SocialProfileLinked, *, envelope: Envelope, session: AsyncSession
) -> None:
    """The author's interactions, past and future, belong to the customer."""
    await service.link_profile(
        session=session,
        tenant_id=envelope.tenantid,
        channel=event.channel,
        platform_user_id=event.platform_user_id,
        customer_id=event.customer_id,
        link_id=event.link_id,
    )
    await segments.refresh(
        session=session, tenant_id=envelope.tenantid, customer_ids=[event.customer_id]
    )


async def detach_history(
    event: SocialProfileUnlinked, *, envelope: Envelope, session: AsyncSession
) -> None:
    """The author's interactions no longer belong to the customer."""
    await service.unlink_profile(
        session=session,
        tenant_id=envelope.tenantid,
        channel=event.channel,
        platform_user_id=event.platform_user_id,
        customer_id=event.customer_id,
    )
    await segments.refresh(
        session=session, tenant_id=envelope.tenantid, customer_ids=[event.customer_id]
    )
