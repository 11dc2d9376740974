"""Trackers in the graph: ``trackers`` (listening:read) and ``createTracker`` (listening:manage)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from crm_shared.audit import record_staff_action
from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.resolvers import needs
from engagement.listening import service
from engagement.listening.models import Tracker


@strawberry.type(name="Tracker")
class TrackerType:
    """A keyword, hashtag or phrase the tenant listens for on every ingested text."""

    id: strawberry.ID
    kind: str = strawberry.field(description="keyword, hashtag or phrase.")
    term: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: Tracker) -> TrackerType:
        return cls(
            id=strawberry.ID(str(row.id)), kind=row.kind, term=row.term, created_at=row.created_at
        )


@strawberry.input
class CreateTrackerInput:
    kind: str = strawberry.field(description="keyword, hashtag or phrase.")
    term: str


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's trackers, oldest first (listening:read).",
        extensions=[needs(Permission.LISTENING_READ)],
    )
    async def trackers(self, info: CrmInfo) -> list[TrackerType]:
        principal = info.context.principal
        async with info.context.session() as session:
            rows = await service.list_trackers(session=session, tenant_id=principal.tenant_id)
        return [TrackerType.from_model(r) for r in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Listen for a keyword, hashtag or phrase from now on (listening:manage).",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def create_tracker(self, info: CrmInfo, input: CreateTrackerInput) -> TrackerType:
        principal = info.context.principal
        async with info.context.transaction() as session:
            tracker = await service.create_tracker(
                session=session, tenant_id=principal.tenant_id, kind=input.kind, term=input.term
            )
            if principal.kind == "staff":
                await record_staff_action(
                    session=session,
                    principal=principal,
                    action="tracker.created",
                    record_type="tracker",
                    record_id=tracker.id,
                    details={"kind": tracker.kind},
                )
        return TrackerType.from_model(tracker)
