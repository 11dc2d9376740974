"""Partners' operations: broker subscriptions, webhook endpoints, kept events and replay."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import Envelope
from crm_shared.pagination import keyset_page
from identity.access.models import ApiClient
from identity.partners.broker import BrokerAdmin, BrokerUnavailable, access_for
from identity.partners.fanout import bind_before_commit, unbind_after_commit
from identity.partners.models import (
    DeliveryStatus,
    PartnerSubscription,
    PartnerSubscriptionCreate,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookEvent,
)
from identity.partners.signing import new_secret

# -- broker subscriptions ------------------------------------------------------------------

STAFF_REVOKED = "revoked by staff"


async def partner_client(
    session: AsyncSession, tenant_id: uuid.UUID, client_id: uuid.UUID, field: str
) -> ApiClient:
    """The tenant's active partner client, locked for this transaction (a revocation waits
    for what is being given to it, or it waits for the revocation and is refused)."""
    client = await session.get(ApiClient, client_id, with_for_update=True)
    if client is None or client.tenant_id != tenant_id:
        raise NotFound(f"{field}: no such API client", field=field)
    if client.kind != "partner" or not client.active:
        raise BadUserInput(f"{field}: not an active partner client", field=field)
    return client


async def create_partner_subscription(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    data: PartnerSubscriptionCreate,
    broker: BrokerAdmin,
) -> tuple[PartnerSubscription, str]:
    """Give a partner client its own queue of the tenant's events; returns the broker password
    (shown once, kept nowhere). The broker is provisioned before the row commits; if it
    refuses, what was made there is removed and nothing is kept."""
    client = await partner_client(session, tenant_id, data.client_id, "clientId")
    taken = await session.exec(
        select(PartnerSubscription.id).where(
            PartnerSubscription.client_id == client.id,
            col(PartnerSubscription.revoked_at).is_(None),
        )
    )
    if taken.first() is not None:
        raise Conflict("clientId: this client already has a subscription", field="clientId")
    subscription_id = uuid.uuid4()
    access = access_for(subscription_id)
    subscription = PartnerSubscription(
        id=subscription_id,
        tenant_id=tenant_id,
        client_id=client.id,
        broker_user=access.user,
        queue=access.queue,
        event_types=data.event_types,
    )
    session.add(subscription)
    await session.flush()
    # identity.partners.events gets the chosen types of this tenant from now on.
    await bind_before_commit(session, tenant_id)
    password = secrets.token_urlsafe(32)
    try:
        await broker.provision(
            access, password=password, tenant_id=tenant_id, event_types=data.event_types
        )
    except Exception:
        with contextlib.suppress(BrokerUnavailable):  # the first failure is the one to report
            await broker.remove(access)
        raise
    return subscription, password


async def revoke_partner_subscription(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subscription_id: uuid.UUID,
    broker: BrokerAdmin,
) -> PartnerSubscription:
    """Remove the partner's broker user and queue; revoking twice changes nothing."""
    subscription = await session.get(PartnerSubscription, subscription_id, with_for_update=True)
    if subscription is None or subscription.tenant_id != tenant_id:
        raise NotFound("id: no such partner subscription", field="id")
    await broker.remove(access_for(subscription.id))
    if subscription.revoked_at is None:
        subscription.revoked_at, subscription.revoked_reason = utcnow(), STAFF_REVOKED
        session.add(subscription)
        await session.flush()
        unbind_after_commit(session, tenant_id)
    return subscription


async def revoke_partner_client(
    *, session: AsyncSession, client_id: uuid.UUID, broker: BrokerAdmin, reason: str
) -> tuple[list[PartnerSubscription], list[WebhookEndpoint]]:
    """What a revoked partner client loses with it: its live broker subscriptions (user,
    permissions, queue and bindings removed on the broker) and its enabled webhook endpoints
    (disabled, their pending deliveries cancelled). The broker is changed before the caller
    commits; if it refuses, the caller's transaction (the revocation) fails as a whole.
    Returns what was revoked and disabled now (nothing, the second time)."""
    subscriptions = list(
        await session.exec(
            select(PartnerSubscription)
            .where(
                PartnerSubscription.client_id == client_id,
                col(PartnerSubscription.revoked_at).is_(None),
            )
            .with_for_update()
        )
    )
    endpoints = list(
        await session.exec(
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.client_id == client_id,
                col(WebhookEndpoint.disabled_at).is_(None),
            )
            .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
            .with_for_update()
        )
    )
    for endpoint in endpoints:
        await _disable(session, endpoint, reason)
    now = utcnow()
    for subscription in subscriptions:
        await broker.remove(access_for(subscription.id))
        subscription.revoked_at, subscription.revoked_reason = now, reason
        session.add(subscription)
    await session.flush()
    for tenant_id in {s.tenant_id for s in subscriptions} | {e.tenant_id for e in endpoints}:
        unbind_after_commit(session, tenant_id)
    return subscriptions, endpoints


async def list_partner_subscriptions(
    *, session: AsyncSession, tenant_id: uuid.UUID
) -> list[PartnerSubscription]:
    """The tenant's partner subscriptions, newest first (revoked ones too)."""
    rows = await session.exec(
        select(PartnerSubscription)
        .where(PartnerSubscription.tenant_id == tenant_id)
        .order_by(col(PartnerSubscription.created_at).desc(), col(PartnerSubscription.id))
    )
    return list(rows)


# -- webhook endpoints ---------------------------------------------------------------------


async def create_webhook_endpoint(
    *, session: AsyncSession, tenant_id: uuid.UUID, data: WebhookEndpointCreate
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (shown this once); an endpoint of a partner
    names its active partner client."""
    if data.client_id is not None:
        await partner_client(session, tenant_id, data.client_id, "input.clientId")
    secret = new_secret()
    endpoint = WebhookEndpoint(tenant_id=tenant_id, secret=secret, **data.model_dump())
    session.add(endpoint)
    await session.flush()
    # identity.webhooks.events gets the endpoint's types of this tenant from now on.
    await bind_before_commit(session, tenant_id)
    return endpoint, secret


async def endpoint_for_update(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, field: str = "id"
) -> WebhookEndpoint:
    """The tenant's endpoint, locked for this transaction; NOT_FOUND otherwise."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None or endpoint.tenant_id != tenant_id:
        raise NotFound(f"{field}: no such webhook endpoint", field=field)
    return endpoint


async def update_webhook_endpoint(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    data: WebhookEndpointUpdate,
) -> tuple[WebhookEndpoint, list[str]]:
    """Change what is given; ``enabled=True`` re-enables, ``False`` disables. Returns the
    endpoint and the names of the fields that changed."""
    # Clients before the endpoint, in the order a revocation locks them (no deadlock).
    owner = (
        await session.exec(
            select(WebhookEndpoint.client_id).where(
                WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id
            )
        )
    ).first()
    for client_id in sorted({c for c in (owner, data.client_id) if c is not None}):
        await session.get(ApiClient, client_id, with_for_update=True)
    endpoint = await endpoint_for_update(session, tenant_id, endpoint_id, "input.id")
    changed = []
    if data.client_id is not None and data.client_id != endpoint.client_id:
        if endpoint.client_id is not None:
            raise Conflict(
                "input.clientId: the endpoint belongs to another client", field="input.clientId"
            )
        await partner_client(session, tenant_id, data.client_id, "input.clientId")
        endpoint.client_id = data.client_id
        changed.append("client_id")
    for name in ("url", "event_types", "description"):
        value = getattr(data, name)
        if value is not None and getattr(endpoint, name) != value:
            setattr(endpoint, name, value)
            changed.append(name)
    if data.enabled is True and endpoint.disabled_at is not None:
        if endpoint.client_id is not None:
            client = await session.get(ApiClient, endpoint.client_id)
            if client is None or not client.active:
                raise Conflict(
                    "input.enabled: the endpoint's partner client is revoked",
                    field="input.enabled",
                )
        endpoint.disabled_at, endpoint.disabled_reason = None, None
        changed.append("enabled")
    elif data.enabled is False and endpoint.disabled_at is None:
        await _disable(session, endpoint, "disabled by staff")
        changed.append("enabled")
    if changed:
        endpoint.updated_at = utcnow()
        session.add(endpoint)
        await session.flush()
    if "event_types" in changed:
        await bind_before_commit(session, tenant_id)  # types added: bound before visible
        unbind_after_commit(session, tenant_id)  # types dropped: unbound once committed
    return endpoint, changed


async def rotate_webhook_secret(
    *, session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, overlap: timedelta
) -> tuple[WebhookEndpoint, str]:
    """A new secret (shown once); the current one keeps signing too for ``overlap``."""
    endpoint = await endpoint_for_update(session, tenant_id, endpoint_id)
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + overlap
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    session.add(endpoint)
    await session.flush()
    return endpoint, endpoint.secret


async def _disable(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop delivering to ``endpoint``; its pending deliveries are cancelled (replay resends)."""
    now = utcnow()
    endpoint.disabled_at, endpoint.disabled_reason, endpoint.updated_at = now, reason, now
    session.add(endpoint)
    await session.execute(
        text(
            "UPDATE identity.webhook_deliveries SET status = :cancelled, completed_at = :now,"
            " next_attempt_at = NULL WHERE endpoint_id = :id AND status = :pending"
        ),
        {
            "cancelled": DeliveryStatus.CANCELLED.value,
            "pending": DeliveryStatus.PENDING.value,
            "now": now,
            "id": endpoint.id,
        },
    )


async def disable_webhook_endpoint(
    *, session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, reason: str
) -> WebhookEndpoint:
    """Stop deliveries to an endpoint (until it is enabled again)."""
    endpoint = await endpoint_for_update(session, tenant_id, endpoint_id)
    if endpoint.disabled_at is None:
        await _disable(session, endpoint, reason)
        await session.flush()
    return endpoint


async def disable_for_failures(
    *, session: AsyncSession, endpoint_id: uuid.UUID, reason: str
) -> None:
    """The delivery loop gives up on an endpoint (HTTP 410, or retries exhausted)."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is not None and endpoint.disabled_at is None:
        await _disable(session, endpoint, reason)


async def list_webhook_endpoints(
    *, session: AsyncSession, tenant_id: uuid.UUID
) -> list[WebhookEndpoint]:
    """The tenant's endpoints, oldest first."""
    rows = await session.exec(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    )
    return list(rows)


# -- events kept for delivery, deliveries, replay ------------------------------------------


async def keep_event(*, session: AsyncSession, envelope: Envelope, window: timedelta) -> int:
    """Keep an event of a tenant that has webhook endpoints (for delivery now and replay
    later) and queue a delivery to each enabled endpoint that wants its type. Returns how
    many deliveries were queued."""
    endpoints = list(
        await session.exec(
            select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == envelope.tenantid)
        )
    )
    if not endpoints:
        return 0
    now = utcnow()
    session.add(
        WebhookEvent(
            id=envelope.id,
            tenant_id=envelope.tenantid,
            type=envelope.type,
            time=envelope.time,
            envelope=envelope.model_dump(mode="json", exclude_none=True),
        )
    )
    await session.flush()
    wanted = [e for e in endpoints if e.disabled_at is None and e.wants(envelope.type)]
    for endpoint in wanted:
        session.add(
            WebhookDelivery(
                tenant_id=envelope.tenantid,
                endpoint_id=endpoint.id,
                event_id=envelope.id,
                next_attempt_at=now,
                deadline=now + window,
            )
        )
    await session.flush()
    return len(wanted)


async def replay(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    event_id: uuid.UUID | None,
    since: datetime | None,
    window: timedelta,
) -> int:
    """Deliver again one kept event, or every kept event since a time, that the endpoint
    wants (with the event's own id as ``webhook-id``). Returns how many were queued."""
    if (event_id is None) == (since is None):
        raise BadUserInput("eventId: give either eventId or since", field="eventId")
    endpoint = await endpoint_for_update(session, tenant_id, endpoint_id, "endpointId")
    if endpoint.disabled_at is not None:
        raise Conflict("endpointId: the endpoint is disabled; enable it first", field="endpointId")
    query = select(WebhookEvent.id, WebhookEvent.type).where(WebhookEvent.tenant_id == tenant_id)
    if event_id is not None:
        query = query.where(WebhookEvent.id == event_id)
    else:
        query = query.where(col(WebhookEvent.time) >= since)
    events = [(i, t) for i, t in await session.exec(query) if endpoint.wants(t)]
    if event_id is not None and not events:
        raise NotFound("eventId: no such event kept for this endpoint", field="eventId")
    if not events:
        return 0
    ids = [i for i, _ in events]
    generations = dict(
        (
            await session.exec(
                select(WebhookDelivery.event_id, func.max(WebhookDelivery.generation))
                .where(
                    WebhookDelivery.endpoint_id == endpoint.id,
                    col(WebhookDelivery.event_id).in_(ids),
                )
                .group_by(col(WebhookDelivery.event_id))
            )
        ).all()
    )
    now = utcnow()
    for event in ids:
        previous = generations.get(event)
        session.add(
            WebhookDelivery(
                tenant_id=tenant_id,
                endpoint_id=endpoint.id,
                event_id=event,
                generation=0 if previous is None else previous + 1,
                next_attempt_at=now,
                deadline=now + window,
            )
        )
    await session.flush()
    return len(ids)


async def list_deliveries(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[WebhookDelivery]:
    """An endpoint's deliveries, newest first, before a ``(created_at, id)`` position."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.tenant_id != tenant_id:
        raise NotFound("endpointId: no such webhook endpoint", field="endpointId")
    query = select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.endpoint_id == endpoint_id
    )
    query = keyset_page(
        query,
        col(WebhookDelivery.created_at),
        col(WebhookDelivery.id),
        before,
        limit=limit,
        newest_first=True,
    )
    return list(await session.exec(query))


async def attempts_of(
    *, session: AsyncSession, tenant_id: uuid.UUID, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """Each delivery's attempts, oldest first."""
    rows = await session.exec(
        select(WebhookAttempt)
        .where(
            WebhookAttempt.tenant_id == tenant_id,
            col(WebhookAttempt.delivery_id).in_(delivery_ids),
        )
        .order_by(col(WebhookAttempt.attempted_at), col(WebhookAttempt.id))
    )
    found: dict[uuid.UUID, list[WebhookAttempt]] = defaultdict(list)
    for row in rows:
        found[row.delivery_id].append(row)
    return found


async def scrub_webhook_events(
    session: AsyncSession, tenant_id: uuid.UUID, needles: Sequence[str]
) -> int:
    """Delete kept events that mention any of ``needles`` (an erased person's ids), with
    their deliveries; returns how many went."""
    if not needles:
        return 0
    result = await session.execute(
        text(
            "DELETE FROM identity.webhook_events WHERE tenant_id = :tenant"
            " AND envelope::text LIKE ANY (:patterns)"
        ),
        {"tenant": tenant_id, "patterns": [f"%{needle}%" for needle in needles]},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def forget_old_events(*, session: AsyncSession, older_than: datetime) -> int:
    """Delete kept events (and their deliveries) received before ``older_than``."""
    result = await session.execute(
        text("DELETE FROM identity.webhook_events WHERE received_at < :cutoff"),
        {"cutoff": older_than},
    )
    return int(getattr(result, "rowcount", 0) or 0)
