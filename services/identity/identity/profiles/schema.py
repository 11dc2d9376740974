"""Social profiles, their links and suggestions in the graph."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import Connection, encode_cursor
from crm_shared.resolvers import needs, page
from crm_shared.validation import parse_id, reason_text, validated
from identity.profiles import service
from identity.profiles.models import Channel, Evidence, LinkSuggestion, ProfileLink, SocialProfile
from identity.profiles.service import LinkRequest, ProfileData

strawberry.enum(Channel, name="Channel")  # makes the model enum a GraphQL enum
strawberry.enum(Evidence, name="LinkEvidence")  # makes the model enum a GraphQL enum


@strawberry.type(name="SocialProfile")
class SocialProfileType:
    """Who someone is on a channel; linked to a customer or not (yet)."""

    id: strawberry.ID
    channel: Channel
    platform_user_id: str
    handle: str | None
    display_name: str | None
    followers: int | None
    verified: bool
    customer_id: strawberry.ID | None
    first_seen_at: datetime
    last_seen_at: datetime

    @classmethod
    def from_model(cls, profile: SocialProfile) -> SocialProfileType:
        return cls(
            id=strawberry.ID(str(profile.id)),
            channel=Channel(profile.channel),
            platform_user_id=profile.platform_user_id,
            handle=profile.handle,
            display_name=profile.display_name,
            followers=profile.followers,
            verified=profile.verified,
            customer_id=strawberry.ID(str(profile.customer_id)) if profile.customer_id else None,
            first_seen_at=profile.first_seen_at,
            last_seen_at=profile.last_seen_at,
        )

    @strawberry.field(
        description="Every link this profile has had, newest first.",
        extensions=[needs(Permission.CUSTOMERS_READ)],
    )
    async def links(self, info: CrmInfo) -> list[ProfileLinkType]:
        principal = info.context.principal
        async with info.context.session() as session:
            rows = await service.link_history(
                session=session, tenant_id=principal.tenant_id, profile_id=uuid.UUID(self.id)
            )
        return [ProfileLinkType.from_model(row) for row in rows]


@strawberry.type(name="ProfileLink")
class ProfileLinkType:
    """A period in which a profile belonged to a customer, and why."""

    id: strawberry.ID
    profile_id: strawberry.ID
    customer_id: strawberry.ID
    evidence: Evidence
    confidence: float
    linked_by: str
    linked_at: datetime
    unlinked_by: str | None
    unlinked_at: datetime | None
    unlink_reason: str | None

    @classmethod
    def from_model(cls, link: ProfileLink) -> ProfileLinkType:
        return cls(
            id=strawberry.ID(str(link.id)),
            profile_id=strawberry.ID(str(link.profile_id)),
            customer_id=strawberry.ID(str(link.customer_id)),
            evidence=Evidence(link.evidence),
            confidence=link.confidence,
            linked_by=link.linked_by,
            linked_at=link.linked_at,
            unlinked_by=link.unlinked_by,
            unlinked_at=link.unlinked_at,
            unlink_reason=link.unlink_reason,
        )


@strawberry.type(name="LinkSuggestion")
class LinkSuggestionType:
    """A likely match of a profile and a customer, for staff to accept or reject."""

    id: strawberry.ID
    profile_id: strawberry.ID
    customer_id: strawberry.ID
    reason: str
    confidence: float
    status: str
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: LinkSuggestion) -> LinkSuggestionType:
        return cls(
            id=strawberry.ID(str(row.id)),
            profile_id=strawberry.ID(str(row.profile_id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            reason=row.reason,
            confidence=row.confidence,
            status=row.status,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            created_at=row.created_at,
        )


@strawberry.input
class RecordSocialProfileInput:
    channel: Channel
    platform_user_id: str
    handle: str | None = None
    display_name: str | None = None
    followers: int | None = None
    verified: bool = False


@strawberry.input
class LinkSocialProfileInput:
    profile_id: strawberry.ID
    customer_id: strawberry.ID
    evidence: Evidence
    confidence: float | None = None


@strawberry.input
class UnlinkSocialProfileInput:
    profile_id: strawberry.ID
    reason: str


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's social profiles, newest first, filtered.",
        extensions=[needs(Permission.CUSTOMERS_READ)],
    )
    async def social_profiles(
        self,
        info: CrmInfo,
        first: int = 20,
        after: str | None = None,
        channel: Channel | None = None,
        linked: bool | None = None,
        handle: str | None = None,
    ) -> Connection[SocialProfileType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.list_profiles(
                session=session,
                tenant_id=tenant_id,
                limit=limit,
                after=position,
                channel=channel,
                linked=linked,
                handle=handle,
            ),
            cursor=lambda p: encode_cursor(p.first_seen_at, p.id),
            node=SocialProfileType.from_model,
        )

    @strawberry.field(
        description="Open (or decided) link suggestions, newest first.",
        extensions=[needs(Permission.CUSTOMERS_READ)],
    )
    async def link_suggestions(
        self, info: CrmInfo, first: int = 20, after: str | None = None, status: str = "open"
    ) -> Connection[LinkSuggestionType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.list_suggestions(
                session=session, tenant_id=tenant_id, limit=limit, after=position, status=status
            ),
            cursor=lambda s: encode_cursor(s.created_at, s.id),
            node=LinkSuggestionType.from_model,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Record or refresh a social profile (idempotent).",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def record_social_profile(
        self, info: CrmInfo, input: RecordSocialProfileInput
    ) -> SocialProfileType:
        principal = info.context.principal
        data = validated(ProfileData, strawberry.asdict(input))
        async with info.context.transaction() as session:
            profile = await service.upsert_profile(
                session=session, tenant_id=principal.tenant_id, data=data
            )
        return SocialProfileType.from_model(profile)

    @strawberry.mutation(
        description="Link a profile to a customer, with the evidence.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def link_social_profile(
        self, info: CrmInfo, input: LinkSocialProfileInput
    ) -> ProfileLinkType:
        principal = info.context.principal
        request = validated(
            LinkRequest, {"evidence": input.evidence, "confidence": input.confidence}
        )
        profile_id = parse_id(input.profile_id, field="input.profileId")
        customer_id = parse_id(input.customer_id, field="input.customerId")
        async with info.context.transaction() as session:
            link = await service.link_profile(
                session=session,
                principal=principal,
                profile_id=profile_id,
                customer_id=customer_id,
                request=request,
            )
        return ProfileLinkType.from_model(link)

    @strawberry.mutation(
        description="End a profile's link to its customer.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def unlink_social_profile(
        self, info: CrmInfo, input: UnlinkSocialProfileInput
    ) -> ProfileLinkType:
        principal = info.context.principal
        profile_id = parse_id(input.profile_id, field="input.profileId")
        reason = reason_text(input.reason)
        async with info.context.transaction() as session:
            link = await service.unlink_profile(
                session=session, principal=principal, profile_id=profile_id, reason=reason
            )
        return ProfileLinkType.from_model(link)

    @strawberry.mutation(
        description="Accept a suggestion: the profile is linked to its customer.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def accept_link_suggestion(self, info: CrmInfo, id: strawberry.ID) -> LinkSuggestionType:
        return await _decide(info, id, accept=True)

    @strawberry.mutation(
        description="Reject a suggestion; nothing is linked.",
        extensions=[needs(Permission.CUSTOMERS_WRITE)],
    )
    async def reject_link_suggestion(self, info: CrmInfo, id: strawberry.ID) -> LinkSuggestionType:
        return await _decide(info, id, accept=False)


async def _decide(info: CrmInfo, id: strawberry.ID, *, accept: bool) -> LinkSuggestionType:
    principal = info.context.principal
    suggestion_id = parse_id(id, field="id")
    async with info.context.transaction() as session:
        suggestion = await service.decide_suggestion(
            session=session, principal=principal, suggestion_id=suggestion_id, accept=accept
        )
    return LinkSuggestionType.from_model(suggestion)
