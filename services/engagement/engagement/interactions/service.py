"""Operations on interactions."""

import uuid
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from engagement.interactions.models import Interaction


async def count_interactions(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many interactions each of ``customer_ids`` has (absent ones have none)."""
    rows = await session.execute(
        select(Interaction.customer_id, func.count())
        .where(Interaction.tenant_id == tenant_id, col(Interaction.customer_id).in_(customer_ids))
        .group_by(col(Interaction.customer_id))
    )
    return {customer_id: int(count) for customer_id, count in rows.all()}
