"""Recording consent and reading its current state and history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.auth import Principal
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from identity.consent.events import ConsentChanged
from identity.consent.models import ConsentInput, ConsentRecord
from identity.customers.service import customer_for_update


async def record_consent(
    *, session: AsyncSession, principal: Principal, customer_id: uuid.UUID, data: ConsentInput
) -> ConsentRecord:
    """Append a consent record; announce it when the state or the policy version changed."""
    await customer_for_update(session, principal.tenant_id, customer_id, "input.customerId")
    current = await current_consents(
        session=session, tenant_id=principal.tenant_id, customer_ids=[customer_id]
    )
    previous = current.get((customer_id, data.purpose.value))
    record = ConsentRecord(
        tenant_id=principal.tenant_id,
        customer_id=customer_id,
        purpose=data.purpose.value,
        granted=data.granted,
        source=data.source,
        policy_version=data.policy_version,
        recorded_by=principal.actor,
    )
    session.add(record)
    await session.flush()
    unchanged = (
        previous is not None
        and previous.granted == data.granted
        and previous.policy_version == data.policy_version
    )
    # Withdrawing what was never granted is recorded but changes nothing others act on.
    if not unchanged and (previous is not None or data.granted):
        await announce_consent(session, record)
    return record


async def record_initial_consents(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    consents: Sequence[ConsentInput],
    recorded_by: str,
) -> None:
    """The consents a new customer gave at registration, in its transaction: the grants are
    announced (so that the registration event itself may reach partners), a refusal is only
    recorded (nothing stood granted before)."""
    for data in consents:
        record = ConsentRecord(
            tenant_id=tenant_id,
            customer_id=customer_id,
            purpose=data.purpose.value,
            granted=data.granted,
            source=data.source,
            policy_version=data.policy_version,
            recorded_by=recorded_by,
        )
        session.add(record)
        await session.flush()
        if record.granted:
            await announce_consent(session, record)


async def announce_consent(session: AsyncSession, record: ConsentRecord) -> None:
    """``identity.consent.changed.v1``: the purpose now stands as ``record`` says."""
    await record_event(
        session,
        ConsentChanged(
            customer_id=record.customer_id,
            purpose=record.purpose,
            granted=record.granted,
            policy_version=record.policy_version,
            source=record.source,
            changed_at=record.recorded_at,
        ),
        tenant_id=record.tenant_id,
        subject=str(record.customer_id),
    )


async def current_consents(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[tuple[uuid.UUID, str], ConsentRecord]:
    """The latest record per (customer, purpose)."""
    rows = await session.exec(
        select(ConsentRecord)
        .where(
            ConsentRecord.tenant_id == tenant_id, col(ConsentRecord.customer_id).in_(customer_ids)
        )
        .distinct(col(ConsentRecord.customer_id), col(ConsentRecord.purpose))
        .order_by(
            col(ConsentRecord.customer_id),
            col(ConsentRecord.purpose),
            col(ConsentRecord.recorded_at).desc(),
            col(ConsentRecord.id).desc(),
        )
    )
    return {(r.customer_id, r.purpose): r for r in rows}


async def consent_history(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[ConsentRecord]:
    """A customer's consent records, newest first."""
    query = select(ConsentRecord).where(
        ConsentRecord.tenant_id == tenant_id, ConsentRecord.customer_id == customer_id
    )
    query = keyset_page(
        query,
        col(ConsentRecord.recorded_at),
        col(ConsentRecord.id),
        before,
        limit=limit,
        newest_first=True,
    )
    return list(await session.exec(query))
