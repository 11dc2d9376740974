"""Merging a duplicate customer into another, and undoing it exactly.

Survivorship: the survivor keeps every field it has; a field it lacks is taken from the merged
record; preferences are combined with the survivor's keys winning. The merged record's contact
points, consent records and social profile links move to the survivor. The merged record stays
(``merged_into_id`` set, out of lists and search) so that references to it still resolve.
Everything the merge changed is written down, so that unmerging gives it all back, except
what was changed again since (a field edited after the merge keeps its new value).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.auth import Principal
from crm_shared.db import created_at_field, utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import Event, record_event
from identity.access.audit import record_staff_action
from identity.consent.events import ConsentChanged
from identity.consent.models import ConsentRecord
from identity.consent.service import announce_consent, current_consents
from identity.customers.models import OPTIONAL_PROFILE_FIELDS, ContactPoint
from identity.customers.service import customer_for_update
from identity.profiles.events import SocialProfileLinked, SocialProfileUnlinked
from identity.profiles.models import ProfileLink, SocialProfile


class CustomerMerge(SQLModel, table=True):
    __tablename__ = "customer_merges"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    reason: str
    undo: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    merged_by: str
    merged_at: datetime = created_at_field()
    unmerged_by: str | None = None
    unmerged_at: datetime | None = None
    unmerge_reason: str | None = None


class CustomerMerged(Event):
    """Two records were one person: re-key the merged one's data to the survivor."""

    type = "identity.customer.merged.v1"

    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    moved_profile_ids: list[uuid.UUID]


class CustomerUnmerged(Event):
    """A merge was undone: data that came from the restored record goes back to it."""

    type = "identity.customer.unmerged.v1"

    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    restored_id: uuid.UUID
    moved_profile_ids: list[uuid.UUID]


def _json(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


async def merge_customers(
    *,
    session: AsyncSession,
    principal: Principal,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    reason: str,
) -> CustomerMerge:
    """Merge ``merged_id`` into ``survivor_id``; announce it for the other services."""
    tenant_id = principal.tenant_id
    if survivor_id == merged_id:
        message = "input.mergedId: a customer cannot be merged into itself"
        raise BadUserInput(message, field="input.mergedId")
    # Lock both in id order: two merges of the same pair in opposite directions cannot deadlock.
    locked = {}
    for customer_id, field in sorted(
        ((survivor_id, "input.survivorId"), (merged_id, "input.mergedId")), key=lambda p: p[0]
    ):
        locked[customer_id] = await customer_for_update(session, tenant_id, customer_id, field)
    survivor, merged = locked[survivor_id], locked[merged_id]
    for customer, field in ((survivor, "input.survivorId"), (merged, "input.mergedId")):
        if customer.merged_into_id is not None:
            raise Conflict(f"{field}: this customer is already merged into another", field=field)
    absorbed = await session.exec(
        select(CustomerMerge.id).where(
            CustomerMerge.survivor_id == merged_id, col(CustomerMerge.unmerged_at).is_(None)
        )
    )
    if absorbed.first() is not None:
        raise Conflict(
            "input.mergedId: other customers are merged into this one; merge into it instead",
            field="input.mergedId",
        )
    consents_before = await _consent_states(session, tenant_id, survivor_id)

    filled = {}
    for name in OPTIONAL_PROFILE_FIELDS:
        if getattr(survivor, name) is None and getattr(merged, name) is not None:
            setattr(survivor, name, getattr(merged, name))
            filled[name] = _json(getattr(merged, name))
    preferences_before = dict(survivor.preferences)
    survivor.preferences = {**merged.preferences, **survivor.preferences}
    survivor.updated_at = utcnow()
    merged.merged_into_id = survivor.id
    session.add_all([survivor, merged])

    contacts = list(
        await session.exec(select(ContactPoint).where(ContactPoint.customer_id == merged_id))
    )
    for contact in contacts:
        contact.customer_id = survivor_id
    consents = list(
        await session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == merged_id))
    )
    for record in consents:
        record.customer_id = survivor_id
    session.add_all([*contacts, *consents])
    moved_links = await _move_links(session, principal, merged_id, survivor_id, "merge")
    tags_added = await _merge_tags(session, tenant_id, merged_id, survivor_id)
    interaction_before = await _merge_last_interaction(session, tenant_id, merged_id, survivor_id)

    merge = CustomerMerge(
        tenant_id=tenant_id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        reason=reason,
        merged_by=principal.actor,
        undo={
            "filled": filled,
            "preferences": preferences_before,
            "contact_point_ids": [str(c.id) for c in contacts],
            "consent_record_ids": [str(r.id) for r in consents],
            "links": moved_links,
            "tags_added": tags_added,
            "last_interaction_before": interaction_before,
        },
    )
    session.add(merge)
    await session.flush()
    profile_ids = [uuid.UUID(link["profile_id"]) for link in moved_links]
    await record_event(
        session,
        CustomerMerged(
            merge_id=merge.id,
            survivor_id=survivor_id,
            merged_id=merged_id,
            moved_profile_ids=profile_ids,
        ),
        tenant_id=tenant_id,
        subject=str(survivor_id),
    )
    await _announce_consent_changes(session, tenant_id, survivor_id, consents_before)
    await record_staff_action(
        session=session,
        principal=principal,
        action="customer.merge",
        record_type="customer",
        record_id=survivor_id,
        details={"merge_id": str(merge.id), "merged_id": str(merged_id)},
    )
    return merge


async def _merge_tags(
    session: AsyncSession, tenant_id: uuid.UUID, merged_id: uuid.UUID, survivor_id: uuid.UUID
) -> list[str]:
    """Give the survivor the merged record's tags it lacks; the tags it got."""
    added = await session.execute(
        text(
            "INSERT INTO identity.customer_tags (tenant_id, customer_id, tag) "
            "SELECT tenant_id, :s, tag FROM identity.customer_tags "
            "WHERE tenant_id = :t AND customer_id = :m ON CONFLICT DO NOTHING RETURNING tag"
        ),
        {"t": tenant_id, "s": survivor_id, "m": merged_id},
    )
    return sorted(row[0] for row in added)


async def _unmerge_tags(
    session: AsyncSession, tenant_id: uuid.UUID, survivor_id: uuid.UUID, tags: list[str]
) -> None:
    if tags:
        await session.execute(
            text(
                "DELETE FROM identity.customer_tags WHERE tenant_id = :t AND customer_id = :s "
                "AND tag = ANY(CAST(:tags AS text[]))"
            ),
            {"t": tenant_id, "s": survivor_id, "tags": tags},
        )


async def _merge_last_interaction(
    session: AsyncSession, tenant_id: uuid.UUID, merged_id: uuid.UUID, survivor_id: uuid.UUID
) -> str | None:
    """The survivor's last interaction becomes the later of the two (engagement moves the
    interactions themselves); the survivor's own before, for the unmerge."""
    rows = await session.execute(
        text(
            "SELECT customer_id, last_interaction_at FROM identity.customer_activity "
            "WHERE tenant_id = :t AND customer_id IN (:m, :s)"
        ),
        {"t": tenant_id, "m": merged_id, "s": survivor_id},
    )
    found = {row[0]: row[1] for row in rows}
    before, theirs = found.get(survivor_id), found.get(merged_id)
    if theirs is not None and (before is None or theirs > before):
        await session.execute(
            text(
                "INSERT INTO identity.customer_activity AS a (tenant_id, customer_id, "
                "last_interaction_at) VALUES (:t, :s, :at) ON CONFLICT (tenant_id, customer_id) "
                "DO UPDATE SET last_interaction_at = EXCLUDED.last_interaction_at"
            ),
            {"t": tenant_id, "s": survivor_id, "at": theirs},
        )
    return before.isoformat() if before is not None else None


async def _move_links(
    session: AsyncSession,
    principal: Principal,
    from_id: uuid.UUID,
    to_id: uuid.UUID,
    why: str,
    only_links: set[uuid.UUID] | None = None,
) -> list[dict[str, str]]:
    """Close the current links of ``from_id``'s profiles and open the same links to ``to_id``."""
    query = select(ProfileLink).where(
        ProfileLink.customer_id == from_id, col(ProfileLink.unlinked_at).is_(None)
    )
    moved = []
    for link in list(await session.exec(query)):
        if only_links is not None and link.id not in only_links:
            continue
        link.unlinked_at, link.unlinked_by = utcnow(), principal.actor
        link.unlink_reason = f"{why} ({from_id} -> {to_id})"
        session.add(link)
        await session.flush()  # the closed link frees the profile for its new one
        moved_to = ProfileLink(
            tenant_id=link.tenant_id,
            profile_id=link.profile_id,
            customer_id=to_id,
            evidence=link.evidence,
            confidence=link.confidence,
            linked_by=principal.actor,
        )
        profile = await session.get(SocialProfile, link.profile_id, with_for_update=True)
        assert profile is not None
        profile.customer_id = to_id
        session.add_all([moved_to, profile])
        await session.flush()
        # Said as for any link change, so that services following links move the history.
        account = {"channel": profile.channel, "platform_user_id": profile.platform_user_id}
        await record_event(
            session,
            SocialProfileUnlinked(
                link_id=link.id, profile_id=profile.id, customer_id=from_id, **account
            ),
            tenant_id=link.tenant_id,
            subject=str(from_id),
        )
        await record_event(
            session,
            SocialProfileLinked(
                link_id=moved_to.id,
                profile_id=profile.id,
                customer_id=to_id,
                evidence=moved_to.evidence,
                confidence=moved_to.confidence,
                **account,
            ),
            tenant_id=link.tenant_id,
            subject=str(to_id),
        )
        moved.append(
            {"profile_id": str(link.profile_id), "closed": str(link.id), "opened": str(moved_to.id)}
        )
    return moved


async def unmerge_customers(
    *, session: AsyncSession, principal: Principal, merge_id: uuid.UUID, reason: str
) -> CustomerMerge:
    """Undo a current merge: the merged record, its contact points, consent records and links
    come back; fields the survivor got from it are cleared unless edited since."""
    tenant_id = principal.tenant_id
    merge = await session.get(CustomerMerge, merge_id, with_for_update=True)
    if merge is None or merge.tenant_id != tenant_id:
        raise NotFound("input.mergeId: no such merge", field="input.mergeId")
    if merge.unmerged_at is not None:
        raise Conflict("input.mergeId: this merge was already undone", field="input.mergeId")
    survivor = await customer_for_update(session, tenant_id, merge.survivor_id)
    restored = await customer_for_update(session, tenant_id, merge.merged_id)
    consents_before = await _consent_states(session, tenant_id, survivor.id)
    undo = merge.undo

    for name, value in undo["filled"].items():
        if _json(getattr(survivor, name)) == value:
            setattr(survivor, name, None)
    preferences = dict(survivor.preferences)
    for key, value in restored.preferences.items():
        if key not in undo["preferences"] and preferences.get(key) == value:
            del preferences[key]
    survivor.preferences = preferences
    survivor.updated_at = utcnow()
    restored.merged_into_id = None
    session.add_all([survivor, restored])

    for model, key in ((ContactPoint, "contact_point_ids"), (ConsentRecord, "consent_record_ids")):
        ids = [uuid.UUID(i) for i in undo[key]]
        if ids:
            rows = await session.exec(
                select(model).where(col(model.id).in_(ids), model.customer_id == survivor.id)
            )
            for row in rows:
                row.customer_id = restored.id
                session.add(row)
    await _unmerge_tags(session, tenant_id, survivor.id, undo.get("tags_added", []))
    if "last_interaction_before" in undo:
        await session.execute(
            text(
                "UPDATE identity.customer_activity SET last_interaction_at = "
                "CAST(:before AS timestamptz) WHERE tenant_id = :t AND customer_id = :c"
            ),
            {"before": undo["last_interaction_before"], "t": tenant_id, "c": survivor.id},
        )
    opened = {uuid.UUID(link["opened"]) for link in undo["links"]}
    moved_back = await _move_links(
        session, principal, survivor.id, restored.id, "unmerge", only_links=opened
    )
    merge.unmerged_at, merge.unmerged_by = utcnow(), principal.actor
    merge.unmerge_reason = reason
    session.add(merge)
    await session.flush()
    profile_ids = [uuid.UUID(link["profile_id"]) for link in moved_back]
    await record_event(
        session,
        CustomerUnmerged(
            merge_id=merge.id,
            survivor_id=survivor.id,
            restored_id=restored.id,
            moved_profile_ids=profile_ids,
        ),
        tenant_id=tenant_id,
        subject=str(survivor.id),
    )
    await _announce_consent_changes(session, tenant_id, survivor.id, consents_before)
    await _announce_consent_changes(session, tenant_id, restored.id, {})
    await record_staff_action(
        session=session,
        principal=principal,
        action="customer.unmerge",
        record_type="customer",
        record_id=survivor.id,
        details={"merge_id": str(merge.id), "restored_id": str(restored.id)},
    )
    return merge


async def _consent_states(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> dict[str, tuple[bool, str]]:
    current = await current_consents(
        session=session, tenant_id=tenant_id, customer_ids=[customer_id]
    )
    return {purpose: (r.granted, r.policy_version) for (_, purpose), r in current.items()}


async def _announce_consent_changes(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    before: dict[str, tuple[bool, str]],
) -> None:
    """Moving consent records may change where a purpose stands: say so, as on any change."""
    await session.flush()
    current = await current_consents(
        session=session, tenant_id=tenant_id, customer_ids=[customer_id]
    )
    for (_, purpose), record in current.items():
        if before.get(purpose) != (record.granted, record.policy_version):
            await announce_consent(session, record)
    for purpose, (granted, version) in before.items():
        if (customer_id, purpose) not in current and granted:
            await record_event(
                session,
                ConsentChanged(
                    customer_id=customer_id,
                    purpose=purpose,
                    granted=False,
                    policy_version=version,
                    source="unmerge",
                    changed_at=utcnow(),
                ),
                tenant_id=tenant_id,
                subject=str(customer_id),
            )


async def merges_of(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> list[CustomerMerge]:
    """Merges in which the customer survived or was merged, newest first."""
    rows = await session.exec(
        select(CustomerMerge)
        .where(
            CustomerMerge.tenant_id == tenant_id,
            (col(CustomerMerge.survivor_id) == customer_id)
            | (col(CustomerMerge.merged_id) == customer_id),
        )
        .order_by(col(CustomerMerge.merged_at).desc())
    )
    return list(rows)
