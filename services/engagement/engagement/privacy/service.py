"""Privacy and merges in engagement: export, erasure, and re-keying a merged customer's
history.

Erasure deletes the person's interactions (those attached to the customer and every
interaction of their social accounts, attached or not), their authors and links, the consent
projection, their segment and influence, and published outbox rows that mention them; then it
confirms.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, delete, false, or_, select, text, tuple_, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.privacy import ErasureRequested, confirm_erasure, scrub_outbox
from engagement.community.service import erase_community, export_community
from engagement.influence.models import InfluenceScore
from engagement.interactions.models import Author, Interaction, ProfileLink
from engagement.segments.models import CustomerSegment

SERVICE = "engagement"


async def export_customer(
    session: AsyncSession, *, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> dict[str, Any]:
    """Engagement's records of a customer as plain JSON."""
    interactions = await session.execute(
        select(Interaction)
        .where(col(Interaction.tenant_id) == tenant_id, col(Interaction.customer_id) == customer_id)
        .order_by(col(Interaction.created_at), col(Interaction.id))
    )
    links = await session.execute(
        select(ProfileLink).where(
            col(ProfileLink.tenant_id) == tenant_id, col(ProfileLink.customer_id) == customer_id
        )
    )
    consents = await session.execute(
        text(
            "SELECT purpose, granted, changed_at FROM engagement.consents"
            " WHERE tenant_id = :t AND customer_id = :c ORDER BY purpose"
        ),
        {"t": tenant_id, "c": customer_id},
    )
    cases = await session.execute(
        text(
            "SELECT c.id, c.kind, c.status, c.priority, c.channel, c.opened_at,"
            " c.first_response_at, c.resolved_at, c.closed_at FROM engagement.cases c"
            " JOIN engagement.interactions i ON i.id = c.interaction_id"
            " WHERE c.tenant_id = :t AND i.customer_id = :c ORDER BY c.opened_at, c.id"
        ),
        {"t": tenant_id, "c": customer_id},
    )
    segment = await session.get(CustomerSegment, (tenant_id, customer_id))
    influence = await session.get(InfluenceScore, (tenant_id, customer_id))
    own = {"tenant_id", "customer_id"}
    return {
        "cases": [
            {
                key: value.isoformat() if hasattr(value, "isoformat") else str(value)
                for key, value in row._mapping.items()
                if value is not None
            }
            for row in cases
        ],
        "segment": segment.model_dump(mode="json", exclude=own) if segment else None,
        "influence": influence.model_dump(mode="json", exclude=own) if influence else None,
        "interactions": [
            row.model_dump(mode="json", exclude={"tenant_id", "raw"})
            for row in interactions.scalars()
        ],
        "social_accounts": [
            {"channel": link.channel, "platform_user_id": link.platform_user_id}
            for link in links.scalars()
        ],
        "consents": [
            {"purpose": r.purpose, "granted": r.granted, "changed_at": r.changed_at.isoformat()}
            for r in consents
        ],
        "community": await export_community(session, tenant_id=tenant_id, customer_id=customer_id),
    }


async def erase(session: AsyncSession, request: ErasureRequested, *, tenant_id: uuid.UUID) -> None:
    """Carry out an erasure request and confirm it, in one transaction."""
    ids = list(request.customer_ids or [request.customer_id])
    accounts = [(p.channel, p.platform_user_id) for p in request.profiles]
    linked = await session.execute(
        select(col(ProfileLink.channel), col(ProfileLink.platform_user_id)).where(
            col(ProfileLink.tenant_id) == tenant_id, col(ProfileLink.customer_id).in_(ids)
        )
    )
    accounts += [(row.channel, row.platform_user_id) for row in linked]
    of_accounts = (
        tuple_(col(Interaction.channel), col(Interaction.author_platform_user_id)).in_(accounts)
        if accounts
        else false()
    )
    await session.execute(
        delete(Interaction).where(
            col(Interaction.tenant_id) == tenant_id,
            or_(col(Interaction.customer_id).in_(ids), of_accounts),
        )
    )
    for model in (Author, ProfileLink):
        if accounts:
            await session.execute(
                delete(model).where(
                    and_(
                        col(model.tenant_id) == tenant_id,
                        tuple_(col(model.channel), col(model.platform_user_id)).in_(accounts),
                    )
                )
            )
    # Their cases went with their interactions (cascade); their projections go too.
    for table in ("consents", "customer_values", "customer_segments", "influence_scores"):
        await session.execute(
            text(f"DELETE FROM engagement.{table} WHERE tenant_id = :t AND customer_id = ANY(:c)"),
            {"t": tenant_id, "c": ids},
        )
    await erase_community(session, tenant_id=tenant_id, customer_ids=ids)
    await scrub_outbox(
        session, "engagement", [str(i) for i in ids] + [account for _, account in accounts]
    )
    await confirm_erasure(session, request, tenant_id=tenant_id, service=SERVICE)


async def move_history(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    merge_id: uuid.UUID,
    from_id: uuid.UUID,
    to_id: uuid.UUID,
) -> None:
    """A merge: the merged customer's interactions go to the survivor, remembered by merge."""
    await session.execute(
        text(
            "INSERT INTO engagement.merge_moves (merge_id, interaction_id)"
            " SELECT :m, id FROM engagement.interactions WHERE tenant_id = :t AND customer_id = :c"
            " ON CONFLICT DO NOTHING"
        ),
        {"m": merge_id, "t": tenant_id, "c": from_id},
    )
    await session.execute(
        update(Interaction)
        .where(col(Interaction.tenant_id) == tenant_id, col(Interaction.customer_id) == from_id)
        .values(customer_id=to_id)
    )


async def move_history_back(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    merge_id: uuid.UUID,
    survivor_id: uuid.UUID,
    restored_id: uuid.UUID,
) -> None:
    """An unmerge: exactly the interactions the merge moved go back (unless attached to
    someone else since)."""
    await session.execute(
        text(
            "UPDATE engagement.interactions SET customer_id = :r WHERE tenant_id = :t"
            " AND (customer_id = :s OR customer_id IS NULL)"
            " AND id IN (SELECT interaction_id FROM engagement.merge_moves WHERE merge_id = :m)"
        ),
        {"r": restored_id, "t": tenant_id, "s": survivor_id, "m": merge_id},
    )
