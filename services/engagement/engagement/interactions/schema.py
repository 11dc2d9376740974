"""The engagement subgraph's part of the customer graph: interactions, threads, recording one."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared.auth import Permission
from crm_shared.errors import BadUserInput
from crm_shared.events import Envelope
from crm_shared.graphql import CrmInfo, keyed_loader, live_updates
from crm_shared.pagination import (
    Connection,
    check_first,
    connection,
    decode_cursor,
)
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id, validated
from engagement.ingestion.normalized import NormalizedItem
from engagement.ingestion.service import ingest
from engagement.interactions import service
from engagement.interactions.events import InteractionRecorded
from engagement.interactions.models import CHANNELS, Interaction
from engagement.settings import EngagementSettings


async def _counts(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, int]:
    counts: Mapping[uuid.UUID, int] = await service.count_interactions(
        session=session, tenant_id=tenant_id, customer_ids=list(ids)
    )
    return counts


async def _tracker_ids(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, list[uuid.UUID]]:
    found: Mapping[uuid.UUID, list[uuid.UUID]] = await service.tracker_ids(
        session=session, tenant_id=tenant_id, interaction_ids=list(ids)
    )
    return found


def interaction_count_loader(info: CrmInfo) -> DataLoader[uuid.UUID, int]:
    """The request's batch loader of interaction counts."""
    return keyed_loader(info, "interaction_counts", _counts, 0)


def customer_interactions_loader(
    info: CrmInfo, limit: int, before: service.Position | None
) -> DataLoader[uuid.UUID, list[Interaction]]:
    """The request's batch loader of customers' interactions, ``limit`` newest after ``before``."""

    async def fetch(
        session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, list[Interaction]]:
        # Plain rows with Interaction's attributes: InteractionType reads them the same way.
        return await service.customers_interaction_rows(
            session=session, tenant_id=tenant_id, customer_ids=ids, limit=limit, before=before
        )

    return keyed_loader(info, f"customer_interactions:{limit}:{before}", fetch, [])


def tracker_ids_loader(info: CrmInfo) -> DataLoader[uuid.UUID, list[uuid.UUID]]:
    """The request's batch loader of the trackers each interaction matched."""
    return keyed_loader(info, "interaction_trackers", _tracker_ids, [])


@strawberry.type(name="InteractionAuthor")
class InteractionAuthorType:
    """Who wrote an interaction, as the platform knows them."""

    platform_user_id: str
    handle: str | None
    display_name: str | None


@strawberry.type(name="Interaction")
class InteractionType:
    """Something said on a social channel: a post, comment, reply, mention, message or review."""

    id: strawberry.ID
    channel: str
    platform_id: str = strawberry.field(description="The platform's own id of the item.")
    kind: str
    thread_id: str | None
    parent_id: str | None
    author: InteractionAuthorType | None
    customer_id: strawberry.ID | None = strawberry.field(
        description="The customer, once identity linked the author's profile."
    )
    text: str | None
    language: str = strawberry.field(description="ISO 639-1 code, or 'und' when unsure.")
    sentiment_score: float | None = strawberry.field(description="VADER compound, English only.")
    sentiment_label: str = strawberry.field(
        description="positive, neutral, negative, or unanalyzed (not English)."
    )
    rating: int | None
    by_brand: bool = strawberry.field(
        description="Written by one of the brand's own accounts: the brand speaking."
    )
    created_at: datetime = strawberry.field(description="The platform's time of the item.")
    received_at: datetime
    edited_at: datetime | None

    @strawberry.field(
        description="The trackers whose term the text contains.",
        extensions=[needs(Permission.INTERACTIONS_READ)],
    )
    async def tracker_ids(self, info: CrmInfo) -> list[strawberry.ID]:
        ids = await tracker_ids_loader(info).load(uuid.UUID(str(self.id)))
        return [strawberry.ID(str(i)) for i in ids]

    @classmethod
    def from_model(cls, row: Interaction) -> InteractionType:
        author = (
            InteractionAuthorType(
                platform_user_id=row.author_platform_user_id,
                handle=row.author_handle,
                display_name=row.author_display_name,
            )
            if row.author_platform_user_id
            else None
        )
        return cls(
            id=strawberry.ID(str(row.id)),
            channel=row.channel,
            platform_id=row.platform_id,
            kind=row.kind,
            thread_id=row.thread_id,
            parent_id=row.parent_id,
            author=author,
            customer_id=strawberry.ID(str(row.customer_id)) if row.customer_id else None,
            text=row.text,
            language=row.language,
            sentiment_score=row.sentiment_score,
            sentiment_label=row.sentiment_label,
            rating=row.rating,
            by_brand=row.by_brand,
            created_at=row.created_at,
            received_at=row.received_at,
            edited_at=row.edited_at,
        )


def _page(rows: list[Interaction], limit: int) -> Connection[InteractionType]:
    return connection(
        rows,
        limit,
        node=InteractionType.from_model,
    )


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType:
    id: strawberry.ID

    @strawberry.field(
        description="How many interactions the customer has had with the brand.",
        extensions=[needs(Permission.INTERACTIONS_READ, customer="self.id")],
    )
    async def interaction_count(self, info: CrmInfo) -> int:
        customer_id = parse_id(self.id, field="id")
        return await interaction_count_loader(info).load(customer_id)

    @strawberry.field(
        description="The customer's interactions, newest first.",
        extensions=[needs(Permission.INTERACTIONS_READ, customer="self.id")],
    )
    async def interactions(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[InteractionType]:
        customer_id = parse_id(self.id, field="id")
        limit = check_first(first)
        position = decode_cursor(after) if after is not None else None
        # One query for every customer of the request asking for the same page.
        rows = await customer_interactions_loader(info, limit + 1, position).load(customer_id)
        return _page(rows, limit)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> CustomerType:
        return cls(id=id)


@strawberry.type
class Query:
    @strawberry.field(
        description="How many interactions a customer has had.",
        extensions=[needs(Permission.INTERACTIONS_READ, customer="customer_id")],
    )
    async def interaction_count(self, info: CrmInfo, customer_id: strawberry.ID) -> int:
        customer = parse_id(customer_id, field="customerId")
        return await interaction_count_loader(info).load(customer)

    @strawberry.field(
        description="A conversation on a channel, oldest first (interactions:read).",
        extensions=[needs(Permission.INTERACTIONS_READ)],
    )
    async def thread(
        self,
        info: CrmInfo,
        channel: str,
        thread_id: str,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[InteractionType]:
        principal = info.context.principal
        if channel not in CHANNELS:
            raise BadUserInput(f"channel: must be one of {', '.join(CHANNELS)}", field="channel")
        limit = check_first(first)
        position = decode_cursor(after) if after is not None else None
        async with info.context.session() as session:
            rows = await service.thread_interactions(
                session=session,
                tenant_id=principal.tenant_id,
                channel=channel,
                thread_id=thread_id,
                limit=limit + 1,
                after=position,
            )
        return _page(rows, limit)


@strawberry.input
class InteractionAuthorInput:
    platform_user_id: str
    handle: str | None = None
    display_name: str | None = None


@strawberry.input
class RecordInteractionInput:
    """An interaction a front end saw (same rules as ``POST /ingest/normalized``)."""

    channel: str
    platform_id: str
    kind: str
    created_at: datetime
    text: str | None = None
    thread_id: str | None = None
    parent_id: str | None = None
    author: InteractionAuthorInput | None = None
    rating: int | None = None


@strawberry.type
class RecordedInteraction:
    """The stored interaction and what happened: accepted (new), duplicate or updated."""

    outcome: str
    interaction: InteractionType


def _camel(path: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Record one interaction (interactions:write).",
        extensions=[needs(Permission.INTERACTIONS_WRITE)],
    )
    async def record_interaction(
        self, info: CrmInfo, input: RecordInteractionInput
    ) -> RecordedInteraction:
        principal = info.context.principal
        author = input.author
        data = {
            "channel": input.channel,
            "platform_id": input.platform_id,
            "kind": input.kind,
            "thread_id": input.thread_id,
            "parent_id": input.parent_id,
            "author": None
            if author is None
            else {
                "platform_user_id": author.platform_user_id,
                "handle": author.handle,
                "display_name": author.display_name,
            },
            "text": input.text,
            "created_at": input.created_at,
            "rating": input.rating,
        }
        try:
            item = validated(NormalizedItem, data)
        except BadUserInput as exc:
            field = _camel(exc.field or "input")
            raise BadUserInput(_camel(exc.message), field=field) from None
        settings = EngagementSettings()
        as_json = item.model_dump(mode="json", exclude={"raw"})
        async with info.context.transaction() as session:
            _, stored = await ingest(
                session=session,
                tenant_id=principal.tenant_id,
                items=[item.model_copy(update={"raw": {"source": "graphql", **as_json}})],
                min_confidence=settings.language_min_confidence,
            )
        return RecordedInteraction(
            outcome=stored[0].outcome, interaction=InteractionType.from_model(stored[0].interaction)
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="New interactions of the tenant as they are recorded, for agents' consoles "
        "(interactions:read; a customer token must name its own customerId). At most once: "
        "a console that reconnects reads what it missed with a query.",
        extensions=[needs(Permission.INTERACTIONS_READ, customer="customer_id")],
    )
    async def interaction_recorded(
        self,
        info: CrmInfo,
        channel: str | None = None,
        customer_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[InteractionType, None]:
        customer = parse_id(customer_id, field="customerId") if customer_id is not None else None
        principal = info.context.principal
        if channel is not None and channel not in CHANNELS:
            raise BadUserInput(f"channel: unknown channel {channel!r}", field="channel")

        def wanted(envelope: Envelope) -> bool:
            data = envelope.data
            return (channel is None or data.get("channel") == channel) and (
                customer is None or data.get("customer_id") == str(customer)
            )

        async for envelope in live_updates(
            info,
            event_types=(InteractionRecorded.type,),
            tenant_id=principal.tenant_id,
            match=wanted,
        ):
            async with info.context.session() as session:
                row = await service.get_interaction(
                    session=session,
                    tenant_id=principal.tenant_id,
                    interaction_id=uuid.UUID(str(envelope.data["interaction_id"])),
                )
            if row is not None:  # erased meanwhile
                yield InteractionType.from_model(row)
