"""Merging duplicates in the graph."""

from __future__ import annotations

from datetime import datetime

import strawberry

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id, reason_text
from identity.customers import merge as merging
from identity.customers.merge import CustomerMerge


@strawberry.type(name="CustomerMerge")
class CustomerMergeType:
    """A merge of a duplicate into a survivor (undone when ``unmergedAt`` is set)."""

    id: strawberry.ID
    survivor_id: strawberry.ID
    merged_id: strawberry.ID
    reason: str
    merged_by: str
    merged_at: datetime
    unmerged_by: str | None
    unmerged_at: datetime | None
    unmerge_reason: str | None

    @classmethod
    def from_model(cls, merge: CustomerMerge) -> CustomerMergeType:
        return cls(
            id=strawberry.ID(str(merge.id)),
            survivor_id=strawberry.ID(str(merge.survivor_id)),
            merged_id=strawberry.ID(str(merge.merged_id)),
            reason=merge.reason,
            merged_by=merge.merged_by,
            merged_at=merge.merged_at,
            unmerged_by=merge.unmerged_by,
            unmerged_at=merge.unmerged_at,
            unmerge_reason=merge.unmerge_reason,
        )


@strawberry.input
class MergeCustomersInput:
    survivor_id: strawberry.ID
    merged_id: strawberry.ID
    reason: str


@strawberry.input
class UnmergeCustomersInput:
    merge_id: strawberry.ID
    reason: str


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Merge a duplicate into a survivor; emits identity.customer.merged.v1.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def merge_customers(self, info: CrmInfo, input: MergeCustomersInput) -> CustomerMergeType:
        principal = info.context.principal
        survivor_id = parse_id(input.survivor_id, field="input.survivorId")
        merged_id = parse_id(input.merged_id, field="input.mergedId")
        reason = reason_text(input.reason)
        async with info.context.transaction() as session:
            merge = await merging.merge_customers(
                session=session,
                principal=principal,
                survivor_id=survivor_id,
                merged_id=merged_id,
                reason=reason,
            )
        return CustomerMergeType.from_model(merge)

    @strawberry.mutation(
        description="Undo a merge; emits identity.customer.unmerged.v1.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def unmerge_customers(
        self, info: CrmInfo, input: UnmergeCustomersInput
    ) -> CustomerMergeType:
        principal = info.context.principal
        merge_id = parse_id(input.merge_id, field="input.mergeId")
        reason = reason_text(input.reason)
        async with info.context.transaction() as session:
            merge = await merging.unmerge_customers(
                session=session, principal=principal, merge_id=merge_id, reason=reason
            )
        return CustomerMergeType.from_model(merge)
