"""Finding likely duplicates of a customer, and staff's decisions on them.

Evidence and its weight in the score (capped at 1; a pair is suggested from 0.5):

- ``same_mailbox`` 0.6: e-mail addresses that reach one mailbox (``ann+shop@gmail.com`` and
  ``a.nn@gmail.com``; equal addresses cannot exist, a contact point has one owner);
- ``shared_handle`` 0.4: linked social profiles with the same handle on two channels;
- ``similar_name`` 0.4 x the trigram similarity of the names without accents and case (from
  0.6: "Maria Souza" / "María Sousa");
- ``same_birth_date`` 0.2, counted only beside other evidence.

A name alone (0.4) is never enough: many people share one. Suggestions are recomputed for a
customer when it is registered or changes, or a profile is linked to it; a dismissed pair
stays dismissed. Nothing here merges: staff merge with ``mergeCustomers``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, text
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.audit import record_staff_action
from crm_shared.auth import Principal
from crm_shared.db import utcnow
from crm_shared.errors import Conflict, NotFound
from identity.customers.models import Customer
from identity.duplicates.models import DuplicateSuggestion, EvidenceKind, SuggestionStatus

THRESHOLD = 0.5
NAME_SIMILARITY = 0.6
WEIGHTS = {
    EvidenceKind.SAME_MAILBOX: 0.6,
    EvidenceKind.SHARED_HANDLE: 0.4,
    EvidenceKind.SIMILAR_NAME: 0.4,
    EvidenceKind.SAME_BIRTH_DATE: 0.2,
}
# How many look-alike names are weighed per customer (the most similar first).
NAME_CANDIDATES = 50

Found = dict[uuid.UUID, list[tuple[EvidenceKind, str, float]]]


async def _same_mailbox(session: AsyncSession, customer: Customer, found: Found) -> None:
    rows = await session.execute(
        text(
            "SELECT other.customer_id, mine.value, other.value FROM identity.contact_points mine "
            "JOIN identity.contact_points other ON other.tenant_id = mine.tenant_id "
            "AND other.kind = 'email' "
            "AND identity.email_mailbox(other.value) = identity.email_mailbox(mine.value) "
            "AND other.customer_id <> mine.customer_id "
            "WHERE mine.tenant_id = :t AND mine.customer_id = :c AND mine.kind = 'email'"
        ),
        {"t": customer.tenant_id, "c": customer.id},
    )
    for other, mine, theirs in rows:
        weight = WEIGHTS[EvidenceKind.SAME_MAILBOX]
        found[other].append((EvidenceKind.SAME_MAILBOX, f"{mine} / {theirs}", weight))


async def _similar_names(session: AsyncSession, customer: Customer, found: Found) -> None:
    rows = await session.execute(
        text(
            "SELECT id, name, identity.similarity(identity.search_text(name), "
            "identity.search_text(:n)) AS s FROM identity.customers "
            "WHERE tenant_id = :t AND id <> :c AND merged_into_id IS NULL AND erased_at IS NULL "
            "AND identity.search_text(name) OPERATOR(identity.%) identity.search_text(:n) "
            "ORDER BY s DESC LIMIT :k"
        ),
        {"t": customer.tenant_id, "c": customer.id, "n": customer.name, "k": NAME_CANDIDATES},
    )
    for other, name, similarity in rows:
        if similarity >= NAME_SIMILARITY:
            weight = round(WEIGHTS[EvidenceKind.SIMILAR_NAME] * float(similarity), 3)
            found[other].append((EvidenceKind.SIMILAR_NAME, f"{customer.name} / {name}", weight))


async def _shared_handles(session: AsyncSession, customer: Customer, found: Found) -> None:
    rows = await session.execute(
        text(
            "SELECT other.customer_id, mine.channel, other.channel, mine.handle "
            "FROM identity.social_profiles mine JOIN identity.social_profiles other "
            "ON other.tenant_id = mine.tenant_id AND lower(other.handle) = lower(mine.handle) "
            "AND other.customer_id IS NOT NULL AND other.customer_id <> mine.customer_id "
            "WHERE mine.tenant_id = :t AND mine.customer_id = :c AND mine.handle IS NOT NULL"
        ),
        {"t": customer.tenant_id, "c": customer.id},
    )
    for other, mine, theirs, handle in rows:
        weight = WEIGHTS[EvidenceKind.SHARED_HANDLE]
        found[other].append(
            (EvidenceKind.SHARED_HANDLE, f"@{handle} on {mine} and {theirs}", weight)
        )


def _score(evidence: Sequence[tuple[EvidenceKind, str, float]]) -> float:
    best: dict[EvidenceKind, float] = {}
    for kind, _, weight in evidence:
        best[kind] = max(best.get(kind, 0.0), weight)
    return min(1.0, round(sum(best.values()), 3))


async def suggest_for(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> list[DuplicateSuggestion]:
    """Recompute the open suggestions that pair ``customer_id`` with another customer."""
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.tenant_id != tenant_id:
        return []
    found: Found = defaultdict(list)
    if customer.merged_into_id is None and customer.erased_at is None:
        await _same_mailbox(session, customer, found)
        await _similar_names(session, customer, found)
        await _shared_handles(session, customer, found)
    others = (
        {
            c.id: c
            for c in await session.exec(
                select(Customer).where(
                    Customer.tenant_id == tenant_id,
                    col(Customer.id).in_(list(found)),
                    col(Customer.merged_into_id).is_(None),
                    col(Customer.erased_at).is_(None),
                )
            )
        }
        if found
        else {}
    )
    scored: dict[uuid.UUID, tuple[float, list[dict[str, Any]]]] = {}
    for other_id, evidence in found.items():
        other = others.get(other_id)
        if other is None:
            continue
        if customer.birth_date is not None and customer.birth_date == other.birth_date:
            weight = WEIGHTS[EvidenceKind.SAME_BIRTH_DATE]
            evidence.append((EvidenceKind.SAME_BIRTH_DATE, customer.birth_date.isoformat(), weight))
        score = _score(evidence)
        if score >= THRESHOLD:
            scored[other_id] = (
                score,
                [{"kind": k.value, "detail": d, "weight": w} for k, d, w in evidence],
            )
    existing = {
        frozenset((s.customer_id, s.candidate_id)): s
        for s in await session.exec(
            select(DuplicateSuggestion)
            .where(
                DuplicateSuggestion.tenant_id == tenant_id,
                or_(
                    col(DuplicateSuggestion.customer_id) == customer_id,
                    col(DuplicateSuggestion.candidate_id) == customer_id,
                ),
            )
            .with_for_update()
        )
    }
    now = utcnow()
    kept = []
    for pair, suggestion in existing.items():
        (other_id,) = pair - {customer_id}
        if suggestion.status == SuggestionStatus.OPEN.value and other_id not in scored:
            await session.delete(suggestion)  # the evidence is gone
    for other_id, (score, reasons) in scored.items():
        found_row = existing.get(frozenset((customer_id, other_id)))
        if found_row is None:
            low, high = sorted((customer_id, other_id))
            found_row = DuplicateSuggestion(
                tenant_id=tenant_id,
                customer_id=low,
                candidate_id=high,
                score=score,
                evidence=reasons,
            )
        elif found_row.status != SuggestionStatus.OPEN.value:
            continue  # staff dismissed it: it stays so
        else:
            found_row.score, found_row.evidence, found_row.updated_at = score, reasons, now
        session.add(found_row)
        kept.append(found_row)
    await session.flush()
    return kept


async def list_suggestions(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    status: SuggestionStatus = SuggestionStatus.OPEN,
    customer_id: uuid.UUID | None = None,
    after: tuple[Any, uuid.UUID] | None = None,
) -> list[DuplicateSuggestion]:
    """The tenant's suggestions of ``status``, highest score first, between customers that are
    both still listed (not merged away, not erased)."""
    first, second = aliased(Customer), aliased(Customer)
    query = (
        select(DuplicateSuggestion)
        .join(first, col(first.id) == col(DuplicateSuggestion.customer_id))
        .join(second, col(second.id) == col(DuplicateSuggestion.candidate_id))
        .where(
            DuplicateSuggestion.tenant_id == tenant_id,
            DuplicateSuggestion.status == status.value,
            col(first.merged_into_id).is_(None),
            col(second.merged_into_id).is_(None),
            col(first.erased_at).is_(None),
            col(second.erased_at).is_(None),
        )
    )
    if customer_id is not None:
        query = query.where(
            or_(
                col(DuplicateSuggestion.customer_id) == customer_id,
                col(DuplicateSuggestion.candidate_id) == customer_id,
            )
        )
    if after is not None:
        score, key = after
        query = query.where(
            or_(
                col(DuplicateSuggestion.score) < score,
                and_(col(DuplicateSuggestion.score) == score, col(DuplicateSuggestion.id) > key),
            )
        )
    query = query.order_by(col(DuplicateSuggestion.score).desc(), col(DuplicateSuggestion.id))
    return list(await session.exec(query.limit(limit)))


async def dismiss(
    *, session: AsyncSession, principal: Principal, suggestion_id: uuid.UUID, reason: str
) -> DuplicateSuggestion:
    """Staff say the two are different people: the pair is not suggested again (audited)."""
    suggestion = await session.get(DuplicateSuggestion, suggestion_id, with_for_update=True)
    if suggestion is None or suggestion.tenant_id != principal.tenant_id:
        raise NotFound("input.id: no such suggestion", field="input.id")
    if suggestion.status != SuggestionStatus.OPEN.value:
        raise Conflict("input.id: dismissed already", field="input.id")
    suggestion.status = SuggestionStatus.DISMISSED.value
    suggestion.dismissed_by, suggestion.dismissed_at = principal.actor, utcnow()
    suggestion.dismiss_reason = reason
    session.add(suggestion)
    await record_staff_action(
        session=session,
        principal=principal,
        action="customer.duplicate_dismissed",
        record_type="duplicate_suggestion",
        record_id=suggestion.id,
        details={
            "customer_id": str(suggestion.customer_id),
            "candidate_id": str(suggestion.candidate_id),
        },
    )
    await session.flush()
    return suggestion
