"""Rewards follows identity's merges: the merged customer's points move to the survivor, and
an unmerge moves back what is left of them.

Points travel as lots with their own expiry (a ``transfer`` entry), so a merge neither extends
nor shortens anyone's points. After an unmerge the restored customer gets back what remains
of the lots the merge moved; what the survivor spent in between is not given back (it was
spent), and points the survivor earned after the merge stay with the survivor.
"""

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope
from crm_shared.privacy import CustomerMerged, CustomerUnmerged
from rewards.accounts import service


def merge_key(merge_id: object) -> str:
    """The ledger key of the transfer a merge makes."""
    return f"merge:{merge_id}"


async def move_points_to_survivor(
    event: CustomerMerged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Transfer the merged customer's open lots to the survivor, keyed by the merge."""
    await service.transfer(
        session,
        tenant_id=envelope.tenantid,
        from_customer=event.merged_id,
        to_customer=event.survivor_id,
        reason="customers merged",
        idempotency_key=merge_key(event.merge_id),
        actor="system:merge",
    )


async def move_points_back(
    event: CustomerUnmerged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Transfer what is left of the merge's lots back to the restored customer."""
    moved = await service.entry_by_key(
        session, tenant_id=envelope.tenantid, idempotency_key=merge_key(event.merge_id)
    )
    if moved is None:  # the merged customer had no points to move
        return
    await service.transfer(
        session,
        tenant_id=envelope.tenantid,
        from_customer=event.survivor_id,
        to_customer=event.restored_id,
        reason="merge undone",
        idempotency_key=f"unmerge:{event.merge_id}",
        actor="system:merge",
        only_lots_of_entry=moved.id,
    )
