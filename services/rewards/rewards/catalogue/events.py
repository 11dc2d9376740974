"""Events rewards publishes about the catalogue (through the outbox)."""

import uuid

from crm_shared.events import Event


class CatalogueItemRedeemed(Event):
    """A customer bought a catalogue item with points (the ledger entry is ``entry_id``)."""

    type = "rewards.catalogue.redeemed.v1"

    redemption_id: uuid.UUID
    item_id: uuid.UUID
    customer_id: uuid.UUID
    points: int
    entry_id: uuid.UUID
    # The coupon issued, when the item is a coupon (its own rewards.coupon.issued.v1 too).
    coupon_id: uuid.UUID | None = None
