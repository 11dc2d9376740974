"""Social profiles, links to customers with their evidence, and suggestions for staff."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.auth import Principal
from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from identity.access.audit import record_staff_action
from identity.customers.models import ContactPoint, Customer
from identity.customers.service import customer_for_update
from identity.profiles.events import SocialProfileLinked, SocialProfileUnlinked
from identity.profiles.models import Channel, Evidence, LinkSuggestion, ProfileLink, SocialProfile

# How sure a link is when the caller does not say: the customer or a verified contact point
# is proof; a staff decision is a judgement.
DEFAULT_CONFIDENCE = {
    Evidence.CUSTOMER_CONFIRMED: 1.0,
    Evidence.VERIFIED_CONTACT_POINT: 0.95,
    Evidence.STAFF_DECISION: 0.8,
}


class ProfileData(BaseModel):
    """What a channel tells about an account."""

    channel: Channel
    platform_user_id: str = PydanticField(min_length=1, max_length=200)
    handle: str | None = PydanticField(default=None, max_length=200)
    display_name: str | None = PydanticField(default=None, max_length=200)
    followers: int | None = PydanticField(default=None, ge=0)
    verified: bool = False
    seen_at: datetime | None = None

    @field_validator("platform_user_id", "handle", "display_name", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class LinkRequest(BaseModel):
    evidence: Evidence
    confidence: float | None = PydanticField(default=None, ge=0, le=1)


async def upsert_profile(
    *, session: AsyncSession, tenant_id: uuid.UUID, data: ProfileData
) -> SocialProfile:
    """Record or refresh a profile (idempotent on channel and platform id); an unlinked one
    gets link suggestions."""
    seen = data.seen_at or utcnow()
    values = data.model_dump(exclude={"seen_at"}, exclude_none=True)
    values["channel"] = data.channel.value
    statement = (
        insert(SocialProfile)
        .values(
            id=uuid.uuid4(), tenant_id=tenant_id, first_seen_at=seen, last_seen_at=seen, **values
        )
        .on_conflict_do_update(
            constraint="social_profiles_platform_id",
            set_={
                **{k: v for k, v in values.items() if k not in ("channel", "platform_user_id")},
                "last_seen_at": func.greatest(SocialProfile.last_seen_at, seen),
                "first_seen_at": func.least(SocialProfile.first_seen_at, seen),
            },
        )
        .returning(col(SocialProfile.id))
    )
    profile_id = (await session.execute(statement)).scalar_one()
    profile = await session.get(SocialProfile, profile_id, populate_existing=True)
    assert profile is not None
    if profile.customer_id is None:
        await suggest_links(session, profile)
    return profile


async def suggest_links(session: AsyncSession, profile: SocialProfile) -> None:
    """Likely customers of an unlinked profile, as open suggestions (no fuzzy auto-merge):
    the same full name, or a handle equal to the local part of a customer's e-mail."""
    candidates: dict[uuid.UUID, tuple[str, float]] = {}
    if profile.display_name:
        rows = await session.exec(
            select(Customer.id).where(
                Customer.tenant_id == profile.tenant_id,
                func.lower(Customer.name) == profile.display_name.lower(),
            )
        )
        for customer_id in rows:
            candidates[customer_id] = ("display name equals the customer's name", 0.5)
    if profile.handle:
        rows = await session.exec(
            select(ContactPoint.customer_id).where(
                ContactPoint.tenant_id == profile.tenant_id,
                ContactPoint.kind == "email",
                func.split_part(ContactPoint.value, "@", 1) == profile.handle.lower(),
            )
        )
        for customer_id in rows:
            reason, score = candidates.get(customer_id, ("", 0.0))
            text = "handle equals the local part of the customer's e-mail"
            candidates[customer_id] = (f"{reason}; {text}" if reason else text, score + 0.3)
    for customer_id, (reason, confidence) in candidates.items():
        await session.execute(
            insert(LinkSuggestion)
            .values(
                id=uuid.uuid4(),
                tenant_id=profile.tenant_id,
                profile_id=profile.id,
                customer_id=customer_id,
                reason=reason,
                confidence=min(confidence, 0.9),
                status="open",
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(constraint="link_suggestions_pair")
        )


async def _profile_for_update(
    session: AsyncSession, tenant_id: uuid.UUID, profile_id: uuid.UUID, field: str
) -> SocialProfile:
    found = await session.exec(
        select(SocialProfile)
        .where(SocialProfile.tenant_id == tenant_id, SocialProfile.id == profile_id)
        .with_for_update()
    )
    profile = found.first()
    if profile is None:
        raise NotFound(f"{field}: no such social profile", field=field)
    return profile


async def current_link(session: AsyncSession, profile_id: uuid.UUID) -> ProfileLink | None:
    """The open link of a profile, if any."""
    found = await session.exec(
        select(ProfileLink).where(
            ProfileLink.profile_id == profile_id, col(ProfileLink.unlinked_at).is_(None)
        )
    )
    return found.first()


async def link_profile(
    *,
    session: AsyncSession,
    principal: Principal,
    profile_id: uuid.UUID,
    customer_id: uuid.UUID,
    request: LinkRequest,
) -> ProfileLink:
    """Link a profile to a customer; linking it again to the same customer changes nothing,
    and a profile linked to someone else must be unlinked first."""
    tenant_id = principal.tenant_id
    profile = await _profile_for_update(session, tenant_id, profile_id, "input.profileId")
    await customer_for_update(session, tenant_id, customer_id, "input.customerId")
    existing = await current_link(session, profile.id)
    if existing is not None:
        if existing.customer_id == customer_id:
            return existing
        raise Conflict(
            "input.profileId: this profile is linked to another customer; unlink it first",
            field="input.profileId",
        )
    if request.evidence is Evidence.VERIFIED_CONTACT_POINT:
        await _require_verified_contact(session, customer_id)
    confidence = (
        request.confidence
        if request.confidence is not None
        else DEFAULT_CONFIDENCE[request.evidence]
    )
    link = ProfileLink(
        tenant_id=tenant_id,
        profile_id=profile.id,
        customer_id=customer_id,
        evidence=request.evidence.value,
        confidence=confidence,
        linked_by=principal.actor,
    )
    profile.customer_id = customer_id
    session.add_all([link, profile])
    await session.flush()
    await _close_suggestions(session, profile.id, customer_id, principal)
    await record_event(
        session,
        SocialProfileLinked(
            link_id=link.id,
            profile_id=profile.id,
            customer_id=customer_id,
            channel=profile.channel,
            platform_user_id=profile.platform_user_id,
            evidence=link.evidence,
            confidence=confidence,
        ),
        tenant_id=tenant_id,
        subject=str(customer_id),
    )
    await record_staff_action(
        session=session,
        principal=principal,
        action="social_profile.link",
        record_type="social_profile",
        record_id=profile.id,
        details={"customer_id": str(customer_id), "evidence": link.evidence},
    )
    return link


async def _require_verified_contact(session: AsyncSession, customer_id: uuid.UUID) -> None:
    found = await session.exec(
        select(ContactPoint.id).where(
            ContactPoint.customer_id == customer_id, col(ContactPoint.verified).is_(True)
        )
    )
    if found.first() is None:
        raise BadUserInput(
            "input.evidence: the customer has no verified contact point", field="input.evidence"
        )


async def _close_suggestions(
    session: AsyncSession, profile_id: uuid.UUID, linked_to: uuid.UUID, principal: Principal
) -> None:
    """Open suggestions of a profile are settled by its link: accepted or rejected."""
    rows = await session.exec(
        select(LinkSuggestion).where(
            LinkSuggestion.profile_id == profile_id, LinkSuggestion.status == "open"
        )
    )
    for suggestion in rows:
        suggestion.status = "accepted" if suggestion.customer_id == linked_to else "rejected"
        suggestion.decided_by, suggestion.decided_at = principal.actor, utcnow()
        session.add(suggestion)


async def unlink_profile(
    *, session: AsyncSession, principal: Principal, profile_id: uuid.UUID, reason: str
) -> ProfileLink:
    """End a profile's current link (always possible); NOT_FOUND when it has none."""
    profile = await _profile_for_update(session, principal.tenant_id, profile_id, "input.profileId")
    link = await current_link(session, profile.id)
    if link is None:
        raise NotFound("input.profileId: this profile is not linked", field="input.profileId")
    link.unlinked_at, link.unlinked_by, link.unlink_reason = utcnow(), principal.actor, reason
    profile.customer_id = None
    session.add_all([link, profile])
    await record_event(
        session,
        SocialProfileUnlinked(
            link_id=link.id,
            profile_id=profile.id,
            customer_id=link.customer_id,
            channel=profile.channel,
            platform_user_id=profile.platform_user_id,
        ),
        tenant_id=principal.tenant_id,
        subject=str(link.customer_id),
    )
    await record_staff_action(
        session=session,
        principal=principal,
        action="social_profile.unlink",
        record_type="social_profile",
        record_id=profile.id,
        details={"customer_id": str(link.customer_id)},
    )
    await session.flush()
    return link


async def decide_suggestion(
    *, session: AsyncSession, principal: Principal, suggestion_id: uuid.UUID, accept: bool
) -> LinkSuggestion:
    """Accept (link, as a staff decision with the suggestion's confidence) or reject."""
    suggestion = await session.get(LinkSuggestion, suggestion_id, with_for_update=True)
    if suggestion is None or suggestion.tenant_id != principal.tenant_id:
        raise NotFound("id: no such suggestion", field="id")
    if suggestion.status != "open":
        raise Conflict(f"id: this suggestion was already {suggestion.status}", field="id")
    if accept:
        await link_profile(
            session=session,
            principal=principal,
            profile_id=suggestion.profile_id,
            customer_id=suggestion.customer_id,
            request=LinkRequest(evidence=Evidence.STAFF_DECISION, confidence=suggestion.confidence),
        )
        await session.refresh(suggestion)
    else:
        suggestion.status, suggestion.decided_by = "rejected", principal.actor
        suggestion.decided_at = utcnow()
        session.add(suggestion)
        await record_staff_action(
            session=session,
            principal=principal,
            action="link_suggestion.reject",
            record_type="link_suggestion",
            record_id=suggestion.id,
        )
        await session.flush()
    return suggestion


async def profiles_of(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SocialProfile]]:
    """Each customer's linked profiles, by channel."""
    rows = await session.exec(
        select(SocialProfile)
        .where(
            SocialProfile.tenant_id == tenant_id, col(SocialProfile.customer_id).in_(customer_ids)
        )
        .order_by(col(SocialProfile.channel), col(SocialProfile.first_seen_at))
    )
    found: dict[uuid.UUID, list[SocialProfile]] = defaultdict(list)
    for row in rows:
        assert row.customer_id is not None
        found[row.customer_id].append(row)
    return found


async def list_profiles(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    channel: Channel | None = None,
    linked: bool | None = None,
    handle: str | None = None,
) -> list[SocialProfile]:
    """The tenant's profiles, most recently first seen first, filtered."""
    query = select(SocialProfile).where(SocialProfile.tenant_id == tenant_id)
    if channel is not None:
        query = query.where(SocialProfile.channel == channel.value)
    if linked is not None:
        column = col(SocialProfile.customer_id)
        query = query.where(column.is_not(None) if linked else column.is_(None))
    if handle:
        query = query.where(func.lower(SocialProfile.handle) == handle.lstrip("@").lower())
    query = keyset_page(
        query,
        col(SocialProfile.first_seen_at),
        col(SocialProfile.id),
        after,
        limit=limit,
        newest_first=True,
    )
    return list(await session.exec(query))


async def list_suggestions(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    status: str = "open",
) -> list[LinkSuggestion]:
    """The tenant's suggestions of a status, newest first."""
    query = select(LinkSuggestion).where(
        LinkSuggestion.tenant_id == tenant_id, LinkSuggestion.status == status
    )
    query = keyset_page(
        query,
        col(LinkSuggestion.created_at),
        col(LinkSuggestion.id),
        after,
        limit=limit,
        newest_first=True,
    )
    return list(await session.exec(query))


async def link_history(
    *, session: AsyncSession, tenant_id: uuid.UUID, profile_id: uuid.UUID
) -> list[ProfileLink]:
    """Every link a profile has had, newest first."""
    rows = await session.exec(
        select(ProfileLink)
        .where(ProfileLink.tenant_id == tenant_id, ProfileLink.profile_id == profile_id)
        .order_by(col(ProfileLink.linked_at).desc())
    )
    return list(rows)
