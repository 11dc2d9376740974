"""Segments in the graph: ``Customer.segment`` and ``segmentCounts`` (interactions:read),
``segmentSettings`` (listening:read) and ``updateSegmentSettings`` (listening:manage)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared.audit import record_staff_action
from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id
from engagement.segments import service
from engagement.segments.classify import Thresholds
from engagement.segments.models import CustomerSegment


async def _segments(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, CustomerSegment | None]:
    found: Mapping[uuid.UUID, CustomerSegment | None] = await service.segments_of(
        session, tenant_id, list(ids)
    )
    return found


def segment_loader(info: CrmInfo) -> DataLoader[uuid.UUID, CustomerSegment | None]:
    """The request's batch loader of customers' segments."""
    return keyed_loader(info, "customer_segments", _segments, None)


@strawberry.type(name="Segment")
class SegmentType:
    """A customer's participation segment and since when they are in it."""

    name: str = strawberry.field(description="creator, occasional, observer or inactive.")
    since: datetime


@strawberry.type(name="SegmentCount")
class SegmentCountType:
    segment: str
    customers: int


@strawberry.type(name="SegmentSettings")
class SegmentSettingsType:
    """How the tenant's customers are segmented (see engagement's README)."""

    window_days: int = strawberry.field(description="How many days back activity counts.")
    creator_min_originals: int = strawberry.field(
        description="Original posts and reviews in the window that make a creator."
    )
    occasional_min_contributions: int = strawberry.field(
        description="Items of any kind in the window that make an occasional participant."
    )

    @classmethod
    def from_thresholds(cls, limits: Thresholds) -> SegmentSettingsType:
        return cls(
            window_days=limits.window_days,
            creator_min_originals=limits.creator_min_originals,
            occasional_min_contributions=limits.occasional_min_contributions,
        )


@strawberry.input
class UpdateSegmentSettingsInput:
    """Fields left out keep their value."""

    window_days: int | None = None
    creator_min_originals: int | None = None
    occasional_min_contributions: int | None = None


@strawberry.type
class CustomerSegmentFields:
    """The segment field of engagement's ``Customer``."""

    id: strawberry.ID

    @strawberry.field(
        description="The customer's participation segment; null until engagement knows them "
        "(interactions:read).",
        extensions=[needs(Permission.INTERACTIONS_READ, customer="self.id")],
    )
    async def segment(self, info: CrmInfo) -> SegmentType | None:
        customer_id = parse_id(self.id, field="id")
        row = await segment_loader(info).load(customer_id)
        return None if row is None else SegmentType(name=row.segment, since=row.since)


@strawberry.type
class Query:
    @strawberry.field(
        description="How many customers each segment holds (interactions:read).",
        extensions=[needs(Permission.INTERACTIONS_READ)],
    )
    async def segment_counts(self, info: CrmInfo) -> list[SegmentCountType]:
        principal = info.context.principal
        async with info.context.session() as session:
            found = await service.counts(session=session, tenant_id=principal.tenant_id)
        return [SegmentCountType(segment=s, customers=n) for s, n in found.items()]

    @strawberry.field(
        description="The tenant's segment settings (listening:read).",
        extensions=[needs(Permission.LISTENING_READ)],
    )
    async def segment_settings(self, info: CrmInfo) -> SegmentSettingsType:
        principal = info.context.principal
        async with info.context.session() as session:
            limits = await service.thresholds(session=session, tenant_id=principal.tenant_id)
        return SegmentSettingsType.from_thresholds(limits)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Change how customers are segmented; they are reclassified by the next "
        "periodic run (listening:manage).",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def update_segment_settings(
        self, info: CrmInfo, input: UpdateSegmentSettingsInput
    ) -> SegmentSettingsType:
        principal = info.context.principal
        changes = {
            "window_days": input.window_days,
            "creator_min_originals": input.creator_min_originals,
            "occasional_min_contributions": input.occasional_min_contributions,
        }
        async with info.context.transaction() as session:
            limits = await service.update_thresholds(
                session=session, tenant_id=principal.tenant_id, changes=changes
            )
            if principal.kind == "staff":
                await record_staff_action(
                    session=session,
                    principal=principal,
                    action="segment_settings.updated",
                    record_type="segment_settings",
                    record_id=principal.tenant_id,
                    details={k: v for k, v in changes.items() if v is not None},
                )
        return SegmentSettingsType.from_thresholds(limits)
