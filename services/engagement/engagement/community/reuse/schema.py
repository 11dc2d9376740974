"""Content reuse in the graph: the brand asks an author to reuse an item; the author
answers (also by a #yes/#no reply); granting needs their content_reuse consent."""

from __future__ import annotations

from datetime import datetime

import strawberry

from crm_shared.auth import Permission
from crm_shared.errors import BadUserInput
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import (
    Connection,
)
from crm_shared.resolvers import needs, page
from crm_shared.validation import parse_id
from engagement.community.access import audit
from engagement.community.models import (
    REUSE_STATUSES,
    ContentReuseRequest,
)
from engagement.community.reuse import service


@strawberry.type(name="ContentReuseRequest")
class ContentReuseRequestType:
    """The brand's request to reuse an interaction, and its author's answer."""

    id: strawberry.ID
    interaction_id: strawberry.ID
    channel: str
    customer_id: strawberry.ID | None = strawberry.field(description="The author, once linked.")
    purpose: str
    status: str = strawberry.field(description="requested, granted or denied.")
    answered_via: str | None = strawberry.field(
        description="customer (their own token), reply (#yes/#no) or staff."
    )
    answered_at: datetime | None
    answer_note: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: ContentReuseRequest) -> ContentReuseRequestType:
        return cls(
            id=strawberry.ID(str(row.id)),
            interaction_id=strawberry.ID(str(row.interaction_id)),
            channel=row.channel,
            customer_id=strawberry.ID(str(row.customer_id)) if row.customer_id else None,
            purpose=row.purpose,
            status=row.status,
            answered_via=row.answered_via,
            answered_at=row.answered_at,
            answer_note=row.answer_note,
            created_at=row.created_at,
        )


@strawberry.input
class RequestContentReuseInput:
    interaction_id: strawberry.ID
    purpose: str = strawberry.field(description="How the brand means to reuse it.")


@strawberry.input
class AnswerContentReuseInput:
    request_id: strawberry.ID
    granted: bool
    note: str | None = None


@strawberry.type
class Query:
    @strawberry.field(
        description="Requests to reuse fans' content, newest first (community:read; a customer "
        "token sees the requests made to its customer).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def content_reuse_requests(
        self,
        info: CrmInfo,
        first: int = 20,
        after: str | None = None,
        status: str | None = None,
    ) -> Connection[ContentReuseRequestType]:
        principal = info.context.principal
        if status is not None and status not in REUSE_STATUSES:
            raise BadUserInput(
                f"status: must be one of {', '.join(REUSE_STATUSES)}", field="status"
            )
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.list_reuse_requests(
                session=session,
                tenant_id=tenant_id,
                limit=limit,
                before=position,
                status=status,
                customer_id=principal.customer_id,
            ),
            node=ContentReuseRequestType.from_model,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Ask an interaction's author to let the brand reuse it (community:manage).",
        extensions=[needs(Permission.COMMUNITY_MANAGE, own=True)],
    )
    async def request_content_reuse(
        self, info: CrmInfo, input: RequestContentReuseInput
    ) -> ContentReuseRequestType:
        principal = info.context.principal
        interaction_id = parse_id(input.interaction_id, field="input.interactionId")
        async with info.context.transaction() as session:
            request = await service.request_content_reuse(
                session=session,
                tenant_id=principal.tenant_id,
                interaction_id=interaction_id,
                purpose=input.purpose,
                requested_by=principal.actor,
            )
            await audit(
                session, principal, "content_reuse.requested", "content_reuse_request", request.id
            )
        return ContentReuseRequestType.from_model(request)

    @strawberry.mutation(
        description="The author's answer: a customer answering with their own token "
        "(community:participate), or staff recording an answer given elsewhere "
        "(community:manage; granting needs the author's content_reuse consent).",
        extensions=[
            needs(
                Permission.COMMUNITY_MANAGE,
                customers=Permission.COMMUNITY_PARTICIPATE,
                own=True,
            )
        ],
    )
    async def answer_content_reuse(
        self, info: CrmInfo, input: AnswerContentReuseInput
    ) -> ContentReuseRequestType:
        principal = info.context.principal
        is_customer = principal.kind == "customer"
        request_id = parse_id(input.request_id, field="input.requestId")
        async with info.context.transaction() as session:
            request = await service.answer_content_reuse(
                session=session,
                tenant_id=principal.tenant_id,
                request_id=request_id,
                granted=input.granted,
                via="customer" if is_customer else "staff",
                customer_id=principal.customer_id,
                note=input.note,
            )
            await audit(
                session,
                principal,
                "content_reuse.answered",
                "content_reuse_request",
                request.id,
                {"status": request.status},
            )
        return ContentReuseRequestType.from_model(request)
