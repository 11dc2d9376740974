"""Duplicate suggestions in the graph: a list for staff, and dismissing one."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import Connection, SortCursor, check_first, connection
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id, reason_text
from identity.customers.schema import CustomerType, customer_loader
from identity.duplicates import service
from identity.duplicates.models import DuplicateSuggestion, EvidenceKind, SuggestionStatus

strawberry.enum(SuggestionStatus, name="DuplicateSuggestionStatus")
strawberry.enum(EvidenceKind, name="DuplicateEvidenceKind")

_CURSOR = SortCursor("score", descending=True)


@strawberry.type(name="DuplicateEvidence")
class DuplicateEvidenceType:
    kind: EvidenceKind
    detail: str = strawberry.field(description="What matched, e.g. the two addresses.")
    weight: float = strawberry.field(description="Its part of the score.")


@strawberry.type(name="DuplicateSuggestion")
class DuplicateSuggestionType:
    """Two customers that look like one person; staff merge them (mergeCustomers) or dismiss
    the suggestion. Nothing is ever merged automatically."""

    id: strawberry.ID
    score: float = strawberry.field(description="0.5 to 1: how sure, from the evidence.")
    evidence: list[DuplicateEvidenceType]
    status: SuggestionStatus
    created_at: datetime
    updated_at: datetime
    dismissed_by: str | None
    dismissed_at: datetime | None
    dismiss_reason: str | None
    customer_id: strawberry.Private[uuid.UUID]
    candidate_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: DuplicateSuggestion) -> DuplicateSuggestionType:
        return cls(
            id=strawberry.ID(str(row.id)),
            score=row.score,
            evidence=[
                DuplicateEvidenceType(
                    kind=EvidenceKind(e["kind"]), detail=e["detail"], weight=e["weight"]
                )
                for e in row.evidence
            ],
            status=SuggestionStatus(row.status),
            created_at=row.created_at,
            updated_at=row.updated_at,
            dismissed_by=row.dismissed_by,
            dismissed_at=row.dismissed_at,
            dismiss_reason=row.dismiss_reason,
            customer_id=row.customer_id,
            candidate_id=row.candidate_id,
        )

    @strawberry.field(description="One of the two (the older id).")
    async def customer(self, info: CrmInfo) -> CustomerType | None:
        return await customer_loader(info).load(self.customer_id)

    @strawberry.field(description="The other one.")
    async def candidate(self, info: CrmInfo) -> CustomerType | None:
        return await customer_loader(info).load(self.candidate_id)


@strawberry.input
class DismissDuplicateSuggestionInput:
    id: strawberry.ID
    reason: str


@strawberry.type
class Query:
    @strawberry.field(
        description="Likely duplicate customers, highest score first (customers:read); "
        "`customerId` keeps those involving that customer.",
        extensions=[needs(Permission.CUSTOMERS_READ)],
    )
    async def duplicate_suggestions(
        self,
        info: CrmInfo,
        first: int = 20,
        after: str | None = None,
        status: SuggestionStatus = SuggestionStatus.OPEN,
        customer_id: strawberry.ID | None = None,
    ) -> Connection[DuplicateSuggestionType]:
        principal = info.context.principal
        limit = check_first(first)
        customer = parse_id(customer_id, field="customerId") if customer_id is not None else None
        position = _CURSOR.decode(after, "after") if after is not None else None
        async with info.context.session() as session:
            rows = await service.list_suggestions(
                session=session,
                tenant_id=principal.tenant_id,
                limit=limit + 1,
                status=status,
                customer_id=customer,
                after=position,
            )
        return connection(
            rows,
            limit,
            cursor=lambda r: _CURSOR.encode(r.score, r.id),
            node=DuplicateSuggestionType.from_model,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Say two suggested customers are different people (customers:write); "
        "the pair is not suggested again. Audited.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def dismiss_duplicate_suggestion(
        self, info: CrmInfo, input: DismissDuplicateSuggestionInput
    ) -> DuplicateSuggestionType:
        principal = info.context.principal
        suggestion_id = parse_id(input.id, field="input.id")
        reason = reason_text(input.reason)
        async with info.context.transaction() as session:
            row = await service.dismiss(
                session=session,
                principal=principal,
                suggestion_id=suggestion_id,
                reason=reason,
            )
        return DuplicateSuggestionType.from_model(row)
