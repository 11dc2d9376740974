"""What revoking an API client takes with it: no new tokens, and for a partner client its
broker subscription (the broker user with its permissions, and its queue with its bindings,
deleted: its connections close, its login fails) and its webhook endpoints (disabled, their
pending deliveries cancelled). One transaction, one audit record per thing changed."""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.auth import Principal
from identity.access import service as access
from identity.access.audit import record_staff_action
from identity.access.models import ApiClient
from identity.partners import service
from identity.partners.broker import BrokerAdmin


async def revoke_client(
    *, session: AsyncSession, principal: Principal, client_id: uuid.UUID, broker: BrokerAdmin
) -> ApiClient:
    """Revoke the client and what it has as a partner, audited as ``principal``'s action.

    The broker is changed before the caller commits: if its management API refuses, this
    raises ``SERVICE_UNAVAILABLE`` and the caller's transaction keeps nothing (the client is
    still active; try again). Revoking again changes nothing more."""
    client = await access.revoke_api_client(
        session=session, tenant_id=principal.tenant_id, client_id=client_id
    )
    subscriptions, endpoints = await service.revoke_partner_client(
        session=session,
        client_id=client.id,
        broker=broker,
        reason=f"API client {client.id} revoked",
    )
    cause = {"cause": "api_client.revoked", "client_id": str(client.id)}
    for subscription in subscriptions:
        await record_staff_action(
            session=session,
            principal=principal,
            action="partner_subscription.revoked",
            record_type="partner_subscription",
            record_id=subscription.id,
            details=cause,
        )
    for endpoint in endpoints:
        await record_staff_action(
            session=session,
            principal=principal,
            action="webhook_endpoint.disabled",
            record_type="webhook_endpoint",
            record_id=endpoint.id,
            details=cause,
        )
    await record_staff_action(
        session=session,
        principal=principal,
        action="api_client.revoked",
        record_type="api_client",
        record_id=client.id,
        details={
            "kind": client.kind,
            "partner_subscriptions_revoked": [str(s.id) for s in subscriptions],
            "webhook_endpoints_disabled": [str(e.id) for e in endpoints],
        },
    )
    return client
