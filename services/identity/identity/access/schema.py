"""Access in the graph: the caller, staff users, API clients, signing keys, the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry
from strawberry.scalars import JSON

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import (
    Connection,
    encode_cursor,
)
from crm_shared.resolvers import needs, page
from crm_shared.validation import parse_id, validated
from identity.access import audit, keys, service
from identity.access.models import (
    ApiClient,
    ApiClientCreate,
    AuditRecord,
    StaffUser,
    StaffUserCreate,
)
from identity.partners import revocation
from identity.partners.broker import broker_admin
from identity.settings import IdentitySettings


@strawberry.type(name="Viewer")
class ViewerType:
    """Who the caller is, as their verified token says."""

    tenant_id: strawberry.ID
    kind: str
    subject: str
    role: str | None
    scopes: list[str]
    customer_id: strawberry.ID | None


@strawberry.type(name="StaffUser")
class StaffUserType:
    """A person of the brand's staff with a role."""

    id: strawberry.ID
    email: str
    role: str
    active: bool
    created_at: datetime

    @classmethod
    def from_model(cls, user: StaffUser) -> StaffUserType:
        return cls(
            id=strawberry.ID(str(user.id)),
            email=user.email,
            role=user.role,
            active=user.active,
            created_at=user.created_at,
        )


@strawberry.type(name="ApiClient")
class ApiClientType:
    """A front end or partner system calling the API with client credentials."""

    id: strawberry.ID = strawberry.field(description="The OAuth2 client_id.")
    name: str
    kind: str
    scopes: list[str]
    active: bool
    created_at: datetime
    revoked_at: datetime | None = strawberry.field(
        description="When revokeApiClient took it out (null: never revoked)."
    )

    @classmethod
    def from_model(cls, client: ApiClient) -> ApiClientType:
        return cls(
            id=strawberry.ID(str(client.id)),
            name=client.name,
            kind=client.kind,
            scopes=list(client.scopes),
            active=client.active,
            created_at=client.created_at,
            revoked_at=client.revoked_at,
        )


@strawberry.type
class CreatedApiClient:
    """A new client and its secret: shown this once, only a hash is kept."""

    client: ApiClientType
    client_secret: str


@strawberry.type(name="SigningKey")
class SigningKeyType:
    kid: str
    created_at: datetime


@strawberry.type(name="AuditRecord")
class AuditRecordType:
    """One staff action: who, what, when, on which record."""

    id: strawberry.ID
    actor: str
    action: str
    record_type: str
    record_id: str
    details: JSON
    at: datetime

    @classmethod
    def from_model(cls, record: AuditRecord) -> AuditRecordType:
        return cls(
            id=strawberry.ID(str(record.id)),
            actor=record.actor,
            action=record.action,
            record_type=record.record_type,
            record_id=record.record_id,
            details=JSON(record.details),
            at=record.at,
        )


@strawberry.input
class CreateStaffUserInput:
    email: str
    password: str
    role: str


@strawberry.input
class CreateApiClientInput:
    name: str
    kind: str
    scopes: list[str]


@strawberry.type
class Query:
    @strawberry.field(description="The caller, as their token says.")
    def viewer(self, info: CrmInfo) -> ViewerType:
        principal = info.context.principal
        return ViewerType(
            tenant_id=strawberry.ID(str(principal.tenant_id)),
            kind=principal.kind,
            subject=principal.subject,
            role=principal.role,
            scopes=sorted(principal.permissions),
            customer_id=strawberry.ID(str(principal.customer_id))
            if principal.customer_id
            else None,
        )

    @strawberry.field(
        description="The tenant's staff users (access:manage).",
        extensions=[needs(Permission.ACCESS_MANAGE)],
    )
    async def staff_users(self, info: CrmInfo) -> list[StaffUserType]:
        principal = info.context.principal
        async with info.context.session() as session:
            users = await service.list_staff_users(session=session, tenant_id=principal.tenant_id)
        return [StaffUserType.from_model(u) for u in users]

    @strawberry.field(
        description="The tenant's API clients (access:manage).",
        extensions=[needs(Permission.ACCESS_MANAGE)],
    )
    async def api_clients(self, info: CrmInfo) -> list[ApiClientType]:
        principal = info.context.principal
        async with info.context.session() as session:
            clients = await service.list_api_clients(session=session, tenant_id=principal.tenant_id)
        return [ApiClientType.from_model(c) for c in clients]

    @strawberry.field(
        description="Staff actions, newest first (audit:read).",
        extensions=[needs(Permission.AUDIT_READ)],
    )
    async def audit_log(
        self,
        info: CrmInfo,
        first: int = 20,
        after: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        record_type: str | None = None,
        record_id: str | None = None,
    ) -> Connection[AuditRecordType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: audit.list_audit_records(
                session=session,
                tenant_id=tenant_id,
                limit=limit,
                before=position,
                actor=actor,
                action=action,
                record_type=record_type,
                record_id=record_id,
            ),
            cursor=lambda r: encode_cursor(r.at, r.id),
            node=AuditRecordType.from_model,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Add a staff user with a role (access:manage).",
        extensions=[needs(Permission.ACCESS_MANAGE)],
    )
    async def create_staff_user(self, info: CrmInfo, input: CreateStaffUserInput) -> StaffUserType:
        principal = info.context.principal
        data = validated(
            StaffUserCreate, {"email": input.email, "password": input.password, "role": input.role}
        )
        async with info.context.transaction() as session:
            user = await service.create_staff_user(
                session=session, tenant_id=principal.tenant_id, data=data
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="staff_user.created",
                record_type="staff_user",
                record_id=user.id,
                details={"role": user.role},
            )
        return StaffUserType.from_model(user)

    @strawberry.mutation(
        description="Change a staff user's role or deactivate them (access:manage).",
        extensions=[needs(Permission.ACCESS_MANAGE)],
    )
    async def update_staff_user(
        self, info: CrmInfo, id: strawberry.ID, role: str | None = None, active: bool | None = None
    ) -> StaffUserType:
        principal = info.context.principal
        user_id = parse_id(id, field="id")
        async with info.context.transaction() as session:
            user, changed = await service.update_staff_user(
                session=session,
                tenant_id=principal.tenant_id,
                user_id=user_id,
                role=role,
                active=active,
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="staff_user.updated",
                record_type="staff_user",
                record_id=user.id,
                details=changed,
            )
        return StaffUserType.from_model(user)

    @strawberry.mutation(
        description="Register an API client; its secret is shown once (access:manage).",
        extensions=[needs(Permission.ACCESS_MANAGE)],
    )
    async def create_api_client(
        self, info: CrmInfo, input: CreateApiClientInput
    ) -> CreatedApiClient:
        principal = info.context.principal
        data = validated(
            ApiClientCreate, {"name": input.name, "kind": input.kind, "scopes": input.scopes}
        )
        async with info.context.transaction() as session:
            client, secret = await service.create_api_client(
                session=session, tenant_id=principal.tenant_id, data=data
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="api_client.created",
                record_type="api_client",
                record_id=client.id,
                details={"kind": client.kind, "scopes": list(client.scopes)},
            )
        return CreatedApiClient(client=ApiClientType.from_model(client), client_secret=secret)

    @strawberry.mutation(
        description="Revoke an API client: it gets no new tokens; a partner client's broker"
        " subscription is revoked (broker user and queue deleted) and its webhook endpoints"
        " disabled with it (access:manage).",
        extensions=[needs(Permission.ACCESS_MANAGE)],
    )
    async def revoke_api_client(self, info: CrmInfo, id: strawberry.ID) -> ApiClientType:
        principal = info.context.principal
        client_id = parse_id(id, field="id")
        settings: IdentitySettings = info.context.request.app.state.settings
        async with info.context.transaction() as session:
            client = await revocation.revoke_client(
                session=session,
                principal=principal,
                client_id=client_id,
                broker=broker_admin(settings),
            )
        return ApiClientType.from_model(client)

    @strawberry.mutation(
        description="Sign new tokens with a new key; tokens of the old key stay valid until "
        "they expire (access:manage).",
        extensions=[needs(Permission.ACCESS_MANAGE)],
    )
    async def rotate_signing_key(self, info: CrmInfo) -> SigningKeyType:
        principal = info.context.principal
        settings = IdentitySettings()
        longest = max(settings.token_ttl_seconds, settings.customer_token_ttl_seconds)
        async with info.context.transaction() as session:
            key = await keys.rotate_signing_key(
                session=session, retain=timedelta(seconds=longest + 60)
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="signing_key.rotated",
                record_type="signing_key",
                record_id=key.kid,
            )
        return SigningKeyType(kid=key.kid, created_at=key.created_at)
