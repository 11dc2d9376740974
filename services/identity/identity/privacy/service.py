"""Privacy: everything identity holds about a customer, and erasing it.

Erasure here is immediate and in one transaction: the customer record is kept as an empty
shell (its id is what the other services' data and the ledger point at) with ``erased_at``
set; contact points, consent records, social profiles, link suggestions and the data needed
to undo merges are deleted; records merged into the customer are the same person and are
erased with it. The request then waits for every other service's confirmation.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.auth import Principal
from crm_shared.db import utcnow
from crm_shared.errors import Conflict, NotFound
from crm_shared.events import Event, record_event
from crm_shared.pagination import keyset_page
from crm_shared.privacy import ErasureRequested, ProfileRef, scrub_outbox
from identity.access.audit import record_staff_action
from identity.activity.models import CustomerActivity
from identity.consent.models import ConsentRecord
from identity.customers.merge import CustomerMerge
from identity.customers.models import OPTIONAL_PROFILE_FIELDS, ContactPoint, Customer, CustomerTag
from identity.customers.service import customer_for_update
from identity.duplicates.models import DuplicateSuggestion
from identity.partners.service import scrub_webhook_events
from identity.privacy.models import ErasureConfirmation, ErasureRequest
from identity.profiles.models import LinkSuggestion, ProfileLink, SocialProfile

SERVICE = "identity"


class ErasureCompletedEverywhere(Event):
    """Every service confirmed an erasure request."""

    type = "identity.erasure.completed.v1"

    request_id: uuid.UUID
    customer_id: uuid.UUID


def _row(model: Any) -> dict[str, Any]:
    row: dict[str, Any] = model.model_dump(mode="json", exclude={"tenant_id"})
    return row


async def export_customer(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> dict[str, Any] | None:
    """Identity's part of a privacy export, as plain JSON; None for an unknown customer."""
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.tenant_id != tenant_id:
        return None
    ids = [customer_id, *await _merged_into(session, customer_id)]

    async def rows(model: Any, column: Any) -> list[dict[str, Any]]:
        found = await session.exec(select(model).where(col(column).in_(ids)))
        return [_row(r) for r in found]

    links = await rows(ProfileLink, ProfileLink.customer_id)
    profile_ids = {link["profile_id"] for link in links}
    profiles = await session.exec(
        select(SocialProfile).where(col(SocialProfile.id).in_(profile_ids))
    )
    return {
        "customer": _row(customer),
        "merged_records": [
            _row(c)
            for c in await session.exec(select(Customer).where(col(Customer.id).in_(ids[1:])))
        ],
        "contact_points": await rows(ContactPoint, ContactPoint.customer_id),
        "social_profiles": [_row(p) for p in profiles],
        "profile_links": links,
        "consent_records": await rows(ConsentRecord, ConsentRecord.customer_id),
    }


async def _merged_into(session: AsyncSession, customer_id: uuid.UUID) -> list[uuid.UUID]:
    found = await session.exec(select(Customer.id).where(Customer.merged_into_id == customer_id))
    return list(found)


async def request_erasure(
    *, session: AsyncSession, principal: Principal, customer_id: uuid.UUID
) -> ErasureRequest:
    """Erase identity's data now and ask every other service to do the same."""
    tenant_id = principal.tenant_id
    customer = await customer_for_update(session, tenant_id, customer_id, "input.customerId")
    if customer.erased_at is not None:
        raise Conflict(
            "input.customerId: this customer is already erased", field="input.customerId"
        )
    if customer.merged_into_id is not None:
        raise Conflict(
            "input.customerId: this record is merged; erase the customer it is merged into",
            field="input.customerId",
        )
    ids = [customer_id, *await _merged_into(session, customer_id)]
    profiles = list(
        await session.exec(
            select(SocialProfile).where(
                col(SocialProfile.id).in_(
                    select(ProfileLink.profile_id).where(col(ProfileLink.customer_id).in_(ids))
                )
            )
        )
    )
    refs = [ProfileRef(channel=p.channel, platform_user_id=p.platform_user_id) for p in profiles]

    for model, column in (
        (ContactPoint, ContactPoint.customer_id),
        (ConsentRecord, ConsentRecord.customer_id),
        (LinkSuggestion, LinkSuggestion.customer_id),
        (ProfileLink, ProfileLink.customer_id),
        (CustomerTag, CustomerTag.customer_id),
        (CustomerActivity, CustomerActivity.customer_id),
        (DuplicateSuggestion, DuplicateSuggestion.customer_id),
        (DuplicateSuggestion, DuplicateSuggestion.candidate_id),
    ):
        await session.execute(delete(model).where(col(column).in_(ids)))
    await session.execute(
        delete(SocialProfile).where(col(SocialProfile.id).in_([p.id for p in profiles]))
    )
    merges = await session.exec(
        select(CustomerMerge).where(
            or_(col(CustomerMerge.survivor_id).in_(ids), col(CustomerMerge.merged_id).in_(ids))
        )
    )
    for merge in merges:
        merge.undo, merge.reason = {}, "(erased)"
        merge.unmerge_reason = "(erased)" if merge.unmerge_reason else None
        session.add(merge)
    for record in await session.exec(select(Customer).where(col(Customer.id).in_(ids))):
        _empty(record)
        session.add(record)

    request = ErasureRequest(
        tenant_id=tenant_id, customer_id=customer_id, requested_by=principal.actor
    )
    session.add(request)
    await session.flush()
    session.add(ErasureConfirmation(request_id=request.id, service=SERVICE))
    needles = [str(i) for i in ids] + [r.platform_user_id for r in refs]
    await scrub_outbox(session, "identity", needles)
    await scrub_webhook_events(session, tenant_id, needles)
    await record_event(
        session,
        ErasureRequested(
            request_id=request.id, customer_id=customer_id, customer_ids=ids, profiles=refs
        ),
        tenant_id=tenant_id,
        subject=str(customer_id),
    )
    await record_staff_action(
        session=session,
        principal=principal,
        action="customer.erase",
        record_type="customer",
        record_id=customer_id,
        details={"request_id": str(request.id)},
    )
    await session.flush()
    return request


def _empty(customer: Customer) -> None:
    customer.name = "(erased)"
    for field in OPTIONAL_PROFILE_FIELDS:
        setattr(customer, field, None)
    customer.preferences = {}
    customer.erased_at = customer.updated_at = utcnow()


async def confirm(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    request_id: uuid.UUID,
    service: str,
    expected: list[str],
) -> None:
    """Record a service's confirmation; complete the request when all ``expected`` have."""
    request = await session.get(ErasureRequest, request_id, with_for_update=True)
    if request is None or request.tenant_id != tenant_id:
        raise NotFound(f"no erasure request {request_id} in this tenant")
    if await session.get(ErasureConfirmation, (request_id, service)) is None:
        session.add(ErasureConfirmation(request_id=request_id, service=service))
        await session.flush()
    confirmed = set(
        await session.exec(
            select(ErasureConfirmation.service).where(ErasureConfirmation.request_id == request_id)
        )
    )
    if request.completed_at is None and set(expected) <= confirmed:
        request.completed_at = utcnow()
        session.add(request)
        await record_event(
            session,
            ErasureCompletedEverywhere(request_id=request.id, customer_id=request.customer_id),
            tenant_id=tenant_id,
            subject=str(request.customer_id),
        )


async def confirmations(
    *, session: AsyncSession, request_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, ErasureConfirmation]]:
    """Each request's confirmations by service."""
    found: dict[uuid.UUID, dict[str, ErasureConfirmation]] = {}
    rows = await session.exec(
        select(ErasureConfirmation).where(col(ErasureConfirmation.request_id).in_(request_ids))
    )
    for row in rows:
        found.setdefault(row.request_id, {})[row.service] = row
    return found


async def list_requests(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[ErasureRequest]:
    """The tenant's erasure requests, newest first."""
    query = select(ErasureRequest).where(ErasureRequest.tenant_id == tenant_id)
    query = keyset_page(
        query,
        col(ErasureRequest.requested_at),
        col(ErasureRequest.id),
        before,
        limit=limit,
        newest_first=True,
    )
    return list(await session.exec(query))
