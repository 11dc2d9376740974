"""Connected accounts and publications in the graph, for staff.

Reading accounts needs ``listening:read``; connecting, pausing, resuming and disconnecting
``listening:manage``; publishing a post ``listening:manage``; reading and retrying
publications ``cases:read`` / ``cases:write``. Staff actions go to the audit log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache

import strawberry

from crm_shared.audit import record_staff_action
from crm_shared.auth import Permission, Principal
from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput
from crm_shared.graphql import CrmInfo
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id
from engagement.connectors import service
from engagement.connectors.models import (
    PUBLICATION_STATUSES,
    ConnectedAccount,
    ConnectorCursor,
    Publication,
)
from engagement.settings import EngagementSettings


@cache
def _settings() -> EngagementSettings:
    return EngagementSettings()


@strawberry.type(name="ConnectorSource")
class ConnectorSourceType:
    """One thing pulled from an account (its mentions, a subreddit, a search)."""

    source: str
    items_pulled: int
    pages: int
    last_synced_at: datetime | None
    in_progress: bool = strawberry.field(
        description="A pass is between pages (it resumes at the page it had not stored)."
    )

    @classmethod
    def from_model(cls, row: ConnectorCursor) -> ConnectorSourceType:
        return cls(
            source=row.source,
            items_pulled=row.items,
            pages=row.pages,
            last_synced_at=row.last_synced_at,
            in_progress=row.page_token is not None,
        )


@strawberry.type(name="ConnectedAccount")
class ConnectedAccountType:
    """A brand account the system pulls from and publishes to."""

    id: strawberry.ID
    channel: str
    platform_user_id: str
    handle: str | None
    status: str = strawberry.field(description="active, paused, reauthorize or disconnected.")
    scopes: list[str]
    subreddits: list[str]
    query: str | None = strawberry.field(
        description="The search it runs (null: the tenant's trackers)."
    )
    connected_at: datetime
    token_expires_at: datetime | None
    last_sync_at: datetime | None
    lag_seconds: float | None = strawberry.field(
        description="Seconds since the last complete round (null before the first)."
    )
    newest_item_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    rate_limited_until: datetime | None
    next_sync_at: datetime | None
    sources: list[ConnectorSourceType]

    @classmethod
    def from_model(
        cls, row: ConnectedAccount, cursors: list[ConnectorCursor] | None = None
    ) -> ConnectedAccountType:
        now = utcnow()
        limited = (
            row.rate_limited_until
            if row.rate_limited_until and row.rate_limited_until > now
            else None
        )
        return cls(
            id=strawberry.ID(str(row.id)),
            channel=row.channel,
            platform_user_id=row.platform_user_id,
            handle=row.handle,
            status=row.status,
            scopes=list(row.scopes),
            subreddits=list(row.settings.get("subreddits") or []),
            query=row.settings.get("query"),
            connected_at=row.created_at,
            token_expires_at=row.expires_at,
            last_sync_at=row.last_sync_at,
            lag_seconds=(now - row.last_sync_at).total_seconds() if row.last_sync_at else None,
            newest_item_at=row.newest_item_at,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
            rate_limited_until=limited,
            next_sync_at=row.next_sync_at,
            sources=[ConnectorSourceType.from_model(c) for c in cursors or []],
        )


@strawberry.type(name="ConnectionStart")
class ConnectionStartType:
    authorization_url: str = strawberry.field(description="Send the staff member here.")
    state: str = strawberry.field(
        description="Comes back on the redirect; give it to completeConnection."
    )
    expires_at: datetime


@strawberry.type(name="Publication")
class PublicationType:
    """A care reply or staff post on its way to the platform."""

    id: strawberry.ID
    account_id: strawberry.ID
    channel: str
    kind: str
    text: str
    in_reply_to: str | None
    status: str = strawberry.field(description="queued, sending, published or failed.")
    platform_id: str | None
    error: str | None
    attempts: int
    case_id: strawberry.ID | None
    interaction_id: strawberry.ID | None
    created_at: datetime
    published_at: datetime | None

    @classmethod
    def from_model(cls, row: Publication) -> PublicationType:
        return cls(
            id=strawberry.ID(str(row.id)),
            account_id=strawberry.ID(str(row.account_id)),
            channel=row.channel,
            kind=row.kind,
            text=row.text,
            in_reply_to=row.in_reply_to,
            status=row.status,
            platform_id=row.platform_id,
            error=row.error,
            attempts=row.attempts,
            case_id=strawberry.ID(str(row.case_id)) if row.case_id else None,
            interaction_id=strawberry.ID(str(row.interaction_id)) if row.interaction_id else None,
            created_at=row.created_at,
            published_at=row.published_at,
        )


@strawberry.input
class StartConnectionInput:
    channel: str = strawberry.field(description="x, reddit or youtube.")
    redirect_uri: str = strawberry.field(description="Registered with the platform's app.")
    subreddits: list[str] | None = None
    query: str | None = strawberry.field(
        default=None, description="A search of its own instead of the tenant's trackers."
    )


@strawberry.input
class PublishPostInput:
    account_id: strawberry.ID
    text: str
    in_reply_to: str | None = strawberry.field(
        default=None, description="The platform id answered (required on Reddit and YouTube)."
    )


async def _audit(
    info: CrmInfo, principal: Principal, action: str, record_id: uuid.UUID, details: dict[str, str]
) -> None:
    if principal.kind != "staff":
        return
    async with info.context.transaction() as session:
        await record_staff_action(
            session=session,
            principal=principal,
            action=action,
            record_type="connected_account",
            record_id=record_id,
            details=details,
        )


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's connected accounts with their state (listening:read).",
        extensions=[needs(Permission.LISTENING_READ)],
    )
    async def connected_accounts(self, info: CrmInfo) -> list[ConnectedAccountType]:
        principal = info.context.principal
        async with info.context.session() as session:
            rows = await service.list_accounts(session=session, tenant_id=principal.tenant_id)
            cursors = await service.cursors_of(
                session=session, tenant_id=principal.tenant_id, account_ids=[r.id for r in rows]
            )
        return [ConnectedAccountType.from_model(r, cursors[r.id]) for r in rows]

    @strawberry.field(
        description="Publications, newest first (cases:read).",
        extensions=[needs(Permission.CASES_READ)],
    )
    async def publications(
        self, info: CrmInfo, status: str | None = None, first: int = 20
    ) -> list[PublicationType]:
        principal = info.context.principal
        if status is not None and status not in PUBLICATION_STATUSES:
            raise BadUserInput(f"status: one of {', '.join(PUBLICATION_STATUSES)}", field="status")
        if not 1 <= first <= 100:
            raise BadUserInput("first: 1..100", field="first")
        async with info.context.session() as session:
            rows = await service.list_publications(
                session=session, tenant_id=principal.tenant_id, status=status, first=first
            )
        return [PublicationType.from_model(r) for r in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Begin connecting an account: the platform's authorization URL (OAuth 2.0, "
        "PKCE where offered) (listening:manage).",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def start_connection(
        self, info: CrmInfo, input: StartConnectionInput
    ) -> ConnectionStartType:
        principal = info.context.principal
        async with info.context.transaction() as session:
            started = await service.start_connection(
                session=session,
                settings=_settings(),
                tenant_id=principal.tenant_id,
                channel=input.channel,
                redirect_uri=input.redirect_uri,
                started_by=principal.actor,
                subreddits=input.subreddits,
                query=input.query,
            )
        return ConnectionStartType(
            authorization_url=started.authorization_url,
            state=started.state,
            expires_at=started.expires_at,
        )

    @strawberry.mutation(
        description="Finish connecting with the code and state the platform redirected with "
        "(listening:manage).",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def complete_connection(
        self, info: CrmInfo, state: str, code: str
    ) -> ConnectedAccountType:
        principal = info.context.principal
        settings = _settings()
        async with service.http_client(settings) as http:
            account = await service.complete_connection(
                db=info.context.db,
                settings=settings,
                tenant_id=principal.tenant_id,
                state=state,
                code=code,
                http=http,
            )
        await _audit(
            info, principal, "connected_account.connected", account.id, {"channel": account.channel}
        )
        return ConnectedAccountType.from_model(account)

    @strawberry.mutation(
        description="Stop pulling and publishing; cursors wait (listening:manage).",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def pause_connection(
        self, info: CrmInfo, account_id: strawberry.ID
    ) -> ConnectedAccountType:
        return await _set_paused(info, account_id, paused=True)

    @strawberry.mutation(
        description="Pull and publish again from where it stopped (listening:manage).",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def resume_connection(
        self, info: CrmInfo, account_id: strawberry.ID
    ) -> ConnectedAccountType:
        return await _set_paused(info, account_id, paused=False)

    @strawberry.mutation(
        description="Revoke the account's tokens on the platform, forget them (listening:manage).",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def disconnect_account(
        self, info: CrmInfo, account_id: strawberry.ID
    ) -> ConnectedAccountType:
        principal = info.context.principal
        settings = _settings()
        async with service.http_client(settings) as http:
            account = await service.disconnect(
                db=info.context.db,
                settings=settings,
                tenant_id=principal.tenant_id,
                account_id=parse_id(account_id, field="accountId"),
                http=http,
            )
        await _audit(info, principal, "connected_account.disconnected", account.id, {})
        return ConnectedAccountType.from_model(account)

    @strawberry.mutation(
        description="Publish a post (or a comment under inReplyTo) from a connected account "
        "(listening:manage).",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def publish_post(self, info: CrmInfo, input: PublishPostInput) -> PublicationType:
        principal = info.context.principal
        async with info.context.transaction() as session:
            publication = await service.request_post(
                session=session,
                tenant_id=principal.tenant_id,
                account_id=parse_id(input.account_id, field="input.accountId"),
                text_=input.text,
                in_reply_to=input.in_reply_to,
                requested_by=principal.actor,
            )
            if principal.kind == "staff":
                await record_staff_action(
                    session=session,
                    principal=principal,
                    action="publication.requested",
                    record_type="publication",
                    record_id=publication.id,
                    details={"channel": publication.channel},
                )
        return PublicationType.from_model(publication)

    @strawberry.mutation(
        description="Queue a failed publication again (cases:write).",
        extensions=[needs(Permission.CASES_WRITE)],
    )
    async def retry_publication(
        self, info: CrmInfo, publication_id: strawberry.ID
    ) -> PublicationType:
        principal = info.context.principal
        async with info.context.transaction() as session:
            publication = await service.retry_publication(
                session=session,
                tenant_id=principal.tenant_id,
                publication_id=parse_id(publication_id, field="publicationId"),
            )
        return PublicationType.from_model(publication)


async def _set_paused(
    info: CrmInfo, account_id: strawberry.ID, *, paused: bool
) -> ConnectedAccountType:
    principal = info.context.principal
    async with info.context.transaction() as session:
        account = await service.set_paused(
            session=session,
            tenant_id=principal.tenant_id,
            account_id=parse_id(account_id, field="accountId"),
            paused=paused,
        )
    action = "connected_account.paused" if paused else "connected_account.resumed"
    await _audit(info, principal, action, account.id, {})
    return ConnectedAccountType.from_model(account)
