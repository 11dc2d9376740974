"""Care in the graph: the case queue, a customer's cases, agents' actions, brand accounts."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared.audit import record_staff_action
from crm_shared.auth import Permission, Principal
from crm_shared.errors import BadUserInput
from crm_shared.graphql import CrmInfo, keyed_loader, live_updates
from crm_shared.pagination import (
    Connection,
    check_first,
    connection,
    encode_cursor,
)
from crm_shared.resolvers import needs, page
from crm_shared.validation import parse_id
from engagement.care import events, service
from engagement.care.models import BrandAccount, CaseBreach
from engagement.care.service import CaseView, QueuePosition
from engagement.interactions.models import Interaction
from engagement.interactions.schema import InteractionType
from engagement.settings import EngagementSettings


async def _breaches(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, list[CaseBreach]]:
    found: Mapping[uuid.UUID, list[CaseBreach]] = await service.breaches_of(
        session=session, tenant_id=tenant_id, case_ids=list(ids)
    )
    return found


async def _interactions(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, Interaction | None]:
    found: Mapping[uuid.UUID, Interaction | None] = await service.interactions_by_id(
        session=session, tenant_id=tenant_id, ids=list(ids)
    )
    return found


def breaches_loader(info: CrmInfo) -> DataLoader[uuid.UUID, list[CaseBreach]]:
    """The request's batch loader of cases' SLA breaches."""
    return keyed_loader(info, "case_breaches", _breaches, [])


def interaction_loader(info: CrmInfo) -> DataLoader[uuid.UUID, Interaction | None]:
    """The request's batch loader of interactions by id."""
    return keyed_loader(info, "interactions_by_id", _interactions, None)


@strawberry.type(name="CaseBreach")
class CaseBreachType:
    """An SLA target the case missed."""

    target: str = strawberry.field(description="first_response or resolution.")
    due_at: datetime
    breached_at: datetime = strawberry.field(
        description="When the check found it overdue, or when the late answer came."
    )


@strawberry.type(name="Case")
class CaseType:
    """A complaint, question or negative mention the brand owes an answer to."""

    id: strawberry.ID
    kind: str = strawberry.field(description="complaint, question or mention.")
    status: str = strawberry.field(description="open, assigned, answered, resolved or closed.")
    priority: str = strawberry.field(description="urgent, high, normal or low.")
    priority_score: float = strawberry.field(
        description="0-100: kind, negative sentiment, the author's reach, customer value."
    )
    channel: str
    thread_id: str = strawberry.field(description="The platform's thread (or the opening item).")
    customer_id: strawberry.ID | None = strawberry.field(
        description="The customer, once identity linked the author's profile."
    )
    author_platform_user_id: str | None
    author_followers: int | None
    sentiment_score: float | None
    assignee_id: strawberry.ID | None = strawberry.field(description="The staff user's id.")
    opened_at: datetime = strawberry.field(description="When the customer spoke.")
    assigned_at: datetime | None
    first_response_at: datetime | None
    first_response_due_at: datetime
    resolved_at: datetime | None
    resolution_due_at: datetime
    closed_at: datetime | None
    interaction_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Seconds from opening to the brand's first response.")
    def first_response_seconds(self) -> float | None:
        if self.first_response_at is None:
            return None
        return max(0.0, (self.first_response_at - self.opened_at).total_seconds())

    @strawberry.field(description="Seconds from opening to resolution.")
    def resolution_seconds(self) -> float | None:
        if self.resolved_at is None:
            return None
        return max(0.0, (self.resolved_at - self.opened_at).total_seconds())

    def _customer(self) -> uuid.UUID | None:
        return uuid.UUID(str(self.customer_id)) if self.customer_id else None

    @strawberry.field(
        description="The SLA targets the case missed.",
        extensions=[needs(Permission.CASES_READ, customer="self.customer_id")],
    )
    async def breaches(self, info: CrmInfo) -> list[CaseBreachType]:
        rows = await breaches_loader(info).load(uuid.UUID(str(self.id)))
        return [
            CaseBreachType(target=r.target, due_at=r.due_at, breached_at=r.breached_at)
            for r in rows
        ]

    @strawberry.field(
        description="The interaction that opened the case.",
        extensions=[needs(Permission.CASES_READ, customer="self.customer_id")],
    )
    async def opening_interaction(self, info: CrmInfo) -> InteractionType | None:
        row = await interaction_loader(info).load(self.interaction_id)
        return InteractionType.from_model(row) if row is not None else None

    @strawberry.field(
        description="The case's interactions, oldest first: the customer's and the brand's.",
        extensions=[needs(Permission.CASES_READ, customer="self.customer_id")],
    )
    async def interactions(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[InteractionType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.case_interactions(
                session=session,
                tenant_id=tenant_id,
                case_id=uuid.UUID(str(self.id)),
                limit=limit,
                after=position,
            ),
            node=InteractionType.from_model,
        )

    @classmethod
    def from_view(cls, view: CaseView) -> CaseType:
        case = view.case
        return cls(
            id=strawberry.ID(str(case.id)),
            kind=case.kind,
            status=case.status,
            priority=case.priority,
            priority_score=case.priority_score,
            channel=case.channel,
            thread_id=case.thread_key,
            customer_id=strawberry.ID(str(view.customer_id)) if view.customer_id else None,
            author_platform_user_id=case.author_platform_user_id,
            author_followers=case.author_followers,
            sentiment_score=case.sentiment_score,
            assignee_id=strawberry.ID(case.assignee_id) if case.assignee_id else None,
            opened_at=case.opened_at,
            assigned_at=case.assigned_at,
            first_response_at=case.first_response_at,
            first_response_due_at=case.first_response_due_at,
            resolved_at=case.resolved_at,
            resolution_due_at=case.resolution_due_at,
            closed_at=case.closed_at,
            interaction_id=case.interaction_id,
        )


@strawberry.type(name="BrandAccount")
class BrandAccountType:
    """One of the brand's own accounts: what it writes is the brand speaking."""

    id: strawberry.ID
    channel: str
    platform_user_id: str
    handle: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: BrandAccount) -> BrandAccountType:
        return cls(
            id=strawberry.ID(str(row.id)),
            channel=row.channel,
            platform_user_id=row.platform_user_id,
            handle=row.handle,
            created_at=row.created_at,
        )


def encode_queue_cursor(view: CaseView) -> str:
    """A queue position: priority rank, opening time, id."""
    case = view.case
    raw = f"{case.priority_rank}|{case.opened_at.isoformat()}|{case.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_queue_cursor(cursor: str) -> QueuePosition:
    """The queue position of a cursor; BAD_USER_INPUT on one we did not make."""
    try:
        rank, at, id_ = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return int(rank), datetime.fromisoformat(at), uuid.UUID(id_)
    except (ValueError, UnicodeDecodeError):
        raise BadUserInput("after: not a valid cursor", field="after") from None


def case_page(views: list[CaseView], limit: int) -> Connection[CaseType]:
    """A page of the queue."""
    return connection(views, limit, cursor=encode_queue_cursor, node=CaseType.from_view)


@strawberry.type
class Query:
    @strawberry.field(
        description="The case queue: most urgent first, then oldest (cases:read). "
        "status defaults to the active ones (open, assigned, answered).",
        extensions=[needs(Permission.CASES_READ, customer="customer_id", own=True)],
    )
    async def cases(
        self,
        info: CrmInfo,
        first: int = 20,
        after: str | None = None,
        status: list[str] | None = None,
        priority: list[str] | None = None,
        assignee_id: strawberry.ID | None = None,
        customer_id: strawberry.ID | None = None,
    ) -> Connection[CaseType]:
        customer = parse_id(customer_id, field="customerId") if customer_id is not None else None
        principal = info.context.principal
        if principal.kind == "customer":
            customer = principal.customer_id
        limit = check_first(first)
        position = decode_queue_cursor(after) if after is not None else None
        async with info.context.session() as session:
            views = await service.case_queue(
                session=session,
                tenant_id=principal.tenant_id,
                limit=limit + 1,
                after=position,
                statuses=service.check_statuses(status),
                priorities=service.check_priorities(priority),
                assignee_id=str(assignee_id) if assignee_id is not None else None,
                customer_id=customer,
            )
        return case_page(views, limit)

    @strawberry.field(
        description="One case (cases:read; a customer token: its own only).",
        extensions=[needs(Permission.CASES_READ, own=True)],
    )
    async def case(self, info: CrmInfo, id: strawberry.ID) -> CaseType | None:
        principal = info.context.principal
        case_id = parse_id(id, field="id")
        async with info.context.session() as session:
            view = await service.get_case(
                session=session, tenant_id=principal.tenant_id, case_id=case_id
            )
        if view is None or (
            principal.kind == "customer" and view.customer_id != principal.customer_id
        ):
            return None
        return CaseType.from_view(view)

    @strawberry.field(
        description="The brand's own accounts (cases:read).",
        extensions=[needs(Permission.CASES_READ)],
    )
    async def brand_accounts(self, info: CrmInfo) -> list[BrandAccountType]:
        principal = info.context.principal
        async with info.context.session() as session:
            rows = await service.list_brand_accounts(session=session, tenant_id=principal.tenant_id)
        return [BrandAccountType.from_model(r) for r in rows]


@strawberry.input
class CreateBrandAccountInput:
    channel: str
    platform_user_id: str = strawberry.field(description="The platform's id of the account.")
    handle: str | None = None


async def _audit(
    session: AsyncSession, principal: Principal, action: str, record_type: str, record_id: uuid.UUID
) -> None:
    if principal.kind == "staff":
        await record_staff_action(
            session=session,
            principal=principal,
            action=action,
            record_type=record_type,
            record_id=record_id,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Give a case to an agent; without assigneeId, to the caller (cases:write).",
        extensions=[needs(Permission.CASES_WRITE)],
    )
    async def assign_case(
        self, info: CrmInfo, case_id: strawberry.ID, assignee_id: strawberry.ID | None = None
    ) -> CaseType:
        principal = info.context.principal
        case = parse_id(case_id, field="caseId")
        if assignee_id is not None:
            assignee = str(parse_id(assignee_id, field="assigneeId"))
        elif principal.kind == "staff":
            assignee = principal.subject
        else:
            raise BadUserInput(
                "assigneeId: required unless a staff user assigns", field="assigneeId"
            )
        async with info.context.transaction() as session:
            view = await service.assign_case(
                session=session, tenant_id=principal.tenant_id, case_id=case, assignee_id=assignee
            )
            await _audit(session, principal, "case.assigned", "case", case)
        return CaseType.from_view(view)

    @strawberry.mutation(
        description="Reply in public from the brand's account on the case's channel; recorded "
        "to publish, it is the case's first response if none came yet (cases:write).",
        extensions=[needs(Permission.CASES_WRITE)],
    )
    async def reply_to_case(self, info: CrmInfo, case_id: strawberry.ID, text: str) -> CaseType:
        principal = info.context.principal
        case = parse_id(case_id, field="caseId")
        service.check_reply_text(text)
        settings = EngagementSettings()
        async with info.context.transaction() as session:
            view, _ = await service.reply_to_case(
                session=session,
                tenant_id=principal.tenant_id,
                case_id=case,
                text=text,
                replied_by=principal.actor,
                min_confidence=settings.language_min_confidence,
            )
            await _audit(session, principal, "case.replied", "case", case)
        return CaseType.from_view(view)

    @strawberry.mutation(
        description="Mark a case resolved (cases:write).",
        extensions=[needs(Permission.CASES_WRITE)],
    )
    async def resolve_case(self, info: CrmInfo, case_id: strawberry.ID) -> CaseType:
        principal = info.context.principal
        case = parse_id(case_id, field="caseId")
        async with info.context.transaction() as session:
            view = await service.resolve_case(
                session=session, tenant_id=principal.tenant_id, case_id=case
            )
            await _audit(session, principal, "case.resolved", "case", case)
        return CaseType.from_view(view)

    @strawberry.mutation(
        description="Close a case: nothing more to do (cases:write).",
        extensions=[needs(Permission.CASES_WRITE)],
    )
    async def close_case(self, info: CrmInfo, case_id: strawberry.ID) -> CaseType:
        principal = info.context.principal
        case = parse_id(case_id, field="caseId")
        async with info.context.transaction() as session:
            view = await service.close_case(
                session=session, tenant_id=principal.tenant_id, case_id=case
            )
            await _audit(session, principal, "case.closed", "case", case)
        return CaseType.from_view(view)

    @strawberry.mutation(
        description="Open a resolved or closed case again (cases:write).",
        extensions=[needs(Permission.CASES_WRITE)],
    )
    async def reopen_case(self, info: CrmInfo, case_id: strawberry.ID) -> CaseType:
        principal = info.context.principal
        case = parse_id(case_id, field="caseId")
        async with info.context.transaction() as session:
            view = await service.reopen_case(
                session=session,
                tenant_id=principal.tenant_id,
                case_id=case,
                policy=service.default_policy(),
            )
            await _audit(session, principal, "case.reopened", "case", case)
        return CaseType.from_view(view)

    @strawberry.mutation(
        description="Declare one of the brand's own accounts (listening:manage): what it writes "
        "from now on is the brand speaking, and replies to cases are sent from it.",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def create_brand_account(
        self, info: CrmInfo, input: CreateBrandAccountInput
    ) -> BrandAccountType:
        principal = info.context.principal
        async with info.context.transaction() as session:
            account = await service.create_brand_account(
                session=session,
                tenant_id=principal.tenant_id,
                channel=input.channel,
                platform_user_id=input.platform_user_id,
                handle=input.handle,
            )
            await _audit(session, principal, "brand_account.created", "brand_account", account.id)
        return BrandAccountType.from_model(account)

    @strawberry.mutation(
        description="Forget a brand account (listening:manage).",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def remove_brand_account(self, info: CrmInfo, id: strawberry.ID) -> BrandAccountType:
        principal = info.context.principal
        account_id = parse_id(id, field="id")
        async with info.context.transaction() as session:
            account = await service.remove_brand_account(
                session=session, tenant_id=principal.tenant_id, account_id=account_id
            )
            await _audit(session, principal, "brand_account.removed", "brand_account", account_id)
        return BrandAccountType.from_model(account)


@strawberry.type
class CustomerCases:
    """Care's fields of ``Customer`` (combined into the subgraph's Customer in schema.py)."""

    id: strawberry.ID

    @strawberry.field(
        description="The customer's cases, newest first (cases:read).",
        extensions=[needs(Permission.CASES_READ, customer="self.id")],
    )
    async def cases(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[CaseType]:
        customer_id = parse_id(self.id, field="id")
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.customer_cases(
                session=session,
                tenant_id=tenant_id,
                customer_id=customer_id,
                limit=limit,
                before=position,
            ),
            cursor=lambda v: encode_cursor(v.case.opened_at, v.case.id),
            node=CaseType.from_view,
        )


CASE_EVENTS = tuple(
    e.type
    for e in (
        events.CaseOpened,
        events.CaseAssigned,
        events.CaseAnswered,
        events.CaseResolved,
        events.CaseReopened,
        events.CaseClosed,
        events.CaseBreached,
    )
)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="A case each time it opens, is assigned, answered, resolved, reopened, "
        "closed or breaches its SLA, for agents' queues (cases:read; filter by assignee or "
        "customer; a customer token: its own cases). At most once: re-read the queue after "
        "reconnecting.",
        extensions=[needs(Permission.CASES_READ, customer="customer_id", own=True)],
    )
    async def case_updated(
        self,
        info: CrmInfo,
        assignee_id: strawberry.ID | None = None,
        customer_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[CaseType, None]:
        customer = parse_id(customer_id, field="customerId") if customer_id is not None else None
        principal = info.context.principal
        if principal.kind == "customer":
            customer = principal.customer_id
        async for envelope in live_updates(
            info, event_types=CASE_EVENTS, tenant_id=principal.tenant_id
        ):
            async with info.context.session() as session:
                view = await service.get_case(
                    session=session,
                    tenant_id=principal.tenant_id,
                    case_id=uuid.UUID(str(envelope.data["case_id"])),
                )
            if view is None:  # erased meanwhile
                continue
            if customer is not None and view.customer_id != customer:
                continue
            if assignee_id is not None and view.case.assignee_id != str(assignee_id):
                continue
            yield CaseType.from_view(view)
