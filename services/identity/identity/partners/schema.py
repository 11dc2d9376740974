"""Partners in the graph: broker subscriptions, webhook endpoints, deliveries and replay
(``partners:manage``). Secrets and broker passwords are shown once, when made."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.outbound import check_url
from crm_shared.pagination import Connection, check_first, connection, decode_cursor
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id, validated
from identity.access.audit import record_staff_action
from identity.partners import service
from identity.partners.broker import broker_admin
from identity.partners.models import (
    PartnerSubscription,
    PartnerSubscriptionCreate,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)
from identity.settings import IdentitySettings


def _settings(info: CrmInfo) -> IdentitySettings:
    settings: IdentitySettings = info.context.request.app.state.settings
    return settings


@strawberry.type(name="PartnerSubscription")
class PartnerSubscriptionType:
    """A partner client's own queue on the broker, bound to its tenant's chosen events."""

    id: strawberry.ID
    client_id: strawberry.ID
    broker_user: str
    queue: str
    event_types: list[str]
    created_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None = strawberry.field(
        description="Why: revoked by staff, or with its API client (revokeApiClient)."
    )

    @classmethod
    def from_model(cls, row: PartnerSubscription) -> PartnerSubscriptionType:
        return cls(
            id=strawberry.ID(str(row.id)),
            client_id=strawberry.ID(str(row.client_id)),
            broker_user=row.broker_user,
            queue=row.queue,
            event_types=list(row.event_types),
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            revoked_reason=row.revoked_reason,
        )


@strawberry.type
class CreatedPartnerSubscription:
    """A new subscription and its broker password: shown this once, kept nowhere."""

    subscription: PartnerSubscriptionType
    broker_password: str
    vhost: str
    exchange: str = strawberry.field(
        description="The exchange the queue is bound to: the partner exchange, where identity"
        " republishes only events that pass the partner_sharing check."
    )
    publish_exchange: str = strawberry.field(
        description="Where the partner publishes its own tenant's facts"
        " (partner.<fact>.reported.v<n>.<tenant id>)."
    )


@strawberry.type(name="WebhookEndpoint")
class WebhookEndpointType:
    """Where a tenant's events are POSTed, signed per Standard Webhooks."""

    id: strawberry.ID
    url: str
    event_types: list[str] = strawberry.field(description="Empty: every event type.")
    description: str
    client_id: strawberry.ID | None = strawberry.field(
        description="The partner API client it delivers to (revoking the client disables it);"
        " null: the tenant's own endpoint."
    )
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="Until then the secret before the last rotation also signs."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, row: WebhookEndpoint) -> WebhookEndpointType:
        return cls(
            id=strawberry.ID(str(row.id)),
            url=row.url,
            event_types=list(row.event_types),
            description=row.description,
            client_id=strawberry.ID(str(row.client_id)) if row.client_id else None,
            enabled=row.disabled_at is None,
            disabled_at=row.disabled_at,
            disabled_reason=row.disabled_reason,
            previous_secret_expires_at=row.previous_secret_expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class WebhookEndpointWithSecret:
    """An endpoint and its (new) signing secret: shown this once."""

    endpoint: WebhookEndpointType
    secret: str


@strawberry.type(name="WebhookAttempt")
class WebhookAttemptType:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: float

    @classmethod
    def from_model(cls, row: WebhookAttempt) -> WebhookAttemptType:
        return cls(
            attempted_at=row.attempted_at,
            status_code=row.status_code,
            error=row.error,
            latency_ms=row.latency_ms,
        )


@strawberry.type(name="WebhookDelivery")
class WebhookDeliveryType:
    """One event to one endpoint: its attempts and where it stands."""

    id: strawberry.ID
    event_id: strawberry.ID = strawberry.field(description="Sent as webhook-id.")
    generation: int = strawberry.field(description="0 first, then one more per replay.")
    status: str = strawberry.field(
        description="pending, succeeded, failed, cancelled, or withheld (not sent: a customer"
        " it is about has not granted partner_sharing; lastError says why)."
    )
    last_error: str | None
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime
    completed_at: datetime | None
    attempts: list[WebhookAttemptType]


@strawberry.type
class ReplayResult:
    queued: int = strawberry.field(description="How many deliveries were queued again.")


@strawberry.input
class CreateWebhookEndpointInput:
    url: str
    event_types: list[str] = strawberry.field(
        default_factory=list, description="Empty: every event type."
    )
    description: str = ""
    client_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The partner API client it delivers to (revoking the client disables it).",
    )


@strawberry.input
class UpdateWebhookEndpointInput:
    """Fields left out stay as they are; ``enabled: true`` re-enables a disabled endpoint."""

    id: strawberry.ID
    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None
    client_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Give the endpoint to a partner API client (it cannot be taken back).",
    )


def _delivery(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> WebhookDeliveryType:
    return WebhookDeliveryType(
        id=strawberry.ID(str(row.id)),
        event_id=strawberry.ID(str(row.event_id)),
        generation=row.generation,
        status=row.status,
        attempt_count=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        completed_at=row.completed_at,
        attempts=[WebhookAttemptType.from_model(a) for a in attempts],
    )


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's webhook endpoints (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def webhook_endpoints(self, info: CrmInfo) -> list[WebhookEndpointType]:
        principal = info.context.principal
        async with info.context.session() as session:
            rows = await service.list_webhook_endpoints(
                session=session, tenant_id=principal.tenant_id
            )
        return [WebhookEndpointType.from_model(r) for r in rows]

    @strawberry.field(
        description="An endpoint's deliveries, newest first (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def webhook_deliveries(
        self, info: CrmInfo, endpoint_id: strawberry.ID, first: int = 20, after: str | None = None
    ) -> Connection[WebhookDeliveryType]:
        principal = info.context.principal
        endpoint = parse_id(endpoint_id, field="endpointId")
        limit = check_first(first)
        position = decode_cursor(after) if after is not None else None
        async with info.context.session() as session:
            rows = await service.list_deliveries(
                session=session,
                tenant_id=principal.tenant_id,
                endpoint_id=endpoint,
                limit=limit + 1,
                before=position,
            )
            attempts = await service.attempts_of(
                session=session,
                tenant_id=principal.tenant_id,
                delivery_ids=[r.id for r in rows[:limit]],
            )
        return connection(
            rows,
            limit,
            node=lambda r: _delivery(r, attempts.get(r.id, [])),
        )

    @strawberry.field(
        description="The tenant's partner broker subscriptions (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def partner_subscriptions(self, info: CrmInfo) -> list[PartnerSubscriptionType]:
        principal = info.context.principal
        async with info.context.session() as session:
            rows = await service.list_partner_subscriptions(
                session=session, tenant_id=principal.tenant_id
            )
        return [PartnerSubscriptionType.from_model(r) for r in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Add a webhook endpoint; its signing secret is shown once (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def create_webhook_endpoint(
        self, info: CrmInfo, input: CreateWebhookEndpointInput
    ) -> WebhookEndpointWithSecret:
        principal = info.context.principal
        data = validated(
            WebhookEndpointCreate,
            {
                "url": input.url,
                "event_types": input.event_types,
                "description": input.description,
                "client_id": parse_id(input.client_id, field="input.clientId")
                if input.client_id is not None
                else None,
            },
        )
        await check_url(data.url, _settings(info).outbound_policy, field="input.url")
        async with info.context.transaction() as session:
            endpoint, secret = await service.create_webhook_endpoint(
                session=session, tenant_id=principal.tenant_id, data=data
            )
            await record_staff_action(
                session=session,
                principal=principal,
                action="webhook_endpoint.created",
                record_type="webhook_endpoint",
                record_id=endpoint.id,
                details={
                    "event_types": list(endpoint.event_types),
                    "client_id": str(endpoint.client_id) if endpoint.client_id else None,
                },
            )
        return WebhookEndpointWithSecret(
            endpoint=WebhookEndpointType.from_model(endpoint), secret=secret
        )

    @strawberry.mutation(
        description="Change or re-enable a webhook endpoint (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def update_webhook_endpoint(
        self, info: CrmInfo, input: UpdateWebhookEndpointInput
    ) -> WebhookEndpointType:
        principal = info.context.principal
        endpoint_id = parse_id(input.id, field="input.id")
        data = validated(
            WebhookEndpointUpdate,
            {
                "url": input.url,
                "event_types": input.event_types,
                "description": input.description,
                "enabled": input.enabled,
                "client_id": parse_id(input.client_id, field="input.clientId")
                if input.client_id is not None
                else None,
            },
        )
        if data.url is not None:
            await check_url(data.url, _settings(info).outbound_policy, field="input.url")
        async with info.context.transaction() as session:
            endpoint, changed = await service.update_webhook_endpoint(
                session=session, tenant_id=principal.tenant_id, endpoint_id=endpoint_id, data=data
            )
            if changed:
                await record_staff_action(
                    session=session,
                    principal=principal,
                    action="webhook_endpoint.updated",
                    record_type="webhook_endpoint",
                    record_id=endpoint.id,
                    details={"changed": changed},
                )
        return WebhookEndpointType.from_model(endpoint)

    @strawberry.mutation(
        description="A new signing secret, shown once; the previous one also signs for a while"
        " (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def rotate_webhook_secret(
        self, info: CrmInfo, id: strawberry.ID
    ) -> WebhookEndpointWithSecret:
        principal = info.context.principal
        endpoint_id = parse_id(id, field="id")
        overlap = timedelta(seconds=_settings(info).webhook_secret_overlap_seconds)
        async with info.context.transaction() as session:
            endpoint, secret = await service.rotate_webhook_secret(
                session=session,
                tenant_id=principal.tenant_id,
                endpoint_id=endpoint_id,
                overlap=overlap,
            )
            await record_staff_action(
                session=session,
                principal=principal,
                action="webhook_endpoint.secret_rotated",
                record_type="webhook_endpoint",
                record_id=endpoint.id,
            )
        return WebhookEndpointWithSecret(
            endpoint=WebhookEndpointType.from_model(endpoint), secret=secret
        )

    @strawberry.mutation(
        description="Stop deliveries to an endpoint; pending ones are cancelled (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def disable_webhook_endpoint(
        self, info: CrmInfo, id: strawberry.ID
    ) -> WebhookEndpointType:
        principal = info.context.principal
        endpoint_id = parse_id(id, field="id")
        async with info.context.transaction() as session:
            endpoint = await service.disable_webhook_endpoint(
                session=session,
                tenant_id=principal.tenant_id,
                endpoint_id=endpoint_id,
                reason="disabled by staff",
            )
            await record_staff_action(
                session=session,
                principal=principal,
                action="webhook_endpoint.disabled",
                record_type="webhook_endpoint",
                record_id=endpoint.id,
            )
        return WebhookEndpointType.from_model(endpoint)

    @strawberry.mutation(
        description="Deliver again one kept event (eventId) or every one since a time (since),"
        " with the same webhook-id (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def replay_webhook(
        self,
        info: CrmInfo,
        endpoint_id: strawberry.ID,
        event_id: strawberry.ID | None = None,
        since: datetime | None = None,
    ) -> ReplayResult:
        principal = info.context.principal
        endpoint = parse_id(endpoint_id, field="endpointId")
        event = parse_id(event_id, field="eventId") if event_id is not None else None
        window = timedelta(seconds=_settings(info).webhook_retry_window_seconds)
        async with info.context.transaction() as session:
            queued = await service.replay(
                session=session,
                tenant_id=principal.tenant_id,
                endpoint_id=endpoint,
                event_id=event,
                since=since,
                window=window,
            )
            await record_staff_action(
                session=session,
                principal=principal,
                action="webhook_endpoint.replayed",
                record_type="webhook_endpoint",
                record_id=endpoint,
                details={
                    "event_id": str(event) if event else None,
                    "since": since.isoformat() if since else None,
                    "queued": queued,
                },
            )
        return ReplayResult(queued=queued)

    @strawberry.mutation(
        description="Give a partner API client its own broker queue of the tenant's events of"
        " the chosen types; the broker password is shown once (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def create_partner_subscription(
        self, info: CrmInfo, client_id: strawberry.ID, event_types: list[str]
    ) -> CreatedPartnerSubscription:
        principal = info.context.principal
        data = validated(
            PartnerSubscriptionCreate,
            {"client_id": parse_id(client_id, field="clientId"), "event_types": event_types},
            prefix="",
        )
        settings = _settings(info)
        async with info.context.transaction() as session:
            subscription, password = await service.create_partner_subscription(
                session=session,
                tenant_id=principal.tenant_id,
                data=data,
                broker=broker_admin(settings),
            )
            await record_staff_action(
                session=session,
                principal=principal,
                action="partner_subscription.created",
                record_type="partner_subscription",
                record_id=subscription.id,
                details={
                    "client_id": str(subscription.client_id),
                    "event_types": list(subscription.event_types),
                },
            )
        return CreatedPartnerSubscription(
            subscription=PartnerSubscriptionType.from_model(subscription),
            broker_password=password,
            vhost=settings.vhost,
            exchange=settings.partner_exchange,
            publish_exchange=settings.exchange,
        )

    @strawberry.mutation(
        description="Remove a partner's broker user and queue (partners:manage).",
        extensions=[needs(Permission.PARTNERS_MANAGE)],
    )
    async def revoke_partner_subscription(
        self, info: CrmInfo, id: strawberry.ID
    ) -> PartnerSubscriptionType:
        principal = info.context.principal
        subscription_id = parse_id(id, field="id")
        async with info.context.transaction() as session:
            subscription = await service.revoke_partner_subscription(
                session=session,
                tenant_id=principal.tenant_id,
                subscription_id=subscription_id,
                broker=broker_admin(_settings(info)),
            )
            await record_staff_action(
                session=session,
                principal=principal,
                action="partner_subscription.revoked",
                record_type="partner_subscription",
                record_id=subscription.id,
            )
        return PartnerSubscriptionType.from_model(subscription)
